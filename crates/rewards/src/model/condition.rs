//! Conditions an event reward can demand, as API.md defines them, and the one
//! evaluator behind both the reward-request decision and the eligibility
//! explanation — so the explanation can never disagree with the decision.
//!
//! A reward without a condition stores JSON `null`; in Rust that is
//! `Option<Condition>` = `None`, handled by the `*_optional` functions
//! ([`Condition::parse_optional`], [`Condition::evaluate_optional`],
//! [`Condition::needs_optional`]), which treat `None` as always met and
//! needing nothing.
//!
//! A [`Condition`] can only be made by parsing, so every one that exists is
//! valid and serialises back to JSON that parses to the same tree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeInclusive;

use kernel::{FieldError, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value, json};
use time::{Date, Duration};
use utoipa::ToSchema;

/// The deepest a condition tree may nest; a top-level leaf is depth 1.
pub const MAX_DEPTH: usize = 8;
/// The most leaves a condition tree may hold. Every eligibility check
/// evaluates and explains each leaf, so width is bounded as depth is.
pub const MAX_LEAVES: usize = 64;
/// The longest login streak a condition may ask for (ten years), which also
/// bounds the days a service has to fetch.
pub const MAX_LOGIN_DAYS: u32 = 3650;
pub const MAX_METRIC_CHARS: usize = 64;

const TYPES: &str = "CONTINUOUS_LOGIN, FRIEND_INVITE, CUSTOM, ALL, ANY";

/// A valid condition tree. Serialises to exactly the API's JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Condition(Node);

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
enum Node {
    ContinuousLogin {
        days: u32,
    },
    FriendInvite {
        count: u32,
    },
    Custom {
        metric: String,
        op: Comparison,
        // Kept as written (`50` stays `50`, not `50.0`); never NaN or infinite,
        // which a JSON number cannot be.
        value: Number,
    },
    All {
        of: Vec<Node>,
    },
    Any {
        of: Vec<Node>,
    },
}

/// The comparison of a `CUSTOM` condition: `sum op value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Comparison {
    #[serde(rename = ">=")]
    GreaterOrEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = "<")]
    Less,
}

impl Comparison {
    pub const ALL: [Self; 5] = [
        Self::GreaterOrEqual,
        Self::Greater,
        Self::Equal,
        Self::LessOrEqual,
        Self::Less,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GreaterOrEqual => ">=",
            Self::Greater => ">",
            Self::Equal => "=",
            Self::LessOrEqual => "<=",
            Self::Less => "<",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == raw)
    }

    /// Whether `left op right` holds. `=` is exact: metrics are meant to be
    /// counts and amounts in minor units, which sum exactly.
    #[must_use]
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Self::GreaterOrEqual => left >= right,
            Self::Greater => left > right,
            Self::Equal => left == right,
            Self::LessOrEqual => left <= right,
            Self::Less => left < right,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Condition {
    /// Parses a condition, reporting every problem at once with a field path
    /// rooted at `condition` (e.g. `condition.of[1].days`). JSON `null` is
    /// refused here; use [`Condition::parse_optional`] where it means "none".
    pub fn parse(value: &Value) -> Result<Self, Vec<FieldError>> {
        let mut parser = Parser::default();
        match parser.node(value, "condition", 1) {
            Some(node) if parser.errors.is_empty() => Ok(Self(node)),
            _ => Err(parser.errors),
        }
    }

    /// Parses a condition that may be JSON `null`, meaning "no condition".
    pub fn parse_optional(value: &Value) -> Result<Option<Self>, Vec<FieldError>> {
        if value.is_null() {
            Ok(None)
        } else {
            Self::parse(value).map(Some)
        }
    }

    /// How deep the tree nests; a lone leaf is 1.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.0.depth()
    }

    /// The facts evaluation will read, so a service fetches only those.
    #[must_use]
    pub fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        self.0.collect_needs(&mut needs);
        needs
    }

    /// [`Condition::needs`] of an optional condition; `None` needs nothing.
    #[must_use]
    pub fn needs_optional(condition: Option<&Self>) -> Needs {
        condition.map(Self::needs).unwrap_or_default()
    }

    /// Decides the condition and explains the decision, leaf by leaf. Every
    /// leaf is evaluated (no short-circuit) so the explanation is complete.
    #[must_use]
    pub fn evaluate(&self, facts: &Facts, ctx: &EvalContext) -> Evaluation {
        let mut clauses = Vec::new();
        let outcome = self.0.evaluate(facts, ctx, &mut clauses);
        Evaluation {
            met: outcome.met,
            clauses,
            reason: outcome.reason,
        }
    }

    /// [`Condition::evaluate`] of an optional condition; `None` is met, with
    /// no clauses.
    #[must_use]
    pub fn evaluate_optional(
        condition: Option<&Self>,
        facts: &Facts,
        ctx: &EvalContext,
    ) -> Evaluation {
        condition.map_or_else(Evaluation::unconditional, |c| c.evaluate(facts, ctx))
    }
}

/// Reads a stored condition. Request bodies should go through
/// [`Condition::parse`] instead, which keeps each problem's field path.
impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Self::parse(&value).map_err(|errors| {
            let detail = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            serde::de::Error::custom(detail)
        })
    }
}

#[derive(Default)]
struct Parser {
    errors: Vec<FieldError>,
    leaves: usize,
}

