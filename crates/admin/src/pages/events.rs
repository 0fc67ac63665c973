//! Events: a list filtered by status and name, paged; create and edit;
//! status moves offering only the moves rewards' lifecycle allows; rewards
//! attached to an event, with the condition editor (the parsed tree or the
//! parse error with its position, live as the operator types) and a sample
//! eligibility check for a chosen user, clause by clause. Auditors see it
//! all without a form. A refusal is shown on the form that caused it.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use kernel::auth::Staff;
use kernel::{Lifecycle as _, PageQuery, PageRequest, Problem};
use rewards::model::{Condition, Event, EventId, EventReward, EventStatus, Reward, RewardKind};
use rewards::service::{EventPatch, NewEventRequest, NewEventRewardRequest};
use serde_json::{Map, Value};

use super::requests::describe_clause;
use crate::Admin;
use crate::form::{datetime_local, moment, optional_whole};
use crate::page::{self, Chrome, FormError};
use crate::session::{Fields, Signed};

const LIST_LENGTH: i64 = 20;
const REWARDS_SHOWN: u32 = 100;
/// The attach form offers the newest catalogue rewards, up to this many.
const CATALOGUE_SHOWN: usize = 500;
const CAMPAIGNS_SHOWN: u32 = 100;

/// A reward type's member in the new-reward form: `(member, label, a
/// count)`; a count is sent as a JSON number when it reads as one.
type Member = (&'static str, &'static str, bool);
/// A reward type and its members beside `name` and `type`.
type RewardType = (&'static str, &'static [Member]);

/// Each reward type as the new-reward form asks for it; rewards' model
/// checks what is sent.
const REWARD_TYPES: [RewardType; 4] = [
    ("POINT", &[("points", "Points", true)]),
    (
        "ITEM",
        &[("item_id", "Item id", false), ("quantity", "Units", true)],
    ),
    (
        "COUPON",
        &[("coupon_campaign_id", "Coupon campaign", false)],
    ),
    ("BADGE", &[("badge_id", "Badge id", false)]),
];

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    name: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Chrome,
    status: String,
    name: String,
    statuses: [&'static str; 4],
    rows: Vec<Event>,
    /// The next page's address, with the same filters.
    next: Option<String>,
    /// The first page's address, when this is a later one.
    first: Option<String>,
    create: Fields,
    error: Option<FormError>,
}

impl EventsPage {
    fn error_for(&self, form: &str) -> Option<&FormError> {
        self.error.as_ref().filter(|e| e.form == form)
    }
}

fn list_href(status: &str, name: &str, cursor: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("status", status)
        .append_pair("name", name)
        .append_pair("cursor", cursor)
        .finish();
    format!("/admin/events?{query}")
}

