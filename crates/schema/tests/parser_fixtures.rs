//! Runs SpiceDB's parser fixtures (`pkg/schemadsl/parser/tests/*.zed` with `.expected` trees)
//! from the shared conformance corpus: every input must parse, or fail, as it does in SpiceDB,
//! and a failure must be reported at the same position as SpiceDB's first error.
//!
//! The tree shapes are SpiceDB-internal, so only acceptance and error positions are compared.
//! Known differences are listed in `tests/schemadsl-unsupported.md` at the workspace root.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

use std::fs;
use std::path::PathBuf;

use ostiary_schema::{SourceFile, parse};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/spicedb/pkg/schemadsl/parser/tests")
}

/// Cases where our first error is deliberately elsewhere than SpiceDB's, with the reason.
/// Each is also listed in `tests/schemadsl-unsupported.md`.
const POSITION_DIFFERENCES: &[(&str, &str)] = &[
    (
        "arrowillegalfunc.zed",
        "we underline the bad function name `foo`; SpiceDB points just after it",
    ),
    (
        "broken.zed",
        "an unclosed definition: SpiceDB reports rune 0, we point at the end of the file where `}` is missing",
    ),
    (
        "invaliduse.zed",
        "we underline the unknown flag; SpiceDB points just after it",
    ),
    (
        "useafterdef.zed",
        "we underline the misplaced `use` statement; SpiceDB points just after it",
    ),
];

struct Expected {
    /// The smallest `start-rune` among the error nodes, if any.
    first_error_rune: Option<usize>,
    messages: Vec<String>,
}

fn read_expected(text: &str) -> Expected {
    let mut first_error_rune = None;
    let mut messages = Vec::new();
    // Each node prints its properties sorted by name: `error-message` comes before
    // `start-rune`, so remember that we are inside an error node until its start-rune.
    let mut in_error = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(message) = line.strip_prefix("error-message = ") {
            in_error = true;
            messages.push(message.to_owned());
        } else if let Some(rune) = line.strip_prefix("start-rune = ") {
            if in_error {
                let rune: usize = rune.parse().expect("start-rune is a number");
                first_error_rune = Some(first_error_rune.map_or(rune, |r: usize| r.min(rune)));
                in_error = false;
            }
        } else if line.starts_with("NodeType") {
            in_error = false;
        }
    }
    Expected {
        first_error_rune,
        messages,
    }
}

#[test]
fn spicedb_parser_fixtures() {
    let dir = fixtures_dir();
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("conformance corpus missing at {}: {err}", dir.display()));
    let mut inputs: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "zed"))
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 60,
        "expected the full fixture set, found {}",
        inputs.len()
    );

    let mut failures = Vec::new();
    let (mut n_valid, mut n_invalid) = (0, 0);
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(input).unwrap();
        let expected_text = fs::read_to_string(input.with_extension("zed.expected")).unwrap();
        let expected = read_expected(&expected_text);
        let file = SourceFile::new(name.clone(), text.clone());
        let parsed = parse(&file);

        match (expected.first_error_rune, parsed.diagnostics.first()) {
            (None, None) => n_valid += 1,
            (None, Some(diag)) => {
                failures.push(format!("{name}: SpiceDB accepts it, we report {diag}"))
            }
            (Some(_), None) => failures.push(format!(
                "{name}: SpiceDB rejects it ({:?}), we accept it",
                expected.messages
            )),
            (Some(rune), Some(diag)) => {
                n_invalid += 1;
                let ours = text[..diag.span.start()].chars().count();
                let known = POSITION_DIFFERENCES.iter().any(|(n, _)| *n == name);
                if ours != rune && !known {
                    failures.push(format!(
                        "{name}: SpiceDB's first error is at rune {rune} ({:?}), ours at rune {ours}: {diag}",
                        expected.messages
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} parser fixtures differ from SpiceDB:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
    assert!(
        n_valid > 30 && n_invalid > 25,
        "valid {n_valid}, invalid {n_invalid}"
    );
}

/// tree-sitter-spicedb's grammar corpus: an `(ERROR` node in the expected tree marks input the
/// grammar rejects. Used as accept/reject cases for our parser (identifier rules are the
/// compiler's business, so a name like `1foo` parses here too).
#[test]
fn tree_sitter_corpus_accepts_and_rejects_alike() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/examples/tree-sitter-spicedb/test/corpus");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("conformance corpus missing at {}: {err}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    let rule = "=".repeat(80);
    let dashes = "-".repeat(80);
    let mut n_cases = 0;
    let mut failures = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        // Layout: rule, name, rule, source, dashes, tree; repeated.
        let mut rest = text.as_str();
        while let Some(start) = rest.find(&rule) {
            let after_rule = &rest[start + rule.len()..];
            let Some(name_end) = after_rule.find(&rule) else {
                break;
            };
            let name = after_rule[..name_end].trim().to_owned();
            let body = &after_rule[name_end + rule.len()..];
            let Some(source_end) = body.find(&dashes) else {
                break;
            };
            let source = body[..source_end].trim_start_matches('\n');
            let tree_and_rest = &body[source_end + dashes.len()..];
            let tree_end = tree_and_rest.find(&rule).unwrap_or(tree_and_rest.len());
            let tree = &tree_and_rest[..tree_end];
            rest = &tree_and_rest[tree_end..];
            n_cases += 1;

            let rejected = tree.contains("(ERROR") || tree.contains("(MISSING");
            let parsed = parse(&SourceFile::new(name.clone(), source));
            if rejected == parsed.is_ok() {
                let known = TREE_SITTER_DIFFERENCES.iter().any(|(n, _)| *n == name);
                if !known {
                    failures.push(format!(
                        "{}: `{name}`: tree-sitter {}, we {}: {:?}",
                        path.file_name().unwrap().to_string_lossy(),
                        if rejected { "rejects" } else { "accepts" },
                        if parsed.is_ok() { "accept" } else { "reject" },
                        parsed
                            .diagnostics
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    assert!(
        n_cases >= 40,
        "expected the full corpus, found {n_cases} cases"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// tree-sitter cases where SpiceDB's parser (our reference) disagrees with tree-sitter.
const TREE_SITTER_DIFFERENCES: &[(&str, &str)] = &[];
