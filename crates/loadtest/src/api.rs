//! The API calls around a rush: signing in, creating test users and a
//! campaign, and reading back what the server says happened. JSON over one
//! keep-alive connection, reopened after a failure.

use http::{HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::conn::{ConnError, Connection};
use crate::target::Target;

/// Most users one bulk call creates (the server's limit).
pub const TEST_USERS_PER_CALL: usize = 10_000;

/// Why a setup or verification call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("{call} answered {status}: {body}")]
    Status {
        call: String,
        status: u16,
        body: String,
    },
    #[error("{call} answered with an unexpected body: {reason}")]
    Body { call: String, reason: String },
}

/// A user made through `POST /admin-api/test-users`.
#[derive(Debug, Clone, Deserialize)]
pub struct TestUser {
    pub user_id: Uuid,
    pub access_token: String,
}

/// What the tool reads of a coupon campaign.
#[derive(Debug, Clone, Deserialize)]
pub struct Campaign {
    pub id: Uuid,
    pub remaining: u64,
    pub per_user_limit: u64,
}

/// What the tool reads of a coupon.
#[derive(Debug, Clone, Deserialize)]
pub struct Coupon {
    pub id: Uuid,
    pub campaign_id: Uuid,
}

/// What the tool reads of a product.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: Uuid,
    /// Null for an unlimited stock.
    pub remaining: Option<u64>,
    pub per_user_limit: Option<u64>,
}

/// What the tool reads of a reservation.
#[derive(Debug, Clone, Deserialize)]
pub struct Reservation {
    pub id: Uuid,
    pub product_id: Uuid,
    pub quantity: u64,
    pub status: String,
}

/// What the tool reads of an order.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub status: String,
    pub items: Vec<OrderItem>,
    pub tickets: Vec<Ticket>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub quantity: u64,
}

/// What the tool reads of a ticket.
#[derive(Debug, Clone, Deserialize)]
pub struct Ticket {
    pub id: Uuid,
    pub order_id: Uuid,
    pub product_id: Uuid,
    pub status: String,
}

/// One user's reservations, orders and tickets of one product.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    pub reservations: Vec<Reservation>,
    pub orders: Vec<Order>,
    pub tickets: Vec<Ticket>,
}

/// What the tool reads of an attraction.
#[derive(Debug, Clone, Deserialize)]
pub struct Attraction {
    pub id: Uuid,
}

/// The public wait board of an attraction.
#[derive(Debug, Clone, Deserialize)]
pub struct WaitBoard {
    pub line_length: u64,
    pub admitted_last_hour: u64,
}

/// What the tool reads of a line entry.
#[derive(Debug, Clone, Deserialize)]
pub struct LineEntry {
    pub id: Uuid,
    pub user_id: Uuid,
    pub party_size: u32,
    pub status: String,
    pub position: Option<u64>,
}

#[derive(Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
}

#[derive(Deserialize)]
struct TestUsers {
    users: Vec<TestUser>,
}

pub struct Api {
    target: Target,
    conn: Option<Connection>,
}

impl Api {
    #[must_use]
    pub const fn new(target: Target) -> Self {
        Self { target, conn: None }
    }

    /// Signs in; returns the access token.
    pub async fn log_in(&mut self, email: &str, password: &str) -> Result<String, ApiError> {
        let body = json!({"email": email, "password": password});
        let tokens: Tokens = self
            .call(
                Method::POST,
                "/api/v1/auth/login".into(),
                None,
                Some(&body),
                StatusCode::OK,
            )
            .await?;
        Ok(tokens.access_token)
    }

    /// Creates `count` signed-in users through the bulk path, in as few calls as the server allows.
    pub async fn create_test_users(
        &mut self,
        admin: &str,
        count: usize,
    ) -> Result<Vec<TestUser>, ApiError> {
        let mut users = Vec::with_capacity(count);
        while users.len() < count {
            let chunk = (count - users.len()).min(TEST_USERS_PER_CALL);
            let body = json!({"count": chunk, "prefix": "loadtest"});
            let created: TestUsers = self
                .call(
                    Method::POST,
                    "/admin-api/test-users".into(),
                    Some(admin),
                    Some(&body),
                    StatusCode::CREATED,
                )
                .await?;
            users.extend(created.users);
        }
        Ok(users)
    }

