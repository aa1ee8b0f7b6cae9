//! One validation file, stage by stage: decode the YAML, compile the schema (inline,
//! `schemaFile`, imports), load the relationships, run the assertions, compare the expected
//! relations.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ostiary_schema::compile::{CompileOptions, compile_parsed};
use ostiary_schema::{CompiledSchema, Diagnostic, SourceFile, ast, parse};
use ostiary_types::Relationship;
use serde::Deserialize;

use crate::assertions::{self, Expected};
use crate::expected::{compare_key, render_block};
use crate::fixture::{self, Fixture, check_relationship};
use crate::lines::{Lines, line_number};
use crate::{Failure, FailureKind, Report, ValidateError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    schema: Option<String>,
    schema_file: Option<String>,
    relationships: Option<String>,
    assertions: Option<RawAssertions>,
    validation: Option<serde_yaml::Mapping>,
    #[serde(rename = "namespace_configs")]
    namespace_configs: Option<serde_yaml::Value>,
    #[serde(rename = "validation_tuples")]
    validation_tuples: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawAssertions {
    #[serde(default)]
    assert_true: Option<Vec<String>>,
    #[serde(default)]
    assert_caveated: Option<Vec<String>>,
    #[serde(default)]
    assert_false: Option<Vec<String>>,
}

/// A `.zed` file on its own: a validation file with only a schema.
pub(crate) fn validate_zed(name: &str, text: &str, dir: &Path) -> Report {
    let mut report = Report::new(name);
    let looks_like_yaml = text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("schema:") || line.starts_with("schemaFile:") || line == "---"
    });
    if looks_like_yaml {
        report.failures.push(Failure {
            kind: FailureKind::File,
            file: name.to_owned(),
            line: None,
            item: name.to_owned(),
            message: "the file looks like a YAML validation file; give it a `.yaml` extension"
                .to_owned(),
            expected: None,
            actual: None,
        });
        return report;
    }
    let source = SourceFile::new(file_name(name), text.to_owned());
    if let Some(schema) = compile_schema(&mut report, &source, dir, 0, name) {
        // A schema on its own loads nothing; it only has to compile.
        drop(schema);
    }
    report
}

/// The last component of a path, as zed names schema files in messages.
fn file_name(name: &str) -> String {
    Path::new(name).file_name().map_or_else(
        || name.to_owned(),
        |file| file.to_string_lossy().into_owned(),
    )
}

pub(crate) fn validate_yaml(name: &str, text: &str, dir: &Path) -> Result<Report, ValidateError> {
    let raw = decode(name, text)?;
    let lines = Lines::new(text);
    let mut report = Report::new(name);
    let Some(fixture) = load(&mut report, &raw, &lines, dir) else {
        return Ok(report);
    };

    // Stage 2: the assertions.
    run_assertions(&mut report, &raw, &lines, &fixture);
    if !report.failures.is_empty() {
        return Ok(report);
    }

    // Stage 3: the expected relations.
    if let Some(validation) = &raw.validation {
        compare_validation(&mut report, validation, &lines, &fixture);
    }
    Ok(report)
}

/// Loads the schema and relationships of a YAML validation file (stage 1 only): the report
/// of the load, and the store when it succeeded.
pub(crate) fn load_yaml(
    name: &str,
    text: &str,
    dir: &Path,
) -> Result<(Report, Option<Fixture>), ValidateError> {
    let raw = decode(name, text)?;
    let lines = Lines::new(text);
    let mut report = Report::new(name);
    let fixture = load(&mut report, &raw, &lines, dir);
    Ok((report, fixture))
}

fn decode(name: &str, text: &str) -> Result<RawFile, ValidateError> {
    serde_yaml::from_str(text).map_err(|err| ValidateError::Yaml {
        path: name.to_owned(),
        message: err.to_string(),
    })
}

