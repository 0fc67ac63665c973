//! The webhook use cases: endpoints (ADMIN), their delivery log, replays
//! and test sends, and queuing an event for every endpoint that wants it.

use std::sync::Arc;
use std::time::Duration;

use kernel::auth::Admin;
use kernel::{Page, PageRequest, SharedClock, Timestamp};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::WebhookError;
use crate::guard::AddressGuard;
use crate::model::{
    self, Attempt, AttemptId, Endpoint, EndpointChange, EndpointId, EndpointView,
    EndpointWithSecret, MessageId, NewEndpoint, NewMessage, PREVIOUS_SECRET_GRACE, SigningSecret,
    TEST_EVENT,
};
use crate::store::WebhookStore;

/// The webhook settings of a deployment.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// Lets endpoints be loopback and private addresses (test suites).
    pub allow_private: bool,
    /// The first retry's delay; later ones grow from it.
    pub retry_base: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_base: Duration::from_secs(5),
        }
    }
}

/// The answer to a test send or a replay: which message goes out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Queued {
    /// The `webhook-id` the delivery carries.
    pub webhook_id: String,
}

pub struct WebhookService {
    store: Arc<dyn WebhookStore>,
    clock: SharedClock,
    settings: WebhookSettings,
    /// Woken when messages are queued, so the deliverer starts at once.
    pub wake: Arc<Notify>,
}

const LIST_SCOPE: &str = "webhook-endpoints";
const DELIVERIES_SCOPE: &str = "webhook-deliveries";

