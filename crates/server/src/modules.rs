//! The modules, started and wired, without a listener: the database and its
//! migrations, each module's service, the bus, the rate limiter and every
//! module's stock gate, registered once in [`Modules::stock`].

use std::sync::Arc;
use std::time::Duration;

use bus::{
    Dispatcher, Handler, InProcessTransport, RabbitMqConsumer, RabbitMqOptions, RabbitMqTransport,
    Relay, RetryPolicy, Transport,
};
use commerce::analytics::{CommerceAnalyticsService, SqlAnalyticsStore};
use commerce::orders::{OrderService, RefundOrders, SqlOrderStore};
use commerce::payments::{PaymentProvider, TossProvider};
use commerce::products::{ProductService, SqlProductStore};
use commerce::reservations::{ProductStockLoader, ReservationService, SqlReservationStore};
use commerce::store::{CouponStore, SqlCouponStore};
use commerce::waitlist::{SqlWaitlistStore, WaitlistService};
use commerce::{CampaignStockLoader, CouponGrantHandler, CouponService};
use gate::{
    MemoryRateLimiter, ModuleStock, PoolSet, RateLimiter, RedisConnection, RedisRateLimiter,
    StockLoader,
};
use identity::store::SqlIdentityStore;
use identity::{IdentityService, IdentitySettings};
use kernel::db::{Db, DbOptions};
use kernel::{SharedClock, SystemClock};
use notify::{
    Mailer, OrderPaidEmail, OrderRefundedEmail, RewardGrantedEmail, SlackWebhook,
    WaitingListOfferedEmail,
};
use park::line::{LineStore, MemoryLines, RedisLines};
use park::store::SqlParkStore;
use park::{ParkService, ParkSettings};
use platform::Idempotency;
use rewards::RewardsService;
use rewards::service::RewardStockLoader;
use rewards::store::{RewardsStore, SqlRewardsStore};
use rewards::subscribers::IdentityFacts;
use webhooks::store::SqlWebhookStore;
use webhooks::{Deliverer, WebhookEvents, WebhookService, WebhookSettings};

use crate::config::{BusKind, LineStoreKind, RateLimiterKind, Settings};
use crate::startup::StartError;
use crate::stock::{CouponPools, GateFactory, ProductPools, RewardPools, StockRegistry};

/// Every module's service and what they share (also what the CLI's `admin`
/// and `reconcile` commands need).
pub struct Modules {
    pub db: Db,
    pub clock: SharedClock,
    pub identity: Arc<IdentityService>,
    pub rewards: Arc<RewardsService>,
    pub commerce: Arc<CouponService>,
    /// Products on sale (commerce).
    pub products: Arc<ProductService>,
    /// The park: attractions and their waiting lines.
    pub park: Arc<ParkService>,
    /// Holds of products' units (commerce).
    pub reservations: Arc<ReservationService>,
    /// Orders placed from holds (commerce).
    pub orders: Arc<OrderService>,
    /// Tickets of paid orders (commerce).
    pub tickets: Arc<commerce::tickets::TicketService>,
    /// Waiting lists of sold-out products and their offer worker (commerce).
    pub waitlist: Arc<WaitlistService>,
    /// Commerce's figures for readers and the orders needing an operator.
    pub commerce_analytics: Arc<CommerceAnalyticsService>,
    /// Outbound webhooks: endpoints and their queue.
    pub webhooks: Arc<WebhookService>,
    /// Works the webhook queue (a background task).
    pub deliverer: Arc<Deliverer>,
    pub idempotency: Idempotency,
    /// Hands committed outbox messages to the transport.
    pub relay: Arc<Relay>,
    /// Runs inbox deliveries through the subscribers.
    pub dispatcher: Arc<Dispatcher>,
    /// Request limits and login throttling (memory or Redis).
    pub limiter: Arc<dyn RateLimiter>,
    /// The Redis connection, when anything is configured to live in Redis.
    pub redis: Option<RedisConnection>,
    /// Every module's stock gate, loader and pool lister.
    pub stock: StockRegistry,
    /// The broker's two sides, when the bus runs over RabbitMQ.
    pub broker: Option<Broker>,
    /// The Slack-compatible webhook, when `slack_webhook_url` is set: line
    /// calls and the dead-letter alert.
    pub slack: Option<Arc<SlackWebhook>>,
    /// Growth of the dead letters that makes the operator alert speak.
    pub dead_letter_alert_threshold: u64,
    /// The Toss Payments provider, when `toss_secret_key` is set.
    pub toss: Option<Arc<dyn PaymentProvider>>,
}

