//! The dashboard's commerce pages over real sockets: products created and
//! edited (refusals on their form, nothing changed), orders listed and
//! filtered, an order's lines, payment, refund and history, staff
//! cancelling (a paid order refunded) and asking for a pending refund
//! again, a product's waiting list with ranks and offers, and the role
//! rules: auditors only read, users are refused, no CSRF token no change.

use commerce::payments::toss::fake_server::{FakeToss, Fault, Route};
use serde_json::{Value, json};
use time::Duration;

use crate::admin::{browser, html_of, sign_in};
use crate::admin_events::{local, operator, post, signed_in};
use crate::helpers::{PASSWORD, Session, TestApp, text};
use crate::reservations::{held, product, remaining};
use crate::tickets::{fake_app, order, pay, refunded, toss_app};

/// The fields of a valid new product, with `name`.
fn product_form(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", name.to_owned()),
        ("kind", "EVENT_TICKET".to_owned()),
        ("price", "15000".to_owned()),
        ("currency", String::new()),
        ("stock", "5".to_owned()),
        ("per_user_limit", "4".to_owned()),
        ("hold_seconds", "600".to_owned()),
        ("sale_starts_at", local(-Duration::hours(1))),
        ("sale_ends_at", local(Duration::days(1))),
        ("valid_from", String::new()),
        ("valid_until", String::new()),
    ]
}

fn with<'a>(
    fields: &'a [(&'static str, String)],
    changes: &[(&'static str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    fields
        .iter()
        .map(|(k, v)| {
            let value = changes
                .iter()
                .find(|(name, _)| name == k)
                .map_or(v.as_str(), |(_, changed)| changed);
            (*k, value)
        })
        .collect()
}

async fn api_products(app: &TestApp) -> Vec<Value> {
    let list: Value = app
        .get("/api/v1/products", None)
        .await
        .json()
        .await
        .expect("products");
    list["items"].as_array().expect("items").clone()
}

async fn api_order(app: &TestApp, order: &Value) -> Value {
    let admin = app.admin().await;
    crate::orders::read(
        app,
        &admin,
        &format!("/api/v1/orders/{}", text(&order["id"])),
    )
    .await
}

/// A paid order of two units of a new product, for a new user.
async fn paid_order(app: &TestApp) -> (String, Value) {
    let gala = product(app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(app, &ann, &gala, 2, None).await;
    let response = pay(app, &ann, &placed, json!({"provider": "fake"})).await;
    assert_eq!(response.status(), 200);
    (gala, placed)
}

#[tokio::test]
async fn staff_create_and_edit_a_product_and_a_refused_form_changes_nothing() {
    let app = TestApp::spawn().await;
    let (client, csrf) = operator(&app).await;
    let form = product_form("Page gala");

    let (status, landed, html) =
        post(&app, &client, "/admin/products", &csrf, &with(&form, &[])).await;
    assert_eq!(status, 200, "{html}");
    let id = landed
        .split("/admin/products/")
        .nth(1)
        .expect("the product's page")
        .to_owned();
    assert!(
        html.contains("Page gala")
            && html.contains(">ON_SALE<")
            && html.contains("id=\"edit-product-form\""),
        "{html}"
    );
    let products = api_products(&app).await;
    assert_eq!(products.len(), 1);
    assert_eq!(products[0]["id"], id.as_str());
    assert_eq!(products[0]["stock"], 5);
    assert_eq!(products[0]["per_user_limit"], 4);
    assert_eq!(products[0]["currency"], "KRW");

    let backwards = local(-Duration::days(1));
    let (status, _, html) = post(
        &app,
        &client,
        "/admin/products",
        &csrf,
        &with(
            &form,
            &[
                ("name", "Backwards gala"),
                ("price", "-1"),
                ("sale_ends_at", &backwards),
            ],
        ),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("class=\"form-error\"")
            && html.contains("<code>price</code> must be at least 0")
            && html.contains("value=\"Backwards gala\""),
        "shown on the form with what was typed: {html}"
    );
    let (status, _, html) = post(
        &app,
        &client,
        "/admin/products",
        &csrf,
        &with(&form, &[("stock", "many")]),
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("is not a whole number"), "{html}");
    assert_eq!(api_products(&app).await.len(), 1, "nothing was created");

    let path = format!("/admin/products/{id}");
    let (status, _, html) = post(
        &app,
        &client,
        &path,
        &csrf,
        &with(
            &form,
            &[("name", "Renamed gala"), ("price", "9000"), ("stock", "")],
        ),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Renamed gala") && html.contains("unlimited"),
        "{html}"
    );
    let seen = &api_products(&app).await[0];
    assert_eq!(seen["price"], 9000);
    assert_eq!(seen["stock"], Value::Null, "an empty stock is unlimited");

    let buyer = app.new_user().await;
    held(&app, &buyer, &id, 3).await;
    let (status, _, html) =
        post(&app, &client, &path, &csrf, &with(&form, &[("stock", "2")])).await;
    assert_eq!(status, 409);
    assert!(
        html.contains("class=\"form-error\"") && html.contains("value=\"2\""),
        "the refusal on the edit form: {html}"
    );
    let seen = &api_products(&app).await[0];
    assert_eq!(
        (seen["stock"].clone(), seen["name"].clone()),
        (Value::Null, json!("Renamed gala"))
    );

    let (status, list) = html_of(&app, &client, "/admin/products?kind=EVENT_TICKET").await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!("data-id=\"{id}\"")) && list.contains("/waiting-list"),
        "{list}"
    );
    let (_, list) = html_of(&app, &client, "/admin/products?kind=ANNUAL_PASS").await;
    assert!(!list.contains(&format!("data-id=\"{id}\"")), "{list}");
    let (status, list) = html_of(&app, &client, "/admin/products?kind=SOUVENIR").await;
    assert_eq!(status, 422);
    assert!(list.contains("<code>kind</code>"), "{list}");
}

