//! `stampede-loadtest`: see `docs/loadtest.md`.

/// mimalloc rather than the system allocator: under a rush glibc's malloc and
/// its arena locks took a third of the server's CPU (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use loadtest::cli::Options;

/// The run could not be made: bad flags, a refused URL, a failed setup call.
const NOT_RUN: u8 = 2;

fn main() -> ExitCode {
    let options = Options::parse();
    // One thread: everything on this one, with no hand-offs between threads.
    let mut builder = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(options.threads);
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return not_run(&e),
    };
    let report = match runtime.block_on(loadtest::scenario::run(&options)) {
        Ok(report) => report,
        Err(e) => return not_run(&e),
    };
    if options.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => return not_run(&e),
        }
    } else {
        print!("{}", report.text());
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn not_run(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("stampede-loadtest: {e}");
    ExitCode::from(NOT_RUN)
}