    /// Creates a campaign open for issuing now, for a day.
    pub async fn create_campaign(
        &mut self,
        admin: &str,
        name: &str,
        stock: u64,
        per_user_limit: u64,
    ) -> Result<Campaign, ApiError> {
        let now = OffsetDateTime::now_utc();
        let body = json!({
            "name": name,
            "discount": {"kind": "PERCENT", "value": 10},
            "total_quantity": stock,
            "per_user_limit": per_user_limit,
            "issue_starts_at": rfc3339(now - Duration::minutes(1))?,
            "issue_ends_at": rfc3339(now + Duration::days(1))?,
            "valid_until": rfc3339(now + Duration::days(30))?,
        });
        self.call(
            Method::POST,
            "/api/v1/coupon-campaigns".into(),
            Some(admin),
            Some(&body),
            StatusCode::CREATED,
        )
        .await
    }

    pub async fn campaign(&mut self, id: Uuid) -> Result<Campaign, ApiError> {
        self.call(
            Method::GET,
            format!("/api/v1/coupon-campaigns/{id}"),
            None,
            None,
            StatusCode::OK,
        )
        .await
    }

    /// The caller's coupons of one campaign, every page.
    pub async fn coupons_of(
        &mut self,
        token: &str,
        campaign: Uuid,
    ) -> Result<Vec<Coupon>, ApiError> {
        let coupons: Vec<Coupon> = self.all_pages(token, "/api/v1/coupons/mine").await?;
        Ok(coupons
            .into_iter()
            .filter(|c| c.campaign_id == campaign)
            .collect())
    }

    /// Creates a product on sale from a minute ago for a day.
    pub async fn create_product(
        &mut self,
        admin: &str,
        name: &str,
        stock: u64,
        per_user_limit: u64,
    ) -> Result<Product, ApiError> {
        let now = OffsetDateTime::now_utc();
        let body = json!({
            "name": name,
            "kind": "EVENT_TICKET",
            "price": 10_000,
            "stock": stock,
            "per_user_limit": per_user_limit,
            "sale_starts_at": rfc3339(now - Duration::minutes(1))?,
            "sale_ends_at": rfc3339(now + Duration::days(1))?,
        });
        self.call(
            Method::POST,
            "/api/v1/products".into(),
            Some(admin),
            Some(&body),
            StatusCode::CREATED,
        )
        .await
    }

    pub async fn product(&mut self, id: Uuid) -> Result<Product, ApiError> {
        self.call(
            Method::GET,
            format!("/api/v1/products/{id}"),
            None,
            None,
            StatusCode::OK,
        )
        .await
    }

    /// What one user holds of a product: reservations, orders and tickets
    /// (every page of each, only those of `product`).
    pub async fn holdings(&mut self, token: &str, product: Uuid) -> Result<Holdings, ApiError> {
        let reservations: Vec<Reservation> =
            self.all_pages(token, "/api/v1/reservations/mine").await?;
        let orders: Vec<Order> = self.all_pages(token, "/api/v1/orders/mine").await?;
        let tickets: Vec<Ticket> = self.all_pages(token, "/api/v1/tickets/mine").await?;
        Ok(Holdings {
            reservations: reservations
                .into_iter()
                .filter(|r| r.product_id == product)
                .collect(),
            orders: orders
                .into_iter()
                .filter(|o| o.items.iter().any(|i| i.product_id == product))
                .collect(),
            tickets: tickets
                .into_iter()
                .filter(|t| t.product_id == product)
                .collect(),
        })
    }

    /// Creates an operating ride.
    pub async fn create_attraction(
        &mut self,
        admin: &str,
        name: &str,
    ) -> Result<Attraction, ApiError> {
        let body = json!({"name": name, "kind": "RIDE", "hashtags": ["loadtest"]});
        self.call(
            Method::POST,
            "/api/v1/attractions".into(),
            Some(admin),
            Some(&body),
            StatusCode::CREATED,
        )
        .await
    }