async fn events_page(
    admin: &Admin,
    signed: &Signed,
    query: ListQuery,
    create: Fields,
    mut error: Option<FormError>,
) -> Response {
    let status = query.status.unwrap_or_default();
    let name = query.name.unwrap_or_default();
    let cursor = query.cursor.filter(|c| !c.is_empty());
    let first = cursor.is_some().then(|| list_href(&status, &name, ""));
    let found = match (PageQuery {
        limit: Some(LIST_LENGTH),
        cursor,
    })
    .parse("events")
    {
        Ok(page) => admin
            .rewards
            .list_events(
                Some(&signed.reader),
                Some(status.as_str()).filter(|s| !s.is_empty()),
                Some(name.as_str()),
                page,
            )
            .await
            .map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    let (rows, next) = match found {
        Ok(page) => (
            page.items,
            page.next_cursor.map(|c| list_href(&status, &name, &c)),
        ),
        Err(problem) => {
            error.get_or_insert(FormError::new("filter", problem));
            (Vec::new(), None)
        }
    };
    let code = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    page::render(
        code,
        &EventsPage {
            chrome: Chrome::of(signed, "/admin/events"),
            status,
            name,
            statuses: EventStatus::ALL.map(EventStatus::as_str),
            rows,
            next,
            first,
            create,
            error,
        },
    )
}

async fn list(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<ListQuery>,
) -> Response {
    events_page(&admin, &signed, query, Fields::default(), None).await
}

fn new_event(fields: &Fields) -> Result<NewEventRequest, Problem> {
    Ok(NewEventRequest {
        name: fields.value("name").to_owned(),
        description: fields.value("description").to_owned(),
        starts_at: moment(fields, "starts_at")?,
        ends_at: moment(fields, "ends_at")?,
        status: Some(fields.value("status").to_owned()).filter(|s| !s.is_empty()),
    })
}

async fn create(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
) -> Response {
    let Some(staff) = signed.staff else {
        return page::refused("Auditors read the events; only staff create them.");
    };
    let created = match new_event(&fields) {
        Ok(request) => admin
            .rewards
            .create_event(&staff, request)
            .await
            .map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match created {
        Ok(event) => page::see_other(&format!("/admin/events/{}", event.id)),
        Err(problem) => {
            let error = FormError::new("create", problem);
            events_page(&admin, &signed, ListQuery::default(), fields, Some(error)).await
        }
    }
}

/// One line of a condition tree as the editor draws it.
struct TreeLine {
    depth: usize,
    /// `ALL`, `ANY`, or a leaf's type.
    kind: String,
    text: String,
}

/// The tree of a condition, depth-first, from its API JSON (which a
/// [`Condition`] always serialises to).
fn outline(condition: &Condition) -> Vec<TreeLine> {
    fn walk(node: &Value, depth: usize, lines: &mut Vec<TreeLine>) {
        let member = |key: &str| node.get(key).map(Value::to_string).unwrap_or_default();
        let text_of = |key: &str| node.get(key).and_then(Value::as_str).unwrap_or_default();
        let kind = text_of("type");
        let children = node.get("of").and_then(Value::as_array);
        let text = match kind {
            "ALL" | "ANY" => format!(
                "{} of these {} hold",
                if kind == "ALL" { "all" } else { "any" },
                children.map_or(0, Vec::len)
            ),
            "CONTINUOUS_LOGIN" => format!(
                "logged in on each of the last {} UTC days (from the event's start)",
                member("days")
            ),
            "FRIEND_INVITE" => format!(
                "at least {} sign-ups with their referral code since the event's start",
                member("count")
            ),
            "CUSTOM" => format!(
                "sum of `{}` in the event period {} {}",
                text_of("metric"),
                text_of("op"),
                member("value")
            ),
            _ => node.to_string(),
        };
        lines.push(TreeLine {
            depth,
            kind: kind.to_owned(),
            text,
        });
        for child in children.into_iter().flatten() {
            walk(child, depth + 1, lines);
        }
    }
    let mut lines = Vec::new();
    walk(
        &serde_json::to_value(condition).unwrap_or(Value::Null),
        0,
        &mut lines,
    );
    lines
}

/// Where the typed JSON stops being JSON.
struct SyntaxError {
    message: String,
    line: usize,
    column: usize,
    /// The line it is on, and a caret under the column.
    excerpt: String,
    caret: String,
}

impl SyntaxError {
    fn of(text: &str, error: &serde_json::Error) -> Self {
        let (line, column) = (error.line(), error.column());
        let excerpt: String = text
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .to_owned();
        Self {
            message: error.to_string(),
            line,
            column,
            caret: format!("{}^", " ".repeat(column.saturating_sub(1))),
            excerpt,
        }
    }
}

/// The editor's text as the API's JSON: empty (or `null`) is no condition.
fn condition_json(text: &str) -> Result<Value, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| SyntaxError::of(text, &e))
}

/// What the editor shows under the text: the parse result.
#[derive(Template, Default)]
#[template(path = "condition_preview.html")]
struct Preview {
    /// No condition: every request meets it.
    none: bool,
    syntax: Option<SyntaxError>,
    /// The model's refusals, by path in the tree (`condition.of[1].days`).
    problems: Vec<(String, String)>,
    tree: Vec<TreeLine>,
    depth: usize,
    leaves: usize,
}