#[tokio::test]
async fn staff_read_a_paid_order_and_cancelling_it_refunds_it() {
    let app = fake_app().await;
    let (gala, placed) = paid_order(&app).await;
    let id = text(&placed["id"]);
    let (client, csrf) = operator(&app).await;

    let (status, list) = html_of(&app, &client, "/admin/orders?status=PAID").await;
    assert_eq!(status, 200);
    assert!(list.contains(&format!("data-id=\"{id}\"")), "{list}");
    let (_, list) = html_of(&app, &client, "/admin/orders?status=CANCELLED").await;
    assert!(!list.contains(&format!("data-id=\"{id}\"")), "{list}");
    let user = text(&placed["user_id"]);
    let (_, list) = html_of(&app, &client, &format!("/admin/orders?user_id={user}")).await;
    assert!(list.contains(&format!("data-id=\"{id}\"")), "{list}");
    for bad in ["status=LOST", "user_id=someone"] {
        let (status, list) = html_of(&app, &client, &format!("/admin/orders?{bad}")).await;
        assert_eq!(status, 422, "{bad}");
        assert!(list.contains("class=\"form-error\""), "{list}");
    }

    let path = format!("/admin/orders/{id}");
    let (status, page) = html_of(&app, &client, &path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Winter gala")
            && page.contains("id=\"payment-status\">DONE<")
            && page.contains("<code>PLACED</code>")
            && page.contains("<code>PAID</code>")
            && page.contains("id=\"cancel-order\"")
            && page.contains("id=\"no-refund\""),
        "{page}"
    );

    let (status, _, page) = post(&app, &client, &format!("{path}/cancel"), &csrf, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"order-status\">CANCELLED<") && !page.contains("id=\"cancel-order\""),
        "{page}"
    );
    let admin = app.admin().await;
    let done = refunded(&app, &admin, &placed).await;
    assert_eq!(done["refund"]["amount"], placed["total"]);
    assert_eq!(remaining(&app, &gala).await, 5);
    let (_, page) = html_of(&app, &client, &path).await;
    assert!(
        page.contains("id=\"refund-status\">REFUNDED<")
            && page.contains("<code>REFUNDED</code>")
            && !page.contains("id=\"retry-refund\""),
        "{page}"
    );

    let (status, _, page) = post(&app, &client, &format!("{path}/cancel"), &csrf, &[]).await;
    assert_eq!(status, 409, "cancelled once");
    assert!(page.contains("class=\"form-error\""), "{page}");
    let (status, landed, _) = post(&app, &client, &format!("{path}/refund"), &csrf, &[]).await;
    assert_eq!(status, 200, "nothing pending: back to the order");
    assert!(landed.ends_with(&path));
    assert_eq!(
        api_order(&app, &placed).await["payment"]["status"],
        "REFUNDED"
    );
}