/// Stage 1: the file's keys, the schema and the relationships; `None` (with failures in the
/// report) when any of them fails.
fn load(report: &mut Report, raw: &RawFile, lines: &Lines<'_>, dir: &Path) -> Option<Fixture> {
    let name = report.file.clone();
    let name = name.as_str();
    let file_failure = |message: &str| Failure {
        kind: FailureKind::File,
        file: name.to_owned(),
        line: None,
        item: name.to_owned(),
        message: message.to_owned(),
        expected: None,
        actual: None,
    };
    if raw.namespace_configs.is_some() {
        report
            .failures
            .push(file_failure("definitions must be specified in schema"));
        return None;
    }
    if raw.validation_tuples.is_some() {
        report.failures.push(file_failure(
            "relationships must be specified in relationships",
        ));
        return None;
    }

    // Stage 1: the schema.
    let compiled = match (&raw.schema, &raw.schema_file) {
        (Some(_), Some(_)) => {
            report.failures.push(file_failure(
                "only one of schema or schemaFile can be specified",
            ));
            return None;
        }
        (None, None) => {
            report
                .failures
                .push(file_failure("either schema or schemaFile must be present"));
            return None;
        }
        (Some(schema), None) => {
            let key = lines.key("schema", 0).unwrap_or(0);
            let offset = if lines.value_on_next_lines(key) {
                lines.content_after(key)
            } else {
                key
            };
            let source = SourceFile::new(file_name(name), schema.clone());
            compile_schema(report, &source, dir, offset, name)
        }
        (None, Some(schema_file)) => {
            let path = dir.join(schema_file);
            match std::fs::read_to_string(&path) {
                Ok(schema) => {
                    let source = SourceFile::new(file_name(schema_file), schema);
                    let schema_dir = path.parent().map(Path::to_owned).unwrap_or_default();
                    compile_schema(report, &source, &schema_dir, 0, &path.display().to_string())
                }
                Err(err) => {
                    report.failures.push(Failure {
                        kind: FailureKind::Schema,
                        file: name.to_owned(),
                        line: lines.key("schemaFile", 0).map(line_number),
                        item: schema_file.clone(),
                        message: format!("cannot read schema file `{schema_file}`: {err}"),
                        expected: None,
                        actual: None,
                    });
                    None
                }
            }
        }
    };
    let compiled = compiled?;

    // Stage 1b: the relationships.
    let relationships = load_relationships(report, raw, lines, &compiled);
    if !report.failures.is_empty() {
        return None;
    }
    let fixture = match fixture::load(compiled, &relationships) {
        Ok(fixture) => fixture,
        Err(message) => {
            report.failures.push(Failure {
                kind: FailureKind::Relationship,
                file: name.to_owned(),
                line: None,
                item: "relationships".to_owned(),
                message,
                expected: None,
                actual: None,
            });
            return None;
        }
    };
    report.relationships_loaded = relationships.len();
    Some(fixture)
}

/// Parses and compiles a schema and the files it imports; reports errors (and warnings)
/// with lines shifted by `offset` (where an inline schema starts in its YAML file).
fn compile_schema(
    report: &mut Report,
    source: &Arc<SourceFile>,
    dir: &Path,
    offset: usize,
    display_path: &str,
) -> Option<CompiledSchema> {
    let root_name = display_path.to_owned();
    let to_failure = |diag: &Diagnostic| {
        let in_root = Arc::ptr_eq(&diag.file, source);
        let line = diag.position().line;
        let line = if in_root {
            line.saturating_add(u32::try_from(offset).unwrap_or(0))
        } else {
            line
        };
        Failure {
            kind: FailureKind::Schema,
            file: if in_root {
                root_name.clone()
            } else {
                diag.file.name().to_owned()
            },
            line: Some(line),
            item: diag.file.text()[diag.span.start()..diag.span.end()].to_owned(),
            message: diag.message.clone(),
            expected: None,
            actual: None,
        }
    };
    let parsed = parse(source);
    if !parsed.is_ok() {
        report
            .failures
            .extend(parsed.diagnostics.iter().map(to_failure));
        return None;
    }
    let mut sources = Vec::new();
    let mut diagnostics = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = vec![(Arc::clone(source), dir.to_owned(), parsed.schema)];
    while let Some((file, file_dir, mut schema)) = queue.pop() {
        for item in &schema.items {
            if let ast::Item::Import(import) = item {
                let path: PathBuf = file_dir.join(&import.path);
                if !seen.insert(path.clone()) {
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let imported = SourceFile::new(import.path.clone(), text);
                        let parsed = parse(&imported);
                        diagnostics.extend(parsed.diagnostics);
                        let imported_dir = path.parent().map(Path::to_owned).unwrap_or_default();
                        queue.push((imported, imported_dir, parsed.schema));
                    }
                    Err(err) => diagnostics.push(Diagnostic::error(
                        "import-not-found",
                        &file,
                        import.path_span,
                        format!("failed to read file `{}`: {err}", import.path),
                    )),
                }
            }
        }
        schema
            .items
            .retain(|item| !matches!(item, ast::Item::Import(_)));
        sources.push((file, schema));
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        report.failures.extend(diagnostics.iter().map(to_failure));
        return None;
    }
    // The root first, then the imports in the order they were found.
    sources.reverse();
    sources.rotate_right(1);
    match compile_parsed(&sources, &CompileOptions::default()) {
        Ok(compiled) => {
            report
                .warnings
                .extend(compiled.warnings.iter().map(to_failure));
            Some(compiled.schema)
        }
        Err(errors) => {
            let errors: Vec<Diagnostic> = errors.into_iter().collect();
            report.failures.extend(errors.iter().map(to_failure));
            None
        }
    }
}

