//! `ostiary-loadgen`: the load generator behind `bench/run`. It starts the servers under test
//! (Ostiary on RocksDB and in memory, SpiceDB through the harness, the harness's mock server),
//! loads each workload through the public API, measures every phase at each concurrency in
//! alternating rounds, and writes a generated section of `bench/RESULTS.md`.

mod driver;
mod procfs;
mod servers;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use ostiary_bench::loadgen::report::{
    Summary, fmt_bytes, fmt_count, fmt_ms, fmt_ratio, replace_section, summarize, table,
};
use ostiary_bench::loadgen::stats::{Sample, paired_median_ratio};
use ostiary_bench::loadgen::workload::{self, WORKLOAD_NAMES, Workload};
use servers::{Programs, Server, Target};

/// Command-line options; `--quick` changes the defaults of the unset ones.
#[derive(Debug, Parser)]
#[command(about = "Side-by-side load generator for Ostiary, SpiceDB and the gRPC floor")]
struct Args {
    /// Small data, one short round: finishes within a few minutes.
    #[arg(long)]
    quick: bool,
    /// The release `ostiary` binary.
    #[arg(long)]
    ostiary_bin: PathBuf,
    /// The SpiceDB comparison harness (spicedb_server.py, fast/target/release/mock_server).
    #[arg(long, default_value = "/work/shared/harness")]
    harness: PathBuf,
    /// The Markdown file to write the generated section into.
    #[arg(long)]
    results: PathBuf,
    /// Workloads to run (default: all).
    #[arg(long, value_delimiter = ',')]
    workloads: Option<Vec<String>>,
    /// Alternating rounds per measurement (default 1 quick, 3 full).
    #[arg(long)]
    rounds: Option<usize>,
    /// Measured seconds per measurement (default 1 quick, 2 full).
    #[arg(long)]
    seconds: Option<f64>,
    /// Warm-up seconds before each measurement (default 0.3 quick, 0.5 full).
    #[arg(long)]
    warmup: Option<f64>,
    /// Data scale of the side-by-side runs (1.0 = issue 7 sizes; default 0.01 quick, 0.05 full).
    #[arg(long)]
    scale: Option<f64>,
    /// Scales of the Ostiary-only RocksDB runs of `flat` (default 1 quick, 1,10 full).
    #[arg(long, value_delimiter = ',')]
    scale_points: Option<Vec<f64>>,
    /// Calls in flight.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
    /// HTTP/2 connections per target.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Workload seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip the Ostiary-only scale runs of `flat`.
    #[arg(long)]
    no_scale: bool,
    /// Skip SpiceDB (Ostiary and the mock only).
    #[arg(long)]
    no_spicedb: bool,
    /// Also measure Ostiary on RocksDB with its Check cache off (default: in full runs only).
    #[arg(long)]
    uncached: Option<bool>,
    /// The command line to quote in the report (bench/run passes its own).
    #[arg(long)]
    command_line: Option<String>,
    /// The source revision measured, for the report (bench/run passes the git commit).
    #[arg(long, default_value = "unknown")]
    revision: String,
    /// Where data directories and server logs go.
    #[arg(long, default_value = "/tmp/ostiary-loadgen")]
    work_dir: PathBuf,
}

#[derive(Debug, Clone)]
struct Settings {
    rounds: usize,
    window: driver::Window,
    settle: Duration,
    scale: f64,
    scale_points: Vec<f64>,
}

impl Settings {
    fn from_args(args: &Args) -> Self {
        let (rounds, seconds, warmup, scale, points, max_seconds, settle): (
            usize,
            f64,
            f64,
            f64,
            Vec<f64>,
            f64,
            f64,
        ) = if args.quick {
            (1, 1.0, 0.3, 0.01, vec![1.0], 4.0, 5.0)
        } else {
            (3, 2.0, 0.5, 0.05, vec![1.0, 10.0], 20.0, 30.0)
        };
        Self {
            rounds: args.rounds.unwrap_or(rounds).max(1),
            window: driver::Window {
                warmup: Duration::from_secs_f64(args.warmup.unwrap_or(warmup)),
                seconds: Duration::from_secs_f64(args.seconds.unwrap_or(seconds)),
                min_calls: 3,
                max_seconds: Duration::from_secs_f64(
                    max_seconds.max(args.seconds.unwrap_or(seconds)),
                ),
            },
            settle: Duration::from_secs_f64(settle),
            scale: args.scale.unwrap_or(scale),
            scale_points: if args.no_scale {
                Vec::new()
            } else {
                args.scale_points.clone().unwrap_or(points)
            },
        }
    }
}