/// Pays `placed` through the fake Toss server.
async fn pay_by_toss(app: &TestApp, toss: &FakeToss, who: &Session, placed: &Value) {
    let total = placed["total"].as_i64().expect("a total");
    toss.open_session("pay_page", &text(&placed["id"]), total);
    let body = json!({"provider": "toss", "payment_key": "pay_page", "amount": total});
    assert_eq!(pay(app, who, placed, body).await.status(), 200);
}

#[tokio::test]
async fn a_refund_the_provider_keeps_refusing_needs_attention_and_staff_can_ask_again() {
    let (app, toss) = toss_app().await;
    let gala = product(&app, json!(5), Value::Null).await;
    let ann = app.new_user().await;
    let placed = order(&app, &ann, &gala, 1, None).await;
    pay_by_toss(&app, &toss, &ann, &placed).await;
    // More failures than the bus retries in the seconds this test takes.
    let refused = Fault::Status {
        status: 500,
        code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
        processed: false,
    };
    for _ in 0..12 {
        toss.inject(Route::Cancel, refused.clone());
    }
    let id = text(&placed["id"]);
    let (client, csrf) = operator(&app).await;
    let path = format!("/admin/orders/{id}");

    let (status, _, page) = post(&app, &client, &format!("{path}/cancel"), &csrf, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"refund-status\">PENDING<") && page.contains("id=\"retry-refund\""),
        "{page}"
    );
    let (status, list) = html_of(&app, &client, "/admin/orders?status=ATTENTION").await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!("data-id=\"{id}\"")),
        "a pending refund needs attention: {list}"
    );

    let asked = toss.requests(Route::Cancel);
    let (status, _, page) = post(&app, &client, &format!("{path}/refund"), &csrf, &[]).await;
    assert_eq!(status, 503, "the provider refused again: {page}");
    assert!(
        page.contains("class=\"form-error\"") && page.contains("id=\"retry-refund\""),
        "{page}"
    );
    assert!(
        toss.requests(Route::Cancel) > asked,
        "the provider was asked"
    );
    assert_eq!(
        api_order(&app, &placed).await["refund"]["status"],
        "PENDING"
    );
    assert!(toss.refunds().is_empty(), "no money moved");
}