impl Parser {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            self.error(path, format!("is nested deeper than {MAX_DEPTH} levels"));
            return None;
        }
        let Some(object) = value.as_object() else {
            self.error(path, "must be an object");
            return None;
        };
        let kind = match object.get("type") {
            None => {
                self.error(&format!("{path}.type"), "is required");
                return None;
            }
            Some(Value::String(s)) if is_type_name(s) => s.as_str(),
            Some(_) => {
                self.error(&format!("{path}.type"), format!("must be one of {TYPES}"));
                return None;
            }
        };
        if !matches!(kind, "ALL" | "ANY") {
            self.leaves += 1;
            if self.leaves > MAX_LEAVES {
                self.error(
                    path,
                    format!("is past the {MAX_LEAVES} leaves a condition may hold"),
                );
                return None;
            }
        }
        match kind {
            "CONTINUOUS_LOGIN" => {
                self.only(object, path, kind, &["type", "days"]);
                let days = self.positive(object, path, "days", MAX_LOGIN_DAYS);
                Some(Node::ContinuousLogin { days: days? })
            }
            "FRIEND_INVITE" => {
                self.only(object, path, kind, &["type", "count"]);
                let count = self.positive(object, path, "count", u32::MAX);
                Some(Node::FriendInvite { count: count? })
            }
            "CUSTOM" => {
                self.only(object, path, kind, &["type", "metric", "op", "value"]);
                let metric = self.metric(object, path);
                let op = self.op(object, path);
                let value = self.number(object, path);
                Some(Node::Custom {
                    metric: metric?,
                    op: op?,
                    value: value?,
                })
            }
            _ => {
                self.only(object, path, kind, &["type", "of"]);
                let of = self.children(object, path, depth)?;
                Some(if kind == "ALL" {
                    Node::All { of }
                } else {
                    Node::Any { of }
                })
            }
        }
    }

    fn only(&mut self, object: &Map<String, Value>, path: &str, kind: &str, allowed: &[&str]) {
        for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.error(
                &format!("{path}.{key}"),
                format!("is not a member of a {kind} condition"),
            );
        }
    }

    fn positive(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        key: &str,
        max: u32,
    ) -> Option<u32> {
        let field = format!("{path}.{key}");
        let Some(value) = object.get(key) else {
            self.error(&field, "is required");
            return None;
        };
        match value.as_u64() {
            Some(n) if n > u64::from(max) => {
                self.error(&field, format!("must be at most {max}"));
                None
            }
            Some(n @ 1..) => u32::try_from(n).ok(),
            _ => {
                self.error(&field, "must be a positive integer");
                None
            }
        }
    }

    fn metric(&mut self, object: &Map<String, Value>, path: &str) -> Option<String> {
        let field = format!("{path}.metric");
        let message = match object.get("metric") {
            None => "is required".to_owned(),
            Some(Value::String(s)) => match check_metric(s) {
                Ok(()) => return Some(s.clone()),
                Err(message) => message,
            },
            Some(_) => "must be a string".to_owned(),
        };
        self.error(&field, message);
        None
    }

    fn op(&mut self, object: &Map<String, Value>, path: &str) -> Option<Comparison> {
        let field = format!("{path}.op");
        match object.get("op") {
            None => self.error(&field, "is required"),
            Some(value) => match value.as_str().and_then(Comparison::parse) {
                Some(op) => return Some(op),
                None => self.error(&field, "must be one of >=, >, =, <=, <"),
            },
        }
        None
    }

    fn number(&mut self, object: &Map<String, Value>, path: &str) -> Option<Number> {
        let field = format!("{path}.value");
        match object.get("value") {
            None => self.error(&field, "is required"),
            // serde_json numbers are always finite; the check guards a
            // build with arbitrary precision, where they need not be.
            Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
                return Some(n.clone());
            }
            Some(_) => self.error(&field, "must be a finite number"),
        }
        None
    }

    fn children(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Option<Vec<Node>> {
        let field = format!("{path}.of");
        let items = match object.get("of") {
            None => {
                self.error(&field, "is required");
                return None;
            }
            Some(Value::Array(items)) if items.is_empty() => {
                self.error(&field, "must not be empty");
                return None;
            }
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.error(&field, "must be an array of conditions");
                return None;
            }
        };
        // Every child is parsed before giving up, so all problems are
        // reported; past the leaf bound that one problem says it all.
        let mut parsed = Vec::with_capacity(items.len().min(MAX_LEAVES));
        for (i, item) in items.iter().enumerate() {
            parsed.push(self.node(item, &format!("{field}[{i}]"), depth + 1));
            if self.leaves > MAX_LEAVES {
                return None;
            }
        }
        parsed.into_iter().collect()
    }
}

fn is_type_name(s: &str) -> bool {
    matches!(
        s,
        "CONTINUOUS_LOGIN" | "FRIEND_INVITE" | "CUSTOM" | "ALL" | "ANY"
    )
}

/// Whether `name` may name a metric (in a `CUSTOM` condition or an activity);
/// the error says why not.
pub fn check_metric(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("must not be empty".to_owned())
    } else if name.chars().count() > MAX_METRIC_CHARS {
        Err(format!("must be at most {MAX_METRIC_CHARS} characters"))
    } else if name.chars().all(is_metric_char) {
        Ok(())
    } else {
        Err("may contain only lower-case letters, digits and _ . : -".to_owned())
    }
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | ':' | '-')
}

/// The facts a condition reads. A service fills only what [`Needs`] asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The longest login streak asked for, in days; `None` when no
    /// `CONTINUOUS_LOGIN` appears. See [`Needs::login_window`].
    pub login_window_days: Option<u32>,
    /// Whether a `FRIEND_INVITE` appears.
    pub invites: bool,
    /// The metrics `CUSTOM` leaves sum.
    pub metrics: BTreeSet<String>,
}

impl Needs {
    /// Nothing to fetch.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.login_window_days.is_none() && !self.invites && self.metrics.is_empty()
    }

    /// The UTC days whose logins must be fetched, if any.
    #[must_use]
    pub fn login_window(&self, ctx: &EvalContext) -> Option<RangeInclusive<Date>> {
        self.login_window_days
            .and_then(|days| ctx.login_window(days))
    }
}

/// What is known about the user, as of [`EvalContext::now`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// UTC days on which the user logged in. Days outside the window are ignored.
    pub login_days: BTreeSet<Date>,
    /// Sign-ups with the user's referral code between the event's start and now.
    pub invites: u64,
    /// Per metric, the sum of the user's activity inside the event period;
    /// an absent metric sums to 0.
    pub metric_sums: BTreeMap<String, f64>,
}

/// When the condition is evaluated, and for which event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalContext {
    pub now: Timestamp,
    pub event_starts_at: Timestamp,
}

impl EvalContext {
    /// Today as a UTC date.
    #[must_use]
    pub fn today(&self) -> Date {
        self.now.as_datetime().date()
    }