/// All rounds of one (phase, concurrency, target) cell, indexed by round.
#[derive(Debug, Clone)]
struct Cell {
    phase: String,
    concurrency: usize,
    target: Target,
    samples: Vec<Sample>,
    first_error: Option<String>,
}

#[derive(Debug)]
struct LoadRow {
    target: Target,
    report: driver::LoadReport,
    peak_rss: Option<u64>,
}

#[derive(Debug)]
struct WorkloadResult {
    name: String,
    description: String,
    relationships: u64,
    scale: f64,
    loads: Vec<LoadRow>,
    cells: Vec<Cell>,
}

/// Minimum time between the end of a load and the first `minimize_latency` read: both servers
/// round such reads down to a 5 s revision quantum by default.
const QUANTIZATION_WAIT: Duration = Duration::from_millis(5_200);

fn push_sample(
    cells: &mut Vec<Cell>,
    key: (&str, usize, Target),
    measured: driver::Measured,
) -> Sample {
    let (phase, concurrency, target) = key;
    let sample = measured.sample.clone();
    if let Some(cell) = cells
        .iter_mut()
        .find(|c| c.phase == phase && c.concurrency == concurrency && c.target == target)
    {
        cell.samples.push(measured.sample);
        if cell.first_error.is_none() {
            cell.first_error = measured.first_error;
        }
    } else {
        cells.push(Cell {
            phase: phase.to_owned(),
            concurrency,
            target,
            samples: vec![measured.sample],
            first_error: measured.first_error,
        });
    }
    sample
}

fn progress(target: Target, phase: &str, concurrency: usize, sample: &Sample) {
    eprintln!(
        "    {:<18} {:<9} c={:<3} {:>9} calls/s  p50 {:>8} ms  p99 {:>8} ms  server {:>8} us/call  gen {:>3.0}%  errors {}",
        target.label(),
        phase,
        concurrency,
        fmt_count(sample.calls_per_second()),
        fmt_ms(sample.latency.p50_us),
        fmt_ms(sample.latency.p99_us),
        sample
            .server_cpu_us_per_call()
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
        100.0 * sample.client_cpu_share(),
        sample.errors
    );
}

struct Running {
    server: Server,
    channels: Vec<tonic::transport::Channel>,
}

async fn start_target(
    target: Target,
    programs: &Programs,
    tag: &str,
    connections: usize,
) -> anyhow::Result<Running> {
    let server = Server::start(target, programs, tag).await?;
    let channels = driver::connect(&server.addr, connections).await?;
    Ok(Running { server, channels })
}

async fn run_workload(
    workload: Arc<Workload>,
    scale: f64,
    targets: &[Target],
    programs: &Programs,
    args: &Args,
    settings: &Settings,
) -> anyhow::Result<WorkloadResult> {
    eprintln!(
        "workload {} (scale {scale}): {} relationships; {}",
        workload.name,
        workload.n_relationships(),
        workload.description
    );
    let mut running = Vec::new();
    let mut loads = Vec::new();
    let mut last_load = Instant::now();
    for &target in targets {
        let run = start_target(target, programs, workload.name, args.connections).await?;
        let report = driver::load(
            run.channels[0].clone(),
            Arc::clone(&workload),
            target.is_ostiary(),
            run.server.pid(),
        )
        .await
        .with_context(|| format!("loading `{}` into {}", workload.name, target.label()))?;
        eprintln!(
            "  loaded into {} in {:.2} s ({} relationships/s, {})",
            target.label(),
            report.seconds,
            fmt_count(report.relationships as f64 / report.seconds),
            report.method
        );
        last_load = Instant::now();
        loads.push(LoadRow {
            target,
            report,
            peak_rss: None,
        });
        running.push(run);
    }
    let since_load = last_load.elapsed();
    if since_load < QUANTIZATION_WAIT {
        tokio::time::sleep(QUANTIZATION_WAIT - since_load).await;
    }
    let mut cells = Vec::new();
    for round in 0..settings.rounds {
        for phase in &workload.phases {
            let calls = Arc::new(phase.calls.clone());
            for &concurrency in &args.concurrency {
                for offset in 0..running.len() {
                    // alternate which target goes first from round to round
                    let run = &running[(offset + round) % running.len()];
                    let target = run.server.target;
                    let measured = driver::measure(
                        &run.channels,
                        Arc::clone(&calls),
                        concurrency,
                        settings.window,
                        Some(run.server.pid()),
                    )
                    .await?;
                    let sample =
                        push_sample(&mut cells, (&phase.name, concurrency, target), measured);
                    progress(target, &phase.name, concurrency, &sample);
                    driver::settle(run.server.pid(), settings.settle).await;
                }
            }
        }
    }
    for (row, run) in loads.iter_mut().zip(&running) {
        row.peak_rss = run.server.peak_rss();
    }
    drop(running);
    Ok(WorkloadResult {
        name: workload.name.to_owned(),
        description: workload.description.clone(),
        relationships: workload.n_relationships(),
        scale,
        loads,
        cells,
    })
}