    /// The public wait board.
    pub async fn wait_board(&mut self, attraction: Uuid) -> Result<WaitBoard, ApiError> {
        self.call(
            Method::GET,
            format!("/api/v1/attractions/{attraction}/wait"),
            None,
            None,
            StatusCode::OK,
        )
        .await
    }

    /// The active entries of a line in join order, every page (readers).
    pub async fn line(
        &mut self,
        reader: &str,
        attraction: Uuid,
    ) -> Result<Vec<LineEntry>, ApiError> {
        self.all_pages(reader, &format!("/api/v1/attractions/{attraction}/line"))
            .await
    }

    /// The caller's newest entry in a line.
    pub async fn my_entry(&mut self, token: &str, attraction: Uuid) -> Result<LineEntry, ApiError> {
        self.call(
            Method::GET,
            format!("/api/v1/attractions/{attraction}/line/me"),
            Some(token),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// Every page of the keyset-paged list at `path` (a path without a query).
    async fn all_pages<T: DeserializeOwned>(
        &mut self,
        token: &str,
        path: &str,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut page_path = format!("{path}?limit=100");
        loop {
            let page: Page<T> = self
                .call(Method::GET, page_path, Some(token), None, StatusCode::OK)
                .await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(cursor) => {
                    let cursor: String =
                        url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
                    page_path = format!("{path}?limit=100&cursor={cursor}");
                }
                None => return Ok(items),
            }
        }
    }

    /// The server's bus backlog (unpublished messages plus pending
    /// deliveries) from `/metrics`; `None` if the server does not report it.
    pub async fn backlog(&mut self) -> Result<Option<u64>, ApiError> {
        let text = self
            .exchange(Method::GET, "/metrics".into(), None, None, StatusCode::OK)
            .await?;
        let text = String::from_utf8_lossy(&text);
        let gauge = |name: &str| {
            text.lines().find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        };
        Ok(
            match (gauge("bus_outbox_unpublished"), gauge("bus_inbox_pending")) {
                (Some(unpublished), Some(pending)) => Some((unpublished + pending) as u64),
                _ => None,
            },
        )
    }

    /// One JSON call; anything but `expected` is an error naming the call.
    async fn call<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: String,
        token: Option<&str>,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Result<T, ApiError> {
        let call = call_name(&method, &path);
        let answer = self.exchange(method, path, token, body, expected).await?;
        serde_json::from_slice(&answer).map_err(|e| ApiError::Body {
            call,
            reason: e.to_string(),
        })
    }

    /// One call; its body, or an error naming the call if the status is not `expected`.
    async fn exchange(
        &mut self,
        method: Method,
        path: String,
        token: Option<&str>,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Result<Bytes, ApiError> {
        let call = call_name(&method, &path);
        let bad_body = |reason: String| ApiError::Body {
            call: call.clone(),
            reason,
        };
        let uri = Uri::try_from(path).map_err(|e| bad_body(e.to_string()))?;
        let payload = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => self.conn.insert(Connection::open(&self.target).await?),
        };
        let mut request = conn.request(method, uri, Full::new(payload));
        let headers = request.headers_mut();
        if body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(token) = token {
            let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| bad_body(e.to_string()))?;
            headers.insert(header::AUTHORIZATION, bearer);
        }
        let answer = match conn.send(request).await {
            Ok(answer) => answer,
            Err(e) => {
                self.conn = None;
                return Err(e.into());
            }
        };
        if answer.status != expected {
            return Err(ApiError::Status {
                call,
                status: answer.status.as_u16(),
                body: String::from_utf8_lossy(&answer.body).into_owned(),
            });
        }
        Ok(answer.body)
    }
}

fn rfc3339(at: OffsetDateTime) -> Result<String, ApiError> {
    at.format(&Rfc3339).map_err(|e| ApiError::Body {
        call: "formatting a timestamp".into(),
        reason: e.to_string(),
    })
}

/// How errors name a call: its method and path, without the query.
fn call_name(method: &Method, path: &str) -> String {
    format!("{method} {}", path.split('?').next().unwrap_or_default())
}
