//! The monitoring in `deploy/` names only what the server exports: every
//! metric in a PromQL expression of the alert rules, their unit tests and
//! the Grafana dashboards is read from a running server's `/metrics` after a
//! little traffic (Prometheus' own `up` and `ALERTS` aside). And every alert
//! has a unit test and a runbook section in `docs/operations.md`.
//!
//! Embedded by default; on PostgreSQL + Redis with the suite's
//! `STAMPEDE_TEST_*` variables, and over RabbitMQ with
//! `STAMPEDE_TEST_AMQP_URL` — the broker's own series (`BROKER_ONLY`) are
//! then required from `/metrics` too; without a broker they must at least be
//! what `crates/bus/src/rabbitmq.rs` records.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bus::rabbitmq::{RabbitMqOptions, Topology, connect};
use helpers::{Session, TestApp, text};
use kernel::Secret;
use serde_json::{Value, json};
use server::config::BusKind;

/// Series Prometheus makes itself.
const PROMETHEUS_OWN: [&str; 2] = ["up", "ALERTS"];

/// Series the server has only when its bus runs over RabbitMQ.
const BROKER_ONLY: [&str; 3] = [
    "bus_queue_depth",
    "bus_consumer_lag_seconds",
    "bus_publish_confirm_seconds",
];

/// The subscribers whose queues a test over the broker declares (and
/// deletes at its end).
const SUBSCRIBERS: [&str; 4] = [
    "rewards.identity_facts",
    "commerce.coupon_grants",
    "webhooks.events",
    "notify.reward_granted_email",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `deploy/` with this extension.
fn deploy_files(ext: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, ext: &str, found: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, ext, found);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo().join("deploy"), ext, &mut found);
    found.sort();
    found
}

/// The PromQL of a YAML file: each `expr:` value (inline or a block
/// scalar) and each `series:` of a rule test, by file and line.
fn yaml_expressions(path: &Path) -> Vec<(String, String)> {
    let source = read(path);
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let key = ["expr:", "series:", "- series:"]
            .into_iter()
            .find(|key| trimmed.starts_with(key));
        if let Some(key) = key {
            let value = trimmed[key.len()..].trim();
            let at = format!("{}:{}", path.display(), i + 1);
            if value == "|" || value == "|-" || value == ">" || value == ">-" {
                let mut block = String::new();
                i += 1;
                while i < lines.len() {
                    let next = lines[i];
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    block.push_str(next.trim());
                    block.push('\n');
                    i += 1;
                }
                found.push((at, block));
                continue;
            }
            let unquoted = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(value);
            found.push((at, unquoted.to_owned()));
        }
        i += 1;
    }
    found
}

/// The PromQL of a dashboard: every `expr` (panel targets, annotations) and
/// every templating `query`/`definition`, with where it is.
fn json_expressions(path: &Path) -> Vec<(String, String)> {
    fn walk(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, member) in map {
                    let here = format!("{at}.{key}");
                    match (key.as_str(), member) {
                        ("expr" | "query" | "definition", Value::String(expr)) => {
                            found.push((here, expr.clone()));
                        }
                        _ => walk(member, &here, found),
                    }
                }
            }
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    walk(item, &format!("{at}[{n}]"), found);
                }
            }
            _ => {}
        }
    }
    let dashboard: Value = serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let mut found = Vec::new();
    walk(&dashboard, &path.display().to_string(), &mut found);
    found
}

/// Words of PromQL that are not metric names.
const KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "atan2",
];

