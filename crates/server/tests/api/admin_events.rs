//! The dashboard's Events pages over real sockets: the list and its filters,
//! create and edit, the legal status moves, attaching every reward type with
//! a condition, the live condition preview and the sample eligibility check,
//! refusals shown on their form, and the role rules (auditors only read).

use serde_json::{Value, json};
use time::Duration;

use crate::admin::{browser, csrf_of, html_of, sign_in};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Session, TestApp, from_now, text};

/// A `datetime-local` value `offset` from now (UTC, to the second).
pub(crate) fn local(offset: Duration) -> String {
    from_now(offset)[..19].to_owned()
}

/// A signed-in dashboard client and the CSRF token of its session.
pub(crate) async fn signed_in(
    app: &TestApp,
    email: &str,
    password: &str,
) -> (reqwest::Client, String) {
    let client = browser();
    sign_in(app, &client, email, password).await;
    let (status, html) = html_of(app, &client, "/admin/events").await;
    assert_eq!(status, 200, "{html}");
    (client, csrf_of(&html))
}

pub(crate) async fn operator(app: &TestApp) -> (reqwest::Client, String) {
    let staff = app.user_with_roles(&["OPERATOR"]).await;
    signed_in(app, &staff.email, PASSWORD).await
}

/// Posts a form (with the CSRF token); the answer after redirects.
pub(crate) async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let mut form = vec![("_csrf", csrf)];
    form.extend_from_slice(fields);
    let response = client
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    let landed = response.url().to_string();
    (status, landed, response.text().await.expect("html"))
}

/// The event page's id from the address a create or change landed on.
fn event_id_of(landed: &str) -> String {
    let path = landed
        .split("/admin/events/")
        .nth(1)
        .expect("an event page");
    path.split(['?', '#', '/'])
        .next()
        .expect("an id")
        .to_owned()
}

/// An event named `name` in `status`, running from yesterday to tomorrow,
/// created through the API; its id.
async fn running_event(app: &TestApp, admin: &Session, name: &str, status: &str) -> String {
    let body = json!({
        "name": name, "status": status,
        "starts_at": from_now(-Duration::days(1)), "ends_at": from_now(Duration::days(1)),
    });
    text(&app.created("/api/v1/events", admin, body).await["id"])
}

async fn api_event(app: &TestApp, who: &Session, id: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/events/{id}"), Some(&who.access_token))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("an event")
}

