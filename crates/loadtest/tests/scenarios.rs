//! The `stampede-loadtest` binary run as its own process against a real
//! server on 127.0.0.1 (in this test process, on a fresh database: SQLite,
//! or PostgreSQL when `STAMPEDE_TEST_DATABASE_URL` is set), with small
//! numbers: every scenario passes its checks and counts what it should.
#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::time::Duration;

use kernel::Secret;
use kernel::testing::TestDatabase;
use serde_json::Value;
use server::config::Switch;
use server::{Application, Settings};
use tokio::process::Command;
use tokio::sync::oneshot;

const TOOL: &str = env!("CARGO_BIN_EXE_stampede-loadtest");
const ADMIN_EMAIL: &str = "loadtest-admin@stampede.test";
const ADMIN_PASSWORD: &str = "loadtest admin password";
/// A run of these sizes takes a few seconds; this only stops a hung one.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A server with request limits off and the bulk test-user path on.
struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    _db: TestDatabase,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDatabase::create().await;
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            database_url: db.url().to_owned(),
            rate_limit: Switch::Off,
            test_users: Switch::On,
            admin_email: Some(ADMIN_EMAIL.into()),
            admin_password: Some(Secret::new(ADMIN_PASSWORD.into())),
            ..Settings::default()
        };
        configure(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the server builds");
        let url = format!("http://{}", app.local_addr().expect("a bound address"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            url,
            stop: Some(stop),
            _db: db,
        }
    }

    /// Runs the tool against this server with `--json`; returns the exit
    /// code and the report.
    async fn load_test(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--url", &self.url, "--json", "--connections", "16"];
        all.extend_from_slice(args);
        let output = run_tool(&all, true).await;
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "a JSON report ({e}); stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap(), report)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn run_tool(args: &[&str], with_admin: bool) -> Output {
    let mut command = Command::new(TOOL);
    command.args(args).kill_on_drop(true);
    command
        .env_remove("STAMPEDE_ADMIN_EMAIL")
        .env_remove("STAMPEDE_ADMIN_PASSWORD");
    if with_admin {
        command
            .env("STAMPEDE_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("STAMPEDE_ADMIN_PASSWORD", ADMIN_PASSWORD);
    }
    tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .expect("the tool finishes")
        .expect("the tool runs")
}

fn failed_checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| format!("{}: {}", c["name"], c["detail"]))
        .collect()
}

