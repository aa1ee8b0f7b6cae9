//! `ostiary validate`: runs SpiceDB-format validation files (as `zed validate` does) in
//! process on a throwaway in-memory store, and reports each failure with its file and line.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use ostiary_schema::{Diagnostic, SourceFile, Span};
use ostiary_validate::{Failure, FailureKind, Report, validate_file};
use serde::Serialize;

use crate::cli::ValidateArgs;
use crate::cmd::schema::use_color;

/// One file's outcome in `--json` output.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum JsonOutcome {
    /// The file was validated (it may have failed).
    Validated {
        /// Whether every stage passed.
        passed: bool,
        /// The report.
        #[serde(flatten)]
        report: Report,
    },
    /// The file could not be validated at all.
    Unusable {
        /// The file.
        file: String,
        /// Why.
        error: String,
    },
}

/// Runs `ostiary validate`. Exits with 0 when every file passes, 1 when any fails, and 2
/// when a file cannot be read or is not a validation file.
pub(crate) fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let color = use_color(args.color);
    let mut outcomes = Vec::new();
    let (mut n_failed, mut n_unusable) = (0_usize, 0_usize);
    let mut sources: HashMap<String, Option<Arc<SourceFile>>> = HashMap::new();
    for path in &args.files {
        match validate_file(path) {
            Ok(report) => {
                if !report.passed() {
                    n_failed += 1;
                }
                if !args.json {
                    print_report(&report, color, &mut sources)?;
                }
                outcomes.push(JsonOutcome::Validated {
                    passed: report.passed(),
                    report,
                });
            }
            Err(err) => {
                n_unusable += 1;
                if !args.json {
                    eprintln!("error: {err}");
                }
                outcomes.push(JsonOutcome::Unusable {
                    file: path.display().to_string(),
                    error: err.to_string(),
                });
            }
        }
    }
    if args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &outcomes)?;
        writeln!(stdout)?;
    }
    Ok(if n_unusable > 0 {
        ExitCode::from(2)
    } else if n_failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(
    report: &Report,
    color: bool,
    sources: &mut HashMap<String, Option<Arc<SourceFile>>>,
) -> anyhow::Result<()> {
    let mut stderr = std::io::stderr().lock();
    for warning in &report.warnings {
        write!(stderr, "{}", render(warning, false, color, sources))?;
    }
    for failure in &report.failures {
        write!(stderr, "{}", render(failure, true, color, sources))?;
    }
    if let Some(block) = &report.suggested_validation {
        writeln!(
            stderr,
            "{}: the expected relations differ; the data gives this `validation` block:\n\nvalidation:\n{}",
            report.file,
            indent(block)
        )?;
    }
    if report.passed() {
        writeln!(
            stderr,
            "{}: {} - {} relationships loaded, {} assertions run, {} expected relations validated",
            report.file,
            if report.warnings.is_empty() {
                "Success!"
            } else {
                "complete"
            },
            report.relationships_loaded,
            report.assertions_run,
            report.expected_relations_validated
        )?;
    } else {
        let n_failures = report.failures.len();
        writeln!(
            stderr,
            "{}: FAILED - {n_failures} {}",
            report.file,
            if n_failures == 1 {
                "failure"
            } else {
                "failures"
            }
        )?;
    }
    Ok(())
}

/// Indents a YAML block by two spaces, to nest it under `validation:`.
fn indent(block: &str) -> String {
    block.lines().map(|line| format!("  {line}\n")).collect()
}

fn code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::File => "validation-file",
        FailureKind::Schema => "schema",
        FailureKind::Relationship => "relationship",
        FailureKind::Assertion => "assertion-failed",
        FailureKind::ExpectedRelations => "expected-relations",
        _ => "validation",
    }
}

/// A failure as a diagnostic with an excerpt of its file, or as plain lines when the file
/// or the line is unknown.
fn render(
    failure: &Failure,
    is_error: bool,
    color: bool,
    sources: &mut HashMap<String, Option<Arc<SourceFile>>>,
) -> String {
    let mut label = None;
    if let Some(expected) = &failure.expected {
        label = Some(match &failure.actual {
            Some(actual) => format!("expected {expected}, got {actual}"),
            None => format!("expected {expected}"),
        });
    }
    let source = sources
        .entry(failure.file.clone())
        .or_insert_with(|| {
            std::fs::read_to_string(&failure.file)
                .ok()
                .map(|text| SourceFile::new(failure.file.clone(), text))
        })
        .clone();
    if let (Some(source), Some(line)) = (source, failure.line)
        && let Some(span) = item_span(source.text(), line, &failure.item)
    {
        let mut diag = if is_error {
            Diagnostic::error(code(failure.kind), &source, span, failure.message.clone())
        } else {
            Diagnostic::warning(code(failure.kind), &source, span, failure.message.clone())
        };
        if let Some(label) = label {
            diag = diag.with_label(label);
        }
        return diag.render(color);
    }
    let location = match failure.line {
        Some(line) => format!("{}:{line}", failure.file),
        None => failure.file.clone(),
    };
    let severity = if is_error { "error" } else { "warning" };
    let mut out = format!(
        "{location}: {severity}[{}]: {}\n",
        code(failure.kind),
        failure.message
    );
    if let Some(label) = label {
        out.push_str(&format!("  {}: {label}\n", failure.item));
    }
    out
}

/// The span of `item` (or of its part before ` with `) on 1-based `line`, or of the whole
/// line without its indentation.
fn item_span(text: &str, line: u32, item: &str) -> Option<Span> {
    let line_idx = usize::try_from(line).ok()?.checked_sub(1)?;
    let mut start = 0;
    for (idx, content) in text.split_inclusive('\n').enumerate() {
        if idx == line_idx {
            let content = content.trim_end_matches(['\n', '\r']);
            let needle = item.split(" with ").next().unwrap_or(item);
            if !item.is_empty()
                && let Some(pos) = content.find(item)
            {
                return Some(Span::new(start + pos, start + pos + item.len()));
            }
            if !needle.is_empty()
                && let Some(pos) = content.find(needle)
            {
                return Some(Span::new(start + pos, start + pos + needle.len()));
            }
            let indent = content.len() - content.trim_start().len();
            return Some(Span::new(start + indent, start + content.len()));
        }
        start += content.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_underlined_on_their_line() {
        let text = "a: 1\nassertTrue:\n  - \"doc:x#view@user:a with {}\"\n";
        let span = item_span(text, 3, "doc:x#view@user:a with {}").unwrap();
        assert_eq!(&text[span.start()..span.end()], "doc:x#view@user:a with {}");
        let span = item_span(text, 2, "missing").unwrap();
        assert_eq!(&text[span.start()..span.end()], "assertTrue:");
        assert!(item_span(text, 9, "x").is_none());
    }
}
