//! The Markdown side of the load generator: per-target summaries over rounds, number formatting,
//! tables, and rewriting one generated section of `bench/RESULTS.md` between its markers while
//! leaving the rest of the file untouched.

use super::stats::{Latency, Sample, median};

/// The medians over rounds of one (phase, concurrency, target) cell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Rounds summarised.
    pub rounds: usize,
    /// Median calls per second.
    pub calls_per_second: f64,
    /// Median of each percentile.
    pub latency: Latency,
    /// Median server CPU seconds per 1k calls.
    pub server_cpu_seconds_per_1k: Option<f64>,
    /// Median load generator CPU share of one core.
    pub client_cpu_share: f64,
    /// Errors over all rounds.
    pub errors: u64,
    /// Answers over all rounds: allowed, denied, conditional checks and streamed results per call.
    pub answers: String,
}

/// Summarises the rounds of one cell by medians.
pub fn summarize(samples: &[Sample]) -> Summary {
    let pick = |f: &dyn Fn(&Sample) -> f64| {
        median(&samples.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0)
    };
    let cpu: Vec<f64> = samples
        .iter()
        .filter_map(Sample::server_cpu_seconds_per_1k)
        .collect();
    let calls: u64 = samples.iter().map(|s| s.calls).sum();
    let allowed: u64 = samples.iter().map(|s| s.allowed).sum();
    let denied: u64 = samples.iter().map(|s| s.denied).sum();
    let conditional: u64 = samples.iter().map(|s| s.conditional).sum();
    let results: u64 = samples.iter().map(|s| s.stream_results).sum();
    let mut answers = Vec::new();
    let checks = allowed + denied + conditional;
    if checks > 0 {
        let pct = |n: u64| 100.0 * n as f64 / checks as f64;
        answers.push(format!("{:.0}% allowed", pct(allowed)));
        if conditional > 0 {
            answers.push(format!("{:.0}% conditional", pct(conditional)));
        }
    }
    if results > 0 && calls > 0 {
        answers.push(format!(
            "{} results/lookup",
            fmt_count(results as f64 / (calls - checks.min(calls)).max(1) as f64)
        ));
    }
    Summary {
        rounds: samples.len(),
        calls_per_second: pick(&Sample::calls_per_second),
        latency: Latency {
            p50_us: pick(&|s| s.latency.p50_us),
            p95_us: pick(&|s| s.latency.p95_us),
            p99_us: pick(&|s| s.latency.p99_us),
            max_us: pick(&|s| s.latency.max_us),
        },
        server_cpu_seconds_per_1k: median(&cpu),
        client_cpu_share: pick(&Sample::client_cpu_share),
        errors: samples.iter().map(|s| s.errors).sum(),
        answers: answers.join(", "),
    }
}

/// A count or rate with thousands separators and no decimals (`12,345`); small values keep one
/// decimal (`2.5`).
pub fn fmt_count(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    if value.abs() < 10.0 && value.fract() != 0.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (digit_idx, digit) in digits.chars().enumerate() {
        if digit_idx > 0 && (digits.len() - digit_idx) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

/// A latency given in microseconds, in ms with 2 decimals (or 3 significant digits above 100 ms).
pub fn fmt_ms(us: f64) -> String {
    let ms = us / 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.2}")
    }
}

/// A ratio as `12.3x` (`-` when missing).
pub fn fmt_ratio(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}x"),
        Some(v) if v >= 10.0 => format!("{v:.1}x"),
        Some(v) => format!("{v:.2}x"),
        None => "-".to_owned(),
    }
}

/// A byte count in MiB (`123 MiB`) or GiB above 1 GiB (`1.23 GiB`).
pub fn fmt_bytes(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30)),
        Some(b) => format!("{:.0} MiB", b as f64 / f64::from(1u32 << 20)),
        None => "-".to_owned(),
    }
}

/// A Markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", headers.join(" | "));
    out.push_str(&format!(
        "|{}\n",
        headers.iter().map(|_| " --- |").collect::<String>()
    ));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// The opening marker of the generated section `name`.
pub fn begin_marker(name: &str) -> String {
    format!("<!-- BEGIN GENERATED: {name} (bench/run rewrites this section) -->")
}