fn count(report: &Value, section: &str, key: &str) -> u64 {
    report[section][key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_gives_out_exactly_the_stock_and_refuses_the_rest() {
    let server = Server::start().await;

    let (code, report) = server
        .load_test(&[
            "drop",
            "--users",
            "100",
            "--stock",
            "50",
            "--requests",
            "200",
        ])
        .await;

    assert_eq!(failed_checks(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["passed"], true);
    assert_eq!(report["checks"].as_array().unwrap().len(), 7);
    assert_eq!(report["requests"], 200);
    assert_eq!(count(&report, "statuses", "201"), 50);
    assert_eq!(count(&report, "statuses", "409"), 150);
    assert_eq!(
        count(&report, "codes", "SOLD_OUT") + count(&report, "codes", "LIMIT_REACHED"),
        150
    );
    assert_eq!(report["setup"]["stock"], 50);
    assert_eq!(report["setup"]["per_user_limit"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_firehose_issues_a_coupon_for_every_request() {
    let server = Server::start().await;

    let (code, report) = server
        .load_test(&["firehose", "--users", "50", "--requests", "200"])
        .await;

    assert_eq!(failed_checks(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(count(&report, "statuses", "201"), 200);
    assert_eq!(report["answered"], 200);
    assert_eq!(report["setup"]["stock"], 200);
    assert_eq!(report["setup"]["per_user_limit"], 4);
    assert!(report["issued_per_sec"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_campaign_is_drawn_on_from_where_it_stands() {
    let server = Server::start().await;
    let (_, first) = server
        .load_test(&["drop", "--users", "20", "--stock", "30", "--requests", "40"])
        .await;
    assert_eq!(count(&first, "statuses", "201"), 20, "{first:#}");
    let campaign = first["setup"]["campaign_id"].as_str().unwrap();

    let (code, second) = server
        .load_test(&[
            "drop",
            "--campaign",
            campaign,
            "--users",
            "20",
            "--requests",
            "40",
        ])
        .await;

    assert_eq!(failed_checks(&second), Vec::<String>::new(), "{second:#}");
    assert_eq!(code, 0);
    assert_eq!(second["setup"]["campaign_id"], campaign);
    assert_eq!(second["setup"]["stock"], 10);
    assert_eq!(count(&second, "statuses", "201"), 10);
    assert_eq!(
        count(&second, "codes", "SOLD_OUT") + count(&second, "codes", "LIMIT_REACHED"),
        30
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_outside_the_contract_fail_the_run() {
    // Room for the admin's two setup calls, not for five issues per user.
    let server = Server::start_with(|s| {
        s.rate_limit = Switch::On;
        s.rate_limit_per_user = 2;
    })
    .await;

    let (code, report) = server
        .load_test(&[
            "drop",
            "--users",
            "10",
            "--requests",
            "50",
            "--verify-users",
            "0",
        ])
        .await;

    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["passed"], false);
    assert!(count(&report, "statuses", "429") > 0, "{report:#}");
    let failed = failed_checks(&report);
    assert!(
        failed.iter().any(|f| f.starts_with("\"answers_expected\"")),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_healthz_baseline_answers_every_request() {
    let server = Server::start().await;

    let (code, report) = server.load_test(&["healthz", "--requests", "300"]).await;

    assert_eq!(code, 0, "{report:#}");
    assert_eq!(count(&report, "statuses", "200"), 300);
    assert!(
        report["latency_ms"]["max"].as_f64().unwrap()
            >= report["latency_ms"]["p50"].as_f64().unwrap()
    );
    assert!(report["setup"].is_null());
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("a step {name} in {report:#}"))
}

fn step_count(report: &Value, name: &str, section: &str, key: &str) -> u64 {
    step(report, name)[section][key].as_u64().unwrap_or(0)
}

async fn ticket_server() -> Server {
    Server::start_with(|s| s.fake_payments = Switch::On).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ticket_sale_completes_every_purchase_with_its_tickets() {
    let server = ticket_server().await;

    let (code, report) = server
        .load_test(&["tickets", "--users", "20", "--requests", "60"])
        .await;

    assert_eq!(failed_checks(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["checks"].as_array().unwrap().len(), 7);
    assert_eq!(report["setup"]["stock"], 60);
    assert_eq!(report["setup"]["per_user_limit"], 3);
    assert_eq!(step_count(&report, "hold", "statuses", "201"), 60);
    assert_eq!(step_count(&report, "order", "statuses", "201"), 60);
    assert_eq!(step_count(&report, "pay", "statuses", "200"), 60);
    assert_eq!(report["requests"], 180);
    assert!(report["completed_per_sec"].as_f64().unwrap() > 0.0);
    assert!(step(&report, "pay")["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sold_out_ticket_sale_refuses_holds_past_the_stock() {
    let server = ticket_server().await;

    let (code, report) = server
        .load_test(&[
            "tickets",
            "--users",
            "20",
            "--stock",
            "10",
            "--per-user-limit",
            "1",
            "--requests",
            "40",
        ])
        .await;

    assert_eq!(failed_checks(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(step_count(&report, "hold", "statuses", "201"), 10);
    assert_eq!(
        step_count(&report, "hold", "codes", "SOLD_OUT")
            + step_count(&report, "hold", "codes", "LIMIT_REACHED"),
        30
    );
    assert_eq!(step_count(&report, "pay", "statuses", "200"), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ticket_sale_whose_payments_are_refused_fails() {
    // No `--fake-payments`: every fake payment is a 422.
    let server = Server::start().await;

    let (code, report) = server
        .load_test(&["tickets", "--users", "5", "--requests", "10"])
        .await;

    assert_eq!(code, 1, "{report:#}");
    assert_eq!(step_count(&report, "pay", "statuses", "422"), 10);
    let failed = failed_checks(&report);
    assert!(
        failed.iter().any(|f| f.starts_with("\"answers_expected\"")),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_park_rush_calls_and_admits_every_guest_in_line_order() {
    let server = Server::start().await;

    let (code, report) = server
        .load_test(&[
            "line",
            "--users",
            "60",
            "--call-batch",
            "7",
            "--requests",
            "3000",
        ])
        .await;

    assert_eq!(failed_checks(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["checks"].as_array().unwrap().len(), 7);
    assert_eq!(step_count(&report, "join", "statuses", "201"), 60);
    assert_eq!(step_count(&report, "admit", "statuses", "200"), 60);
    // Nine calls of 7 take the 60, one more finds the line empty (two
    // staff may each find it so).
    let calls = step_count(&report, "call", "statuses", "200");
    assert!((10..=11).contains(&calls), "{calls} calls");
    assert!(step_count(&report, "line_me", "statuses", "200") > 0);
    assert!(step_count(&report, "wait_board", "statuses", "200") > 0);
    assert!(report["setup"]["attraction_id"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_park_rush_without_room_for_pollers_is_not_run() {
    let server = Server::start().await;
    let output = run_tool(&["--url", &server.url, "line", "--connections", "2"], true).await;

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line needs more than 2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_firehose_that_cannot_grant_every_request_is_not_run() {
    let server = Server::start().await;
    let output = run_tool(
        &[
            "--url",
            &server.url,
            "firehose",
            "--requests",
            "100",
            "--stock",
            "99",
        ],
        true,
    )
    .await;

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("firehose needs"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_url_is_refused_before_anything_is_sent() {
    for url in [
        "http://10.0.0.1:8080",
        "http://192.168.1.20:8080",
        "http://example.com",
    ] {
        let output = run_tool(&["--url", url, "healthz", "--requests", "1"], false).await;

        assert_eq!(output.status.code(), Some(2), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not loopback"), "{url}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issue_scenario_without_admin_credentials_is_not_run() {
    let server = Server::start().await;
    let output = run_tool(&["--url", &server.url, "drop"], false).await;

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--admin-email"));
}