#[tokio::test]
async fn the_waiting_list_page_shows_ranks_and_the_offers_outstanding() {
    let app = TestApp::spawn().await;
    let gala = product(&app, json!(1), Value::Null).await;
    let ann = app.new_user().await;
    let hold = held(&app, &ann, &gala, 1).await;
    let (bob, carol) = (app.new_user().await, app.new_user().await);
    for who in [&bob, &carol] {
        let joined = app
            .post(
                &format!("/api/v1/products/{gala}/waiting-list"),
                Some(&who.access_token),
                json!({"quantity": 1}),
            )
            .await;
        assert_eq!(joined.status(), 201);
    }
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let (client, _) = signed_in(&app, &auditor.email, PASSWORD).await;
    let path = format!("/admin/products/{gala}/waiting-list");

    let (status, page) = html_of(&app, &client, &path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"waiting-count\">2<")
            && page.contains("id=\"offered-count\">0<")
            && page.contains(">SOLD_OUT<"),
        "{page}"
    );
    let bob_at = page.find(&bob.user_id).expect("bob is listed");
    let carol_at = page.find(&carol.user_id).expect("carol is listed");
    assert!(bob_at < carol_at, "in join order");
    assert!(
        page.contains("<td class=\"rank\">1</td>") && page.contains("<td class=\"rank\">2</td>")
    );

    let released = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/reservations/{}", text(&hold["id"])),
            Some(&ann.access_token),
            None,
        )
        .await;
    assert_eq!(released.status(), 204);
    let mut page = String::new();
    for _ in 0..50 {
        page = html_of(&app, &client, &path).await.1;
        if page.contains("id=\"offered-count\">1<") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("id=\"offered-count\">1<")
            && page.contains("id=\"waiting-count\">1<")
            && page.contains("data-status=\"OFFERED\""),
        "bob holds the offer, carol is first in line: {page}"
    );
    let (status, missing) = html_of(
        &app,
        &client,
        "/admin/products/0190f0f0-0000-7000-8000-000000000000/waiting-list",
    )
    .await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test]
async fn an_auditor_reads_every_commerce_page_without_a_button_and_every_change_is_refused() {
    let app = fake_app().await;
    let (gala, placed) = paid_order(&app).await;
    let id = text(&placed["id"]);
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let (client, csrf) = signed_in(&app, &auditor.email, PASSWORD).await;

    for path in [
        "/admin/products".to_owned(),
        format!("/admin/products/{gala}"),
        format!("/admin/products/{gala}/waiting-list"),
        "/admin/orders".to_owned(),
        "/admin/orders?status=ATTENTION".to_owned(),
        format!("/admin/orders/{id}"),
    ] {
        let (status, html) = html_of(&app, &client, &path).await;
        assert_eq!(status, 200, "GET {path}");
        let main = html.split("<main>").nth(1).expect("a main");
        assert!(
            html.contains("read-only")
                && !main.contains("method=\"post\"")
                && !main.contains("hx-post"),
            "no buttons that would fail on {path}: {html}"
        );
    }
    let (_, page) = html_of(&app, &client, &format!("/admin/orders/{id}")).await;
    assert!(
        page.contains("Winter gala") && page.contains("<code>PAID</code>"),
        "{page}"
    );

    let form = product_form("Sneaky gala");
    let fields = with(&form, &[]);
    for path in [
        "/admin/products".to_owned(),
        format!("/admin/products/{gala}"),
        format!("/admin/orders/{id}/cancel"),
        format!("/admin/orders/{id}/refund"),
    ] {
        let (status, _, _) = post(&app, &client, &path, &csrf, &fields).await;
        assert_eq!(status, 403, "POST {path}");
    }
    assert_eq!(api_products(&app).await.len(), 1);
    assert_eq!(api_order(&app, &placed).await["status"], "PAID");
}

#[tokio::test]
async fn a_user_is_refused_and_a_post_without_the_csrf_token_changes_nothing() {
    let app = fake_app().await;
    let (_, placed) = paid_order(&app).await;
    let id = text(&placed["id"]);
    let user = app.new_user().await;
    let client = browser();
    assert_eq!(
        sign_in(&app, &client, &user.email, PASSWORD).await.status(),
        403
    );
    let orders = client
        .get(app.url("/admin/orders"))
        .send()
        .await
        .expect("answers");
    assert!(
        orders.url().path().ends_with("/admin/login"),
        "no session for a USER"
    );

    let (staff, _) = operator(&app).await;
    let form = product_form("Forged gala");
    for path in [
        "/admin/products".to_owned(),
        format!("/admin/orders/{id}/cancel"),
    ] {
        let forged = staff
            .post(app.url(&path))
            .form(&with(&form, &[]))
            .send()
            .await
            .expect("answers");
        assert_eq!(forged.status(), 403, "no CSRF token: POST {path}");
    }
    assert_eq!(api_products(&app).await.len(), 1);
    assert_eq!(api_order(&app, &placed).await["status"], "PAID");
}