async fn run_mock(
    programs: &Programs,
    args: &Args,
    settings: &Settings,
    scale: f64,
) -> anyhow::Result<Vec<Cell>> {
    eprintln!("mock_server (the gRPC floor): CheckPermission of `flat`");
    let flat = workload::build("flat", args.seed, scale)?;
    let calls = Arc::new(flat.phases[0].calls.clone());
    let run = start_target(Target::Mock, programs, "mock", args.connections).await?;
    let mut cells = Vec::new();
    for _ in 0..settings.rounds {
        for &concurrency in &args.concurrency {
            let measured = driver::measure(
                &run.channels,
                Arc::clone(&calls),
                concurrency,
                settings.window,
                Some(run.server.pid()),
            )
            .await?;
            let sample = push_sample(&mut cells, ("check", concurrency, Target::Mock), measured);
            progress(Target::Mock, "check", concurrency, &sample);
        }
    }
    Ok(cells)
}

fn cell<'a>(
    cells: &'a [Cell],
    phase: &str,
    concurrency: usize,
    target: Target,
) -> Option<&'a Cell> {
    cells
        .iter()
        .find(|c| c.phase == phase && c.concurrency == concurrency && c.target == target)
}

fn cpu_per_call_series(cell: Option<&Cell>) -> Vec<Option<f64>> {
    cell.map(|c| {
        c.samples
            .iter()
            .map(Sample::server_cpu_us_per_call)
            .collect()
    })
    .unwrap_or_default()
}

fn throughput_series(cell: Option<&Cell>) -> Vec<Option<f64>> {
    cell.map(|c| {
        c.samples
            .iter()
            .map(|s| Some(s.calls_per_second()))
            .collect()
    })
    .unwrap_or_default()
}

fn summary_of(cell: Option<&Cell>) -> Option<Summary> {
    cell.map(|c| summarize(&c.samples))
}

fn us_per_call(summary: Option<&Summary>) -> Option<f64> {
    summary.and_then(|s| s.server_cpu_seconds_per_1k.map(|v| v * 1000.0))
}

fn fmt_opt_us(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// Ratio of medians where the two sides were not measured in the same rounds (the mock).
fn ratio_to_mock(ostiary: Option<&Summary>, mock: Option<&Summary>) -> Option<f64> {
    ostiary_bench::loadgen::stats::ratio(us_per_call(ostiary), us_per_call(mock))
}

/// True if a round of `cell` completed fewer calls than were in flight.
fn unsteady(cell: &Cell) -> bool {
    cell.samples
        .iter()
        .any(|sample| sample.calls < cell.concurrency as u64)
}

fn load_cpu_per_relationship(cpu_seconds: Option<f64>, report: &driver::LoadReport) -> String {
    match cpu_seconds {
        Some(cpu) if report.relationships > 0 => {
            format!("{:.2}", cpu * 1e6 / report.relationships as f64)
        }
        _ => "-".to_owned(),
    }
}

fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let n_cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = ostiary_bench::loadgen::stats::parse_proc_status_kb(&meminfo, "MemTotal");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{n_cpus} CPUs ({model}), {} RAM, Linux {}",
        fmt_bytes(mem),
        kernel.trim()
    )
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown date".to_owned())
}

struct RunInfo {
    started: String,
    finished: String,
    load_before: String,
    load_after: String,
    command_line: String,
    elapsed: Duration,
}