impl Preview {
    fn of(text: &str) -> Self {
        let value = match condition_json(text) {
            Ok(value) => value,
            Err(syntax) => {
                return Self {
                    syntax: Some(syntax),
                    ..Self::default()
                };
            }
        };
        match Condition::parse_optional(&value) {
            Ok(None) => Self {
                none: true,
                ..Self::default()
            },
            Ok(Some(condition)) => {
                let tree = outline(&condition);
                Self {
                    leaves: tree
                        .iter()
                        .filter(|l| !matches!(l.kind.as_str(), "ALL" | "ANY"))
                        .count(),
                    depth: condition.depth(),
                    tree,
                    ..Self::default()
                }
            }
            Err(errors) => Self {
                problems: errors.into_iter().map(|e| (e.field, e.message)).collect(),
                ..Self::default()
            },
        }
    }
}

struct RewardRow {
    offer: EventReward,
    kind: String,
    tree: Vec<TreeLine>,
}

fn describe_kind(kind: &RewardKind) -> String {
    match kind {
        RewardKind::Point { points } => format!("POINT · {points} points"),
        RewardKind::Item { item_id, quantity } => format!("ITEM · {quantity} × {item_id}"),
        RewardKind::Coupon { coupon_campaign_id } => {
            format!("COUPON · campaign {}", coupon_campaign_id.0)
        }
        RewardKind::Badge { badge_id } => format!("BADGE · {badge_id}"),
    }
}

fn describe_reward(reward: &Reward) -> String {
    format!("{} ({})", reward.name, describe_kind(&reward.kind))
}

/// A status move the lifecycle allows, with its button's words.
fn move_label(to: EventStatus) -> &'static str {
    match to {
        EventStatus::Draft => "Back to draft",
        EventStatus::Active => "Activate",
        EventStatus::Inactive => "Pause",
        EventStatus::Completed => "Complete",
    }
}

/// The forms of an event's page, with what was typed when one is refused.
#[derive(Default)]
struct Forms {
    /// `None`: the event's values.
    edit: Option<Fields>,
    attach: Fields,
    new_reward: Fields,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    chrome: Chrome,
    event: Event,
    live: bool,
    /// `(status, button label)` of each legal move.
    moves: Vec<(&'static str, &'static str)>,
    rewards: Vec<RewardRow>,
    /// `(id, label)`, newest first.
    catalogue: Vec<(String, String)>,
    campaigns: Vec<(String, String)>,
    reward_types: [RewardType; 4],
    edit: Fields,
    attach: Fields,
    new_reward: Fields,
    preview: Preview,
    error: Option<FormError>,
}

impl EventPage {
    fn error_for(&self, form: &str) -> Option<&FormError> {
        self.error.as_ref().filter(|e| e.form == form)
    }
}

/// Every catalogue reward up to [`CATALOGUE_SHOWN`], newest first.
async fn catalogue(admin: &Admin, signed: &Signed) -> Result<Vec<(String, String)>, Problem> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = admin
            .rewards
            .list_rewards(&signed.reader, PageRequest { limit: 100, after })
            .await?;
        after = page.items.last().map(|r| r.id.0);
        all.extend(
            page.items
                .iter()
                .map(|r| (r.id.to_string(), describe_reward(r))),
        );
        if page.next_cursor.is_none() || all.len() >= CATALOGUE_SHOWN {
            break;
        }
    }
    all.reverse();
    Ok(all)
}

