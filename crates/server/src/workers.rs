//! Background work beside the server: the bus relay and dispatcher (and
//! the broker's consumer when the bus runs over RabbitMQ), the webhook
//! deliverer, the waiting lists' offer worker, the stock-lease sweeper, the
//! park's line expiry and line-store reconciliation, metrics upkeep, the
//! idempotency purge and the dead-letter alert. Each task ends when the stop flag turns true.

use std::time::Duration;

use gate::{ModuleStock, SweepReport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::modules::Modules;

/// How often the bus looks for work it was not woken for; well under the
/// one second within which a message must reach its subscribers.
const BUS_POLL: Duration = Duration::from_millis(100);
/// How often the webhook queue is looked at without being woken.
const WEBHOOK_POLL: Duration = Duration::from_secs(1);
/// How often stale stock-gate leases are looked for.
pub(crate) const LEASE_SWEEP_PERIOD: Duration = Duration::from_secs(10);
/// How often expired holds are looked for: a hold's units are back on sale
/// within this of its `expires_at`.
const HOLD_SWEEP_PERIOD: Duration = Duration::from_secs(1);
/// How often recorded latencies are folded into their histograms, as the
/// exporter's own upkeep task would (`platform::metrics::run_upkeep`).
const METRICS_UPKEEP_PERIOD: Duration = Duration::from_secs(5);
/// How often the waiting lists are looked at without being woken by a
/// give-back (one on another instance, a lease the sweep gave back).
const WAITLIST_PERIOD: Duration = Duration::from_secs(1);
/// How often called line entries past `return_by` are expired.
const LINE_EXPIRY_PERIOD: Duration = Duration::from_secs(1);
/// How often the dead letters are counted for the operator alert.
const DEAD_LETTER_CHECK_PERIOD: Duration = Duration::from_secs(60);

/// The bus loops and periodic housekeeping; each task ends when `stop` turns true.
pub fn spawn_background(
    modules: &Modules,
    lease_age: Duration,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let idempotency = modules.idempotency.clone();
    let (db, slack) = (modules.db.clone(), modules.slack.clone());
    let alarm = std::sync::Arc::new(tokio::sync::Mutex::new(notify::DeadLetterAlarm::new(
        modules.dead_letter_alert_threshold,
    )));
    let stock = modules.stock.clone();
    let park = modules.park.clone();
    let reservations = modules.reservations.clone();
    let orders = modules.orders.clone();
    let (relay, dispatcher) = (modules.relay.clone(), modules.dispatcher.clone());
    let (mut relay_stop, mut dispatch_stop) = (stop.clone(), stop.clone());
    let consumer = modules.broker.as_ref().map(|broker| {
        let (consumer, mut consume_stop) = (broker.consumer.clone(), stop.clone());
        tokio::spawn(async move {
            consumer
                .run(async move { stopped(&mut consume_stop).await })
                .await;
        })
    });
    let (deliverer, mut deliver_stop) = (modules.deliverer.clone(), stop.clone());
    let (waitlist, mut waitlist_stop) = (modules.waitlist.clone(), stop.clone());
    let mut tasks = vec![
        // Outbound webhooks: due messages are looked for every second, and
        // at once when one is queued.
        tokio::spawn(async move {
            deliverer
                .run(
                    WEBHOOK_POLL,
                    async move { stopped(&mut deliver_stop).await },
                )
                .await;
        }),
        tokio::spawn(async move {
            relay
                .run(BUS_POLL, async move { stopped(&mut relay_stop).await })
                .await;
        }),
        // Units that came back go to the waiting lists: at once when this
        // instance gave them back, within a second otherwise.
        tokio::spawn(async move {
            waitlist
                .run(
                    WAITLIST_PERIOD,
                    async move { stopped(&mut waitlist_stop).await },
                )
                .await;
        }),
        tokio::spawn(async move {
            dispatcher
                .run(BUS_POLL, async move { stopped(&mut dispatch_stop).await })
                .await;
        }),
        // Units taken by claims that died with their process, in gates that
        // outlive it; the first sweep runs at start.
        spawn_every(LEASE_SWEEP_PERIOD, stop.clone(), move || {
            let stock = stock.clone();
            async move { sweep_leases(&stock, lease_age).await }
        }),
        // Line stores that missed a change (Redis down just after a commit)
        // are mended from the table.
        spawn_every(park::reconcile::RECONCILE_PERIOD, stop.clone(), {
            let park = park.clone();
            move || {
                let park = park.clone();
                async move {
                    match park.reconcile_lines(false).await {
                        Ok(report) if report.errors.is_empty() => {}
                        Ok(report) => tracing::warn!(
                            errors = report.errors.len(),
                            first = report.errors.first().map(String::as_str),
                            "line reconciliation could not compare every line"
                        ),
                        Err(e) => tracing::warn!(error = %e, "line reconciliation failed"),
                    }
                }
            }
        }),
        // Called parties that did not reach the gate by `return_by`.
        spawn_every(LINE_EXPIRY_PERIOD, stop.clone(), move || {
            let park = park.clone();
            async move {
                match park.expire_due().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "line calls expired"),
                    Err(e) => tracing::warn!(error = %e, "line expiry failed"),
                }
            }
        }),
        // Expired holds give their units back, on every gate: the database
        // decides, so it runs the same in every deployment mode.
        spawn_every(HOLD_SWEEP_PERIOD, stop.clone(), move || {
            let (reservations, orders) = (reservations.clone(), orders.clone());
            async move {
                // Charges whose answer was lost: ask their provider.
                match orders.reconcile().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(settled = n, "unknown payments settled"),
                    Err(e) => tracing::warn!(error = %e, "payment reconciliation failed"),
                }
                // Unpaid orders past their window: their holds too.
                match orders.expire_due().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(expired = n, "unpaid orders expired"),
                    Err(e) => tracing::warn!(error = %e, "the order expiry sweep failed"),
                }
                match reservations.expire_due().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(expired = n, "expired holds gave their units back"),
                    Err(e) => tracing::warn!(error = %e, "the hold expiry sweep failed"),
                }
            }
        }),
        spawn_every(METRICS_UPKEEP_PERIOD, stop.clone(), || async {
            platform::metrics::run_upkeep();
        }),
        // One Slack message per growth of the dead letters by the threshold.
        spawn_every(DEAD_LETTER_CHECK_PERIOD, stop.clone(), move || {
            let (db, slack, alarm) = (db.clone(), slack.clone(), alarm.clone());
            async move {
                match bus::dead_letter_counts(&db).await {
                    Ok(counts) => alarm.lock().await.check(&counts, slack.as_deref()).await,
                    Err(e) => tracing::warn!(error = %e, "cannot count the dead letters"),
                }
            }
        }),
        spawn_every(Duration::from_secs(3600), stop, move || {
            let idempotency = idempotency.clone();
            async move {
                match idempotency.purge_expired().await {
                    Ok(n) if n > 0 => {
                        tracing::info!(purged = n, "expired idempotency keys removed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
                }
            }
        }),
    ];
    tasks.extend(consumer);
    tasks
}

/// Settles or gives back every module gate's leases older than `lease_age`.
async fn sweep_leases(stock: &[ModuleStock], lease_age: Duration) {
    for module_stock in stock {
        let module = module_stock.module;
        let report = gate::sweep(
            module_stock.gate.as_ref(),
            module_stock.loader.as_ref(),
            lease_age,
        )
        .await;
        if report.is_quiet() {
            continue;
        }
        let SweepReport {
            settled,
            returned,
            failed,
            first_error,
        } = report;
        if failed > 0 {
            let first_error = first_error.as_deref();
            tracing::warn!(
                module,
                settled,
                returned,
                failed,
                first_error,
                "stock lease sweep"
            );
        } else {
            tracing::info!(module, settled, returned, "stock lease sweep");
        }
    }
}

fn spawn_every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, job: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = ticks.tick() => job().await,
                () = stopped(&mut stop) => return,
            }
        }
    })
}

/// Resolves once the stop flag is set (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
