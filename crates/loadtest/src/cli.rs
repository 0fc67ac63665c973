//! The command line.

use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};
use uuid::Uuid;

/// Rush scenarios against a Stampede server on this machine, over
/// keep-alive HTTP, with the invariants checked through the API afterwards.
/// Exit status: 0 when every check passes, 1 when one fails, 2 when the run
/// could not be made.
#[derive(Debug, Clone, Parser)]
#[command(name = "stampede-loadtest", version)]
pub struct Options {
    /// drop: stock much smaller than demand, mostly refusals. firehose: stock
    /// for every request, each a durable write. tickets: purchases of one
    /// product (hold, order, pay with the fake provider). line: guests join
    /// one ride's line and poll it while staff call and admit. healthz: GET
    /// /healthz, the baseline for the others.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The server: http://HOST:PORT with a loopback HOST (127.0.0.0/8, [::1], localhost).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An ADMIN's email, to create the users and the campaign.
    #[arg(long, env = "STAMPEDE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// That ADMIN's password.
    #[arg(long, env = "STAMPEDE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Virtual users; request (tickets: purchase) i is sent as user i mod U;
    /// line: the guests who join.
    #[arg(long, default_value_t = 1000, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub users: usize,
    /// Stock of the new campaign or product [drop: 100; firehose, tickets: --requests].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub stock: Option<u64>,
    /// Per-user limit of the new campaign or product [drop: 1; firehose,
    /// tickets: requests / users, rounded up].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub per_user_limit: Option<u64>,
    /// Most requests sent (a hard cap) [tickets: purchases; line: polls].
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Most seconds the timed window lasts (a hard cap) [line: each of its two windows].
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 256, value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub connections: usize,
    /// Runtime worker threads of the tool; keep it small, it shares the CPU with the server.
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub threads: usize,
    /// Issue from this existing campaign instead of creating one (its stock
    /// and limit apply; nothing else may issue from it during the run).
    #[arg(long, conflicts_with_all = ["stock", "per_user_limit"])]
    pub campaign: Option<Uuid>,
    /// Seconds one request may wait for its answer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
    /// Before the timed window, wait up to this many seconds for the server's
    /// message backlog (read from /metrics) to drain: new users' sign-up
    /// messages are still being handled, and would share the rush's writes. 0
    /// does not wait.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub settle: u64,
    /// Users whose GET /coupons/mine is compared with the tool's records afterwards.
    #[arg(long, default_value_t = 200)]
    pub verify_users: usize,
    /// line: parties one staff call asks for.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=500))]
    pub call_batch: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Drop,
    Firehose,
    Tickets,
    Line,
    Healthz,
}

impl Scenario {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Firehose => "firehose",
            Self::Tickets => "tickets",
            Self::Line => "line",
            Self::Healthz => "healthz",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Options::command().debug_assert();
    }

    #[test]
    fn a_taken_campaign_brings_its_own_stock_and_limit() {
        let id = Uuid::now_v7().to_string();
        assert!(Options::try_parse_from(["t", "drop", "--campaign", &id, "--stock", "5"]).is_err());
        let options =
            Options::try_parse_from(["t", "firehose", "--campaign", &id]).expect("valid flags");
        assert_eq!(options.scenario, Scenario::Firehose);
        assert_eq!(options.connections, 256);
        assert_eq!(options.threads, 1);
    }
}