async fn event_page(
    admin: &Admin,
    signed: &Signed,
    id: EventId,
    forms: Forms,
    error: Option<FormError>,
) -> Response {
    let event = match admin.rewards.event(Some(&signed.reader), id).await {
        Ok(event) => event,
        Err(e) => return page::problem(e.into()),
    };
    let offers = match admin
        .rewards
        .event_rewards(
            Some(&signed.reader),
            id,
            PageRequest {
                limit: REWARDS_SHOWN,
                after: None,
            },
        )
        .await
    {
        Ok(page) => page.items,
        Err(e) => return page::problem(e.into()),
    };
    let (catalogue, campaigns) = if signed.staff.is_some() {
        let catalogue = match catalogue(admin, signed).await {
            Ok(c) => c,
            Err(problem) => return page::problem(problem),
        };
        let campaigns = match admin
            .coupons
            .list_campaigns(PageRequest {
                limit: CAMPAIGNS_SHOWN,
                after: None,
            })
            .await
        {
            Ok(page) => page
                .items
                .into_iter()
                .map(|c| (c.campaign.id.to_string(), c.campaign.name.to_string()))
                .collect(),
            Err(e) => return page::problem(e.into()),
        };
        (catalogue, campaigns)
    } else {
        (Vec::new(), Vec::new())
    };
    let edit = forms.edit.unwrap_or_else(|| {
        Fields(vec![
            ("name".to_owned(), event.name.to_string()),
            (
                "description".to_owned(),
                event.description.as_str().to_owned(),
            ),
            (
                "starts_at".to_owned(),
                datetime_local(event.period.starts_at()),
            ),
            ("ends_at".to_owned(), datetime_local(event.period.ends_at())),
        ])
    });
    let rewards = offers
        .into_iter()
        .map(|offer| RewardRow {
            kind: describe_kind(&offer.reward.kind),
            tree: offer.condition.as_ref().map(outline).unwrap_or_default(),
            offer,
        })
        .collect();
    let code = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    page::render(
        code,
        &EventPage {
            chrome: Chrome::of(signed, "/admin/events"),
            live: event.is_live(kernel::Timestamp::from_datetime(
                time::OffsetDateTime::now_utc(),
            )),
            moves: EventStatus::ALL
                .into_iter()
                .filter(|to| event.status.can_move_to(*to))
                .map(|to| (to.as_str(), move_label(to)))
                .collect(),
            event,
            rewards,
            catalogue,
            campaigns,
            reward_types: REWARD_TYPES,
            preview: Preview::of(forms.attach.value("condition")),
            edit,
            attach: forms.attach,
            new_reward: forms.new_reward,
            error,
        },
    )
}

#[derive(serde::Deserialize)]
struct Chosen {
    /// A catalogue reward just made, chosen in the attach form.
    reward: Option<String>,
}

fn event_id(raw: &str) -> Option<EventId> {
    raw.parse().ok().map(EventId)
}

async fn show(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
    Query(chosen): Query<Chosen>,
) -> Response {
    let Some(id) = event_id(&id) else {
        return page::not_found();
    };
    let mut forms = Forms {
        attach: Fields(vec![("per_user_limit".to_owned(), "1".to_owned())]),
        ..Forms::default()
    };
    if let Some(reward) = chosen.reward {
        forms.attach.0.push(("reward_id".to_owned(), reward));
    }
    event_page(&admin, &signed, id, forms, None).await
}

fn event_patch(fields: &Fields) -> Result<EventPatch, Problem> {
    Ok(EventPatch {
        name: Some(fields.value("name").to_owned()),
        description: Some(fields.value("description").to_owned()),
        starts_at: Some(moment(fields, "starts_at")?),
        ends_at: Some(moment(fields, "ends_at")?),
        status: None,
    })
}

/// The staff proof and the event of a change, or the page refusing it.
fn changing(signed: &Signed, raw_id: &str) -> Result<(Staff, EventId), Box<Response>> {
    let Some(staff) = signed.staff else {
        return Err(Box::new(page::refused(
            "Auditors read the events; only staff change them.",
        )));
    };
    event_id(raw_id)
        .map(|id| (staff, id))
        .ok_or_else(|| Box::new(page::not_found()))
}

/// After a change: on to `to`, or the event's page again with the refusal
/// on `form` and what was typed.
async fn changed(
    admin: &Admin,
    signed: &Signed,
    id: EventId,
    result: Result<String, Problem>,
    form: &'static str,
    forms: Forms,
) -> Response {
    match result {
        Ok(to) => page::see_other(&to),
        Err(problem) => {
            event_page(
                admin,
                signed,
                id,
                forms,
                Some(FormError::new(form, problem)),
            )
            .await
        }
    }
}