fn answers_cell(summary: &Summary, cell: &Cell) -> String {
    let mut text = summary.answers.clone();
    if summary.errors > 0 {
        if !text.is_empty() {
            text.push_str("; ");
        }
        let _ = write!(text, "**{} errors**", summary.errors);
        if let Some(err) = &cell.first_error {
            let _ = write!(
                text,
                " (`{}`)",
                err.replace('|', "/").chars().take(80).collect::<String>()
            );
        }
    }
    text
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear Markdown report; splitting it would scatter the layout"
)]
fn render(
    args: &Args,
    settings: &Settings,
    info: &RunInfo,
    results: &[WorkloadResult],
    mock: &[Cell],
    scale_results: &[WorkloadResult],
) -> String {
    let mut out = String::new();
    let kind = if args.quick { "quick" } else { "full" };
    let _ = writeln!(
        out,
        "## Side by side with SpiceDB: `bench/run{}` (issue 7)\n",
        if args.quick { " --quick" } else { "" }
    );
    let _ = writeln!(
        out,
        "Generated by `ostiary-loadgen` ({kind} run), {} to {} ({:.0} s). Machine: {}. Load \
         average (1/5/15 min) before: {}; after: {}. The machine is shared with other \
         builds: read the load average before trusting small differences.\n",
        info.started,
        info.finished,
        info.elapsed.as_secs_f64(),
        machine_description(),
        info.load_before,
        info.load_after
    );
    let _ = writeln!(
        out,
        "Command: `{}` (source revision {}).\n",
        info.command_line, args.revision
    );
    let _ = writeln!(
        out,
        "Settings: data scale {} of the issue-7 sizes for the side-by-side runs, seed {}, {} \
         round(s) alternating the targets (the first target rotates per round), {:.1} s \
         measured after {:.1} s warm-up (a window stays open until 3 calls completed, at most \
         {:.0} s), concurrency {:?}, {} HTTP/2 connections, {} load-generator thread(s), \
         requests pre-encoded, `minimize_latency` reads. Figures are medians over rounds; \
         ratios are medians of the per-round ratios. A window with fewer completed calls than \
         calls in flight is not a steady state (its CPU per call is overstated): such cells \
         are marked †.\n",
        settings.scale,
        args.seed,
        settings.rounds,
        settings.window.seconds.as_secs_f64(),
        settings.window.warmup.as_secs_f64(),
        settings.window.max_seconds.as_secs_f64(),
        args.concurrency,
        args.connections,
        args.client_threads
    );
    out.push_str(
        "Read before quoting:\n\
         - **SpiceDB** is v1.54.0 embedded (`libspicedb.so`) behind the harness's \
         `spicedb_server.py`: in-memory datastore (memdb scans every relationship of a \
         type and relation per lookup), dispatch/namespace caches **off**. It is a floor, not \
         SpiceDB's production speed, and its cost grows with data size, so the ratios grow \
         with scale. Its embedded build has no ImportBulkRelationships: it is loaded with \
         WriteRelationships (1,000 per call). At 10M relationships memdb would need tens of \
         GB and minutes per check: the scale runs are Ostiary only.\n\
         - **Ostiary** is `ostiary serve` (release) with its defaults, including its Check \
         cache (64 MiB) and 5 s revision quantization; the data directory of RocksDB is on the \
         local disk. The check phases cycle through 20,000 distinct checks, so after warm-up \
         most answers come from that cache; \"no cache\" is the same server with \
         `--dispatch-cache-max-cost 0` (full runs only), the fair match for the cache-less \
         SpiceDB.\n\
         - **mock_server** answers every call instantly with a constant: its CPU per call is \
         the gRPC floor of this machine (HTTP/2 + protobuf framing on the server side).\n\
         - **gen CPU** is the load generator's own CPU in % of one core during the window. The \
         generator and the server share 2 cores: when gen CPU nears 100% (about 50-60k \
         calls/s), throughput measures the generator, so compare **server CPU per call** \
         instead. `server CPU` is utime+stime of the server process from `/proc/<pid>/stat` \
         (10 ms ticks) over the window; s/1k calls equals ms per call.\n\n",
    );

    // headline
    let top = args.concurrency.iter().copied().max().unwrap_or(1);
    let low = args.concurrency.iter().copied().min().unwrap_or(1);
    let mut rows = Vec::new();
    for result in results {
        let phases: Vec<&str> = {
            let mut seen = Vec::new();
            for c in &result.cells {
                if !seen.contains(&c.phase.as_str()) {
                    seen.push(c.phase.as_str());
                }
            }
            seen
        };
        for phase in phases {
            let rocks = cell(&result.cells, phase, top, Target::OstiaryRocks);
            let memory = cell(&result.cells, phase, top, Target::OstiaryMemory);
            let uncached = cell(&result.cells, phase, top, Target::OstiaryRocksUncached);
            let spicedb = cell(&result.cells, phase, top, Target::SpiceDb);
            let mock_cell = cell(mock, "check", top, Target::Mock);
            let rocks_summary = summary_of(rocks);
            let spicedb_summary = summary_of(spicedb);
            let floor = if phase == "check" {
                fmt_ratio(ratio_to_mock(
                    rocks_summary.as_ref(),
                    summary_of(mock_cell).as_ref(),
                ))
            } else {
                "n/a".to_owned()
            };
            let low_rocks = summary_of(cell(&result.cells, phase, low, Target::OstiaryRocks));
            let low_spicedb = summary_of(cell(&result.cells, phase, low, Target::SpiceDb));
            let driver_bound = rocks_summary
                .as_ref()
                .is_some_and(|s| s.client_cpu_share > 0.85);
            rows.push(vec![
                result.name.clone(),
                phase.to_owned(),
                format!(
                    "{}{}",
                    rocks_summary
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |s| fmt_count(s.calls_per_second)),
                    if driver_bound { " (driver-bound)" } else { "" }
                ),
                summary_of(uncached)
                    .map_or_else(|| "-".to_owned(), |s| fmt_count(s.calls_per_second)),
                summary_of(memory)
                    .map_or_else(|| "-".to_owned(), |s| fmt_count(s.calls_per_second)),
                spicedb_summary
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |s| fmt_count(s.calls_per_second)),
                fmt_ratio(paired_median_ratio(
                    &throughput_series(rocks),
                    &throughput_series(spicedb),
                )),
                fmt_opt_us(us_per_call(rocks_summary.as_ref())),
                fmt_opt_us(us_per_call(spicedb_summary.as_ref())),
                fmt_ratio(paired_median_ratio(
                    &cpu_per_call_series(spicedb),
                    &cpu_per_call_series(rocks),
                )),
                floor,
                format!(
                    "{} / {}",
                    low_rocks.map_or_else(|| "-".to_owned(), |s| fmt_ms(s.latency.p50_us)),
                    low_spicedb.map_or_else(|| "-".to_owned(), |s| fmt_ms(s.latency.p50_us))
                ),
            ]);
        }
    }
    let mock_us = summary_of(cell(mock, "check", top, Target::Mock));
    let _ = writeln!(
        out,
        "### Headline (concurrency {top}; p50 at concurrency {low})\n\nThe gRPC floor: \
         mock_server uses {} µs of CPU per CheckPermission at concurrency {top} (by \
         concurrency: {}).\n",
        fmt_opt_us(us_per_call(mock_us.as_ref())),
        args.concurrency
            .iter()
            .map(|&c| format!(
                "{c}: {} µs",
                fmt_opt_us(us_per_call(
                    summary_of(cell(mock, "check", c, Target::Mock)).as_ref()
                ))
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(&table(
        &[
            "workload",
            "phase",
            "Ostiary RocksDB calls/s",
            "Ostiary RocksDB no-cache calls/s",
            "Ostiary memory calls/s",
            "SpiceDB calls/s",
            "throughput Ostiary/SpiceDB",
            "Ostiary CPU µs/call",
            "SpiceDB CPU µs/call",
            "CPU per call SpiceDB/Ostiary",
            "Ostiary CPU per call / gRPC floor",
            "p50 ms Ostiary / SpiceDB",
        ],
        &rows,
    ));
    out.push('\n');

    for result in results {
        let _ = writeln!(
            out,
            "### `{}` ({} relationships, scale {})\n\n{}.\n",
            result.name,
            fmt_count(result.relationships as f64),
            result.scale,
            result.description
        );
        let load_rows: Vec<Vec<String>> = result
            .loads
            .iter()
            .map(|row| {
                vec![
                    row.target.label().to_owned(),
                    row.report.method.to_owned(),
                    format!("{:.2}", row.report.seconds),
                    fmt_count(row.report.relationships as f64 / row.report.seconds),
                    load_cpu_per_relationship(row.report.server_cpu_seconds, &row.report),
                    load_cpu_per_relationship(row.report.client_cpu_seconds, &row.report),
                    fmt_bytes(row.peak_rss),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "target",
                "load through",
                "load s",
                "relationships/s",
                "peak RSS",
            ],
            &load_rows,
        ));
        out.push('\n');
        let mut rows = Vec::new();
        for c in &result.cells {
            let summary = summarize(&c.samples);
            rows.push(vec![
                c.phase.clone(),
                c.concurrency.to_string(),
                c.target.label().to_owned(),
                format!(
                    "{}{}",
                    fmt_count(summary.calls_per_second),
                    if unsteady(c) { " †" } else { "" }
                ),
                fmt_ms(summary.latency.p50_us),
                fmt_ms(summary.latency.p95_us),
                fmt_ms(summary.latency.p99_us),
                fmt_ms(summary.latency.max_us),
                summary
                    .server_cpu_seconds_per_1k
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}")),
                format!("{:.0}%", 100.0 * summary.client_cpu_share),
                answers_cell(&summary, c),
            ]);
        }
        let mut sorted = rows;
        sorted.sort_by(|a, b| {
            (a[0].as_str(), a[1].parse::<usize>().unwrap_or(0))
                .cmp(&(b[0].as_str(), b[1].parse::<usize>().unwrap_or(0)))
        });
        out.push_str(&table(
            &[
                "phase",
                "conc.",
                "target",
                "calls/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "server CPU s/1k calls",
                "gen CPU",
                "answers",
            ],
            &sorted,
        ));
        out.push('\n');
        let mut ratio_rows = Vec::new();
        let mut keys: BTreeMap<(String, usize), ()> = BTreeMap::new();
        for c in &result.cells {
            keys.insert((c.phase.clone(), c.concurrency), ());
        }
        for (phase, concurrency) in keys.keys() {
            let rocks = cell(&result.cells, phase, *concurrency, Target::OstiaryRocks);
            let memory = cell(&result.cells, phase, *concurrency, Target::OstiaryMemory);
            let uncached = cell(
                &result.cells,
                phase,
                *concurrency,
                Target::OstiaryRocksUncached,
            );
            let spicedb = cell(&result.cells, phase, *concurrency, Target::SpiceDb);
            let mock_summary = summary_of(cell(mock, "check", *concurrency, Target::Mock));
            let is_check = phase == "check";
            ratio_rows.push(vec![
                phase.clone(),
                concurrency.to_string(),
                fmt_ratio(paired_median_ratio(
                    &throughput_series(rocks),
                    &throughput_series(spicedb),
                )),
                fmt_ratio(paired_median_ratio(
                    &throughput_series(uncached),
                    &throughput_series(spicedb),
                )),
                fmt_ratio(paired_median_ratio(
                    &throughput_series(memory),
                    &throughput_series(spicedb),
                )),
                fmt_ratio(paired_median_ratio(
                    &cpu_per_call_series(spicedb),
                    &cpu_per_call_series(rocks),
                )),
                if is_check {
                    fmt_ratio(ratio_to_mock(
                        summary_of(uncached).as_ref(),
                        mock_summary.as_ref(),
                    ))
                } else {
                    "n/a".to_owned()
                },
                if is_check {
                    fmt_ratio(ratio_to_mock(
                        summary_of(rocks).as_ref(),
                        mock_summary.as_ref(),
                    ))
                } else {
                    "n/a".to_owned()
                },
                if is_check {
                    fmt_ratio(ratio_to_mock(
                        summary_of(memory).as_ref(),
                        mock_summary.as_ref(),
                    ))
                } else {
                    "n/a".to_owned()
                },
            ]);
        }
        out.push_str(&table(
            &[
                "phase",
                "conc.",
                "throughput RocksDB/SpiceDB",
                "throughput RocksDB no-cache/SpiceDB",
                "throughput memory/SpiceDB",
                "CPU per call SpiceDB/RocksDB",
                "RocksDB no-cache CPU per call / floor",
                "RocksDB CPU per call / floor",
                "memory CPU per call / floor",
            ],
            &ratio_rows,
        ));
        out.push('\n');
    }

    if !scale_results.is_empty() {
        out.push_str(
            "### Scale: `flat` checks on embedded RocksDB at growing data size (Ostiary only)\n\n",
        );
        let mut rows = Vec::new();
        for result in scale_results {
            for c in &result.cells {
                let summary = summarize(&c.samples);
                let load = result.loads.first();
                rows.push(vec![
                    fmt_count(result.relationships as f64),
                    c.concurrency.to_string(),
                    fmt_count(summary.calls_per_second),
                    fmt_ms(summary.latency.p50_us),
                    fmt_ms(summary.latency.p99_us),
                    fmt_ms(summary.latency.max_us),
                    summary
                        .server_cpu_seconds_per_1k
                        .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}")),
                    format!("{:.0}%", 100.0 * summary.client_cpu_share),
                    load.map_or_else(
                        || "-".to_owned(),
                        |l| fmt_count(l.report.relationships as f64 / l.report.seconds),
                    ),
                    load.map_or_else(
                        || "-".to_owned(),
                        |l| load_cpu_per_relationship(l.report.server_cpu_seconds, &l.report),
                    ),
                    load.map_or_else(
                        || "-".to_owned(),
                        |l| load_cpu_per_relationship(l.report.client_cpu_seconds, &l.report),
                    ),
                    fmt_bytes(load.and_then(|l| l.peak_rss)),
                    answers_cell(&summary, c),
                ]);
            }
        }
        out.push_str(&table(
            &[
                "relationships",
                "conc.",
                "calls/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "server CPU s/1k calls",
                "gen CPU",
                "load relationships/s",
                "load server CPU µs/rel.",
                "load gen CPU µs/rel.",
                "peak RSS",
                "answers",
            ],
            &rows,
        ));
        out.push('\n');
        if !settings.scale_points.iter().any(|&p| p >= 10.0) {
            out.push_str("The 10M point is measured by the full run only (`bench/run`).\n\n");
        }
    }
    out
}

