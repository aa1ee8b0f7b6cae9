//! Runs every validation file of the shared conformance corpus (`spicedb/`, `examples/`) and
//! every `schema-examples/*.yaml`, and compares each verdict with the upstream one: files
//! the upstream loader and `zed validate` tests expect to fail (from their derived case
//! tables) must fail, every other file must pass. Files that cannot give the upstream verdict
//! yet are listed, with the reason, in `tests/validate-unsupported.md` at the workspace root.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir() -> PathBuf {
    crate_dir().join("../../../shared/conformance")
}

/// Every YAML file below `dir` whose top level has `schema` or `schemaFile`.
fn validation_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            validation_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let is_validation = text
                .lines()
                .any(|line| line.starts_with("schema:") || line.starts_with("schemaFile:"));
            if is_validation && !path.to_string_lossy().ends_with(".derived.yaml") {
                out.push(path);
            }
        }
    }
}

#[derive(Deserialize)]
struct LoaderCases {
    cases: Vec<LoaderCase>,
}

#[derive(Deserialize)]
struct LoaderCase {
    files: Vec<String>,
    expected_error: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
struct ZedCases {
    cases: Vec<ZedCase>,
}

#[derive(Deserialize)]
struct ZedCase {
    name: String,
    files: Vec<String>,
    expect_nonzero_exit: bool,
    expect_stdout: Option<String>,
}

/// Upstream verdicts (true: passes) of the files single-file cases name, by path relative
/// to the corpus.
fn upstream_verdicts() -> BTreeMap<String, bool> {
    let mut verdicts = BTreeMap::new();
    let loader_dir = "spicedb/pkg/validationfile";
    let text = fs::read_to_string(
        corpus_dir()
            .join(loader_dir)
            .join("testdata/loader_test_cases.derived.yaml"),
    )
    .unwrap();
    let loader: LoaderCases = serde_yaml::from_str(&text).unwrap();
    for case in loader.cases {
        if let [file] = case.files.as_slice() {
            verdicts.insert(
                format!("{loader_dir}/{file}"),
                case.expected_error.is_none(),
            );
        }
    }
    let zed_dir = "examples/authzed-zed/internal/cmd";
    let text = fs::read_to_string(
        corpus_dir()
            .join(zed_dir)
            .join("validate_test_cases.derived.yaml"),
    )
    .unwrap();
    let zed: ZedCases = serde_yaml::from_str(&text).unwrap();
    for case in zed.cases {
        if let [file] = case.files.as_slice()
            && !file.contains("://")
        {
            verdicts.insert(format!("{zed_dir}/{file}"), !case.expect_nonzero_exit);
        }
    }
    verdicts
}

/// Files no upstream case table covers whose upstream verdict is a failure, with the reason.
const UPSTREAM_FAILURES: &[(&str, &str)] = &[
    (
        "examples/authzed-zed/internal/cmd/import-test/relations-only-validation-file-different-schema.yaml",
        "a `zed import` fixture whose relationship names relation `user`, absent from its schema",
    ),
    (
        "examples/authzed-zed/internal/schemaexamples/schemas/google-iam/schema-and-data.yaml",
        "lists `role:spanner_database_admin#spanner_databases_drop@user:*` twice, which SpiceDB's loader rejects (`found repeated relationship`)",
    ),
];

/// The files listed in `tests/validate-unsupported.md` (lines starting with "- `path`").
fn unsupported() -> BTreeSet<String> {
    let text = fs::read_to_string(crate_dir().join("../../tests/validate-unsupported.md")).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .filter_map(|line| line.split_once('`').map(|(path, _)| path.to_owned()))
        .collect()
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn conformance_validation_files_give_upstream_verdicts() {
    let corpus = corpus_dir();
    let mut paths = Vec::new();
    validation_files(&corpus.join("spicedb"), &mut paths);
    validation_files(&corpus.join("examples"), &mut paths);
    let verdicts = upstream_verdicts();
    // `.zed` files the zed cases validate on their own.
    for file in verdicts.keys() {
        if file.ends_with(".zed") && corpus.join(file).exists() {
            paths.push(corpus.join(file));
        }
    }
    assert!(paths.len() >= 130, "found only {} files", paths.len());
    let unsupported = unsupported();
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut problems = Vec::new();
    for path in &paths {
        let name = relative(path, &corpus);
        let upstream_failure = UPSTREAM_FAILURES.iter().any(|(file, _)| *file == name);
        let want_pass = !upstream_failure && verdicts.get(&name).copied().unwrap_or(true);
        let passed = match ostiary_validate::validate_file(path) {
            Ok(report) => {
                if report.passed() != want_pass && !unsupported.contains(&name) {
                    problems.push(format!(
                        "{name}: expected {}, got failures {:#?}",
                        if want_pass { "pass" } else { "failure" },
                        report.failures
                    ));
                }
                report.passed()
            }
            // Unreadable input counts as a failed validation.
            Err(err) => {
                if want_pass && !unsupported.contains(&name) {
                    problems.push(format!("{name}: {err}"));
                }
                false
            }
        };
        let agrees = passed == want_pass;
        if agrees && unsupported.contains(&name) {
            problems.push(format!(
                "{name}: listed in tests/validate-unsupported.md but now gives the upstream verdict; remove it from the list"
            ));
        }
        let group = if name.starts_with("spicedb/") {
            "spicedb"
        } else {
            "examples"
        };
        let entry = tally.entry(group).or_default();
        entry.1 += 1;
        if agrees {
            entry.0 += 1;
        }
    }
    for (group, (agree, total)) in &tally {
        eprintln!("{group}: {agree} of {total} validation files give the upstream verdict");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn schema_examples_all_pass() {
    let dir = crate_dir().join("../../schema-examples");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 8, "found only {} examples", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let report = ostiary_validate::validate_file(path).unwrap();
        assert!(
            report.assertions_run > 0,
            "{}: no assertions",
            path.display()
        );
        if !report.passed() {
            failures.push(format!("{}: {:#?}", path.display(), report.failures));
        }
    }
    eprintln!(
        "schema-examples: {} of {} validation files pass",
        paths.len() - failures.len(),
        paths.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn failures_point_at_the_line_zed_reports() {
    let zed_dir = corpus_dir().join("examples/authzed-zed/internal/cmd");
    let text = fs::read_to_string(zed_dir.join("validate_test_cases.derived.yaml")).unwrap();
    let zed: ZedCases = serde_yaml::from_str(&text).unwrap();
    let mut n_compared = 0;
    let mut problems = Vec::new();
    for case in zed.cases {
        let ([file], true, Some(stdout)) = (
            case.files.as_slice(),
            case.expect_nonzero_exit,
            &case.expect_stdout,
        ) else {
            continue;
        };
        // zed prints `error: parse error in `...`, line L, column C: ...`.
        let Some(line) = stdout
            .split(", line ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|line| line.parse::<u32>().ok())
        else {
            continue;
        };
        let report = ostiary_validate::validate_file(&zed_dir.join(file)).unwrap();
        let ours = report.failures.first().and_then(|failure| failure.line);
        if ours != Some(line) {
            problems.push(format!(
                "{}: zed reports line {line}, ours {ours:?}",
                case.name
            ));
        }
        n_compared += 1;
    }
    eprintln!("zed cases: {n_compared} failure lines compared");
    assert!(n_compared >= 12, "only {n_compared} cases compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
