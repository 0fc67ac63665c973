//! The dashboard over real sockets: sign-in, refusal, CSRF and logout.

use reqwest::redirect::Policy;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp};

pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::limited(5))
        .build()
        .expect("a client")
}

/// The hidden CSRF field of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"_csrf\" value=\"").expect("a csrf field") + 20;
    html[start..].split('"').next().expect("a value").to_owned()
}

pub(crate) async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let form = client
        .get(app.url("/admin/login"))
        .send()
        .await
        .expect("login page");
    let csrf = csrf_of(&form.text().await.expect("html"));
    client
        .post(app.url("/admin/login"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .expect("sign-in answers")
}

#[tokio::test]
async fn staff_sign_in_sets_a_strict_httponly_cookie_and_reaches_the_overview() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let form = client
        .get(app.url("/admin/login"))
        .send()
        .await
        .expect("page");
    let login_cookie = form.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let csrf = csrf_of(&form.text().await.expect("html"));
    let pair = login_cookie.split(';').next().expect("pair").to_owned();
    let response = client
        .post(app.url("/admin/login"))
        .header("cookie", pair)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 303);
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("stampede_admin="))
        .expect("a session cookie")
        .to_owned();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Path=/admin")
    );

    let browser = browser();
    sign_in(&app, &browser, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let overview = browser
        .get(app.url("/admin"))
        .send()
        .await
        .expect("overview");
    assert_eq!(overview.status(), 200);
    let html = overview.text().await.expect("html");
    assert!(html.contains("id=\"pending\""), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "no other host: {html}"
    );
}

