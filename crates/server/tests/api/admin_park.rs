//! The dashboard's attraction, line and webhook pages over real sockets:
//! staff run a line (create, call next, admit, pause and resume) and the
//! API shows each change; bad input shows on its form and changes nothing;
//! auditors only read, users are refused, a post without the CSRF token
//! does nothing; an ADMIN registers a webhook endpoint, sees its secret
//! once, reads and replays its delivery log, disables and deletes it.

use serde_json::{Value, json};

use crate::admin::{browser, html_of, sign_in};
use crate::admin_events::{post, signed_in};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Session, TestApp, text};
use crate::park::{attraction, ride};
use crate::webhooks::Receiver;

/// An OPERATOR, signed in on the dashboard, and the CSRF token.
async fn staff_signed_in(app: &TestApp) -> (Session, reqwest::Client, String) {
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let (client, csrf) = signed_in(app, &staff.email, PASSWORD).await;
    (staff, client, csrf)
}

async fn api(app: &TestApp, who: &Session, path: &str) -> (u16, Value) {
    let response = app.get(path, Some(&who.access_token)).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The line as the API shows it: `(entry id, status)` in join order.
async fn api_line(app: &TestApp, who: &Session, id: &str) -> Vec<(String, String)> {
    let (status, page) = api(app, who, &format!("/api/v1/attractions/{id}/line")).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (text(&e["id"]), text(&e["status"])))
        .collect()
}

/// `parties` new users join the line, with parties of 1, 2, 3…
async fn fill_line(app: &TestApp, id: &str, parties: usize) {
    for size in 1..=parties {
        let guest = app.new_user().await;
        let joined = app
            .post(
                &format!("/api/v1/attractions/{id}/line"),
                Some(&guest.access_token),
                json!({"party_size": size}),
            )
            .await;
        assert_eq!(joined.status(), 201);
    }
}

/// An OPERATING ride with `parties` users in its line.
async fn ride_with_line(app: &TestApp, staff: &Session, parties: usize) -> String {
    let id = text(&attraction(app, staff, ride("Comet", &["thrill"])).await["id"]);
    fill_line(app, &id, parties).await;
    id
}