/// Aggregations, which may be followed by `by (…)` before their `(`.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// Clauses whose parentheses hold label names, not expressions.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects. Grafana's variables
/// (`$instance`, `$__rate_interval`) and `label_values(selector, label)`
/// are understood.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let expr = match expr.trim().strip_prefix("label_values(") {
        Some(args) => args
            .rsplit_once(',')
            .map_or(args, |(selector, _label)| selector)
            .to_owned(),
        None => expr.to_owned(),
    };
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_string = |i: &mut usize, quote: char| {
        *i += 1;
        while *i < chars.len() && chars[*i] != quote {
            if chars[*i] == '\\' {
                *i += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    let skip_to = |i: &mut usize, close: char| {
        while *i < chars.len() && chars[*i] != close {
            if matches!(chars[*i], '"' | '\'' | '`') {
                skip_string(i, chars[*i]);
            } else {
                *i += 1;
            }
        }
        *i += 1;
    };
    let next_non_space = |from: usize| {
        chars[from..]
            .iter()
            .position(|c| !c.is_whitespace())
            .map(|n| from + n)
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => skip_string(&mut i, c),
            '{' => skip_to(&mut i, '}'),
            '[' => skip_to(&mut i, ']'),
            '#' => skip_to(&mut i, '\n'),
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number or a duration (5m, 1e3, 0.99).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = next_non_space(i).map(|n| (n, chars[n]));
                if LABEL_LISTS.contains(&word.as_str()) {
                    if let Some((n, '(')) = next {
                        i = n + 1;
                        skip_to(&mut i, ')');
                    }
                } else if word == "offset" {
                    // The duration follows.
                } else if KEYWORDS.contains(&word.as_str())
                    || AGGREGATIONS.contains(&word.as_str())
                    || matches!(next, Some((_, '(')))
                {
                    // A keyword, an aggregation or a function.
                } else if word != "inf" && word != "Inf" && word != "NaN" {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The metric families in a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| match line.strip_prefix("# TYPE ") {
            Some(typed) => typed.split_whitespace().next(),
            None if line.starts_with('#') || line.trim().is_empty() => None,
            None => line.split(['{', ' ']).next(),
        })
        .map(str::to_owned)
        .collect()
}

/// Whether `name` is a family of `families`, or one's `_bucket`, `_sum` or
/// `_count` series.
fn known(name: &str, families: &BTreeSet<String>) -> bool {
    families.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|family| families.contains(family))
        })
}

/// Every (where, metric name) referenced under `deploy/`.
fn referenced() -> Vec<(String, String)> {
    let mut expressions = Vec::new();
    for path in deploy_files("yml") {
        expressions.extend(yaml_expressions(&path));
    }
    for path in deploy_files("json") {
        expressions.extend(json_expressions(&path));
    }
    let mut names = Vec::new();
    for (at, expr) in expressions {
        for name in metric_names(&expr) {
            names.push((at.clone(), name));
        }
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |expr: &str| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket{job="stampede", route!="/a{b}"}[$__rate_interval]))) > 0.5"#
        ),
        ["http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "max by (subscriber) (bus_dead_letters) - max by (subscriber) (bus_dead_letters offset 15m) > 0 and on (job) up == 1"
        ),
        ["bus_dead_letters", "up"]
    );
    assert_eq!(
        names(r#"label_values(up{job="stampede"}, instance)"#),
        ["up"]
    );
    assert_eq!(
        names("time() - process_start_time_seconds{instance=~\"$instance\"}"),
        ["process_start_time_seconds"]
    );
    assert_eq!(
        names("sum without (pool) (stock_remaining) / ignoring (x) group_left (y) stok_remaining"),
        ["stock_remaining", "stok_remaining"],
        "a typo is a name of its own"
    );
}

#[test]
fn the_deploy_files_reference_metrics_and_every_alert_has_a_test_and_a_runbook() {
    let names: BTreeSet<String> = referenced().into_iter().map(|(_, name)| name).collect();
    for expected in [
        "http_requests_total",
        "process_cpu_seconds_total",
        "bus_relay_lag_seconds",
        "bus_dead_letters",
        "stock_gate_up",
        "stock_remaining",
        "http_problems_total",
    ] {
        assert!(names.contains(expected), "{expected} in {names:?}");
    }

    let alerts = read(&repo().join("deploy/alerts.yml"));
    let tests = read(&repo().join("deploy/alerts.test.yml"));
    let runbook = read(&repo().join("docs/operations.md"));
    let alert_names: Vec<&str> = alerts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(str::trim)
        .collect();
    assert!(alert_names.len() >= 8, "{alert_names:?}");
    for alert in alert_names {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has a case in deploy/alerts.test.yml"
        );
        assert!(
            runbook.contains(&format!("### {alert}\n")),
            "{alert} has a runbook section in docs/operations.md"
        );
        let anchor = format!("docs/operations.md#{}", alert.to_lowercase());
        assert!(
            alerts.contains(&anchor),
            "{alert} points at its runbook {anchor}"
        );
    }
}

/// Signs up and logs in one user more.
async fn user(app: &TestApp, n: usize) -> Session {
    let email = format!("monitor-{n}@example.com");
    app.sign_up(&email).await;
    app.log_in(&email, helpers::PASSWORD).await
}

