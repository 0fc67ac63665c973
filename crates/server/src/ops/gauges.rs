//! Gauges sampled when `/metrics` is read: each dependency's health
//! (`dependency_up`) and each module's stock gate (`stock_gate_up`, and
//! `stock_remaining` of its newest limited pools).

use std::time::Duration;

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