/// The closing marker of the generated section `name`.
pub fn end_marker(name: &str) -> String {
    format!("<!-- END GENERATED: {name} -->")
}

/// `document` with the section `name` replaced by `body` (markers included), or with the section
/// appended at the end when the document has none. Text outside the markers is kept as is.
pub fn replace_section(document: &str, name: &str, body: &str) -> String {
    let begin = begin_marker(name);
    let end = end_marker(name);
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    if let Some(start) = document.find(&begin)
        && let Some(end_offset) = document[start..].find(&end)
    {
        let stop = start + end_offset + end.len();
        return format!("{}{section}{}", &document[..start], &document[stop..]);
    }
    let mut out = document.trim_end().to_owned();
    out.push_str("\n\n");
    out.push_str(&section);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_medians_and_totals() {
        let mut samples = Vec::new();
        for (calls, p50) in [(100u64, 5.0), (300, 1.0), (200, 3.0)] {
            samples.push(Sample {
                calls,
                seconds: 1.0,
                errors: 1,
                latency: Latency {
                    p50_us: p50,
                    ..Latency::default()
                },
                server_cpu_seconds: Some(calls as f64 / 1000.0),
                client_cpu_seconds: 0.5,
                allowed: calls / 2,
                denied: calls / 2,
                ..Sample::default()
            });
        }
        let summary = summarize(&samples);
        assert_eq!(summary.rounds, 3);
        assert_eq!(summary.calls_per_second, 200.0);
        assert_eq!(summary.latency.p50_us, 3.0);
        assert_eq!(summary.server_cpu_seconds_per_1k, Some(1.0));
        assert_eq!(summary.client_cpu_share, 0.5);
        assert_eq!(summary.errors, 3);
        assert_eq!(summary.answers, "50% allowed");
    }

    #[test]
    fn lookups_report_results_per_call() {
        let sample = Sample {
            calls: 4,
            seconds: 1.0,
            stream_results: 400,
            ..Sample::default()
        };
        assert_eq!(summarize(&[sample]).answers, "100 results/lookup");
    }

    #[test]
    fn numbers_are_formatted_for_reading() {
        assert_eq!(fmt_count(1_234_567.4), "1,234,567");
        assert_eq!(fmt_count(999.0), "999");
        assert_eq!(fmt_count(2.5), "2.5");
        assert_eq!(fmt_count(-12_000.0), "-12,000");
        assert_eq!(fmt_ms(1234.0), "1.23");
        assert_eq!(fmt_ms(250_000.0), "250");
        assert_eq!(fmt_ratio(Some(3.456)), "3.46x");
        assert_eq!(fmt_ratio(Some(34.56)), "34.6x");
        assert_eq!(fmt_ratio(Some(345.6)), "346x");
        assert_eq!(fmt_ratio(None), "-");
        assert_eq!(fmt_bytes(Some(300 << 20)), "300 MiB");
        assert_eq!(fmt_bytes(Some(3 << 30)), "3.00 GiB");
    }

    #[test]
    fn table_has_a_header_rule_and_rows() {
        let text = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(text, "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }

    #[test]
    fn a_section_is_appended_then_replaced_in_place() {
        let original = "# Benchmark results\n\n## Storage\n\nkept text\n";
        let once = replace_section(original, "loadgen-quick", "first body\n");
        assert!(once.starts_with(original.trim_end()));
        assert!(once.contains(&begin_marker("loadgen-quick")));
        assert!(once.contains("first body"));
        let with_tail = format!("{once}\n## Later section\n\nalso kept\n");
        let twice = replace_section(&with_tail, "loadgen-quick", "second body");
        assert!(!twice.contains("first body"));
        assert!(twice.contains("second body"));
        assert!(twice.contains("kept text"));
        assert!(twice.ends_with("## Later section\n\nalso kept\n"));
        assert_eq!(twice.matches(&end_marker("loadgen-quick")).count(), 1);
        // another section is independent
        let other = replace_section(&twice, "loadgen-full", "full body");
        assert!(other.contains("second body") && other.contains("full body"));
    }
}
