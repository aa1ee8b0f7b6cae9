//! CPU time and peak resident memory of a process, read from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` (Linux).

use ostiary_bench::loadgen::stats::{parse_proc_stat_cpu, parse_proc_status_kb};

/// Linux reports CPU times in clock ticks of `USER_HZ`, which is 100 on every architecture that
/// matters here (x86_64, aarch64).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system, all threads) of process `pid` so far.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_cpu(&stat, TICKS_PER_SECOND)
}

/// CPU seconds of this process so far.
pub(crate) fn self_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_proc_stat_cpu(&stat, TICKS_PER_SECOND)
}

/// Peak resident set size (`VmHWM`) of process `pid`, in bytes.
pub(crate) fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_proc_status_kb(&status, "VmHWM")
}

/// The machine's load averages (1, 5 and 15 minutes) from `/proc/loadavg`.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