async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args);
    let started = Instant::now();
    let started_at = utc_now();
    let load_before = procfs::load_average();
    let programs = Programs {
        ostiary: args.ostiary_bin.clone(),
        harness: args.harness.clone(),
        work_dir: args.work_dir.clone(),
    };
    let names: Vec<String> = args
        .workloads
        .clone()
        .unwrap_or_else(|| WORKLOAD_NAMES.iter().map(|s| (*s).to_owned()).collect());
    let mut targets = vec![Target::OstiaryRocks];
    if args.uncached.unwrap_or(!args.quick) {
        targets.push(Target::OstiaryRocksUncached);
    }
    targets.push(Target::OstiaryMemory);
    if !args.no_spicedb {
        targets.push(Target::SpiceDb);
    }
    eprintln!(
        "ostiary-loadgen: {} run, load average {load_before}",
        if args.quick { "quick" } else { "full" }
    );
    let mock = run_mock(&programs, &args, &settings, settings.scale).await?;
    let mut results = Vec::new();
    for name in &names {
        let workload = Arc::new(workload::build(name, args.seed, settings.scale)?);
        results.push(
            run_workload(
                workload,
                settings.scale,
                &targets,
                &programs,
                &args,
                &settings,
            )
            .await?,
        );
    }
    let mut scale_results = Vec::new();
    for &point in &settings.scale_points {
        let workload = Arc::new(workload::build("flat", args.seed, point)?);
        scale_results.push(
            run_workload(
                workload,
                point,
                &[Target::OstiaryRocks],
                &programs,
                &args,
                &settings,
            )
            .await?,
        );
    }
    let info = RunInfo {
        started: started_at,
        finished: utc_now(),
        load_before,
        load_after: procfs::load_average(),
        command_line: args
            .command_line
            .clone()
            .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        elapsed: started.elapsed(),
    };
    let body = render(&args, &settings, &info, &results, &mock, &scale_results);
    let document = std::fs::read_to_string(&args.results).unwrap_or_default();
    let section = if args.quick {
        "loadgen-quick"
    } else {
        "loadgen-full"
    };
    let updated = replace_section(&document, section, &body);
    std::fs::write(&args.results, updated)
        .with_context(|| format!("writing {}", args.results.display()))?;
    eprintln!(
        "wrote section `{section}` of {} ({:.0} s)",
        args.results.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}