/// The bus over RabbitMQ: the relay publishes through `publisher`;
/// `consumer` (a background task) fills this database's inbox.
#[derive(Clone)]
pub struct Broker {
    pub publisher: Arc<RabbitMqTransport>,
    pub consumer: Arc<RabbitMqConsumer>,
}

impl Modules {
    /// Opens the database, applies every module's migrations and starts the services.
    pub async fn start(settings: &Settings) -> Result<Self, StartError> {
        // A bad key file is a configuration error: report it before touching the database.
        let key = settings
            .jwt_private_key_file
            .as_ref()
            .map(|path| read_key_file(path))
            .transpose()?;
        let db = Db::connect(
            &settings.database_url,
            &DbOptions {
                max_connections: settings.database_max_connections,
                ..DbOptions::default()
            },
        )
        .await?;
        db.migrate(bus::migrations()).await?;
        db.migrate(platform::idempotency::migrations()).await?;
        db.migrate(identity::migrations()).await?;
        db.migrate(rewards::migrations()).await?;
        db.migrate(commerce::migrations()).await?;
        db.migrate(webhooks::migrations()).await?;
        db.migrate(park::migrations()).await?;

        let clock: SharedClock = Arc::new(SystemClock);
        let redis = match &settings.redis_url {
            Some(url) if settings.needs_redis() => Some(
                RedisConnection::connect(url)
                    .await
                    .map_err(|e| StartError::Redis(e.to_string()))?,
            ),
            _ => None,
        };
        // Login throttling uses it even when request limits are off.
        let limiter: Arc<dyn RateLimiter> = match (settings.rate_limiter, &redis) {
            (RateLimiterKind::Redis, Some(connection)) => Arc::new(RedisRateLimiter::new(
                connection.clone(),
                format!("{}:rate", settings.redis_prefix),
            )),
            _ => Arc::new(MemoryRateLimiter::default()),
        };
        let gates = GateFactory::new(settings, &db, redis.clone()).await?;
        let identity_settings = IdentitySettings {
            access_token_ttl: time::Duration::seconds(settings.access_token_ttl_seconds),
            refresh_token_ttl: time::Duration::seconds(settings.refresh_token_ttl_seconds),
            ..IdentitySettings::default()
        };
        let identity = Arc::new(
            IdentityService::start(
                Arc::new(SqlIdentityStore::new(db.clone())),
                clock.clone(),
                limiter.clone(),
                identity_settings,
                key,
            )
            .await?,
        );
        let coupon_store: Arc<dyn CouponStore> = Arc::new(SqlCouponStore::new(db.clone()));
        let coupon_loader: Arc<dyn StockLoader> =
            Arc::new(CampaignStockLoader::new(coupon_store.clone()));
        let coupon_gate = gates.gate("coupons", coupon_loader.clone())?;
        let commerce = Arc::new(CouponService::new(
            coupon_store,
            clock.clone(),
            coupon_gate.clone(),
            &db.writer_runtime(),
        ));
        let product_store = Arc::new(SqlProductStore::new(db.clone()));
        let reservation_store = Arc::new(SqlReservationStore::new(db.clone()));
        let product_loader: Arc<dyn StockLoader> =
            Arc::new(ProductStockLoader::new(reservation_store.clone()));
        let product_gate = gates.gate("products", product_loader.clone())?;
        let products = Arc::new(
            ProductService::new(product_store.clone(), clock.clone())
                .with_gate(product_gate.clone()),
        );
        let reservations = Arc::new(ReservationService::new(
            reservation_store,
            product_store.clone(),
            clock.clone(),
            product_gate.clone(),
        ));
        let waitlist = Arc::new(WaitlistService::new(
            Arc::new(SqlWaitlistStore::new(db.clone())),
            product_store.clone(),
            reservations.clone(),
            clock.clone(),
            Duration::from_secs(settings.waiting_list_offer_seconds),
        ));
        let mut orders = OrderService::new(
            Arc::new(SqlOrderStore::new(db.clone())),
            product_store,
            reservations.clone(),
            clock.clone(),
            Duration::from_secs(settings.payment_window_seconds),
        );
        let toss = settings
            .toss()
            .map(TossProvider::new)
            .transpose()
            .map_err(|e| StartError::Config(crate::config::ConfigError::Invalid(e.to_string())))?
            .map(|provider| Arc::new(provider) as Arc<dyn PaymentProvider>);
        if let Some(toss) = &toss {
            orders = orders.with_provider(toss.clone());
        }
        if settings.fake_payments == crate::config::Switch::On {
            tracing::warn!("fake_payments is on: orders can be paid without money");
            orders = orders.with_provider(Arc::new(commerce::payments::FakeProvider::new()));
        }
        let orders = Arc::new(orders);
        let commerce_analytics = Arc::new(CommerceAnalyticsService::new(
            commerce.clone(),
            Arc::new(SqlAnalyticsStore::new(db.clone())),
            clock.clone(),
        ));
        let tickets = Arc::new(commerce::tickets::TicketService::new(
            Arc::new(commerce::tickets::SqlTicketStore::new(db.clone())),
            clock.clone(),
        ));
        let rewards_store: Arc<dyn RewardsStore> = Arc::new(SqlRewardsStore::new(db.clone()));
        let rewards_loader: Arc<dyn StockLoader> =
            Arc::new(RewardStockLoader::new(rewards_store.clone()));
        let rewards_gate = gates.gate("rewards", rewards_loader.clone())?;
        let rewards = Arc::new(RewardsService::new(
            rewards_store,
            clock.clone(),
            rewards_gate.clone(),
            commerce.clone(),
        ));
        // The one list of stock: a module with a gate adds its line here.
        let stock: StockRegistry = Arc::new([
            ModuleStock {
                module: "rewards",
                gate: rewards_gate,
                loader: rewards_loader,
                lister: Arc::new(RewardPools(rewards.clone())),
            },
            ModuleStock {
                module: "commerce",
                gate: coupon_gate,
                loader: coupon_loader,
                lister: Arc::new(CouponPools(commerce.clone())),
            },
            ModuleStock {
                module: "products",
                gate: product_gate,
                loader: product_loader,
                lister: Arc::new(ProductPools(reservations.clone())),
            },
        ]);
        let mut idempotency =
            Idempotency::new(db.clone(), clock.clone(), settings.body_limit_bytes);
        idempotency.abandon_after = Duration::from_secs(settings.idempotency_abandon_seconds);
        let webhooks = Arc::new(WebhookService::new(
            Arc::new(SqlWebhookStore::new(db.clone())),
            clock.clone(),
            WebhookSettings {
                allow_private: settings.webhook_allow_private,
                retry_base: Duration::from_secs(settings.webhook_retry_base_seconds),
            },
        ));
        let deliverer = Arc::new(Deliverer::new(&webhooks).map_err(StartError::Webhooks)?);
        let invalid = |e: String| StartError::Config(crate::config::ConfigError::Invalid(e));
        let mailer = Arc::new(
            Mailer::new(settings.smtp_url.as_ref(), &settings.mail_from)
                .map_err(|e| invalid(e.to_string()))?,
        );
        if !mailer.sends() {
            tracing::info!("no smtp_url: emails are logged and counted, not sent");
        }
        let slack = settings
            .slack_webhook_url
            .clone()
            .map(SlackWebhook::new)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?
            .map(Arc::new);
        let lines: Arc<dyn LineStore> = match (settings.line_store, &settings.redis_url) {
            (LineStoreKind::Redis, Some(url)) => Arc::new(
                RedisLines::connect(url, &settings.redis_prefix)
                    .await
                    .map_err(|e| StartError::Redis(e.to_string()))?,
            ),
            _ => Arc::new(MemoryLines::default()),
        };
        let park = Arc::new(
            ParkService::start(
                Arc::new(SqlParkStore::new(db.clone())),
                lines,
                clock.clone(),
                ParkSettings {
                    max_lines_per_user: settings.max_lines_per_user,
                    call_grace_seconds: settings.call_grace_seconds,
                    max_party_size: settings.max_party_size,
                },
            )
            .await
            .map_err(|e| StartError::Park(e.to_string()))?,
        );
        let handlers: Vec<Arc<dyn Handler>> = vec![
            // Line calls reach the Slack-compatible webhook.
            Arc::new(notify::slack::SlackSubscriber::new(
                "park.call_notice",
                park::notices::TOPICS,
                park::notices::render_call,
                slack.clone(),
            )),
            Arc::new(IdentityFacts::new(rewards.clone())),
            Arc::new(CouponGrantHandler::new(commerce.clone())),
            Arc::new(WebhookEvents::new(webhooks.clone())),
            Arc::new(RewardGrantedEmail::new(identity.clone(), mailer.clone())),
            Arc::new(OrderPaidEmail::new(identity.clone(), mailer.clone())),
            Arc::new(OrderRefundedEmail::new(identity.clone(), mailer.clone())),
            Arc::new(WaitingListOfferedEmail::new(identity.clone(), mailer)),
            // Refunds of cancelled orders, retried until the provider says so.
            Arc::new(RefundOrders::new(orders.clone())),
        ];
        let dispatcher = Arc::new(Dispatcher::new(
            db.clone(),
            clock.clone(),
            handlers,
            RetryPolicy::default(),
        ));
        let subscriptions = dispatcher.subscriptions();
        // Neither side waits for the broker at start: both connect (and
        // reconnect) by themselves, and /readyz says when it is down.
        let (transport, broker): (Arc<dyn Transport>, Option<Broker>) =
            match (settings.bus, &settings.amqp_url) {
                (BusKind::InProcess, _) => (
                    Arc::new(InProcessTransport::new(
                        db.clone(),
                        clock.clone(),
                        &subscriptions,
                        dispatcher.wake.clone(),
                    )),
                    None,
                ),
                (BusKind::RabbitMq, Some(url)) => {
                    let options = RabbitMqOptions {
                        prefix: settings.amqp_prefix.clone(),
                        ..RabbitMqOptions::new(url.clone())
                    };
                    let publisher =
                        Arc::new(RabbitMqTransport::new(options.clone(), &subscriptions));
                    let consumer = Arc::new(RabbitMqConsumer::new(
                        db.clone(),
                        clock.clone(),
                        options,
                        &subscriptions,
                        dispatcher.wake.clone(),
                    ));
                    (
                        publisher.clone(),
                        Some(Broker {
                            publisher,
                            consumer,
                        }),
                    )
                }
                (BusKind::RabbitMq, None) => {
                    return Err(StartError::Config(crate::config::ConfigError::Invalid(
                        "bus = rabbitmq needs amqp_url".into(),
                    )));
                }
            };
        let relay = Arc::new(Relay::new(db.clone(), transport, clock.clone()));
        Ok(Self {
            db,
            clock,
            identity,
            rewards,
            commerce,
            products,
            park,
            reservations,
            orders,
            tickets,
            waitlist,
            commerce_analytics,
            webhooks,
            deliverer,
            idempotency,
            relay,
            dispatcher,
            limiter,
            redis,
            stock,
            broker,
            slack,
            dead_letter_alert_threshold: settings.dead_letter_alert_threshold,
            toss,
        })
    }

    /// Every module's stock pools with their gate and loader, for reconciliation.
    pub async fn pool_sets(&self) -> Result<Vec<PoolSet>, String> {
        gate::pool_sets(&self.stock).await
    }
}

fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, StartError> {
    let error = |reason: String| StartError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    identity::tokens::KeyRing::pkcs8_from_pem(&pem).map_err(|e| error(e.to_string()))
}
