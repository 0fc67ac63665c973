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
use crate::rush::Outcome;
use crate::steps::{Errors, HistogramError, Step};

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
    /// Whole flows finished per second: purchases (hold, order, pay) in
    /// `tickets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_per_sec: Option<f64>,
    pub latency_ms: Latency,
    pub statuses: BTreeMap<u16, u64>,
    /// Problem `code`s of error answers.
    pub codes: BTreeMap<String, u64>,
    pub errors: Errors,
    /// Per kind of request, for scenarios of several (`tickets`, `line`);
    /// the totals above are their sums.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

/// The users and what they rushed at.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub users: usize,
    #[serde(flatten)]
    pub subject: Subject,
}

/// What a scenario's users rushed at.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Subject {
    Campaign {
        campaign_id: Uuid,
        /// `remaining` when the timed window opened.
        stock: u64,
        per_user_limit: u64,
    },
    Product {
        product_id: Uuid,
        /// `remaining` when the timed window opened.
        stock: u64,
        per_user_limit: u64,
    },
    Attraction {
        attraction_id: Uuid,
    },
}

/// One step of a multi-step scenario, over its own timed window.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: &'static str,
    pub requests: u64,
    pub answered: u64,
    /// The window the step ran in (steps of one window share it).
    pub duration_secs: f64,
    /// Answered requests of this step per second of its window.
    pub throughput_rps: f64,
    pub latency_ms: Latency,
    pub statuses: BTreeMap<u16, u64>,
    pub codes: BTreeMap<String, u64>,
    pub errors: Errors,
}

impl StepReport {
    #[must_use]
    pub fn of(step: &Step, window: std::time::Duration) -> Self {
        let answered = step.answered_count();
        Self {
            name: step.name,
            requests: step.sent,
            answered,
            duration_secs: window.as_secs_f64(),
            throughput_rps: answered as f64 / window.as_secs_f64().max(f64::EPSILON),
            latency_ms: Latency::of(&step.latency),
            statuses: step.statuses(),
            codes: step.codes(),
            errors: step.errors,
        }
    }
}

/// A step as measured, with the window it ran in.
pub struct Measured<'a> {
    pub step: &'a Step,
    pub window: std::time::Duration,
}

/// Latency of answered requests, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
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
            p95: ms(micros.value_at_quantile(0.95)),
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
            steps: Vec::new(),
            completed_per_sec: None,
            passed: checks.iter().all(|c| c.passed),
            checks,
        }
    }

    /// The report of a multi-step scenario: per step, and the sums of all
    /// over `elapsed`, the timed windows together. `completed` counts the
    /// flows that finished in those windows.
    pub fn of_steps(
        options: &Options,
        setup: Setup,
        steps: &[Measured<'_>],
        completed: Option<u64>,
        checks: Vec<Check>,
    ) -> Result<Self, HistogramError> {
        let mut all = Step::new("all")?;
        let mut windows: Vec<std::time::Duration> = Vec::new();
        for measured in steps {
            all.merge(measured.step)?;
            if !windows.contains(&measured.window) {
                windows.push(measured.window);
            }
        }
        let elapsed: f64 = windows.iter().map(std::time::Duration::as_secs_f64).sum();
        let seconds = elapsed.max(f64::EPSILON);
        let answered = all.answered_count();
        Ok(Self {
            scenario: options.scenario.as_str(),
            url: options.url.clone(),
            connections: options.connections,
            threads: options.threads,
            setup: Some(setup),
            requests: all.sent,
            answered,
            duration_secs: elapsed,
            throughput_rps: answered as f64 / seconds,
            issued_per_sec: None,
            completed_per_sec: completed.map(|n| n as f64 / seconds),
            latency_ms: Latency::of(&all.latency),
            statuses: all.statuses(),
            codes: all.codes(),
            errors: all.errors,
            steps: steps
                .iter()
                .map(|m| StepReport::of(m.step, m.window))
                .collect(),
            passed: checks.iter().all(|c| c.passed),
            checks,
        })
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
            let _ = match &s.subject {
                Subject::Campaign {
                    campaign_id,
                    stock,
                    per_user_limit,
                } => writeln!(
                    out,
                    "setup       {} users, campaign {campaign_id} (stock {stock}, per-user limit {per_user_limit})",
                    s.users
                ),
                Subject::Product {
                    product_id,
                    stock,
                    per_user_limit,
                } => writeln!(
                    out,
                    "setup       {} users, product {product_id} (stock {stock}, per-user limit {per_user_limit})",
                    s.users
                ),
                Subject::Attraction { attraction_id } => writeln!(
                    out,
                    "setup       {} guests, attraction {attraction_id}",
                    s.users
                ),
            };
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
        if let Some(completed) = self.completed_per_sec {
            let _ = write!(out, ", {completed:.0} completed/s");
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
        if !self.steps.is_empty() {
            let _ = writeln!(out, "steps");
        }
        let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for step in &self.steps {
            let l = &step.latency_ms;
            let statuses: Vec<String> = step
                .statuses
                .iter()
                .map(|(status, n)| format!("{status}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  {:width$}  {:>8.0} req/s  p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms  {}  errors {}",
                step.name,
                step.throughput_rps,
                l.p50,
                l.p95,
                l.p99,
                l.max,
                statuses.join("  "),
                step.errors.total()
            );
        }
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