/// Sign-ups and logins, a campaign of one coupon that sells out, a refusal
/// without a token: the series the dashboards watch.
async fn traffic(app: &TestApp) -> String {
    let admin = app.admin().await;
    let campaign = app
        .created(
            "/api/v1/coupon-campaigns",
            &admin,
            json!({
                "name": "Monitored drop",
                "discount": {"kind": "FIXED", "value": 500},
                "total_quantity": 1,
                "issue_starts_at": helpers::from_now(-time::Duration::hours(1)),
                "issue_ends_at": helpers::from_now(time::Duration::days(1)),
                "valid_until": helpers::from_now(time::Duration::days(30)),
            }),
        )
        .await;
    let issue = format!("/api/v1/coupon-campaigns/{}/issue", text(&campaign["id"]));
    let mut statuses = Vec::new();
    for n in 0..2 {
        let who = user(app, n).await;
        let answer = app.post(&issue, Some(&who.access_token), json!({})).await;
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses, [201, 409], "one issued, then sold out");
    let refused = app.post(&issue, None, json!({})).await;
    assert_eq!(refused.status(), 401);
    text(&campaign["id"])
}

/// The value of the one series `series` (name and labels as exported).
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("the exposition")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_monitoring_names_is_exported_by_the_server() {
    let amqp_url = std::env::var("STAMPEDE_TEST_AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let prefix = format!("stampede-test-{}", uuid::Uuid::now_v7());
    let app = TestApp::spawn_with(|s| {
        if let Some(url) = &amqp_url {
            s.bus = BusKind::RabbitMq;
            s.amqp_url = Some(Secret::new(url.clone()));
            s.amqp_prefix.clone_from(&prefix);
        }
    })
    .await;
    let campaign = traffic(&app).await;

    let references = referenced();
    let broker_only = |name: &str| {
        BROKER_ONLY.iter().any(|family| {
            name.strip_prefix(family)
                .is_some_and(|rest| ["", "_bucket", "_sum", "_count"].contains(&rest))
        })
    };
    let required = |name: &str| amqp_url.is_some() || !broker_only(name);
    // The broker's series come when its first messages have gone through.
    let needed: Vec<&(String, String)> = references
        .iter()
        .filter(|(_, name)| !PROMETHEUS_OWN.contains(&name.as_str()) && required(name))
        .collect();
    let started = Instant::now();
    let families = loop {
        let families = exported(&scrape(&app).await);
        let missing = needed.iter().any(|(_, name)| !known(name, &families));
        if !missing || started.elapsed() > Duration::from_secs(15) {
            break families;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let unknown: Vec<String> = needed
        .iter()
        .filter(|(_, name)| !known(name, &families))
        .map(|(at, name)| format!("{name} (at {at})"))
        .collect();
    assert!(
        unknown.is_empty(),
        "metrics the server does not export: {unknown:#?}\nexported: {families:?}"
    );

    // The series the alerts and the rush dashboard lean on say what happened.
    let exposition = scrape(&app).await;
    let issue = "/api/v1/coupon-campaigns/{id}/issue";
    for (series, expected) in [
        (
            format!(r#"http_problems_total{{route="{issue}",code="SOLD_OUT"}}"#),
            1.0,
        ),
        (
            format!(r#"http_problems_total{{route="{issue}",code="UNAUTHORIZED"}}"#),
            1.0,
        ),
        (
            format!(r#"stock_remaining{{module="commerce",pool="coupon:{campaign}"}}"#),
            0.0,
        ),
        (r#"stock_gate_up{module="commerce"}"#.to_owned(), 1.0),
        (r#"stock_gate_up{module="rewards"}"#.to_owned(), 1.0),
        (r#"dependency_up{dependency="database"}"#.to_owned(), 1.0),
    ] {
        assert_eq!(
            value(&exposition, &series),
            Some(expected),
            "{series} in {exposition}"
        );
    }
    let cpu = value(&exposition, "process_cpu_seconds_total").expect("CPU seconds");
    assert!(cpu > 0.0, "{cpu}");
    let started = value(&exposition, "process_start_time_seconds").expect("a start time");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!(
        (now - 3600.0..=now + 5.0).contains(&started),
        "started at {started}, now {now}"
    );

    if amqp_url.is_none() {
        let recorded = read(&repo().join("crates/bus/src/rabbitmq.rs"));
        for name in BROKER_ONLY {
            assert!(
                recorded.contains(&format!("\"{name}\"")),
                "{name} is recorded by the RabbitMQ transport"
            );
        }
    }
    app.stop().await;

    if let Some(url) = amqp_url {
        let options = RabbitMqOptions::new(Secret::new(url));
        let subscriptions: Vec<(String, String)> = SUBSCRIBERS
            .iter()
            .map(|s| ((*s).to_owned(), String::new()))
            .collect();
        let connection = connect(&options, "stampede test").await.expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        Topology::new(&prefix, &subscriptions)
            .delete(&channel)
            .await
            .expect("topology deleted");
        let _ = connection.close(200, "done".into()).await;
    }
}
