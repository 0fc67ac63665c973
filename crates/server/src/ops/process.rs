//! The process's own figures in Prometheus' standard names, read from
//! `/proc` when `/metrics` is read (Linux; elsewhere they are absent):
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds` and `process_threads`.

use std::fs;

/// `/proc` reports CPU times in `USER_HZ` ticks, which the kernel's ABI fixes
/// at 100 a second on every architecture Linux reports to user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self/stat` and `/proc/self/status` tell of this process.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sample {
    pub cpu_seconds: Option<f64>,
    pub start_ticks_after_boot: Option<f64>,
    pub threads: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
}

/// Sets the process gauges; a file that cannot be read leaves its gauges
/// unset rather than failing the scrape.
pub(crate) fn record() {
    let mut sample = fs::read_to_string("/proc/self/stat")
        .map(|stat| parse_stat(&stat))
        .unwrap_or_default();
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        sample.resident_bytes = status_kib(&status, "VmRSS:").map(|kib| kib * 1024.0);
        sample.virtual_bytes = status_kib(&status, "VmSize:").map(|kib| kib * 1024.0);
    }
    let set = |name: &'static str, value: Option<f64>| {
        if let Some(value) = value {
            // A gauge holding a running total: the exporter's counters are
            // whole numbers, and CPU seconds are not.
            platform::metrics::set_gauge(name, value);
        }
    };
    set("process_cpu_seconds_total", sample.cpu_seconds);
    set("process_threads", sample.threads);
    set("process_resident_memory_bytes", sample.resident_bytes);
    set("process_virtual_memory_bytes", sample.virtual_bytes);
    let boot = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| boot_time(&stat));
    if let (Some(boot), Some(ticks)) = (boot, sample.start_ticks_after_boot) {
        set(
            "process_start_time_seconds",
            Some(boot + ticks / TICKS_PER_SECOND),
        );
    }
    set(
        "process_open_fds",
        fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as f64),
    );
    set(
        "process_max_fds",
        fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| max_open_files(&limits)),
    );
}

/// Fields of `/proc/self/stat` after the command name, which is in
/// parentheses and may itself hold spaces or parentheses.
pub(crate) fn parse_stat(stat: &str) -> Sample {
    let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
        return Sample::default();
    };
    // `rest` starts at field 3 (state): field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    let cpu_seconds = match (field(14), field(15)) {
        (Some(user), Some(system)) => Some((user + system) / TICKS_PER_SECOND),
        _ => None,
    };
    Sample {
        cpu_seconds,
        threads: field(20),
        start_ticks_after_boot: field(22),
        ..Sample::default()
    }
}

fn status_kib(status: &str, key: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|secs| secs.trim().parse().ok())
}

fn max_open_files(limits: &str) -> Option<f64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|values| values.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system_ticks_even_with_a_strange_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime priority nice threads
        // itrealvalue starttime ...
        let stat =
            "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 1000 200";
        let sample = parse_stat(stat);
        assert_eq!(sample.cpu_seconds, Some(3.0));
        assert_eq!(sample.threads, Some(7.0));
        assert_eq!(sample.start_ticks_after_boot, Some(12345.0));
    }

    #[test]
    fn an_unreadable_stat_gives_nothing() {
        assert_eq!(parse_stat("garbage"), Sample::default());
    }

    #[test]
    fn status_limits_and_boot_time_are_read() {
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:"),
            Some(2048.0)
        );
        assert_eq!(
            max_open_files(
                "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n"
            ),
            Some(1024.0)
        );
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\n"), Some(1.7e9));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_spent_some_cpu() {
        let stat = fs::read_to_string("/proc/self/stat").expect("linux has /proc");
        let sample = parse_stat(&stat);
        assert!(sample.cpu_seconds.is_some_and(|s| s >= 0.0), "{sample:?}");
        assert!(sample.threads.is_some_and(|t| t >= 1.0), "{sample:?}");
    }
}