#[tokio::test]
async fn a_user_is_refused_and_a_wrong_password_is_not_signed_in() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let refused = sign_in(&app, &browser(), &user.email, PASSWORD).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.expect("html").contains("staff"));

    let client = browser();
    let wrong = sign_in(&app, &client, ADMIN_EMAIL, "wrong-password").await;
    assert_eq!(wrong.status(), 401);
    let after = client.get(app.url("/admin")).send().await.expect("answers");
    assert!(
        after.url().path().ends_with("/admin/login"),
        "sent to sign in"
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let client = browser();
    sign_in(&app, &client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let forged = client
        .post(app.url("/admin/requests/decide"))
        .form(&[
            ("decision", "APPROVED"),
            ("id", "0190f0f0-0000-7000-8000-000000000000"),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(forged.status(), 403);

    let page = client
        .get(app.url("/admin"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let out = client
        .post(app.url("/admin/logout"))
        .form(&[("_csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .expect("answers");
    assert!(out.url().path().ends_with("/admin/login"));
    let after = client.get(app.url("/admin")).send().await.expect("answers");
    assert!(
        after.url().path().ends_with("/admin/login"),
        "the session ended"
    );
}

#[tokio::test]
async fn an_auditor_reads_the_queue_without_decision_buttons() {
    let app = TestApp::spawn().await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let client = browser();
    sign_in(&app, &client, &auditor.email, PASSWORD).await;
    let queue = client
        .get(app.url("/admin/requests"))
        .send()
        .await
        .expect("page");
    assert_eq!(queue.status(), 200);
    let html = queue.text().await.expect("html");
    assert!(
        html.contains("read-only") && !html.contains("id=\"approve\""),
        "{html}"
    );
}

/// A page's HTML, signed in through `client`.
pub(crate) async fn html_of(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let page = client.get(app.url(path)).send().await.expect("a page");
    let status = page.status().as_u16();
    (status, page.text().await.expect("html"))
}

#[tokio::test]
async fn staff_replay_and_discard_dead_letters_and_an_auditor_only_reads_them() {
    let app = TestApp::spawn().await;
    let replayed = crate::access::insert_dead_letter(&app, "admin-page-test").await;
    let discarded = crate::access::insert_dead_letter(&app, "admin-page-test").await;
    let client = browser();
    sign_in(&app, &client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, html) = html_of(&app, &client, "/admin/dead-letters").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&replayed.to_string()) && html.contains("failure 8"),
        "{html}"
    );
    let csrf = csrf_of(&html);

    for (id, action) in [(replayed, "replay"), (discarded, "discard")] {
        let done = client
            .post(app.url(&format!("/admin/dead-letters/{id}/{action}")))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .expect("answers");
        assert_eq!(done.status(), 200, "{action} leads back to the list");
        assert!(done.url().path().ends_with("/admin/dead-letters"));
    }
    let (_, html) = html_of(&app, &client, "/admin/dead-letters").await;
    assert!(
        !html.contains(&replayed.to_string()) && !html.contains(&discarded.to_string()),
        "neither is a dead letter any more: {html}"
    );
    let again = client
        .post(app.url(&format!("/admin/dead-letters/{discarded}/discard")))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .expect("answers");
    assert_eq!(
        again.status(),
        404,
        "a discarded letter is not discarded twice"
    );

    let shown = crate::access::insert_dead_letter(&app, "admin-page-test").await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let reader = browser();
    sign_in(&app, &reader, &auditor.email, PASSWORD).await;
    let (status, html) = html_of(&app, &reader, "/admin/dead-letters").await;
    assert_eq!(status, 200);
    assert!(html.contains(&shown.to_string()), "{html}");
    assert!(
        !html.contains("class=\"replay\""),
        "no buttons that would fail: {html}"
    );
    let forced = reader
        .post(app.url(&format!("/admin/dead-letters/{shown}/replay")))
        .form(&[("_csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .expect("answers");
    assert_eq!(forced.status(), 403, "an auditor's replay is refused");
}

#[tokio::test]
async fn the_users_page_shows_the_last_admin_rule_and_changes_roles() {
    let app = TestApp::spawn().await;
    let client = browser();
    sign_in(&app, &client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let user = app.new_user().await;
    let (status, html) = html_of(&app, &client, "/admin/users").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("the last ADMIN") && html.contains("checked disabled"),
        "the rule is shown before anyone tries: {html}"
    );
    let changed = client
        .post(app.url(&format!("/admin/users/{}/roles", user.user_id)))
        .form(&[
            ("_csrf", csrf_of(&html).as_str()),
            ("role", "USER"),
            ("role", "OPERATOR"),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(changed.status(), 200);
    let admin = app.admin().await;
    let read: serde_json::Value = app
        .get(
            &format!("/api/v1/users/{}", user.user_id),
            Some(&admin.access_token),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        read["roles"],
        serde_json::json!(["USER", "OPERATOR"]),
        "{read}"
    );

    let operator = browser();
    sign_in(&app, &operator, &user.email, PASSWORD).await;
    let (status, html) = html_of(&app, &operator, "/admin").await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("href=\"/admin/users\""),
        "no menu entry: {html}"
    );
    let (status, _) = html_of(&app, &operator, "/admin/users").await;
    assert_eq!(status, 403, "an OPERATOR does not manage users");
}

#[tokio::test]
async fn staff_create_a_campaign_and_watch_its_remaining_and_rate_live() {
    let app = TestApp::spawn().await;
    let client = browser();
    sign_in(&app, &client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, html) = html_of(&app, &client, "/admin/campaigns").await;
    let soon = |hours: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::hours(hours))
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]"
            ))
            .expect("a date")
    };
    let created = client
        .post(app.url("/admin/campaigns"))
        .form(&[
            ("_csrf", csrf_of(&html).as_str()),
            ("name", "Live drop"),
            ("kind", "PERCENT"),
            ("value", "15"),
            ("total_quantity", "10"),
            ("per_user_limit", "5"),
            ("issue_starts_at", soon(-1).as_str()),
            ("issue_ends_at", soon(2).as_str()),
            ("valid_until", soon(48).as_str()),
        ])
        .send()
        .await
        .expect("answers");
    let status = created.status();
    let html = created.text().await.expect("html");
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Live drop") && html.contains("15% off"),
        "{html}"
    );
    let admin = app.admin().await;
    let list: serde_json::Value = app
        .get("/api/v1/coupon-campaigns", Some(&admin.access_token))
        .await
        .json()
        .await
        .expect("json");
    let id = list["items"][0]["id"].as_str().expect("an id").to_owned();

    let then = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000 - 60_000;
    let buyer = app.new_user().await;
    for _ in 0..3 {
        let issued = app
            .post(
                &format!("/api/v1/coupon-campaigns/{id}/issue"),
                Some(&buyer.access_token),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(issued.status(), 201);
    }
    let (status, live) = html_of(
        &app,
        &client,
        &format!("/admin/campaigns/live?sample={id}:10&at={then}"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(live.contains(">7</span> of 10"), "live remaining: {live}");
    assert!(
        live.contains("<td class=\"rate\">3</td>"),
        "3 issued in the last minute: {live}"
    );

    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let reader = browser();
    sign_in(&app, &reader, &auditor.email, PASSWORD).await;
    let (status, html) = html_of(&app, &reader, "/admin/campaigns").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Live drop") && !html.contains("id=\"create-campaign\""),
        "{html}"
    );
}
