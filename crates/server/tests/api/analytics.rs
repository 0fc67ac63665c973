//! Commerce's analytics over HTTP — sales per product, orders per status
//! per day, coupons over time, each over a chosen period — the open-order
//! gauges of `/metrics`, and the dashboard's attention counters, charts and
//! CSV downloads built from the same answers.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::admin::{browser, html_of, sign_in};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, expect_problem, text};
use crate::park::{attraction, patch, ride};
use crate::reservations::product;
use crate::tickets::{cancel, coupon, fake_app, order, pay};

fn ago(offset: Duration) -> String {
    kernel::Timestamp::from(OffsetDateTime::now_utc() - offset).to_string()
}

async fn analytics(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/analytics/commerce?{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.expect("json")
}

/// Ann pays for 2 units, Bob pays for 1 and cancels (refunded, waited
/// for), Cat leaves hers unpaid; Ann holds a coupon. The product's id.
async fn three_orders(app: &TestApp) -> (String, [Value; 3]) {
    let gala = product(app, json!(10), Value::Null).await;
    let (ann, bob, cat) = (
        app.new_user().await,
        app.new_user().await,
        app.new_user().await,
    );
    coupon(app, &ann).await;
    let paid = order(app, &ann, &gala, 2, None).await;
    assert_eq!(
        pay(app, &ann, &paid, json!({"provider": "fake"}))
            .await
            .status(),
        200
    );
    let refunded = order(app, &bob, &gala, 1, None).await;
    assert_eq!(
        pay(app, &bob, &refunded, json!({"provider": "fake"}))
            .await
            .status(),
        200
    );
    assert_eq!(cancel(app, &bob, &refunded).await.status(), 200);
    // The refund finishes behind the answer; wait so no test races it.
    crate::tickets::refunded(app, &bob, &refunded).await;
    let unpaid = order(app, &cat, &gala, 1, None).await;
    (gala, [paid, refunded, unpaid])
}

#[tokio::test]
async fn commerce_analytics_count_sales_orders_and_coupons_in_the_period_for_readers() {
    let app = fake_app().await;
    let (gala, _) = three_orders(&app).await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let token = auditor.access_token.as_str();

    let hour = analytics(&app, token, &format!("from={}", ago(Duration::hours(1)))).await;
    assert_eq!(
        hour["sales_per_product"],
        json!([{
            "product_id": gala,
            "name": "Winter gala",
            "currency": "KRW",
            "units_sold": 3,
            "revenue": 45_000,
            "units_refunded": 1,
            "refunded": 15_000,
        }])
    );
    let today = OffsetDateTime::now_utc().date().to_string();
    assert_eq!(
        hour["orders_per_day"],
        json!([
            {"day": today, "status": "CANCELLED", "count": 1},
            {"day": today, "status": "PAID", "count": 1},
            {"day": today, "status": "PENDING_PAYMENT", "count": 1},
        ])
    );
    // Per minute over an hour; the one public issue in one minute.
    assert_eq!(hour["coupons_bucket_minutes"], 1);
    let issued = hour["coupons_issued"].as_array().expect("a series");
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["count"], 1);
    assert!(text(&issued[0]["at"]).ends_with(":00Z"), "{issued:?}");
    assert_eq!(hour["coupons_per_campaign"][0]["issued"], 1);

    // The default 30 days: hourly buckets, sales of all time.
    let default = analytics(&app, token, "").await;
    assert_eq!(default["coupons_bucket_minutes"], 60);
    assert_eq!(default["coupons_issued"][0]["count"], 1);
    assert_eq!(default["sales_per_product"], hour["sales_per_product"]);
    assert_eq!(default["orders_per_day"], hour["orders_per_day"]);
    // A period last year saw none of it; campaigns are listed all the same.
    let past = analytics(
        &app,
        token,
        &format!(
            "from={}&to={}",
            ago(Duration::days(365)),
            ago(Duration::days(300))
        ),
    )
    .await;
    assert_eq!(past["sales_per_product"], json!([]));
    assert_eq!(past["orders_per_day"], json!([]));
    assert_eq!(past["coupons_issued"], json!([]));
    assert_eq!(past["coupons_bucket_minutes"], 1440);
    assert_eq!(past["coupons_per_campaign"][0]["issued"], 1);

    for bad in [
        "days=0",
        "from=tomorrow",
        "to=2026-01-01T00:00:00Z",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        expect_problem(
            app.get(&format!("/api/v1/analytics/commerce?{bad}"), Some(token))
                .await,
            422,
            "VALIDATION_FAILED",
        )
        .await;
    }
    let user = app.new_user().await;
    expect_problem(
        app.get("/api/v1/analytics/commerce", Some(&user.access_token))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_problem(
        app.get("/api/v1/analytics/commerce", None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let doc = app.openapi().await;
    let parameters = &doc["paths"]["/api/v1/analytics/commerce"]["get"]["parameters"];
    let names: Vec<&str> = parameters
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["days", "from", "to"]);
    for schema in ["ProductSales", "OrderDayCount", "TimeCount"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    app.stop().await;
}

/// Marks the order as the state an operator must look at, `hours` ago.
async fn mark(app: &TestApp, order: &Value, set: &str, hours: i64) {
    let db = app.database().await;
    let id: commerce::model::OrderId = text(&order["id"]).parse().expect("an order id");
    let since = kernel::Timestamp::from(OffsetDateTime::now_utc() - Duration::hours(hours));
    let sql = format!("update orders set {set}, updated_at = $2 where id = $1");
    let marked: Result<u64, sqlx::Error> = kernel::write_tx!(&db, |conn| {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id)
            .bind(since)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected())
    });
    assert_eq!(marked.expect("marked"), 1);
}

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn unknown_payments_and_pending_refunds_are_gauged_and_shown_where_they_are_handled() {
    let app = fake_app().await;
    let quiet = app.get("/metrics", None).await.text().await.expect("text");
    assert_eq!(gauge(&quiet, "commerce_payments_unknown"), 0.0);
    assert_eq!(gauge(&quiet, "commerce_refund_pending_oldest_seconds"), 0.0);
    let (_, [_, refunded, unpaid]) = three_orders(&app).await;
    // A charge to a provider this server does not run stays unknown:
    // reconciliation cannot ask it.
    mark(
        &app,
        &unpaid,
        "payment_status = 'UNKNOWN', payment_provider = 'toss'",
        1,
    )
    .await;
    mark(&app, &refunded, "refund_status = 'PENDING'", 2).await;

    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert_eq!(gauge(&metrics, "commerce_payments_unknown"), 1.0);
    assert_eq!(gauge(&metrics, "commerce_refunds_pending"), 1.0);
    let unknown_for = gauge(&metrics, "commerce_payment_unknown_oldest_seconds");
    let pending_for = gauge(&metrics, "commerce_refund_pending_oldest_seconds");
    assert!((3_600.0..3_700.0).contains(&unknown_for), "{unknown_for}");
    assert!((7_200.0..7_300.0).contains(&pending_for), "{pending_for}");

    let staff = app.admin().await;
    let wheel = attraction(&app, &staff, ride("Big wheel", &[])).await;
    assert_eq!(
        patch(&app, &staff, &wheel, json!({"status": "DOWN"}))
            .await
            .status(),
        200
    );

    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    for (email, password) in [
        (ADMIN_EMAIL, ADMIN_PASSWORD),
        (auditor.email.as_str(), PASSWORD),
    ] {
        let client = browser();
        sign_in(&app, &client, email, password).await;
        for path in ["/admin", "/admin/attention/live"] {
            let (status, html) = html_of(&app, &client, path).await;
            assert_eq!(status, 200, "{path}");
            for (id, count) in [
                ("unknown-payments", 1),
                ("pending-refunds", 1),
                ("rides-down", 1),
                ("dead-letters", 0),
            ] {
                assert!(
                    html.contains(&format!("id=\"{id}\">{count}</span>")),
                    "{id} in {path}: {html}"
                );
            }
            assert!(html.contains("href=\"/admin/attention#unknown-payments\""));
        }
        let (status, html) = html_of(&app, &client, "/admin/attention").await;
        assert_eq!(status, 200);
        let section = |from: &str, to: &str| {
            let start = html.find(from).expect("the section");
            let end = html[start..].find(to).map_or(html.len(), |n| start + n);
            html[start..end].to_owned()
        };
        let unknown = section("id=\"unknown-payments\"", "id=\"pending-refunds\"");
        let pending = section("id=\"pending-refunds\"", "id=\"rides-down\"");
        assert!(
            unknown.contains(&text(&unpaid["id"])) && !unknown.contains(&text(&refunded["id"]))
        );
        assert!(
            pending.contains(&text(&refunded["id"])) && !pending.contains(&text(&unpaid["id"]))
        );
        assert!(section("id=\"rides-down\"", "</table>").contains("Big wheel"));
    }
    // Not signed in: sent to sign in, nothing shown.
    let (_, html) = html_of(&app, &browser(), "/admin/attention").await;
    assert!(!html.contains(&text(&unpaid["id"])) && html.contains("name=\"password\""));
    app.stop().await;
}

/// The `data-chart` of the chart `id` on a page, decoded.
fn chart_of(html: &str, id: &str) -> Value {
    let figure = html
        .find(&format!("id=\"chart-{id}\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let start = html[figure..].find("data-chart=\"").expect("data") + figure + 12;
    let end = html[start..].find('"').expect("the end") + start;
    let raw = html[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

#[tokio::test]
async fn the_overview_charts_each_figure_over_the_selected_range_with_its_csv() {
    let app = fake_app().await;
    let (_, _) = three_orders(&app).await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let client = browser();
    sign_in(&app, &client, &auditor.email, PASSWORD).await;

    let (status, html) = html_of(&app, &client, "/admin?range=day").await;
    assert_eq!(status, 200);
    for id in [
        "request-status",
        "requests-per-day",
        "rewards-per-event",
        "event-status",
        "participation",
        "users-per-day",
        "coupons-per-minute",
        "sales-per-product",
        "orders-per-day",
    ] {
        let chart = chart_of(&html, id);
        assert_eq!(chart["id"], id);
        assert!(
            html.contains(&format!("href=\"/admin/charts/{id}.csv?range=day")),
            "{id}: {html}"
        );
    }
    let sales = chart_of(&html, "sales-per-product");
    assert_eq!(sales["labels"], json!(["Winter gala"]));
    assert_eq!(
        sales["series"][0],
        json!({"name": "units sold", "values": [3.0]})
    );
    assert_eq!(sales["series"][1]["values"], json!([1.0]));
    let coupons = chart_of(&html, "coupons-per-minute");
    let per_minute = coupons["series"][0]["values"].as_array().expect("values");
    // Every minute of the last day, the one issue in one of them.
    assert!(
        (1_440..=1_441).contains(&per_minute.len()),
        "{}",
        per_minute.len()
    );
    assert_eq!(
        per_minute.iter().filter_map(Value::as_f64).sum::<f64>(),
        1.0
    );
    let orders = chart_of(&html, "orders-per-day");
    assert_eq!(orders["series"].as_array().map(Vec::len), Some(3));

    // The CSV is the chart's data.
    let csv = client
        .get(app.url("/admin/charts/sales-per-product.csv?range=day"))
        .send()
        .await
        .expect("a download");
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/csv")),
    );
    assert_eq!(
        csv.text().await.expect("text"),
        "label,units sold,units refunded,revenue,refunded\r\nWinter gala,3,1,45000,15000\r\n"
    );

    // A custom range a year ago: nothing sold, a day per column.
    let year_ago = (OffsetDateTime::now_utc() - Duration::days(365)).date();
    let query = format!(
        "range=custom&from={}&to={}",
        year_ago,
        year_ago + Duration::days(2)
    );
    let (status, html) = html_of(&app, &client, &format!("/admin?{query}")).await;
    assert_eq!(status, 200);
    assert_eq!(chart_of(&html, "sales-per-product")["labels"], json!([]));
    assert_eq!(
        chart_of(&html, "requests-per-day")["labels"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let csv = client
        .get(app.url(&format!("/admin/charts/orders-per-day.csv?{query}")))
        .send()
        .await
        .expect("a download")
        .text()
        .await
        .expect("text");
    assert_eq!(csv.lines().count(), 4, "{csv}");

    for (path, status) in [
        ("/admin?range=year", 422),
        ("/admin?range=custom&from=soon", 422),
        ("/admin/charts/nothing.csv", 404),
        ("/admin/charts/sales-per-product", 404),
    ] {
        assert_eq!(html_of(&app, &client, path).await.0, status, "{path}");
    }
    // Not signed in: sent to sign in, no data.
    let (_, html) = html_of(&app, &browser(), "/admin/charts/sales-per-product.csv").await;
    assert!(!html.contains("Winter gala") && html.contains("name=\"password\""));
    app.stop().await;
}
