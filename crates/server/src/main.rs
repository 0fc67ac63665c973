//! `stampede`: serve, migrate, and administer.

/// mimalloc rather than the system allocator: under a rush glibc's malloc and
/// its arena locks took a third of the server's CPU (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use server::config::{ConfigError, StockGateKind};
use server::{Application, Modules, Settings, StartError, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "stampede",
    version,
    about = "Promotions and limited sales under a rush"
)]
struct Cli {
    /// A TOML file of settings (also STAMPEDE_CONFIG).
    #[arg(long, global = true, env = "STAMPEDE_CONFIG")]
    config: Option<PathBuf>,
    /// sqlite://PATH or postgres://… (also STAMPEDE_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// memory, redis or postgres: where stock counters live (also STAMPEDE_STOCK_GATE).
    #[arg(long, global = true)]
    stock_gate: Option<String>,
    /// redis://HOST:PORT for the Redis stock gate and rate limiter (also STAMPEDE_REDIS_URL).
    #[arg(long, global = true)]
    redis_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Administer users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Compare every stock counter of a shared (Redis or PostgreSQL) gate
    /// with the database, report differences and repair them. Exit status 1
    /// when differences remain (with --dry-run) or a pool could not be checked.
    Reconcile {
        /// Report only; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// HOST:PORT to listen on (also STAMPEDE_LISTEN; default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// on or off: per-address and per-user request limits (also STAMPEDE_RATE_LIMIT).
    #[arg(long)]
    rate_limit: Option<String>,
    /// in_process or rabbitmq: how the bus carries messages (also
    /// STAMPEDE_BUS; rabbitmq needs STAMPEDE_AMQP_URL, kept out of flags
    /// because it holds a password).
    #[arg(long)]
    bus: Option<String>,
    /// json or pretty (also STAMPEDE_LOG_FORMAT).
    #[arg(long)]
    log_format: Option<String>,
    /// Mount POST /admin-api/test-users, bulk users for load tests (also STAMPEDE_TEST_USERS=on).
    #[arg(long)]
    test_users: bool,
    /// Wire the `fake` payment provider, for demos (also STAMPEDE_FAKE_PAYMENTS=on).
    #[arg(long)]
    fake_payments: bool,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a user with the ADMIN role.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// One clear line on stderr, no backtrace.
fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("stampede: {e}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<(), StartError> {
    let mut overrides: Vec<(&str, String)> = Vec::new();
    let globals = [
        ("database_url", cli.database_url.clone()),
        ("stock_gate", cli.stock_gate.clone()),
        ("redis_url", cli.redis_url.clone()),
    ];
    for (key, value) in globals {
        if let Some(v) = value {
            overrides.push((key, v));
        }
    }
    if let Command::Serve(args) = &cli.command {
        let flags = [
            ("listen", &args.listen),
            ("rate_limit", &args.rate_limit),
            ("log_format", &args.log_format),
            ("bus", &args.bus),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                overrides.push((key, v.clone()));
            }
        }
        if args.test_users {
            overrides.push(("test_users", "on".into()));
        }
        if args.fake_payments {
            overrides.push(("fake_payments", "on".into()));
        }
    }
    let settings = Settings::load(cli.config.as_ref(), &overrides)?;
    match cli.command {
        Command::Serve(_) => {
            telemetry::init(settings.log_format, &settings.log_level);
            if let Some(point) = kernel::crash::arm_from_env().map_err(ConfigError::Invalid)? {
                tracing::warn!(
                    point = point.as_str(),
                    "a crash point is armed: the first request to reach it aborts the \
                     process (fault tests only)"
                );
            }
            let app = Application::build(settings).await?;
            let addr = app.local_addr().map_err(StartError::Serve)?;
            let shutdown = shutdown_signal();
            tracing::info!(%addr, "listening");
            app.run_until(shutdown).await.map_err(StartError::Serve)
        }
        Command::Migrate => {
            let modules = Modules::start(&settings).await?;
            modules.db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email, password },
        } => {
            let modules = Modules::start(&settings).await?;
            let created = modules.identity.create_admin(&email, &password).await;
            modules.db.close().await;
            let user = created?;
            println!("created admin {} ({})", user.email, user.id);
            Ok(())
        }
        Command::Reconcile { dry_run } => reconcile(&settings, dry_run).await,
    }
}

/// `stampede reconcile`: only a shared gate can be checked from outside the
/// serving process; the memory gate's counters live inside it.
async fn reconcile(settings: &Settings, dry_run: bool) -> Result<(), StartError> {
    if settings.stock_gate == StockGateKind::Memory {
        println!(
            "stock_gate = memory: the counters live inside the serving process and are \
             rebuilt from the database at every start; reconcile them there with \
             POST /admin-api/stock/reconcile"
        );
        return Ok(());
    }
    let modules = Modules::start(settings).await?;
    let sets = modules.pool_sets().await.map_err(StartError::StockGate);
    let report = match sets {
        Ok(sets) => gate::reconcile(&sets, dry_run).await,
        Err(e) => {
            modules.db.close().await;
            return Err(e);
        }
    };
    modules.db.close().await;
    for pool in &report.pools {
        println!(
            "{} {}: {:?}, gate {} taken, database {} taken, {} users differ{}",
            pool.module,
            pool.pool,
            pool.verdict,
            pool.gate_taken
                .map_or_else(|| "nothing".to_owned(), |n| n.to_string()),
            pool.database_taken,
            pool.users_differing,
            if pool.repaired {
                " -> reset from the database"
            } else {
                ""
            },
        );
    }
    for error in &report.errors {
        println!("error: {error}");
    }
    println!(
        "{} pools checked, {} differed, {} repaired",
        report.checked, report.differing, report.repaired
    );
    if report.errors.is_empty() && report.differing == report.repaired {
        Ok(())
    } else {
        Err(StartError::StockGate("differences remain".into()))
    }
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that comes early is not
/// missed (and does not kill the process with the default action).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
