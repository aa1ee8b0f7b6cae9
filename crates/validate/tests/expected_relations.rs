//! The expected-relations collector against SpiceDB's own ground truth: the
//! `TestRunAssertionsAndValidationOperations` cases of
//! `spicedb/pkg/development/wasm/operations_test_cases.derived.yaml`, whose
//! `expectedValidationYaml` is the block SpiceDB regenerates from the data and whose
//! `expectedError` is the message a wrong block gives. (Blocks of cases that expect no error
//! are not compared: upstream never checked them, and some are wrong.)

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code"
)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

#[derive(Deserialize)]
struct Cases {
    #[serde(rename = "TestRunAssertionsAndValidationOperations")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    schema: String,
    relationships: Option<Vec<String>>,
    #[serde(rename = "validationYaml")]
    validation_yaml: String,
    #[serde(rename = "expectedError")]
    expected_error: Option<ExpectedError>,
    #[serde(rename = "expectedValidationYaml")]
    expected_validation_yaml: String,
}

#[derive(Deserialize)]
struct ExpectedError {
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Source")]
    source: Option<String>,
}

fn cases_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/conformance/spicedb/pkg/development/wasm/operations_test_cases.derived.yaml",
    )
}

/// A validation file with the case's schema and relationships and `validation` block.
fn file_text(case: &Case, validation: &Value) -> String {
    let mut file = Mapping::new();
    file.insert("schema".into(), case.schema.clone().into());
    let relationships = case.relationships.clone().unwrap_or_default().join("\n");
    file.insert("relationships".into(), relationships.into());
    file.insert("validation".into(), validation.clone());
    serde_yaml::to_string(&Value::Mapping(file)).unwrap()
}

#[test]
fn regenerated_blocks_and_mismatch_messages_match_spicedb() {
    let text = std::fs::read_to_string(cases_path()).unwrap();
    let cases: Cases = serde_yaml::from_str(&text).unwrap();
    let mut n_compared = 0;
    let mut problems = Vec::new();
    for case in &cases.cases {
        let expected: Value = serde_yaml::from_str(&case.expected_validation_yaml).unwrap();
        let Value::Mapping(expected) = expected else {
            continue;
        };
        if expected.is_empty() {
            continue;
        }
        // Every key with a line no data can match: the report regenerates the whole block.
        let mut bogus = Mapping::new();
        for key in expected.keys() {
            bogus.insert(
                key.clone(),
                Value::Sequence(vec!["[nobody:nobody] is <nobody:nobody#nobody>".into()]),
            );
        }
        let report = ostiary_validate::validate_str(
            &case.name,
            &file_text(case, &Value::Mapping(bogus)),
            Path::new("."),
        )
        .unwrap();
        let regenerated: Value =
            serde_yaml::from_str(report.suggested_validation.as_deref().unwrap_or("{}")).unwrap();
        let mut want = expected.clone();
        for value in want.values_mut() {
            if value.is_null() {
                *value = Value::Sequence(Vec::new());
            }
        }
        if regenerated != Value::Mapping(want) {
            problems.push(format!(
                "{}: regenerated {:?}, SpiceDB {:?}",
                case.name, report.suggested_validation, case.expected_validation_yaml
            ));
        }
        n_compared += 1;

        // The case's own block: passes, or fails with SpiceDB's message.
        let own: Value = serde_yaml::from_str(&case.validation_yaml).unwrap_or(Value::Null);
        let report =
            ostiary_validate::validate_str(&case.name, &file_text(case, &own), Path::new("."))
                .unwrap();
        let messages: Vec<&str> = report
            .failures
            .iter()
            .map(|failure| failure.message.as_str())
            .collect();
        // Upstream checks only assertions when no error is expected, and some of those
        // blocks are knowingly wrong ("wildcard exclusion under intersection" is partial,
        // "wildcard relationship" gives a wildcard's place to a concrete subject).
        if let Some(error) = &case.expected_error
            && error.source.as_deref() == Some("VALIDATION_YAML")
            && !messages
                .iter()
                .any(|message| message.starts_with(&error.message))
        {
            problems.push(format!(
                "{}: expected `{}`, got {messages:?}",
                case.name, error.message
            ));
        }
    }
    eprintln!("operations cases: {n_compared} regenerated blocks compared");
    assert!(n_compared >= 10, "only {n_compared} cases compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