    /// The UTC days a `CONTINUOUS_LOGIN` of `days` looks at: the last `days`
    /// days ending today, less those before the event's start day. `None`
    /// when no day qualifies (before the event started, or `days` is 0).
    #[must_use]
    pub fn login_window(&self, days: u32) -> Option<RangeInclusive<Date>> {
        let today = self.today();
        let back = Duration::days(i64::from(days.saturating_sub(1)));
        let first = today
            .checked_sub(back)
            .unwrap_or(Date::MIN)
            .max(self.event_starts_at.as_datetime().date());
        (days > 0 && first <= today).then_some(first..=today)
    }
}

/// The kind of a leaf condition, as a clause names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClauseType {
    ContinuousLogin,
    FriendInvite,
    Custom,
}

/// One leaf of an evaluated condition, as the eligibility answer shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Clause {
    pub r#type: ClauseType,
    /// `days` or `count` as a number; for `CUSTOM`, `{"op": ">=", "value": 50}`.
    pub required: Value,
    /// Days logged in, friends invited, or the metric's sum (null if the sum
    /// overflowed to infinity).
    pub actual: Value,
    pub met: bool,
    /// For `CUSTOM`, the metric summed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
}

/// The decision on a condition with its explanation. Built only by the
/// evaluator, so `met` is always the tree's truth value.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    met: bool,
    clauses: Vec<Clause>,
    reason: Option<String>,
}

impl Evaluation {
    /// The evaluation of "no condition": met, with no clauses.
    #[must_use]
    pub const fn unconditional() -> Self {
        Self {
            met: true,
            clauses: Vec::new(),
            reason: None,
        }
    }

    #[must_use]
    pub const fn met(&self) -> bool {
        self.met
    }

    /// The leaves, depth-first.
    #[must_use]
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    #[must_use]
    pub fn into_clauses(self) -> Vec<Clause> {
        self.clauses
    }

    /// Why the condition is not met, from the first unmet leaf that decided
    /// it (e.g. "logged in 2 of 7 days"); `None` when it is met.
    #[must_use]
    pub fn reason(&self) -> Option<String> {
        self.reason.clone()
    }
}

struct Outcome {
    met: bool,
    /// When not met, the reason of the leaf that decided it.
    reason: Option<String>,
}

impl Node {
    fn depth(&self) -> usize {
        match self {
            Self::All { of } | Self::Any { of } => {
                1 + of.iter().map(Self::depth).max().unwrap_or(0)
            }
            _ => 1,
        }
    }

    fn collect_needs(&self, needs: &mut Needs) {
        match self {
            Self::ContinuousLogin { days } => {
                needs.login_window_days = needs.login_window_days.max(Some(*days));
            }
            Self::FriendInvite { .. } => needs.invites = true,
            Self::Custom { metric, .. } => {
                needs.metrics.insert(metric.clone());
            }
            Self::All { of } | Self::Any { of } => {
                for child in of {
                    child.collect_needs(needs);
                }
            }
        }
    }

    fn evaluate(&self, facts: &Facts, ctx: &EvalContext, clauses: &mut Vec<Clause>) -> Outcome {
        match self {
            Self::All { of } => {
                let outcomes: Vec<Outcome> =
                    of.iter().map(|c| c.evaluate(facts, ctx, clauses)).collect();
                match outcomes.into_iter().find(|o| !o.met) {
                    Some(failed) => failed,
                    None => Outcome {
                        met: true,
                        reason: None,
                    },
                }
            }
            Self::Any { of } => {
                let outcomes: Vec<Outcome> =
                    of.iter().map(|c| c.evaluate(facts, ctx, clauses)).collect();
                if outcomes.iter().any(|o| o.met) {
                    Outcome {
                        met: true,
                        reason: None,
                    }
                } else {
                    // All failed; the first one in the tree explains it.
                    outcomes.into_iter().next().unwrap_or(Outcome {
                        met: false,
                        reason: None,
                    })
                }
            }
            Self::ContinuousLogin { days } => leaf(login_clause(*days, facts, ctx), clauses),
            Self::FriendInvite { count } => leaf(invite_clause(*count, facts), clauses),
            Self::Custom { metric, op, value } => {
                leaf(custom_clause(metric, *op, value, facts), clauses)
            }
        }
    }
}

/// Records a leaf's clause; the reason is kept only when it is unmet.
fn leaf((clause, reason): (Clause, String), clauses: &mut Vec<Clause>) -> Outcome {
    let met = clause.met;
    clauses.push(clause);
    Outcome {
        met,
        reason: (!met).then_some(reason),
    }
}

fn login_clause(days: u32, facts: &Facts, ctx: &EvalContext) -> (Clause, String) {
    let actual = ctx
        .login_window(days)
        .map_or(0, |window| facts.login_days.range(window).count());
    let clause = Clause {
        r#type: ClauseType::ContinuousLogin,
        required: json!(days),
        actual: json!(actual),
        met: actual == days as usize,
        metric: None,
    };
    let unit = if days == 1 { "day" } else { "days" };
    (clause, format!("logged in {actual} of {days} {unit}"))
}

fn invite_clause(count: u32, facts: &Facts) -> (Clause, String) {
    let actual = facts.invites;
    let clause = Clause {
        r#type: ClauseType::FriendInvite,
        required: json!(count),
        actual: json!(actual),
        met: actual >= u64::from(count),
        metric: None,
    };
    let unit = if count == 1 { "friend" } else { "friends" };
    (clause, format!("invited {actual} of {count} {unit}"))
}

fn custom_clause(metric: &str, op: Comparison, value: &Number, facts: &Facts) -> (Clause, String) {
    let sum = facts.metric_sums.get(metric).copied().unwrap_or(0.0);
    let target = value.as_f64().unwrap_or(f64::NAN);
    let clause = Clause {
        r#type: ClauseType::Custom,
        required: json!({ "op": op, "value": value }),
        actual: number_json(sum),
        met: op.holds(sum, target),
        metric: Some(metric.to_owned()),
    };
    (clause, format!("{metric} is {sum}, needs {op} {value}"))
}

