//! Statistics of the load generator: latency summaries from an HDR histogram, medians over rounds,
//! ratios, CPU per call, and parsers for the `/proc` figures (CPU time, peak RSS) of a process.

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, with 3 significant digits.
pub fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
}

/// Latency percentiles of one measurement, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest recorded value.
    pub max_us: f64,
}

impl Latency {
    /// The percentiles of `histogram` (all zero when it is empty).
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            p50_us: histogram.value_at_quantile(0.50) as f64,
            p95_us: histogram.value_at_quantile(0.95) as f64,
            p99_us: histogram.value_at_quantile(0.99) as f64,
            max_us: histogram.max() as f64,
        }
    }
}

/// One measurement of one phase on one target at one concurrency.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// Successful calls completed in the window.
    pub calls: u64,
    /// Failed calls in the window.
    pub errors: u64,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// Latency percentiles of the successful calls.
    pub latency: Latency,
    /// CPU seconds the server process used in the window (None if not measurable).
    pub server_cpu_seconds: Option<f64>,
    /// CPU seconds the load generator itself used in the window.
    pub client_cpu_seconds: f64,
    /// Streamed results received (LookupResources/LookupSubjects).
    pub stream_results: u64,
    /// Checks answered HAS_PERMISSION.
    pub allowed: u64,
    /// Checks answered NO_PERMISSION.
    pub denied: u64,
    /// Checks answered CONDITIONAL_PERMISSION.
    pub conditional: u64,
}

impl Sample {
    /// Successful calls per second.
    pub fn calls_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.calls as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Server CPU seconds per 1,000 successful calls (numerically equal to µs per call / 1000,
    /// i.e. ms of CPU per 1k calls / 1000).
    pub fn server_cpu_seconds_per_1k(&self) -> Option<f64> {
        let cpu = self.server_cpu_seconds?;
        (self.calls > 0).then(|| cpu * 1000.0 / self.calls as f64)
    }

    /// Server CPU microseconds per successful call.
    pub fn server_cpu_us_per_call(&self) -> Option<f64> {
        self.server_cpu_seconds_per_1k().map(|s| s * 1000.0)
    }

    /// The load generator's CPU as a share of one core over the window (1.0 = one full core).
    pub fn client_cpu_share(&self) -> f64 {
        if self.seconds > 0.0 {
            self.client_cpu_seconds / self.seconds
        } else {
            0.0
        }
    }
}

/// The median of `values` (the mean of the two middle values for an even count); None if empty.
/// NaNs are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// `numerator / denominator`, None when the denominator is zero or either side is missing.
pub fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d != 0.0 && d.is_finite() && n.is_finite() => Some(n / d),
        _ => None,
    }
}

/// The median of per-round ratios `a[i] / b[i]` of paired rounds (rounds where either side is
/// missing or zero are skipped).
pub fn paired_median_ratio(a: &[Option<f64>], b: &[Option<f64>]) -> Option<f64> {
    let ratios: Vec<f64> = a.iter().zip(b).filter_map(|(x, y)| ratio(*x, *y)).collect();
    median(&ratios)
}

/// CPU seconds (user + system) from the text of `/proc/<pid>/stat`, with `ticks_per_second`
/// clock ticks per second (100 on Linux).
pub fn parse_proc_stat_cpu(stat: &str, ticks_per_second: f64) -> Option<f64> {
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second)
}

/// A `kB` field (`VmHWM`, `VmRSS`, ...) of `/proc/<pid>/status`, in bytes.
pub fn parse_proc_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name != field {
            return None;
        }
        let kb: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut histogram = new_histogram().unwrap();
        for us in 1..=1000u64 {
            histogram.record(us).unwrap();
        }
        let latency = Latency::from_histogram(&histogram);
        assert!((latency.p50_us - 500.0).abs() <= 1.0, "{latency:?}");
        assert!((latency.p95_us - 950.0).abs() <= 1.0, "{latency:?}");
        assert!((latency.p99_us - 990.0).abs() <= 1.0, "{latency:?}");
        assert!((latency.max_us - 1000.0).abs() <= 1.0, "{latency:?}");
        assert_eq!(
            Latency::from_histogram(&new_histogram().unwrap()),
            Latency::default()
        );
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        assert_eq!(ratio(Some(10.0), Some(4.0)), Some(2.5));
        assert_eq!(ratio(Some(10.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(
            paired_median_ratio(
                &[Some(10.0), Some(30.0), Some(8.0), None],
                &[Some(1.0), Some(10.0), Some(2.0), Some(1.0)]
            ),
            Some(4.0)
        );
    }

    #[test]
    fn sample_rates_and_cpu_per_call() {
        let sample = Sample {
            calls: 20_000,
            seconds: 2.0,
            server_cpu_seconds: Some(0.5),
            client_cpu_seconds: 0.8,
            ..Sample::default()
        };
        assert_eq!(sample.calls_per_second(), 10_000.0);
        assert_eq!(sample.server_cpu_seconds_per_1k(), Some(0.025));
        assert_eq!(sample.server_cpu_us_per_call(), Some(25.0));
        assert_eq!(sample.client_cpu_share(), 0.4);
        let idle = Sample::default();
        assert_eq!(idle.calls_per_second(), 0.0);
        assert_eq!(idle.server_cpu_seconds_per_1k(), None);
    }

    #[test]
    fn proc_files_are_parsed() {
        let stat = "1234 (tokio worker) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 \
                    100 2000000 3000 18446744073709551615";
        assert_eq!(parse_proc_stat_cpu(stat, 100.0), Some(3.0));
        assert_eq!(parse_proc_stat_cpu("garbage", 100.0), None);
        let status =
            "Name:\tostiary\nVmPeak:\t  200000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_proc_status_kb(status, "VmHWM"), Some(51_200 * 1024));
        assert_eq!(parse_proc_status_kb(status, "VmSwap"), None);
    }
}
