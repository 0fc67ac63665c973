//! The report: what was run, what was measured, which invariants held. As
//! text for people, or as JSON (`--json`) for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use http::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use crate::checks::Check;
use crate::cli::Options;
use crate::rush::{Errors, Outcome};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub url: String,
    pub connections: usize,
    pub threads: usize,
    pub setup: Option<Setup>,
    /// Requests sent (answered or not).
    pub requests: u64,
    pub answered: u64,
    pub duration_secs: f64,
    /// Answered requests per second.
    pub throughput_rps: f64,
    /// 201 answers per second (issue scenarios).
    pub issued_per_sec: Option<f64>,
    pub latency_ms: Latency,
    pub statuses: BTreeMap<u16, u64>,
    /// Problem `code`s of error answers.
    pub codes: BTreeMap<String, u64>,
    pub errors: Errors,
    pub checks: Vec<Check>,
    pub passed: bool,
}

/// The users and campaign of an issue scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub users: usize,
    pub campaign_id: Uuid,
    /// `remaining` when the timed window opened.
    pub stock: u64,
    pub per_user_limit: u64,
}

/// Latency of answered requests, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    fn of(micros: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(micros.value_at_quantile(0.50)),
            p90: ms(micros.value_at_quantile(0.90)),
            p99: ms(micros.value_at_quantile(0.99)),
            max: ms(micros.max()),
            mean: micros.mean() / 1000.0,
        }
    }
}

impl Report {
    #[must_use]
    pub fn new(
        options: &Options,
        setup: Option<Setup>,
        outcome: &Outcome,
        checks: Vec<Check>,
    ) -> Self {
        let seconds = outcome.elapsed.as_secs_f64().max(f64::EPSILON);
        let answered = outcome.answered();
        Self {
            scenario: options.scenario.as_str(),
            url: options.url.clone(),
            connections: options.connections,
            threads: options.threads,
            requests: outcome.sent,
            answered,
            duration_secs: outcome.elapsed.as_secs_f64(),
            throughput_rps: answered as f64 / seconds,
            issued_per_sec: setup
                .as_ref()
                .map(|_| outcome.count(StatusCode::CREATED) as f64 / seconds),
            setup,
            latency_ms: Latency::of(&outcome.latency),
            statuses: outcome.statuses.clone(),
            codes: outcome.codes.clone(),
            errors: outcome.errors,
            passed: checks.iter().all(|c| c.passed),
            checks,
        }
    }

    /// The report for people.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario    {} against {}, {} connections, {} thread{}",
            self.scenario,
            self.url,
            self.connections,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        );
        if let Some(s) = &self.setup {
            let _ = writeln!(
                out,
                "setup       {} users, campaign {} (stock {}, per-user limit {})",
                s.users, s.campaign_id, s.stock, s.per_user_limit
            );
        }
        let _ = writeln!(
            out,
            "requests    {} sent, {} answered in {:.2} s",
            self.requests, self.answered, self.duration_secs
        );
        let _ = write!(out, "throughput  {:.0} req/s", self.throughput_rps);
        if let Some(issued) = self.issued_per_sec {
            let _ = write!(out, ", {issued:.0} issued/s");
        }
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "\nlatency     p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  mean {:.2} ms",
            l.p50, l.p90, l.p99, l.max, l.mean
        );
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect();
        let _ = writeln!(out, "statuses    {}", statuses.join("  "));
        if !self.codes.is_empty() {
            let codes: Vec<String> = self
                .codes
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            let _ = writeln!(out, "codes       {}", codes.join("  "));
        }
        let e = &self.errors;
        let _ = writeln!(
            out,
            "errors      connect {}  timeout {}  transport {}",
            e.connect, e.timeout, e.transport
        );
        let _ = writeln!(out, "checks");
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &self.checks {
            let _ = writeln!(
                out,
                "  {}  {:width$}  {}",
                verdict(check.passed),
                check.name,
                check.detail
            );
        }
        let _ = writeln!(out, "{}", verdict(self.passed));
        out
    }
}

const fn verdict(passed: bool) -> &'static str {
    if passed { "PASS" } else { "FAIL" }
}