#[tokio::test]
async fn staff_create_edit_and_move_an_event_through_the_legal_moves_only() {
    let app = TestApp::spawn().await;
    let (client, csrf) = operator(&app).await;
    let starts = local(-Duration::hours(1));
    let ends = local(Duration::days(2));

    let (status, landed, html) = post(
        &app,
        &client,
        "/admin/events",
        &csrf,
        &[
            ("name", "Page week"),
            ("description", "Made on the page"),
            ("starts_at", &starts),
            ("ends_at", &ends),
            ("status", "DRAFT"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let id = event_id_of(&landed);
    assert!(
        html.contains("Page week") && html.contains(">DRAFT<"),
        "{html}"
    );
    assert!(
        html.contains("data-to=\"ACTIVE\"")
            && !html.contains("data-to=\"COMPLETED\"")
            && !html.contains("data-to=\"INACTIVE\""),
        "a draft can only be activated: {html}"
    );
    assert!(
        html.contains(&format!("value=\"{starts}\"")),
        "the edit form holds the period"
    );

    let path = format!("/admin/events/{id}");
    let (status, _, html) = post(
        &app,
        &client,
        &path,
        &csrf,
        &[
            ("name", "Renamed week"),
            ("description", "Changed"),
            ("starts_at", &starts),
            ("ends_at", &ends),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Renamed week"), "{html}");

    let (status, _, html) = post(
        &app,
        &client,
        &format!("{path}/status"),
        &csrf,
        &[("status", "ACTIVE")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"event-status\">ACTIVE<")
            && html.contains("data-to=\"INACTIVE\"")
            && html.contains("data-to=\"COMPLETED\"")
            && !html.contains("data-to=\"DRAFT\""),
        "{html}"
    );

    let (status, _, html) = post(
        &app,
        &client,
        &format!("{path}/status"),
        &csrf,
        &[("status", "DRAFT")],
    )
    .await;
    assert_eq!(status, 409, "a move the lifecycle refuses");
    assert!(
        html.contains("class=\"form-error\"") && html.contains("cannot move from ACTIVE to DRAFT"),
        "shown on the status form: {html}"
    );

    let admin = app.admin().await;
    let seen = api_event(&app, &admin, &id).await;
    assert_eq!(seen["status"], "ACTIVE");
    assert_eq!(seen["name"], "Renamed week");
    assert_eq!(seen["description"], "Changed");
    assert_eq!(seen["starts_at"], format!("{starts}Z"));
}

#[tokio::test]
async fn a_refused_event_form_is_shown_on_the_form_with_what_was_typed() {
    let app = TestApp::spawn().await;
    let (client, csrf) = operator(&app).await;
    let starts = local(Duration::days(2));
    let ends = local(Duration::days(1));

    let (status, _, html) = post(
        &app,
        &client,
        "/admin/events",
        &csrf,
        &[
            ("name", "Backwards week"),
            ("starts_at", &starts),
            ("ends_at", &ends),
        ],
    )
    .await;

    assert_eq!(status, 422);
    assert!(
        html.contains("class=\"form-error\"")
            && html.contains("<code>ends_at</code> must be after starts_at")
            && html.contains("value=\"Backwards week\""),
        "{html}"
    );
    let (status, _, html) = post(
        &app,
        &client,
        "/admin/events",
        &csrf,
        &[("name", "No dates"), ("starts_at", "soon"), ("ends_at", "")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("is not a date and time (UTC)"), "{html}");
}

#[tokio::test]
async fn the_list_filters_by_status_and_name_and_pages_through() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let spring = running_event(&app, &admin, "Spring Fair", "ACTIVE").await;
    let draft = running_event(&app, &admin, "Spring draft", "DRAFT").await;
    for n in 0..20 {
        running_event(&app, &admin, &format!("Filler {n}"), "ACTIVE").await;
    }
    let (client, _) = signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let (status, html) = html_of(&app, &client, "/admin/events?name=spring").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&spring) && html.contains(&draft) && !html.contains("Filler"),
        "by name, ignoring case, drafts included for staff: {html}"
    );
    let (_, html) = html_of(&app, &client, "/admin/events?name=spring&status=DRAFT").await;
    assert!(html.contains(&draft) && !html.contains(&spring), "{html}");

    let (_, first) = html_of(&app, &client, "/admin/events").await;
    assert_eq!(first.matches("<tr class=\"event\"").count(), 20);
    let next = first
        .split("href=\"")
        .find(|s| s.contains("id=\"next-page\""))
        .and_then(|s| s.split('"').next())
        .expect("a next page link")
        .replace("&#38;", "&");
    let (status, second) = html_of(&app, &client, &next).await;
    assert_eq!(status, 200);
    assert_eq!(second.matches("<tr class=\"event\"").count(), 2, "{second}");
    assert!(second.contains("id=\"first-page\"") && !second.contains("id=\"next-page\""));

    let (status, html) = html_of(&app, &client, "/admin/events?status=LIVE").await;
    assert_eq!(status, 422);
    assert!(
        html.contains("class=\"form-error\"") && html.contains("must be one of DRAFT"),
        "a bad filter is shown, not a crash: {html}"
    );
}

/// Adds a catalogue reward through the event page's form; its id.
async fn new_reward(
    app: &TestApp,
    client: &reqwest::Client,
    csrf: &str,
    event: &str,
    fields: &[(&str, &str)],
) -> String {
    let (status, landed, html) = post(
        app,
        client,
        &format!("/admin/events/{event}/catalogue"),
        csrf,
        fields,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let reward = landed
        .split("reward=")
        .nth(1)
        .and_then(|s| s.split('#').next())
        .expect("the new reward is chosen")
        .to_owned();
    assert!(
        html.contains(&format!("<option value=\"{reward}\" selected>")),
        "chosen in the attach form: {html}"
    );
    reward
}

#[tokio::test]
async fn staff_attach_every_reward_type_with_a_condition_and_bad_ones_show_on_the_form() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = running_event(&app, &admin, "Attach week", "ACTIVE").await;
    let campaign = app
        .created(
            "/api/v1/coupon-campaigns",
            &admin,
            json!({"name": "Page coupons", "discount": {"kind": "PERCENT", "value": 10},
                   "total_quantity": 10, "per_user_limit": 1,
                   "issue_starts_at": from_now(-Duration::hours(1)),
                   "issue_ends_at": from_now(Duration::hours(1)),
                   "valid_until": from_now(Duration::days(30))}),
        )
        .await;
    let campaign_id = text(&campaign["id"]);
    let (client, csrf) = operator(&app).await;

    let (status, _, html) = post(
        &app,
        &client,
        &format!("/admin/events/{id}/catalogue"),
        &csrf,
        &[("name", "Broken"), ("type", "POINT"), ("points", "0")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("<code>points</code> must be a positive integer")
            && html.contains("value=\"Broken\""),
        "{html}"
    );

    let rewards = [
        new_reward(
            &app,
            &client,
            &csrf,
            &id,
            &[
                ("name", "Points"),
                ("type", "POINT"),
                ("points", "100"),
                ("badge_id", "ignored"),
            ],
        )
        .await,
        new_reward(
            &app,
            &client,
            &csrf,
            &id,
            &[
                ("name", "Hats"),
                ("type", "ITEM"),
                ("item_id", "hat-red"),
                ("quantity", "2"),
            ],
        )
        .await,
        new_reward(
            &app,
            &client,
            &csrf,
            &id,
            &[
                ("name", "Coupon"),
                ("type", "COUPON"),
                ("coupon_campaign_id", &campaign_id),
            ],
        )
        .await,
        new_reward(
            &app,
            &client,
            &csrf,
            &id,
            &[
                ("name", "Early bird"),
                ("type", "BADGE"),
                ("badge_id", "early"),
            ],
        )
        .await,
    ];
    let condition = r#"{"type": "ALL", "of": [{"type": "CONTINUOUS_LOGIN", "days": 1},
        {"type": "CUSTOM", "metric": "spend", "op": ">=", "value": 50}]}"#;
    for reward in &rewards {
        let (status, _, html) = post(
            &app,
            &client,
            &format!("/admin/events/{id}/rewards"),
            &csrf,
            &[
                ("reward_id", reward),
                ("condition", condition),
                ("quantity", "5"),
                ("per_user_limit", "1"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{html}");
    }
    let (_, html) = html_of(&app, &client, &format!("/admin/events/{id}")).await;
    assert_eq!(
        html.matches("<tr class=\"event-reward\"").count(),
        4,
        "{html}"
    );
    assert!(
        html.contains("<span class=\"node\">ALL</span>")
            && html.contains("class=\"depth-1\"><span class=\"node\">CUSTOM</span>")
            && html.contains("5 of 5 left"),
        "each row shows its parsed condition: {html}"
    );
    let listed: Value = app
        .get(&format!("/api/v1/events/{id}/rewards"), None)
        .await
        .json()
        .await
        .expect("event rewards");
    let kinds: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|er| er["reward"]["type"].as_str().expect("a type"))
        .collect();
    assert_eq!(kinds, ["POINT", "ITEM", "COUPON", "BADGE"]);
    assert_eq!(listed["items"][0]["condition"]["of"][1]["metric"], "spend");

    let (status, _, html) = post(
        &app,
        &client,
        &format!("/admin/events/{id}/rewards"),
        &csrf,
        &[("reward_id", &rewards[0]), ("condition", "{\"type\": ")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("<code>condition</code> is not JSON")
            && html.contains("line 1, column")
            && (html.contains("{&#34;type&#34;: </textarea>")
                || html.contains("{&quot;type&quot;: </textarea>")),
        "the text is kept and the position named: {html}"
    );
    let (status, _, html) = post(
        &app,
        &client,
        &format!("/admin/events/{id}/rewards"),
        &csrf,
        &[
            ("reward_id", &rewards[0]),
            ("condition", r#"{"type": "FRIEND_INVITE", "count": -1}"#),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("<code>condition.count</code> must be a positive integer"),
        "{html}"
    );
}

#[tokio::test]
async fn the_condition_preview_shows_the_tree_or_the_error_and_the_sample_explains_a_user() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = running_event(&app, &admin, "Sample week", "DRAFT").await;
    let spender = app.new_user().await;
    let recorded = app
        .post(
            "/api/v1/activity",
            Some(&admin.access_token),
            json!({"user_id": spender.user_id, "metric": "spend", "value": 70}),
        )
        .await;
    assert_eq!(recorded.status(), 202);
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let (client, csrf) = signed_in(&app, &auditor.email, PASSWORD).await;
    let preview = format!("/admin/events/{id}/condition");

    let (status, _, tree) = post(
        &app,
        &client,
        &preview,
        &csrf,
        &[("condition", r#"{"type": "ANY", "of": [{"type": "FRIEND_INVITE", "count": 2}, {"type": "CUSTOM", "metric": "spend", "op": ">", "value": 60}]}"#)],
    )
    .await;
    assert_eq!(status, 200, "readers may preview: it changes nothing");
    assert!(
        tree.contains("2 clause(s), depth 2")
            && tree.contains("class=\"depth-1\"><span class=\"node\">FRIEND_INVITE</span>"),
        "{tree}"
    );
    let (_, _, broken) = post(
        &app,
        &client,
        &preview,
        &csrf,
        &[("condition", "{\"type\": \"ANY\",\n \"of\": [}")],
    )
    .await;
    assert!(
        broken.contains("Not JSON") && broken.contains("at line 2, column 9"),
        "{broken}"
    );
    let (_, _, refused) = post(
        &app,
        &client,
        &preview,
        &csrf,
        &[("condition", r#"{"type": "SOMETIMES"}"#)],
    )
    .await;
    assert!(
        refused.contains("<code>condition.type</code> must be one of"),
        "{refused}"
    );

    let sample = format!("/admin/events/{id}/sample");
    let spend = r#"{"type": "CUSTOM", "metric": "spend", "op": ">=", "value": 50}"#;
    let (status, _, met) = post(
        &app,
        &client,
        &sample,
        &csrf,
        &[("condition", spend), ("sample_email", &spender.email)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        met.contains("the condition is met") && met.contains("✔ spend: needs &#62;= 50, has 70"),
        "{met}"
    );
    let stranger = app.new_user().await;
    let (_, _, unmet) = post(
        &app,
        &client,
        &sample,
        &csrf,
        &[("condition", spend), ("sample_email", &stranger.email)],
    )
    .await;
    assert!(
        unmet.contains("the condition is not met")
            && unmet.contains("✘ spend: needs &#62;= 50, has 0"),
        "{unmet}"
    );
    let (status, _, unknown) = post(
        &app,
        &client,
        &sample,
        &csrf,
        &[
            ("condition", spend),
            ("sample_email", "nobody@stampede.test"),
        ],
    )
    .await;
    assert_eq!(status, 404);
    assert!(unknown.contains("Cannot check"), "{unknown}");
}

#[tokio::test]
async fn an_auditor_reads_events_without_forms_and_every_change_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = running_event(&app, &admin, "Read week", "ACTIVE").await;
    let auditor = app.user_with_roles(&["AUDITOR"]).await;
    let (client, csrf) = signed_in(&app, &auditor.email, PASSWORD).await;

    let (status, list) = html_of(&app, &client, "/admin/events").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("Read week")
            && list.contains("read-only")
            && !list.contains("id=\"create-event\""),
        "{list}"
    );
    let (status, page) = html_of(&app, &client, &format!("/admin/events/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Read week")
            && !page.contains("class=\"move\"")
            && !page.contains("id=\"attach-form\"")
            && !page.contains("id=\"edit-event-form\""),
        "no buttons that would fail: {page}"
    );

    let starts = local(-Duration::hours(1));
    let ends = local(Duration::days(1));
    for (path, fields) in [
        (
            "/admin/events".to_owned(),
            vec![
                ("name", "Sneaky"),
                ("starts_at", starts.as_str()),
                ("ends_at", ends.as_str()),
            ],
        ),
        (
            format!("/admin/events/{id}/status"),
            vec![("status", "INACTIVE")],
        ),
        (
            format!("/admin/events/{id}"),
            vec![
                ("name", "Sneaky"),
                ("starts_at", starts.as_str()),
                ("ends_at", ends.as_str()),
            ],
        ),
        (
            format!("/admin/events/{id}/catalogue"),
            vec![("name", "Sneaky"), ("type", "BADGE"), ("badge_id", "b")],
        ),
        (
            format!("/admin/events/{id}/rewards"),
            vec![("reward_id", "0190f0f0-0000-7000-8000-000000000000")],
        ),
    ] {
        let (status, _, _) = post(&app, &client, &path, &csrf, &fields).await;
        assert_eq!(status, 403, "POST {path}");
    }
    assert_eq!(api_event(&app, &admin, &id).await["status"], "ACTIVE");

    let (staff, _) = operator(&app).await;
    let forged = staff
        .post(app.url(&format!("/admin/events/{id}/status")))
        .form(&[("status", "INACTIVE")])
        .send()
        .await
        .expect("answers");
    assert_eq!(forged.status(), 403, "no CSRF token, no move");
    assert_eq!(api_event(&app, &admin, &id).await["status"], "ACTIVE");
}