impl WebhookService {
    #[must_use]
    pub fn new(
        store: Arc<dyn WebhookStore>,
        clock: SharedClock,
        settings: WebhookSettings,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    #[must_use]
    pub const fn settings(&self) -> WebhookSettings {
        self.settings
    }

    #[must_use]
    pub fn store(&self) -> Arc<dyn WebhookStore> {
        self.store.clone()
    }

    #[must_use]
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    fn guard(&self) -> AddressGuard {
        AddressGuard {
            allow_private: self.settings.allow_private,
        }
    }

    /// Checks that the URL's host is one deliveries may reach.
    async fn check_reachable(&self, url: &url::Url) -> Result<(), WebhookError> {
        self.guard()
            .check_url(url)
            .await
            .map_err(|refused| WebhookError::field("url", refused.to_string()))
    }

    #[tracing::instrument(name = "webhooks.create", skip_all)]
    pub async fn create(
        &self,
        _admin: &Admin,
        new: &NewEndpoint,
    ) -> Result<EndpointWithSecret, WebhookError> {
        let (url, event_types, description) =
            model::check_new(new).map_err(WebhookError::Invalid)?;
        self.check_reachable(&url).await?;
        let now = self.clock.now();
        let secret = SigningSecret::generate().map_err(WebhookError::Internal)?;
        let endpoint = Endpoint {
            id: EndpointId::new(),
            url: url.to_string(),
            event_types,
            description,
            disabled: false,
            secret,
            previous_secret: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_endpoint(&endpoint).await?;
        tracing::info!(endpoint = %endpoint.id, "webhook endpoint registered");
        Ok(with_secret(&endpoint))
    }

    #[tracing::instrument(name = "webhooks.list", skip_all)]
    pub async fn list(
        &self,
        _admin: &Admin,
        page: PageRequest,
    ) -> Result<Page<EndpointView>, WebhookError> {
        let rows = self.store.list_endpoints(page).await?;
        Ok(Page::from_rows(rows, page, LIST_SCOPE, |e| e.id.0).map(|e| e.view()))
    }

    async fn find(&self, id: EndpointId) -> Result<Endpoint, WebhookError> {
        self.store
            .endpoint(id)
            .await?
            .ok_or(WebhookError::EndpointNotFound)
    }

    #[tracing::instrument(name = "webhooks.get", skip_all)]
    pub async fn get(&self, _admin: &Admin, id: EndpointId) -> Result<EndpointView, WebhookError> {
        Ok(self.find(id).await?.view())
    }

    #[tracing::instrument(name = "webhooks.update", skip_all)]
    pub async fn update(
        &self,
        _admin: &Admin,
        id: EndpointId,
        change: &EndpointChange,
    ) -> Result<EndpointView, WebhookError> {
        let mut endpoint = self.find(id).await?;
        let mut v = kernel::Violations::default();
        let url = change
            .url
            .as_deref()
            .and_then(|u| v.check("url", model::check_url(u)));
        let types = change
            .event_types
            .as_deref()
            .and_then(|t| v.check("event_types", model::check_event_types(t)));
        let description = change
            .description
            .as_deref()
            .and_then(|d| v.check("description", model::check_description(Some(d))));
        v.into_errors().map_err(WebhookError::Invalid)?;
        if let Some(url) = url {
            self.check_reachable(&url).await?;
            endpoint.url = url.to_string();
        }
        if let Some(types) = types {
            endpoint.event_types = types;
        }
        if let Some(description) = description {
            endpoint.description = description;
        }
        if let Some(disabled) = change.disabled {
            endpoint.disabled = disabled;
        }
        endpoint.updated_at = self.clock.now();
        if !self.store.update_endpoint(&endpoint).await? {
            return Err(WebhookError::EndpointNotFound);
        }
        self.wake.notify_one();
        Ok(endpoint.view())
    }

    #[tracing::instrument(name = "webhooks.delete", skip_all)]
    pub async fn delete(&self, _admin: &Admin, id: EndpointId) -> Result<(), WebhookError> {
        if self.store.delete_endpoint(id).await? {
            Ok(())
        } else {
            Err(WebhookError::EndpointNotFound)
        }
    }

    /// A new secret; the current one keeps signing beside it for 24 hours.
    #[tracing::instrument(name = "webhooks.rotate_secret", skip_all)]
    pub async fn rotate_secret(
        &self,
        _admin: &Admin,
        id: EndpointId,
    ) -> Result<EndpointWithSecret, WebhookError> {
        let mut endpoint = self.find(id).await?;
        let now = self.clock.now();
        let fresh = SigningSecret::generate().map_err(WebhookError::Internal)?;
        let old = std::mem::replace(&mut endpoint.secret, fresh);
        endpoint.previous_secret = Some((old, now + PREVIOUS_SECRET_GRACE));
        endpoint.updated_at = now;
        if !self.store.update_endpoint(&endpoint).await? {
            return Err(WebhookError::EndpointNotFound);
        }
        tracing::info!(endpoint = %endpoint.id, "webhook secret rotated");
        Ok(with_secret(&endpoint))
    }

    /// The endpoint's delivery log, oldest attempt first.
    #[tracing::instrument(name = "webhooks.deliveries", skip_all)]
    pub async fn deliveries(
        &self,
        _admin: &Admin,
        id: EndpointId,
        page: PageRequest,
    ) -> Result<Page<Attempt>, WebhookError> {
        self.find(id).await?;
        let rows = self.store.attempts(id, page).await?;
        Ok(Page::from_rows(rows, page, DELIVERIES_SCOPE, |a| a.id.0))
    }

    /// Queues a delivery's message again, due now under the same
    /// `webhook-id`, with a fresh retry window. `id` is an attempt's id
    /// from the delivery log, or a message's `webhook-id`.
    #[tracing::instrument(name = "webhooks.replay", skip_all)]
    pub async fn replay(&self, _admin: &Admin, id: &str) -> Result<Queued, WebhookError> {
        let message = if let Some(hex) = id.strip_prefix("msg_") {
            Uuid::try_parse(hex)
                .map(MessageId)
                .map_err(|_| WebhookError::DeliveryNotFound)?
        } else {
            let attempt = Uuid::try_parse(id).map_err(|_| WebhookError::DeliveryNotFound)?;
            self.store
                .attempt(AttemptId(attempt))
                .await?
                .ok_or(WebhookError::DeliveryNotFound)?
                .message_id
        };
        if !self.store.replay(message, self.clock.now()).await? {
            return Err(WebhookError::DeliveryNotFound);
        }
        self.wake.notify_one();
        Ok(Queued {
            webhook_id: model::webhook_id(message),
        })
    }

    /// Queues a `webhook.test` event for the endpoint (whatever it subscribes to).
    #[tracing::instrument(name = "webhooks.send_test", skip_all)]
    pub async fn send_test(&self, _admin: &Admin, id: EndpointId) -> Result<Queued, WebhookError> {
        let endpoint = self.find(id).await?;
        let now = self.clock.now();
        let data = serde_json::json!({
            "endpoint_id": endpoint.id,
            "message": "a test event from Stampede",
        });
        let message = NewMessage::new(endpoint.id, Uuid::now_v7(), TEST_EVENT, now, &data, now)
            .map_err(|e| WebhookError::Internal(e.to_string()))?;
        let queued = Queued {
            webhook_id: model::webhook_id(message.id),
        };
        self.store.enqueue(vec![message]).await?;
        self.wake.notify_one();
        Ok(queued)
    }

    /// Queues an event for every enabled endpoint subscribed to its type,
    /// once per endpoint and `source_id`. Returns how many were queued.
    #[tracing::instrument(name = "webhooks.publish", skip_all)]
    pub async fn publish(
        &self,
        source_id: Uuid,
        event_type: &str,
        occurred_at: Timestamp,
        data: &serde_json::Value,
    ) -> Result<u64, WebhookError> {
        let now = self.clock.now();
        let mut messages = Vec::new();
        for endpoint in self.store.enabled_endpoints().await? {
            if endpoint.wants(event_type) {
                messages.push(
                    NewMessage::new(endpoint.id, source_id, event_type, occurred_at, data, now)
                        .map_err(|e| WebhookError::Internal(e.to_string()))?,
                );
            }
        }
        let queued = self.store.enqueue(messages).await?;
        if queued > 0 {
            self.wake.notify_one();
        }
        Ok(queued)
    }
}

fn with_secret(endpoint: &Endpoint) -> EndpointWithSecret {
    EndpointWithSecret {
        endpoint: endpoint.view(),
        secret: endpoint.secret.expose().to_owned(),
    }
}