fn load_relationships(
    report: &mut Report,
    raw: &RawFile,
    lines: &Lines<'_>,
    schema: &CompiledSchema,
) -> Vec<Relationship> {
    let mut relationships = Vec::new();
    let Some(text) = &raw.relationships else {
        return relationships;
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor = lines.key("relationships", 0).unwrap_or(0);
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let found_at = lines.find(line, cursor);
        if let Some(idx) = found_at {
            cursor = idx + 1;
        }
        let mut fail = |message: String| {
            report.failures.push(Failure {
                kind: FailureKind::Relationship,
                file: report.file.clone(),
                line: found_at.map(line_number),
                item: line.to_owned(),
                message,
                expected: None,
                actual: None,
            });
        };
        let rel: Relationship = match line.parse() {
            Ok(rel) => rel,
            Err(err) => {
                fail(format!("error parsing relationship `{line}`: {err}"));
                continue;
            }
        };
        if !seen.insert(rel.key().to_string()) {
            fail(format!("found repeated relationship `{line}`"));
            continue;
        }
        if let Err(message) = check_relationship(schema, &rel) {
            fail(message);
            continue;
        }
        relationships.push(rel);
    }
    relationships
}

fn run_assertions(report: &mut Report, raw: &RawFile, lines: &Lines<'_>, fixture: &Fixture) {
    let Some(assertions) = &raw.assertions else {
        return;
    };
    let section = lines.key("assertions", 0).unwrap_or(0);
    let groups = [
        ("assertTrue", &assertions.assert_true, Expected::True),
        (
            "assertCaveated",
            &assertions.assert_caveated,
            Expected::Caveated,
        ),
        ("assertFalse", &assertions.assert_false, Expected::False),
    ];
    for (key, entries, expected) in groups {
        let Some(entries) = entries else {
            continue;
        };
        let mut cursor = lines.key(key, section).unwrap_or(section);
        for entry in entries {
            let needle = entry.split(" with ").next().unwrap_or(entry).trim();
            let found_at = lines.find(needle, cursor);
            if let Some(idx) = found_at {
                cursor = idx + 1;
            }
            report.assertions_run += 1;
            if let Err(failure) = assertions::run(fixture, entry, expected) {
                report.failures.push(Failure {
                    kind: FailureKind::Assertion,
                    file: report.file.clone(),
                    line: found_at.map(line_number),
                    item: entry.trim().to_owned(),
                    message: failure.message,
                    expected: Some(expected.as_str().to_owned()),
                    actual: failure.actual,
                });
            }
        }
    }
}

fn compare_validation(
    report: &mut Report,
    validation: &serde_yaml::Mapping,
    lines: &Lines<'_>,
    fixture: &Fixture,
) {
    let section = lines.key("validation", 0).unwrap_or(0);
    let mut regenerated: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut any_mismatch = false;
    for (key, value) in validation {
        let Some(key) = key.as_str() else {
            continue;
        };
        let key_line = lines.key(key, section);
        let entries: Vec<String> = match value {
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .filter_map(|item| item.as_str().map(ToOwned::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        report.expected_relations_validated += 1;
        match compare_key(fixture, key, &entries) {
            Ok((mismatches, lines_found)) => {
                regenerated.insert(key.to_owned(), lines_found);
                for (entry, message) in mismatches {
                    any_mismatch = true;
                    let start = key_line.unwrap_or(section);
                    let line = match &entry {
                        Some(entry) => lines.find(entry, start).or(key_line),
                        None => key_line,
                    };
                    report.failures.push(Failure {
                        kind: FailureKind::ExpectedRelations,
                        file: report.file.clone(),
                        line: line.map(line_number),
                        item: entry.unwrap_or_else(|| key.to_owned()),
                        message,
                        expected: None,
                        actual: None,
                    });
                }
            }
            Err(message) => {
                any_mismatch = true;
                report.failures.push(Failure {
                    kind: FailureKind::ExpectedRelations,
                    file: report.file.clone(),
                    line: key_line.map(line_number),
                    item: key.to_owned(),
                    message,
                    expected: None,
                    actual: None,
                });
            }
        }
    }
    if any_mismatch {
        report.suggested_validation = Some(render_block(&regenerated));
    }
}
