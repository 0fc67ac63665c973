//! Files the pages load, embedded in the binary and served under a path
//! holding their content hash, so they can be cached for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// htmx 2.0.11 from npm (`htmx.org`, `dist/htmx.min.js`, 0BSD).
const HTMX: Asset = Asset {
    name: "htmx.min.js",
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../assets/htmx-2.0.11.min.js"),
};
/// Chart.js 4.6.1 from npm (`chart.js`, `dist/chart.umd.min.js`, MIT; ADR
/// 0026).
const CHART_JS: Asset = Asset {
    name: "chart.umd.min.js",
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../assets/chart-4.6.1.umd.min.js"),
};
/// Draws every `canvas[data-chart]` with Chart.js.
const CHARTS: Asset = Asset {
    name: "admin-charts.js",
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../assets/admin-charts.js"),
};
const CSS: Asset = Asset {
    name: "admin.css",
    content_type: "text/css; charset=utf-8",
    bytes: include_bytes!("../assets/admin.css"),
};
const ALL: [&Asset; 4] = [&HTMX, &CHART_JS, &CHARTS, &CSS];

fn hash(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.bytes);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn url(asset: &Asset) -> String {
    format!("/admin/assets/{}/{}", hash(asset), asset.name)
}

/// Where htmx is served (its path changes with its content).
pub static HTMX_URL: LazyLock<String> = LazyLock::new(|| url(&HTMX));
pub static CHART_JS_URL: LazyLock<String> = LazyLock::new(|| url(&CHART_JS));
pub static CHARTS_URL: LazyLock<String> = LazyLock::new(|| url(&CHARTS));
pub static CSS_URL: LazyLock<String> = LazyLock::new(|| url(&CSS));

/// An asset by hash and name; a stale hash is not found.
pub async fn serve(Path((wanted, name)): Path<(String, String)>) -> Response {
    let Some(asset) = ALL
        .into_iter()
        .find(|a| a.name == name && hash(a) == wanted)
    else {
        return crate::page::not_found();
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}
