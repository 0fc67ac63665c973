//! Gauges sampled when `/metrics` is read: each dependency's health
//! (`dependency_up`), each module's stock gate (`stock_gate_up`, and
//! `stock_remaining` of its newest limited pools), and the orders waiting
//! for an operator (unknown payments, pending refunds).

use std::time::Duration;

use commerce::analytics::CommerceAnalyticsService;
use gate::ModuleStock;

use super::{Dependencies, Health};

/// How many of a module's pools get a `stock_remaining` series: the newest
/// ones (pool ids are time-ordered), so old campaigns do not add series
/// without end.
const MAX_POOLS: usize = 100;

/// How long one module's stock sampling may take in all.
const STOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// `dependency_up{dependency}`: 1 when the readiness check finds it up.
pub(crate) async fn record_dependencies(dependencies: &Dependencies) {
    for (name, health) in dependencies.check().await {
        metrics::gauge!("dependency_up", "dependency" => name).set(if health == Health::Up {
            1.0
        } else {
            0.0
        });
    }
}

/// `stock_gate_up{module}` (0 when the gate did not answer in time or said
/// it is unavailable) and `stock_remaining{module, pool}`.
pub(crate) async fn record_stock(stock: &[ModuleStock]) {
    for module in stock {
        let up = tokio::time::timeout(STOCK_TIMEOUT, sample(module))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {STOCK_TIMEOUT:?}")));
        if let Err(error) = &up {
            tracing::warn!(module = module.module, %error, "the stock gate did not answer /metrics");
        }
        metrics::gauge!("stock_gate_up", "module" => module.module).set(if up.is_ok() {
            1.0
        } else {
            0.0
        });
    }
}

/// `commerce_payments_unknown`, `commerce_refunds_pending` and the age of
/// the oldest of each in seconds (0 when there is none); left as they were
/// when the database does not answer.
pub(crate) async fn record_open_orders(commerce: &CommerceAnalyticsService) {
    let issues = match commerce.open_issues().await {
        Ok(issues) => issues,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the open orders for /metrics");
            return;
        }
    };
    let now = kernel::Clock::now(&kernel::SystemClock);
    let age = |since: Option<kernel::Timestamp>| {
        since.map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0))
    };
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let count = |n: i64| n as f64;
    platform::metrics::set_gauge("commerce_payments_unknown", count(issues.unknown_payments));
    platform::metrics::set_gauge(
        "commerce_payment_unknown_oldest_seconds",
        age(issues.oldest_unknown_payment),
    );
    platform::metrics::set_gauge("commerce_refunds_pending", count(issues.pending_refunds));
    platform::metrics::set_gauge(
        "commerce_refund_pending_oldest_seconds",
        age(issues.oldest_pending_refund),
    );
}

async fn sample(module: &ModuleStock) -> Result<(), String> {
    let pools = module.lister.pools().await?;
    let newest = &pools[pools.len().saturating_sub(MAX_POOLS)..];
    for pool in newest {
        let remaining = module
            .gate
            .remaining(pool)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(remaining) = remaining {
            metrics::gauge!(
                "stock_remaining",
                "module" => module.module,
                "pool" => pool.as_str().to_owned(),
            )
            .set(remaining as f64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use gate::{
        GiveBackError, Limits, MemoryStockGate, PoolId, PoolLister, Refusal, Snapshot, StockGate,
        StockLoader, Unavailable,
    };

    use super::*;

    /// A loader of pools with ten units, three of them taken.
    struct TenUnits;

    #[async_trait]
    impl StockLoader for TenUnits {
        async fn load(&self, _pool: &PoolId) -> Result<(Limits, Snapshot), String> {
            let limits = Limits {
                stock: Some(10),
                per_user: None,
            };
            let snapshot = Snapshot {
                taken: 3,
                ..Snapshot::default()
            };
            Ok((limits, snapshot))
        }

        async fn claimed(&self, _pool: &PoolId, _claim: &str) -> Result<bool, String> {
            Ok(false)
        }
    }

    struct Pools(Vec<&'static str>);

    #[async_trait]
    impl PoolLister for Pools {
        async fn pools(&self) -> Result<Vec<PoolId>, String> {
            Ok(self.0.iter().map(|p| PoolId::new(*p)).collect())
        }
    }

    /// A gate whose backend is away.
    struct Away;

    fn away() -> Unavailable {
        Unavailable("connection refused".into())
    }

    #[async_trait]
    impl StockGate for Away {
        async fn take(&self, _: &PoolId, _: &str, _: u32) -> Result<(), Refusal> {
            Err(away().into())
        }
        async fn give_back(&self, _: &PoolId, _: &str, _: u32) -> Result<(), GiveBackError> {
            Err(GiveBackError::Unavailable(away().0))
        }
        async fn remaining(&self, _: &PoolId) -> Result<Option<u64>, Unavailable> {
            Err(away())
        }
        async fn reset(&self, _: &PoolId, _: Limits, _: Snapshot) -> Result<(), Unavailable> {
            Err(away())
        }
        async fn counters(&self, _: &PoolId) -> Result<Option<(Limits, Snapshot)>, Unavailable> {
            Err(away())
        }
        async fn forget(&self, _: &PoolId) -> Result<(), Unavailable> {
            Err(away())
        }
    }

    fn module(
        name: &'static str,
        gate: Arc<dyn StockGate>,
        pools: Vec<&'static str>,
    ) -> ModuleStock {
        ModuleStock {
            module: name,
            gate,
            loader: Arc::new(TenUnits),
            lister: Arc::new(Pools(pools)),
        }
    }

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
    }

    #[tokio::test]
    async fn a_gate_that_answers_is_up_with_its_remaining_and_one_away_is_down() {
        let up = module(
            "gauges-test-up",
            Arc::new(MemoryStockGate::new(Arc::new(TenUnits))),
            vec!["gauges-test:a"],
        );
        let down = module("gauges-test-down", Arc::new(Away), vec!["gauges-test:b"]);

        platform::metrics::handle();
        record_stock(&[up, down]).await;

        let text = platform::metrics::handle().render();
        assert_eq!(
            line(&text, r#"stock_gate_up{module="gauges-test-up"}"#),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            line(&text, r#"stock_gate_up{module="gauges-test-down"}"#),
            Some("0"),
            "{text}"
        );
        assert_eq!(
            line(
                &text,
                r#"stock_remaining{module="gauges-test-up",pool="gauges-test:a"}"#
            ),
            Some("7"),
            "{text}"
        );
        assert!(!text.contains("gauges-test:b"), "{text}");
    }
}