/// A sum as JSON: whole values as integers (`10`, not `10.0`).
fn number_json(x: f64) -> Value {
    // Below 2^53 every whole f64 is exactly an i64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if x.fract() == 0.0 && x.abs() < EXACT {
        Value::from(x as i64)
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    fn cond(value: Value) -> Condition {
        Condition::parse(&value).expect("a valid condition")
    }

    fn refusals(value: Value) -> Vec<(String, String)> {
        Condition::parse(&value)
            .expect_err("an invalid condition")
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn fields(value: Value) -> Vec<String> {
        refusals(value).into_iter().map(|(f, _)| f).collect()
    }

    /// Now is 2026-11-22 15:00 UTC; the event started on 2026-11-01.
    fn ctx() -> EvalContext {
        EvalContext {
            now: datetime!(2026-11-22 15:00 UTC).into(),
            event_starts_at: datetime!(2026-11-01 09:00 UTC).into(),
        }
    }

    fn logins(days: &[Date]) -> Facts {
        Facts {
            login_days: days.iter().copied().collect(),
            ..Facts::default()
        }
    }

    fn invites(n: u64) -> Facts {
        Facts {
            invites: n,
            ..Facts::default()
        }
    }

    fn metric(name: &str, sum: f64) -> Facts {
        Facts {
            metric_sums: BTreeMap::from([(name.to_owned(), sum)]),
            ..Facts::default()
        }
    }

    fn nested(depth: usize) -> Value {
        (1..depth).fold(
            json!({"type": "FRIEND_INVITE", "count": 1}),
            |inner, _| json!({"type": "ALL", "of": [inner]}),
        )
    }

    // --- parsing -----------------------------------------------------------

    #[test]
    fn every_condition_type_parses_and_serialises_back_to_the_api_shape() {
        for value in [
            json!({"type": "CONTINUOUS_LOGIN", "days": 7}),
            json!({"type": "FRIEND_INVITE", "count": 3}),
            json!({"type": "CUSTOM", "metric": "purchase_total", "op": ">=", "value": 50}),
            json!({"type": "CUSTOM", "metric": "ride.count:x-1", "op": "<", "value": 2.5}),
            json!({"type": "ALL", "of": [
                {"type": "FRIEND_INVITE", "count": 1},
                {"type": "ANY", "of": [{"type": "CONTINUOUS_LOGIN", "days": 1}]}
            ]}),
        ] {
            let parsed = cond(value.clone());

            let back = serde_json::to_value(&parsed).expect("serialises");

            assert_eq!(back, value);
        }
    }

    #[test]
    fn null_means_no_condition_only_where_a_condition_is_optional() {
        assert_eq!(Condition::parse_optional(&Value::Null), Ok(None));
        assert_eq!(
            refusals(Value::Null),
            [("condition".to_owned(), "must be an object".to_owned())]
        );
        assert!(
            Condition::parse_optional(&json!({"type": "FRIEND_INVITE", "count": 1}))
                .expect("valid")
                .is_some()
        );
    }

    #[test]
    fn an_unknown_or_missing_type_is_refused() {
        assert_eq!(
            refusals(json!({"type": "LOGIN", "days": 1})),
            [(
                "condition.type".to_owned(),
                format!("must be one of {TYPES}")
            )]
        );
        assert_eq!(
            refusals(json!({"days": 1})),
            [("condition.type".to_owned(), "is required".to_owned())]
        );
        assert_eq!(fields(json!({"type": 1})), ["condition.type"]);
        assert_eq!(
            fields(json!({"type": "continuous_login", "days": 1})),
            ["condition.type"]
        );
    }

    #[test]
    fn days_and_count_must_be_positive_integers() {
        for bad in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!(7.0),
            json!("7"),
            json!(null),
        ] {
            assert_eq!(
                refusals(json!({"type": "CONTINUOUS_LOGIN", "days": bad})),
                [(
                    "condition.days".to_owned(),
                    "must be a positive integer".to_owned()
                )],
                "days {bad}"
            );
            assert_eq!(
                fields(json!({"type": "FRIEND_INVITE", "count": bad})),
                ["condition.count"],
                "count {bad}"
            );
        }
        assert_eq!(
            refusals(json!({"type": "CONTINUOUS_LOGIN"})),
            [("condition.days".to_owned(), "is required".to_owned())]
        );
        assert_eq!(
            fields(json!({"type": "FRIEND_INVITE"})),
            ["condition.count"]
        );
    }

    #[test]
    fn days_and_count_have_upper_bounds() {
        assert!(
            Condition::parse(&json!({"type": "CONTINUOUS_LOGIN", "days": MAX_LOGIN_DAYS})).is_ok()
        );
        assert_eq!(
            refusals(json!({"type": "CONTINUOUS_LOGIN", "days": MAX_LOGIN_DAYS + 1})),
            [(
                "condition.days".to_owned(),
                format!("must be at most {MAX_LOGIN_DAYS}")
            )]
        );
        assert!(Condition::parse(&json!({"type": "FRIEND_INVITE", "count": u32::MAX})).is_ok());
        assert_eq!(
            fields(json!({"type": "FRIEND_INVITE", "count": u64::from(u32::MAX) + 1})),
            ["condition.count"]
        );
    }

    #[test]
    fn custom_metric_names_are_checked() {
        let custom =
            |metric: Value| json!({"type": "CUSTOM", "metric": metric, "op": ">=", "value": 1});
        assert!(Condition::parse(&custom(json!("a".repeat(MAX_METRIC_CHARS)))).is_ok());
        for (bad, message) in [
            (json!(""), "must not be empty"),
            (
                json!("a".repeat(MAX_METRIC_CHARS + 1)),
                "must be at most 64 characters",
            ),
            (
                json!("Purchase"),
                "may contain only lower-case letters, digits and _ . : -",
            ),
            (
                json!("a b"),
                "may contain only lower-case letters, digits and _ . : -",
            ),
            (
                json!("ä"),
                "may contain only lower-case letters, digits and _ . : -",
            ),
            (json!(5), "must be a string"),
        ] {
            assert_eq!(
                refusals(custom(bad.clone())),
                [("condition.metric".to_owned(), message.to_owned())],
                "metric {bad}"
            );
        }
        assert_eq!(
            fields(json!({"type": "CUSTOM", "op": ">=", "value": 1})),
            ["condition.metric"]
        );
    }

    #[test]
    fn custom_op_must_be_a_known_comparison() {
        for bad in [json!("=="), json!("!="), json!("gte"), json!(1)] {
            assert_eq!(
                refusals(json!({"type": "CUSTOM", "metric": "m", "op": bad, "value": 1})),
                [(
                    "condition.op".to_owned(),
                    "must be one of >=, >, =, <=, <".to_owned()
                )]
            );
        }
        assert_eq!(
            fields(json!({"type": "CUSTOM", "metric": "m", "value": 1})),
            ["condition.op"]
        );
    }

    #[test]
    fn custom_value_must_be_a_number() {
        for bad in [json!("50"), json!(null), json!(true), json!([1])] {
            assert_eq!(
                refusals(json!({"type": "CUSTOM", "metric": "m", "op": "=", "value": bad})),
                [(
                    "condition.value".to_owned(),
                    "must be a finite number".to_owned()
                )]
            );
        }
        assert_eq!(
            fields(json!({"type": "CUSTOM", "metric": "m", "op": "="})),
            ["condition.value"]
        );
    }

    #[test]
    fn all_and_any_need_a_non_empty_list() {
        for kind in ["ALL", "ANY"] {
            assert_eq!(
                refusals(json!({"type": kind, "of": []})),
                [("condition.of".to_owned(), "must not be empty".to_owned())]
            );
            assert_eq!(
                refusals(json!({"type": kind})),
                [("condition.of".to_owned(), "is required".to_owned())]
            );
            assert_eq!(
                fields(json!({"type": kind, "of": {"type": "FRIEND_INVITE", "count": 1}})),
                ["condition.of"]
            );
        }
    }

    #[test]
    fn problems_deep_in_the_tree_are_all_reported_with_their_paths() {
        let errors = fields(json!({"type": "ALL", "of": [
            {"type": "CONTINUOUS_LOGIN", "days": 7},
            {"type": "CONTINUOUS_LOGIN", "days": 0},
            {"type": "ANY", "of": [
                {"type": "CUSTOM", "metric": "", "op": "~", "value": "x"},
                null
            ]}
        ]}));

        assert_eq!(
            errors,
            [
                "condition.of[1].days",
                "condition.of[2].of[0].metric",
                "condition.of[2].of[0].op",
                "condition.of[2].of[0].value",
                "condition.of[2].of[1]",
            ]
        );
    }

    #[test]
    fn unknown_members_are_refused() {
        assert_eq!(
            refusals(json!({"type": "FRIEND_INVITE", "count": 1, "days": 2})),
            [(
                "condition.days".to_owned(),
                "is not a member of a FRIEND_INVITE condition".to_owned()
            )]
        );
        assert_eq!(
            fields(
                json!({"type": "ANY", "of": [{"type": "CONTINUOUS_LOGIN", "days": 1}], "extra": 1})
            ),
            ["condition.extra"]
        );
        assert_eq!(
            fields(json!({"type": "CUSTOM", "metric": "m", "op": "=", "value": 1, "unit": "x"})),
            ["condition.unit"]
        );
        assert_eq!(
            fields(json!({"type": "CONTINUOUS_LOGIN", "days": 1, "count": 1})),
            ["condition.count"]
        );
    }

    #[test]
    fn nesting_eight_levels_deep_is_accepted_and_nine_is_refused() {
        let eight = cond(nested(8));
        assert_eq!(eight.depth(), 8);
        assert_eq!(
            cond(json!({"type": "CONTINUOUS_LOGIN", "days": 1})).depth(),
            1
        );

        let errors = refusals(nested(9));

        let deepest = format!("condition{}", ".of[0]".repeat(8));
        assert_eq!(
            errors,
            [(deepest, "is nested deeper than 8 levels".to_owned())]
        );
    }

    #[test]
    fn a_condition_holds_at_most_max_leaves_and_one_problem_says_so() {
        let leaf = json!({"type": "FRIEND_INVITE", "count": 1});
        let any = |n: usize| json!({"type": "ANY", "of": vec![leaf.clone(); n]});
        assert!(Condition::parse(&any(MAX_LEAVES)).is_ok());
        // Spread over branches, the leaves still count together.
        let split = json!({"type": "ALL", "of": [any(MAX_LEAVES / 2), any(MAX_LEAVES / 2)]});
        assert!(Condition::parse(&split).is_ok());
        let over = json!({"type": "ALL", "of": [any(MAX_LEAVES / 2), any(MAX_LEAVES / 2 + 1)]});
        assert_eq!(
            refusals(over),
            [(
                format!("condition.of[1].of[{}]", MAX_LEAVES / 2),
                "is past the 64 leaves a condition may hold".to_owned()
            )]
        );

        let errors = refusals(any(5_000));

        assert_eq!(
            errors,
            [(
                format!("condition.of[{MAX_LEAVES}]"),
                "is past the 64 leaves a condition may hold".to_owned()
            )]
        );
    }

    #[test]
    fn parse_refuses_values_that_are_not_objects() {
        for bad in [json!(1), json!("ALL"), json!([]), json!(true)] {
            assert_eq!(fields(bad), ["condition"]);
        }
    }

    #[test]
    fn a_stored_condition_deserialises_through_the_same_rules() {
        let ok: Option<Condition> =
            serde_json::from_str(r#"{"type":"FRIEND_INVITE","count":2}"#).expect("valid");
        assert_eq!(ok, Some(cond(json!({"type": "FRIEND_INVITE", "count": 2}))));
        let none: Option<Condition> = serde_json::from_str("null").expect("null is none");
        assert_eq!(none, None);

        let err = serde_json::from_str::<Condition>(r#"{"type":"FRIEND_INVITE","count":0}"#)
            .expect_err("count 0 is invalid");

        assert!(err.to_string().contains("condition.count"), "{err}");
    }

    // --- needs -------------------------------------------------------------

    #[test]
    fn needs_lists_only_the_facts_the_tree_reads() {
        let c = cond(json!({"type": "ANY", "of": [
            {"type": "CONTINUOUS_LOGIN", "days": 3},
            {"type": "ALL", "of": [
                {"type": "CONTINUOUS_LOGIN", "days": 7},
                {"type": "CUSTOM", "metric": "spent", "op": ">", "value": 1},
                {"type": "CUSTOM", "metric": "rides", "op": ">", "value": 1},
                {"type": "CUSTOM", "metric": "spent", "op": "<", "value": 9}
            ]}
        ]}));

        let needs = c.needs();

        assert_eq!(needs.login_window_days, Some(7));
        assert!(!needs.invites);
        assert_eq!(
            needs.metrics.iter().map(String::as_str).collect::<Vec<_>>(),
            ["rides", "spent"]
        );
        assert!(!needs.is_empty());
    }

    #[test]
    fn no_condition_needs_nothing_and_is_met_without_clauses() {
        assert!(Condition::needs_optional(None).is_empty());
        assert!(
            Condition::needs_optional(Some(&cond(json!({"type": "FRIEND_INVITE", "count": 1}))))
                .invites
        );

        let evaluation = Condition::evaluate_optional(None, &Facts::default(), &ctx());

        assert!(evaluation.met());
        assert!(evaluation.clauses().is_empty());
        assert_eq!(evaluation.reason(), None);
    }

    #[test]
    fn the_login_window_to_fetch_starts_no_earlier_than_the_event() {
        let needs = cond(json!({"type": "CONTINUOUS_LOGIN", "days": 7})).needs();
        assert_eq!(
            needs.login_window(&ctx()),
            Some(date!(2026 - 11 - 16)..=date!(2026 - 11 - 22))
        );

        let long = cond(json!({"type": "CONTINUOUS_LOGIN", "days": 30})).needs();
        assert_eq!(
            long.login_window(&ctx()),
            Some(date!(2026 - 11 - 01)..=date!(2026 - 11 - 22))
        );

        let before_start = EvalContext {
            now: datetime!(2026-10-31 23:59 UTC).into(),
            ..ctx()
        };
        assert_eq!(needs.login_window(&before_start), None);
    }

    // --- evaluation: CONTINUOUS_LOGIN --------------------------------------

    #[test]
    fn a_login_streak_of_n_days_ending_today_is_met() {
        let c = cond(json!({"type": "CONTINUOUS_LOGIN", "days": 3}));
        let facts = logins(&[
            date!(2026 - 11 - 20),
            date!(2026 - 11 - 21),
            date!(2026 - 11 - 22),
        ]);

        let evaluation = c.evaluate(&facts, &ctx());

        assert!(evaluation.met());
        assert_eq!(
            serde_json::to_value(evaluation.clauses()).expect("serialises"),
            json!([{"type": "CONTINUOUS_LOGIN", "required": 3, "actual": 3, "met": true}])
        );
        assert_eq!(evaluation.reason(), None);
    }

    #[test]
    fn a_login_streak_broken_by_one_missing_day_is_not_met() {
        let c = cond(json!({"type": "CONTINUOUS_LOGIN", "days": 3}));
        let facts = logins(&[
            date!(2026 - 11 - 19),
            date!(2026 - 11 - 20),
            date!(2026 - 11 - 22),
        ]);

        let evaluation = c.evaluate(&facts, &ctx());

        assert!(!evaluation.met());
        assert_eq!(evaluation.clauses()[0].actual, json!(2));
        assert_eq!(
            evaluation.reason().as_deref(),
            Some("logged in 2 of 3 days")
        );
    }

    #[test]
    fn a_streak_needs_today_not_just_the_days_before() {
        let c = cond(json!({"type": "CONTINUOUS_LOGIN", "days": 2}));
        let facts = logins(&[date!(2026 - 11 - 20), date!(2026 - 11 - 21)]);

        let evaluation = c.evaluate(&facts, &ctx());

        assert!(!evaluation.met());
        assert_eq!(
            evaluation.reason().as_deref(),
            Some("logged in 1 of 2 days")
        );
    }

    #[test]
    fn a_login_day_before_the_event_start_is_not_counted() {
        // The event started on 2026-11-20 at 09:00; its start day counts.
        let c = cond(json!({"type": "CONTINUOUS_LOGIN", "days": 3}));
        let facts = logins(&[
            date!(2026 - 11 - 19),
            date!(2026 - 11 - 20),
            date!(2026 - 11 - 21),
            date!(2026 - 11 - 22),
        ]);
        let starts_on_the_20th = EvalContext {
            event_starts_at: datetime!(2026-11-20 09:00 UTC).into(),
            ..ctx()
        };
        let starts_on_the_21st = EvalContext {
            event_starts_at: datetime!(2026-11-21 00:00 UTC).into(),
            ..ctx()
        };

        let from_20th = c.evaluate(&facts, &starts_on_the_20th);
        let from_21st = c.evaluate(&facts, &starts_on_the_21st);

        assert!(from_20th.met());
        assert!(!from_21st.met());
        assert_eq!(from_21st.reason().as_deref(), Some("logged in 2 of 3 days"));
    }

    #[test]
    fn today_is_the_utc_date_of_now() {
        // 23:30 at +09:00 on the 23rd is still the 22nd in UTC.
        let c = cond(json!({"type": "CONTINUOUS_LOGIN", "days": 1}));
        let late = EvalContext {
            now: datetime!(2026-11-23 08:30 +09:00).into(),
            ..ctx()
        };

        assert!(c.evaluate(&logins(&[date!(2026 - 11 - 22)]), &late).met());
        assert!(!c.evaluate(&logins(&[date!(2026 - 11 - 23)]), &late).met());
        assert_eq!(
            c.evaluate(&Facts::default(), &late).reason().as_deref(),
            Some("logged in 0 of 1 day")
        );
    }

    // --- evaluation: FRIEND_INVITE -----------------------------------------

    #[test]
    fn exactly_n_invites_meet_friend_invite_and_one_fewer_does_not() {
        let c = cond(json!({"type": "FRIEND_INVITE", "count": 3}));

        let three = c.evaluate(&invites(3), &ctx());
        let two = c.evaluate(&invites(2), &ctx());

        assert!(three.met());
        assert!(!two.met());
        assert_eq!(
            serde_json::to_value(two.clauses()).expect("serialises"),
            json!([{"type": "FRIEND_INVITE", "required": 3, "actual": 2, "met": false}])
        );
        assert_eq!(two.reason().as_deref(), Some("invited 2 of 3 friends"));
        assert!(c.evaluate(&invites(4), &ctx()).met());
    }

    // --- evaluation: CUSTOM ------------------------------------------------

    #[test]
    fn each_custom_comparison_at_equality() {
        for (op, met_at_equality) in [
            (">=", true),
            (">", false),
            ("=", true),
            ("<=", true),
            ("<", false),
        ] {
            let c = cond(json!({"type": "CUSTOM", "metric": "m", "op": op, "value": 50}));

            let evaluation = c.evaluate(&metric("m", 50.0), &ctx());

            assert_eq!(evaluation.met(), met_at_equality, "50 {op} 50");
        }
    }

    #[test]
    fn each_custom_comparison_just_either_side_of_the_value() {
        for (op, below, above) in [
            (">=", false, true),
            (">", false, true),
            ("=", false, false),
            ("<=", true, false),
            ("<", true, false),
        ] {
            let c = cond(json!({"type": "CUSTOM", "metric": "m", "op": op, "value": 50}));

            assert_eq!(
                c.evaluate(&metric("m", 49.0), &ctx()).met(),
                below,
                "49 {op} 50"
            );
            assert_eq!(
                c.evaluate(&metric("m", 51.0), &ctx()).met(),
                above,
                "51 {op} 50"
            );
        }
    }

    #[test]
    fn an_absent_metric_sums_to_zero() {
        let at_most = cond(json!({"type": "CUSTOM", "metric": "m", "op": "<=", "value": 0}));
        let positive = cond(json!({"type": "CUSTOM", "metric": "m", "op": ">", "value": 0}));

        assert!(at_most.evaluate(&Facts::default(), &ctx()).met());
        assert!(!positive.evaluate(&metric("other", 5.0), &ctx()).met());
    }

    #[test]
    fn an_unmet_custom_clause_explains_itself() {
        let c =
            cond(json!({"type": "CUSTOM", "metric": "purchase_total", "op": ">=", "value": 50}));

        let evaluation = c.evaluate(&metric("purchase_total", 10.0), &ctx());

        assert_eq!(
            serde_json::to_value(evaluation.clauses()).expect("serialises"),
            json!([{
                "type": "CUSTOM",
                "required": {"op": ">=", "value": 50},
                "actual": 10,
                "met": false,
                "metric": "purchase_total"
            }])
        );
        assert_eq!(
            evaluation.reason().as_deref(),
            Some("purchase_total is 10, needs >= 50")
        );
    }

    #[test]
    fn fractional_sums_and_values_are_shown_as_fractions() {
        let c = cond(json!({"type": "CUSTOM", "metric": "km", "op": ">", "value": 2.5}));

        let evaluation = c.evaluate(&metric("km", 1.25), &ctx());

        assert_eq!(evaluation.clauses()[0].actual, json!(1.25));
        assert_eq!(
            evaluation.reason().as_deref(),
            Some("km is 1.25, needs > 2.5")
        );
    }

    // --- evaluation: ALL / ANY ---------------------------------------------

    fn invite_or_spend() -> Condition {
        cond(json!({"type": "ALL", "of": [
            {"type": "CONTINUOUS_LOGIN", "days": 1},
            {"type": "ANY", "of": [
                {"type": "FRIEND_INVITE", "count": 2},
                {"type": "CUSTOM", "metric": "spent", "op": ">=", "value": 100}
            ]}
        ]}))
    }

    fn facts(logged_in_today: bool, invites: u64, spent: f64) -> Facts {
        Facts {
            login_days: if logged_in_today {
                BTreeSet::from([date!(2026 - 11 - 22)])
            } else {
                BTreeSet::new()
            },
            invites,
            metric_sums: BTreeMap::from([("spent".to_owned(), spent)]),
        }
    }

    #[test]
    fn all_needs_every_branch_and_any_needs_one() {
        let c = invite_or_spend();

        assert!(c.evaluate(&facts(true, 2, 0.0), &ctx()).met());
        assert!(c.evaluate(&facts(true, 0, 100.0), &ctx()).met());
        assert!(c.evaluate(&facts(true, 5, 500.0), &ctx()).met());
        assert!(!c.evaluate(&facts(true, 1, 99.0), &ctx()).met());
        assert!(!c.evaluate(&facts(false, 5, 500.0), &ctx()).met());
    }

    #[test]
    fn every_leaf_is_listed_depth_first_even_after_the_outcome_is_known() {
        let evaluation = invite_or_spend().evaluate(&facts(false, 2, 0.0), &ctx());

        let listed: Vec<(ClauseType, bool)> = evaluation
            .clauses()
            .iter()
            .map(|c| (c.r#type, c.met))
            .collect();

        assert_eq!(
            listed,
            [
                (ClauseType::ContinuousLogin, false),
                (ClauseType::FriendInvite, true),
                (ClauseType::Custom, false),
            ]
        );
    }

    #[test]
    fn the_reason_comes_from_the_leaf_that_decided_the_outcome() {
        // The login is met; the ANY failed, and its first branch explains it.
        let any_failed = invite_or_spend().evaluate(&facts(true, 1, 10.0), &ctx());
        assert_eq!(
            any_failed.reason().as_deref(),
            Some("invited 1 of 2 friends")
        );

        // The login failed; the ANY was met, so only the login explains it.
        let login_failed = invite_or_spend().evaluate(&facts(false, 0, 100.0), &ctx());
        assert_eq!(
            login_failed.reason().as_deref(),
            Some("logged in 0 of 1 day")
        );
    }

    #[test]
    fn a_met_any_reports_no_reason_though_some_leaves_failed() {
        let c = cond(json!({"type": "ANY", "of": [
            {"type": "FRIEND_INVITE", "count": 9},
            {"type": "FRIEND_INVITE", "count": 1}
        ]}));

        let evaluation = c.evaluate(&invites(1), &ctx());

        assert!(evaluation.met());
        assert!(!evaluation.clauses()[0].met);
        assert_eq!(evaluation.reason(), None);
    }

    // --- properties --------------------------------------------------------

    const METRICS: [&str; 3] = ["a", "b.c", "d:e-f"];

    fn any_number() -> impl Strategy<Value = Number> {
        prop_oneof![
            (-1000_i64..1000).prop_map(Number::from),
            (-1000.0_f64..1000.0).prop_filter_map("finite", Number::from_f64),
        ]
    }

    fn any_leaf(max_days: u32, max_count: u32, metrics: bool) -> BoxedStrategy<Node> {
        let custom = if metrics {
            proptest::sample::select(METRICS.to_vec())
                .prop_map(str::to_owned)
                .boxed()
        } else {
            "[a-z0-9_.:-]{1,64}".boxed()
        };
        prop_oneof![
            (1..=max_days).prop_map(|days| Node::ContinuousLogin { days }),
            (1..=max_count).prop_map(|count| Node::FriendInvite { count }),
            (
                custom,
                proptest::sample::select(Comparison::ALL.to_vec()),
                any_number()
            )
                .prop_map(|(metric, op, value)| Node::Custom { metric, op, value }),
        ]
        .boxed()
    }

    /// Trees at most [`MAX_DEPTH`] deep: seven levels of branches over leaves.
    fn any_tree(leaf: BoxedStrategy<Node>) -> impl Strategy<Value = Node> {
        let levels = u32::try_from(MAX_DEPTH - 1).unwrap_or(0);
        leaf.prop_recursive(levels, 48, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..4).prop_map(|of| Node::All { of }),
                proptest::collection::vec(inner, 1..4).prop_map(|of| Node::Any { of }),
            ]
        })
    }

    fn any_facts() -> impl Strategy<Value = Facts> {
        (
            proptest::collection::btree_set(0_i64..12, 0..12),
            0_u64..8,
            proptest::collection::btree_map(
                proptest::sample::select(METRICS.to_vec()).prop_map(str::to_owned),
                (-20_i64..20).prop_map(|n| n as f64),
                0..3,
            ),
        )
            .prop_map(|(days_ago, invites, metric_sums)| Facts {
                login_days: days_ago
                    .into_iter()
                    .map(|n| date!(2026 - 11 - 22) - Duration::days(n))
                    .collect(),
                invites,
                metric_sums,
            })
    }

    fn any_ctx() -> impl Strategy<Value = EvalContext> {
        (0_i64..86_400, 0_i64..12 * 86_400).prop_map(|(into_today, since_start)| {
            let now =
                Timestamp::from(datetime!(2026-11-22 00:00 UTC)) + Duration::seconds(into_today);
            EvalContext {
                now,
                event_starts_at: now - Duration::seconds(since_start),
            }
        })
    }

    /// The contract's rules, written as plainly as possible.
    fn truth(node: &Node, facts: &Facts, ctx: &EvalContext) -> bool {
        match node {
            Node::ContinuousLogin { days } => {
                let today = ctx.now.as_datetime().date();
                let start = ctx.event_starts_at.as_datetime().date();
                (0..i64::from(*days)).all(|back| {
                    let day = today - Duration::days(back);
                    day >= start && facts.login_days.contains(&day)
                })
            }
            Node::FriendInvite { count } => facts.invites >= u64::from(*count),
            Node::Custom { metric, op, value } => {
                let sum = facts.metric_sums.get(metric).copied().unwrap_or(0.0);
                let value = value.as_f64().expect("a finite number");
                match op {
                    Comparison::GreaterOrEqual => sum >= value,
                    Comparison::Greater => sum > value,
                    Comparison::Equal => sum == value,
                    Comparison::LessOrEqual => sum <= value,
                    Comparison::Less => sum < value,
                }
            }
            Node::All { of } => of.iter().all(|c| truth(c, facts, ctx)),
            Node::Any { of } => of.iter().any(|c| truth(c, facts, ctx)),
        }
    }

    fn leaves(node: &Node) -> usize {
        match node {
            Node::All { of } | Node::Any { of } => of.iter().map(leaves).sum(),
            _ => 1,
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            proptest::sample::select(vec!["type", "days", "count", "metric", "op", "value", "of"])
                .prop_map(str::to_owned),
            "[a-z]{0,3}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            proptest::sample::select(vec![
                "CONTINUOUS_LOGIN",
                "FRIEND_INVITE",
                "CUSTOM",
                "ALL",
                "ANY",
                ">=",
                "<",
                "m",
                ""
            ])
            .prop_map(Value::from),
            ".{0,70}".prop_map(Value::from),
        ];
        leaf.prop_recursive(12, 96, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..5)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_serialised_condition_parses_back_to_itself(
            node in any_tree(any_leaf(MAX_LOGIN_DAYS, u32::MAX, false))
        ) {
            let condition = Condition(node);
            let json = serde_json::to_value(&condition).expect("serialises");

            let back = Condition::parse(&json);

            prop_assert_eq!(back, Ok(condition));
        }

        #[test]
        fn the_evaluation_always_agrees_with_the_truth_of_the_tree(
            node in any_tree(any_leaf(10, 8, true)),
            facts in any_facts(),
            ctx in any_ctx(),
        ) {
            let expected = truth(&node, &facts, &ctx);
            let condition = Condition(node);

            let evaluation = condition.evaluate(&facts, &ctx);

            prop_assert_eq!(evaluation.met(), expected);
            prop_assert_eq!(evaluation.reason().is_none(), expected);
            prop_assert_eq!(evaluation.clauses().len(), leaves(&condition.0));
        }

        #[test]
        fn parse_never_panics_on_arbitrary_json(value in any_json()) {
            let _ = Condition::parse(&value);
            let _ = Condition::parse_optional(&value);
        }
    }
}