async fn edit(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Response {
    let (staff, id) = match changing(&signed, &id) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let result = async {
        let patch = event_patch(&fields)?;
        admin.rewards.update_event(&staff, id, patch).await?;
        Ok(format!("/admin/events/{id}"))
    }
    .await;
    let forms = Forms {
        edit: Some(fields),
        ..Forms::default()
    };
    changed(&admin, &signed, id, result, "edit", forms).await
}

async fn move_status(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Response {
    let (staff, id) = match changing(&signed, &id) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let patch = EventPatch {
        status: Some(fields.value("status").to_owned()),
        ..EventPatch::default()
    };
    let result = match admin.rewards.update_event(&staff, id, patch).await {
        Ok(_) => Ok(format!("/admin/events/{id}")),
        Err(e) => Err(e.into()),
    };
    changed(&admin, &signed, id, result, "status", Forms::default()).await
}

fn attach_request(fields: &Fields) -> Result<NewEventRewardRequest, Problem> {
    let condition = condition_json(fields.value("condition")).map_err(|e| {
        Problem::invalid_field(
            "condition",
            format!(
                "is not JSON: {} (line {}, column {})",
                e.message, e.line, e.column
            ),
        )
    })?;
    Ok(NewEventRewardRequest {
        reward_id: fields.value("reward_id").to_owned(),
        condition,
        auto_resolve: fields.get("auto_resolve").is_some(),
        quantity: optional_whole(fields, "quantity")?,
        per_user_limit: optional_whole(fields, "per_user_limit")?,
    })
}

async fn attach(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Response {
    let (staff, id) = match changing(&signed, &id) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let result = async {
        let request = attach_request(&fields)?;
        admin.rewards.add_event_reward(&staff, id, request).await?;
        Ok(format!("/admin/events/{id}#rewards"))
    }
    .await;
    let forms = Forms {
        attach: fields,
        ..Forms::default()
    };
    changed(&admin, &signed, id, result, "attach", forms).await
}

/// The body `POST /rewards` takes: `name`, `type` and only that type's
/// members, so the other types' empty inputs are not sent.
fn new_reward_body(fields: &Fields) -> Map<String, Value> {
    let kind = fields.value("type");
    let mut body = Map::new();
    body.insert("name".to_owned(), fields.value("name").into());
    body.insert("type".to_owned(), kind.into());
    let members = REWARD_TYPES
        .iter()
        .find(|(name, _)| *name == kind)
        .map_or(&[][..], |(_, members)| *members);
    for (member, _, count) in members {
        let raw = fields.value(member).trim();
        let value = match raw.parse::<u64>() {
            Ok(n) if *count => Value::from(n),
            _ => Value::from(raw),
        };
        body.insert((*member).to_owned(), value);
    }
    body
}

async fn create_reward(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Response {
    let (staff, id) = match changing(&signed, &id) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let result = match admin
        .rewards
        .create_reward(&staff, &new_reward_body(&fields))
        .await
    {
        Ok(reward) => Ok(format!("/admin/events/{id}?reward={}#attach", reward.id)),
        Err(e) => Err(e.into()),
    };
    let forms = Forms {
        new_reward: fields,
        ..Forms::default()
    };
    changed(&admin, &signed, id, result, "new-reward", forms).await
}

/// The live parse result of the editor's text (readers: it changes nothing).
async fn preview(Extension(fields): Extension<Fields>) -> Response {
    page::render(StatusCode::OK, &Preview::of(fields.value("condition")))
}

/// The sample eligibility check: the editor's condition on a user's facts.
#[derive(Template, Default)]
#[template(path = "sample.html")]
struct Sample {
    email: String,
    error: Option<String>,
    unconditional: bool,
    met: bool,
    reason: Option<String>,
    clauses: Vec<String>,
}

async fn sample_of(
    admin: &Admin,
    signed: &Signed,
    raw_id: &str,
    fields: &Fields,
) -> Result<Sample, Problem> {
    let id = event_id(raw_id).ok_or_else(|| Problem::invalid_field("event", "is not an id"))?;
    let value = condition_json(fields.value("condition"))
        .map_err(|e| Problem::invalid_field("condition", format!("is not JSON: {}", e.message)))?;
    let condition = Condition::parse_optional(&value).map_err(Problem::validation)?;
    let email = fields.value("sample_email").trim();
    let user = admin.identity.user_by_email(&signed.reader, email).await?;
    let evaluation = admin
        .rewards
        .sample_condition(&signed.reader, id, condition.as_ref(), user.id)
        .await?;
    Ok(Sample {
        email: user.email.to_string(),
        unconditional: condition.is_none(),
        met: evaluation.met(),
        reason: evaluation.reason(),
        clauses: evaluation.clauses().iter().map(describe_clause).collect(),
        error: None,
    })
}

async fn sample(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Response {
    match sample_of(&admin, &signed, &id, &fields).await {
        Ok(sample) => page::render(StatusCode::OK, &sample),
        Err(problem) => {
            let e = FormError::new("sample", problem);
            let mut text = e.detail;
            for (field, message) in e.fields {
                text.push_str(&format!(" — {field}: {message}"));
            }
            page::render(
                e.status,
                &Sample {
                    email: fields.value("sample_email").to_owned(),
                    error: Some(text),
                    ..Sample::default()
                },
            )
        }
    }
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/events", get(list).post(create))
        .route("/admin/events/{id}", get(show).post(edit))
        .route("/admin/events/{id}/status", post(move_status))
        .route("/admin/events/{id}/rewards", post(attach))
        .route("/admin/events/{id}/catalogue", post(create_reward))
        .route("/admin/events/{id}/condition", post(preview))
        .route("/admin/events/{id}/sample", post(sample))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Vec<(usize, String)> {
        Preview::of(text)
            .tree
            .into_iter()
            .map(|l| (l.depth, l.kind))
            .collect()
    }

    #[test]
    fn a_valid_condition_previews_as_its_tree_depth_first() {
        let text = r#"{"type": "ALL", "of": [
            {"type": "CONTINUOUS_LOGIN", "days": 3},
            {"type": "ANY", "of": [{"type": "FRIEND_INVITE", "count": 2},
                                   {"type": "CUSTOM", "metric": "spend", "op": ">=", "value": 50}]}
        ]}"#;
        let preview = Preview::of(text);

        assert_eq!(
            tree(text),
            [
                (0, "ALL".to_owned()),
                (1, "CONTINUOUS_LOGIN".to_owned()),
                (1, "ANY".to_owned()),
                (2, "FRIEND_INVITE".to_owned()),
                (2, "CUSTOM".to_owned()),
            ]
        );
        assert_eq!((preview.depth, preview.leaves), (3, 3));
        assert!(preview.tree[4].text.contains("`spend`") && preview.tree[4].text.contains(">= 50"));
    }

    #[test]
    fn broken_json_previews_with_its_line_and_column() {
        let preview = Preview::of("{\"type\": \"ALL\",\n  \"of\": [}");
        let syntax = preview.syntax.expect("not JSON");

        assert_eq!((syntax.line, syntax.column), (2, 10));
        assert_eq!(syntax.excerpt, "  \"of\": [}");
        assert_eq!(syntax.caret, "         ^");
        assert!(preview.tree.is_empty());
    }

    #[test]
    fn a_refused_condition_previews_with_the_models_paths_and_empty_is_none() {
        let preview =
            Preview::of(r#"{"type": "ANY", "of": [{"type": "CONTINUOUS_LOGIN", "days": 0}]}"#);

        assert_eq!(
            preview.problems,
            [(
                "condition.of[0].days".to_owned(),
                "must be a positive integer".to_owned()
            )]
        );
        assert!(Preview::of("  ").none && Preview::of("null").none);
    }

    #[test]
    fn a_new_reward_body_holds_only_the_chosen_types_members() {
        let fields = Fields(
            [
                ("name", "Hat"),
                ("type", "ITEM"),
                ("points", "5"),
                ("item_id", "42"),
                ("quantity", "2"),
                ("badge_id", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        );

        assert_eq!(
            Value::Object(new_reward_body(&fields)),
            serde_json::json!({"name": "Hat", "type": "ITEM", "item_id": "42", "quantity": 2})
        );
    }
}