#[tokio::test]
async fn staff_create_a_ride_then_call_admit_pause_and_resume_its_line_as_the_api_shows() {
    let app = TestApp::spawn().await;
    let (staff, client, csrf) = staff_signed_in(&app).await;

    let (status, landed, html) = post(
        &app,
        &client,
        "/admin/attractions",
        &csrf,
        &[
            ("name", "Page coaster"),
            ("kind", "RIDE"),
            ("hashtags", "thrill, family"),
            ("capacity_per_cycle", "8"),
            ("cycle_seconds", "120"),
            ("description", "Made on the page"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let id = landed
        .split("/admin/attractions/")
        .nth(1)
        .expect("the attraction's page")
        .to_owned();
    let (_, made) = api(&app, &staff, &format!("/api/v1/attractions/{id}")).await;
    assert_eq!(made["name"], "Page coaster");
    assert_eq!(made["hashtags"], json!(["family", "thrill"]));
    assert_eq!(made["capacity_per_cycle"], 8);
    assert!(html.contains("id=\"call-next\"") && html.contains("data-to=\"DOWN\""));

    fill_line(&app, &id, 3).await;
    let (_, list) = html_of(&app, &client, "/admin/attractions").await;
    assert!(
        list.contains("Page coaster") && list.contains("<span class=\"figure-sm\">3</span>"),
        "the list shows the line's length: {list}"
    );

    let page = format!("/admin/attractions/{id}");
    let (status, _, _) = post(
        &app,
        &client,
        &format!("{page}/call"),
        &csrf,
        &[("count", "2")],
    )
    .await;
    assert_eq!(status, 200);
    let line = api_line(&app, &staff, &id).await;
    let statuses: Vec<&str> = line.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["CALLED", "CALLED", "WAITING"]);
    let (status, live) = html_of(&app, &client, &format!("{page}/line")).await;
    assert_eq!(status, 200);
    assert_eq!(
        live.matches("class=\"admit\"").count(),
        2,
        "an admit button on each called party: {live}"
    );
    assert!(live.contains("hx-trigger=\"every 2s\""), "{live}");

    let first = line[0].0.clone();
    let (status, _, _) = post(
        &app,
        &client,
        &format!("{page}/admit"),
        &csrf,
        &[("entry", &first)],
    )
    .await;
    assert_eq!(status, 200);
    let line = api_line(&app, &staff, &id).await;
    assert!(
        !line.iter().any(|(e, _)| *e == first) && line.len() == 2,
        "the admitted party left the line: {line:?}"
    );

    let (status, _, html) = post(
        &app,
        &client,
        &format!("{page}/status"),
        &csrf,
        &[("status", "DOWN")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("data-to=\"OPERATING\""), "{html}");
    let (_, paused) = api(&app, &staff, &format!("/api/v1/attractions/{id}")).await;
    assert_eq!(paused["status"], "DOWN");
    let (status, _, html) = post(
        &app,
        &client,
        &format!("{page}/call"),
        &csrf,
        &[("count", "1")],
    )
    .await;
    assert_eq!(status, 409, "nobody is called while paused");
    assert!(html.contains("form-error"), "{html}");
    assert_eq!(api_line(&app, &staff, &id).await, line, "the line is kept");

    let (status, _, _) = post(
        &app,
        &client,
        &format!("{page}/status"),
        &csrf,
        &[("status", "OPERATING")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, resumed) = api(&app, &staff, &format!("/api/v1/attractions/{id}")).await;
    assert_eq!(resumed["status"], "OPERATING");
}

#[tokio::test]
async fn bad_input_on_an_attraction_form_shows_there_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (staff, client, csrf) = staff_signed_in(&app).await;

    let (status, _, html) = post(
        &app,
        &client,
        "/admin/attractions",
        &csrf,
        &[
            ("name", "Typed name"),
            ("kind", "RIDE"),
            ("capacity_per_cycle", "lots"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("form-error")
            && html.contains("capacity_per_cycle")
            && html.contains("value=\"Typed name\""),
        "the refusal shows on the form with what was typed: {html}"
    );
    let (_, all) = api(&app, &staff, "/api/v1/attractions").await;
    assert_eq!(all["items"], json!([]), "nothing was created");

    let id = ride_with_line(&app, &staff, 2).await;
    let page = format!("/admin/attractions/{id}");
    let before = api_line(&app, &staff, &id).await;
    for (action, fields) in [
        ("call", vec![("count", "0")]),
        ("call", vec![("count", "two")]),
        ("admit", vec![("entry", "not-an-id")]),
        ("status", vec![("status", "BROKEN")]),
        (
            "edit",
            vec![
                ("name", ""),
                ("capacity_per_cycle", "8"),
                ("cycle_seconds", "60"),
            ],
        ),
    ] {
        let (status, _, html) =
            post(&app, &client, &format!("{page}/{action}"), &csrf, &fields).await;
        assert_eq!(status, 422, "{action} {fields:?}: {html}");
        assert!(html.contains("form-error"), "{action}: {html}");
    }
    let (status, _, html) = post(
        &app,
        &client,
        &format!("{page}/admit"),
        &csrf,
        &[("entry", &before[0].0)],
    )
    .await;
    assert_eq!(status, 409, "a waiting party is not admitted: {html}");
    assert_eq!(api_line(&app, &staff, &id).await, before);
    let (_, kept) = api(&app, &staff, &format!("/api/v1/attractions/{id}")).await;
    assert_eq!(
        (kept["name"].as_str(), kept["status"].as_str()),
        (Some("Comet"), Some("OPERATING"))
    );
}

#[tokio::test]
async fn an_auditor_watches_the_line_without_buttons_and_cannot_post() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let id = ride_with_line(&app, &staff, 2).await;
    let called = app
        .post(
            &format!("/api/v1/attractions/{id}/line/call"),
            Some(&staff.access_token),
            json!({"count": 1}),
        )
        .await;
    assert_eq!(called.status(), 200);
    let before = api_line(&app, &staff, &id).await;

    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let (client, csrf) = signed_in(&app, &auditor.email, PASSWORD).await;
    let (status, list) = html_of(&app, &client, "/admin/attractions").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("Comet") && !list.contains("id=\"create-attraction\""),
        "{list}"
    );
    let page = format!("/admin/attractions/{id}");
    let (status, html) = html_of(&app, &client, &page).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("data-status=\"CALLED\"") && html.contains("read-only"),
        "{html}"
    );
    for button in [
        "id=\"call-next\"",
        "class=\"admit\"",
        "data-to=",
        "id=\"save-attraction\"",
    ] {
        assert!(!html.contains(button), "no {button}: {html}");
    }
    for (action, fields) in [
        ("call", [("count", "1")]),
        ("status", [("status", "DOWN")]),
        ("admit", [("entry", before[0].0.as_str())]),
    ] {
        let (status, _, _) = post(&app, &client, &format!("{page}/{action}"), &csrf, &fields).await;
        assert_eq!(status, 403, "an auditor's {action} is refused");
    }
    let (status, _, _) = post(
        &app,
        &client,
        "/admin/attractions",
        &csrf,
        &[("name", "Nope"), ("kind", "RIDE")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(api_line(&app, &staff, &id).await, before);
    let (_, kept) = api(&app, &staff, &format!("/api/v1/attractions/{id}")).await;
    assert_eq!(kept["status"], "OPERATING");
}

#[tokio::test]
async fn a_user_is_refused_and_a_call_without_the_csrf_token_calls_nobody() {
    let app = TestApp::spawn().await;
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    let id = ride_with_line(&app, &staff, 1).await;

    let user = app.new_user().await;
    let guest = browser();
    let refused = sign_in(&app, &guest, &user.email, PASSWORD).await;
    assert_eq!(refused.status(), 403);
    let after = guest
        .get(app.url("/admin/attractions"))
        .send()
        .await
        .expect("answers");
    assert!(after.url().path().ends_with("/admin/login"), "no session");

    let (client, _) = signed_in(&app, &staff.email, PASSWORD).await;
    let forged = client
        .post(app.url(&format!("/admin/attractions/{id}/call")))
        .form(&[("count", "1")])
        .send()
        .await
        .expect("answers");
    assert_eq!(forged.status(), 403);
    let line = api_line(&app, &staff, &id).await;
    assert_eq!(line[0].1, "WAITING", "nobody was called");
}

async fn webhook_app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.webhook_allow_private = true;
        s.webhook_retry_base_seconds = 1;
    })
    .await
}

/// Waits until the endpoint's log (as the API shows it) holds `n` attempts.
async fn api_log(app: &TestApp, admin: &Session, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..150 {
        let (_, page) = api(
            app,
            admin,
            &format!("/api/v1/webhook-endpoints/{id}/deliveries"),
        )
        .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("expected {n} attempts in the log");
}

#[tokio::test]
async fn an_admin_registers_an_endpoint_sees_its_secret_once_and_replays_a_failed_delivery() {
    let app = webhook_app().await;
    let admin = app.admin().await;
    let receiver = Receiver::start(&[500]).await;
    let (client, csrf) = signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let (status, _, html) = post(
        &app,
        &client,
        "/admin/webhooks",
        &csrf,
        &[("url", "not a url"), ("event_types", "order.paid")],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("form-error") && html.contains("<code>url</code>"),
        "{html}"
    );
    let (_, none) = api(&app, &admin, "/api/v1/webhook-endpoints").await;
    assert_eq!(none["items"], json!([]), "nothing was registered");

    let (status, _, html) = post(
        &app,
        &client,
        "/admin/webhooks",
        &csrf,
        &[
            ("url", receiver.url.as_str()),
            ("event_types", "order.paid"),
            ("event_types", "line_entry.called"),
            ("description", "from the page"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{html}");
    let secret = html
        .split("<pre id=\"signing-secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret is shown")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (_, listed) = api(&app, &admin, "/api/v1/webhook-endpoints").await;
    let endpoint = &listed["items"][0];
    assert_eq!(
        endpoint["event_types"],
        json!(["order.paid", "line_entry.called"])
    );
    let id = text(&endpoint["id"]);

    let page = format!("/admin/webhooks/{id}");
    let log_path = format!("{page}/log");
    for path in ["/admin/webhooks", page.as_str(), log_path.as_str()] {
        let (status, html) = html_of(&app, &client, path).await;
        assert_eq!(status, 200);
        assert!(
            html.contains(&id) && !html.contains(&secret) && !html.contains("whsec_"),
            "{path} never shows the secret again: {html}"
        );
    }

    let (status, landed, _) = post(&app, &client, &format!("{page}/test"), &csrf, &[]).await;
    assert!(status == 200 && landed.ends_with(&page), "{landed}");
    let log = api_log(&app, &admin, &id, 2).await;
    assert_eq!(
        (
            log[0]["status_code"].as_u64(),
            log[1]["status_code"].as_u64()
        ),
        (Some(500), Some(200))
    );
    let (_, shown) = html_of(&app, &client, &log_path).await;
    assert!(
        shown.contains("HTTP 500")
            && shown.contains(">delivered<")
            && shown.matches("class=\"replay\"").count() == 1,
        "the failed attempt, with its replay: {shown}"
    );
    let (status, _, _) = post(
        &app,
        &client,
        &format!("{page}/replay"),
        &csrf,
        &[("attempt", &text(&log[0]["id"]))],
    )
    .await;
    assert_eq!(status, 200);
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].body, got[0].body, "the same message again");
    assert_eq!(api_log(&app, &admin, &id, 3).await[2]["attempt"], 3);

    let (status, _, html) = post(&app, &client, &format!("{page}/disable"), &csrf, &[]).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"enable\""), "{html}");
    let (_, disabled) = api(&app, &admin, &format!("/api/v1/webhook-endpoints/{id}")).await;
    assert_eq!(disabled["disabled"], true);
    let (status, landed, _) = post(&app, &client, &format!("{page}/delete"), &csrf, &[]).await;
    assert!(
        status == 200 && landed.ends_with("/admin/webhooks"),
        "{landed}"
    );
    let (status, _) = api(&app, &admin, &format!("/api/v1/webhook-endpoints/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn webhook_pages_are_for_an_admin_as_in_the_api() {
    let app = webhook_app().await;
    let admin = app.admin().await;
    let made = app
        .created(
            "/api/v1/webhook-endpoints",
            &admin,
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["order.paid"]}),
        )
        .await;
    let id = text(&made["id"]);
    for role in ["OPERATOR", "AUDITOR"] {
        let who = app.user_with_roles(&[role]).await;
        let (client, csrf) = signed_in(&app, &who.email, PASSWORD).await;
        let (_, home) = html_of(&app, &client, "/admin").await;
        assert!(
            home.contains("href=\"/admin/attractions\"")
                && !home.contains("href=\"/admin/webhooks\""),
            "{role}'s menu: {home}"
        );
        for path in [
            "/admin/webhooks".to_owned(),
            format!("/admin/webhooks/{id}"),
        ] {
            let (status, _) = html_of(&app, &client, &path).await;
            assert_eq!(status, 403, "{role} reads no {path}");
        }
        let (status, _, _) = post(
            &app,
            &client,
            &format!("/admin/webhooks/{id}/delete"),
            &csrf,
            &[],
        )
        .await;
        assert_eq!(status, 403, "{role} deletes nothing");
    }
    let (status, _) = api(&app, &admin, &format!("/api/v1/webhook-endpoints/{id}")).await;
    assert_eq!(status, 200, "still there");
}
