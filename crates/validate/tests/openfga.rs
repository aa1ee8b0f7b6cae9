//! Runs OpenFGA's consolidated check tests (`conformance/openfga/assets/tests/*.yaml`) through
//! the OpenFGA → SpiceDB translator and the validation-file code path of `ostiary validate`,
//! and holds the pass count to the floor recorded in `tests/openfga-results.md`.
//!
//! Each stage's model is translated, the tuples written so far become relationships (tuples
//! that no longer fit a later stage's model are dropped, as OpenFGA ignores them), and every
//! check assertion runs as a one-assertion validation file. `errorCode: 2000` (a missing
//! condition parameter) expects a caveated answer, as in SpiceDB; other error codes expect an
//! error. Checks of a wildcard subject (`user:*`) have no SpiceDB counterpart and are skipped.
//! ListObjects and ListUsers assertions are not run yet.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "test code"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ostiary_validate::{FailureKind, OpenFgaTranslation, translate_openfga, validate_str};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

#[derive(Deserialize)]
struct File {
    tests: Vec<Test>,
}

#[derive(Deserialize)]
struct Test {
    name: String,
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stage {
    model: String,
    #[serde(default)]
    tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    check_assertions: Option<Vec<CheckAssertion>>,
}

#[derive(Deserialize, Clone)]
struct Tuple {
    object: String,
    relation: String,
    user: String,
    #[serde(default)]
    condition: Option<TupleCondition>,
}

#[derive(Deserialize, Clone)]
struct TupleCondition {
    name: String,
    #[serde(default)]
    context: Option<Map<String, Json>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckAssertion {
    tuple: Tuple,
    #[serde(default)]
    context: Option<Map<String, Json>>,
    #[serde(default)]
    contextual_tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    expectation: Option<bool>,
    #[serde(default)]
    error_code: Option<u32>,
}

/// The answer of one check, as the validation file reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    True,
    False,
    Caveated,
    Error(String),
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/openfga/assets/tests")
}

/// Splits `type:id` and `type:id#relation`.
fn split_user(user: &str) -> Option<(&str, &str, Option<&str>)> {
    let (object, relation) = match user.split_once('#') {
        Some((object, relation)) => (object, Some(relation)),
        None => (user, None),
    };
    let (object_type, id) = object.split_once(':')?;
    Some((object_type, id, relation))
}

/// The subject text in SpiceDB form, or `None` when a name is not in the model.
fn subject(translation: &OpenFgaTranslation, user: &str) -> Option<String> {
    let (user_type, id, relation) = split_user(user)?;
    let type_name = translation.type_name(user_type)?;
    Some(match relation {
        Some(relation) => format!(
            "{type_name}:{id}#{}",
            translation.check_relation(user_type, relation)?
        ),
        None => format!("{type_name}:{id}"),
    })
}

/// A tuple as a relationship line, or `None` when it does not fit the model.
fn relationship(translation: &OpenFgaTranslation, tuple: &Tuple) -> Option<String> {
    let (object_type, id, _) = split_user(&tuple.object)?;
    let type_name = translation.type_name(object_type)?;
    let relation = translation.write_relation(object_type, &tuple.relation)?;
    let subject = subject(translation, &tuple.user)?;
    let caveat = match &tuple.condition {
        None => String::new(),
        Some(condition) => {
            let name = translation.caveat_name(&condition.name)?;
            match &condition.context {
                Some(context) if !context.is_empty() => {
                    format!("[{name}:{}]", Json::Object(context.clone()))
                }
                _ => format!("[{name}]"),
            }
        }
    };
    Some(format!("{type_name}:{id}#{relation}@{subject}{caveat}"))
}

fn validation_file(schema: &str, relationships: &[String], assertion: Option<&str>) -> String {
    let mut file = Map::new();
    file.insert("schema".into(), Json::String(schema.to_owned()));
    file.insert(
        "relationships".into(),
        Json::String(relationships.join("\n")),
    );
    if let Some(assertion) = assertion {
        let mut assertions = Map::new();
        assertions.insert(
            "assertTrue".into(),
            Json::Array(vec![Json::String(assertion.into())]),
        );
        file.insert("assertions".into(), Json::Object(assertions));
    }
    serde_yaml::to_string(&Json::Object(file)).unwrap()
}

/// Drops the relationships the model rejects; `Err` when the schema itself does not compile.
fn loadable(schema: &str, mut relationships: Vec<String>) -> Result<Vec<String>, String> {
    loop {
        let report = validate_str(
            "openfga.yaml",
            &validation_file(schema, &relationships, None),
            Path::new("."),
        )
        .map_err(|err| err.to_string())?;
        if let Some(failure) = report
            .failures
            .iter()
            .find(|failure| failure.kind != FailureKind::Relationship)
        {
            return Err(failure.message.clone());
        }
        let rejected: BTreeSet<&str> = report
            .failures
            .iter()
            .map(|failure| failure.item.as_str())
            .collect();
        if rejected.is_empty() {
            return Ok(relationships);
        }
        let before = relationships.len();
        relationships.retain(|line| !rejected.iter().any(|item| item.contains(line.as_str())));
        if relationships.len() == before {
            return Err(format!("cannot drop rejected relationships: {rejected:?}"));
        }
    }
}

/// Runs one check as a one-assertion validation file.
fn check(
    translation: &OpenFgaTranslation,
    relationships: &[String],
    assertion: &CheckAssertion,
) -> Outcome {
    let tuple = &assertion.tuple;
    let Some((object_type, id, _)) = split_user(&tuple.object) else {
        return Outcome::Error(format!("invalid object `{}`", tuple.object));
    };
    let Some(type_name) = translation.type_name(object_type) else {
        return Outcome::Error(format!("type `{object_type}` not found"));
    };
    let Some(relation) = translation.check_relation(object_type, &tuple.relation) else {
        return Outcome::Error(format!("relation `{}` not found", tuple.relation));
    };
    let Some(subject) = subject(translation, &tuple.user) else {
        return Outcome::Error(format!("subject `{}` not in the model", tuple.user));
    };
    let mut text = format!("{type_name}:{id}#{relation}@{subject}");
    if let Some(context) = assertion
        .context
        .as_ref()
        .filter(|context| !context.is_empty())
    {
        text.push_str(&format!(" with {}", Json::Object(context.clone())));
    }
    let mut relationships = relationships.to_vec();
    for extra in assertion.contextual_tuples.iter().flatten() {
        match relationship(translation, extra) {
            Some(line) if !relationships.contains(&line) => relationships.push(line),
            Some(_) => {}
            None => return Outcome::Error(format!("invalid contextual tuple `{}`", extra.object)),
        }
    }
    let report = match validate_str(
        "openfga.yaml",
        &validation_file(translation.schema(), &relationships, Some(&text)),
        Path::new("."),
    ) {
        Ok(report) => report,
        Err(err) => return Outcome::Error(err.to_string()),
    };
    let Some(failure) = report.failures.first() else {
        return Outcome::True;
    };
    match failure.actual.as_deref() {
        Some("false") => Outcome::False,
        Some(actual) if actual.starts_with("caveated") => Outcome::Caveated,
        _ => Outcome::Error(failure.message.clone()),
    }
}

#[derive(Default)]
struct Totals {
    tests: usize,
    translated: usize,
    untranslatable: Vec<String>,
    passed: usize,
    failed: usize,
    skipped: usize,
    failures: Vec<String>,
}

fn run_test(test: &Test, totals: &mut Totals) {
    totals.tests += 1;
    let mut tuples: Vec<Tuple> = Vec::new();
    let mut translated = true;
    for (stage_index, stage) in test.stages.iter().enumerate() {
        tuples.extend(stage.tuples.iter().flatten().cloned());
        let translation = match translate_openfga(&stage.model) {
            Ok(translation) => translation,
            Err(err) => {
                totals
                    .untranslatable
                    .push(format!("{} (stage {stage_index}): {err}", test.name));
                translated = false;
                break;
            }
        };
        let mut lines = Vec::new();
        for tuple in &tuples {
            if let Some(line) = relationship(&translation, tuple)
                && !lines.contains(&line)
            {
                lines.push(line);
            }
        }
        let lines = match loadable(translation.schema(), lines) {
            Ok(lines) => lines,
            Err(err) => {
                totals.untranslatable.push(format!(
                    "{} (stage {stage_index}): schema: {err}",
                    test.name
                ));
                translated = false;
                break;
            }
        };
        for (index, assertion) in stage.check_assertions.iter().flatten().enumerate() {
            if assertion.tuple.user.ends_with(":*") {
                totals.skipped += 1;
                continue;
            }
            let outcome = check(&translation, &lines, assertion);
            let ok = match (assertion.error_code, assertion.expectation) {
                (Some(2000), _) => matches!(outcome, Outcome::Caveated | Outcome::Error(_)),
                (Some(_), _) => matches!(outcome, Outcome::Error(_)),
                (None, Some(true)) => outcome == Outcome::True,
                (None, _) => outcome == Outcome::False,
            };
            if ok {
                totals.passed += 1;
            } else {
                totals.failed += 1;
                let expected = match (assertion.error_code, assertion.expectation) {
                    (Some(code), _) => format!("error {code}"),
                    (None, Some(true)) => "true".to_owned(),
                    (None, _) => "false".to_owned(),
                };
                totals.failures.push(format!(
                    "{} stage {stage_index} check {index} (`{}#{}@{}`): expected {expected}, got {outcome:?}",
                    test.name, assertion.tuple.object, assertion.tuple.relation, assertion.tuple.user
                ));
            }
        }
    }
    if translated {
        totals.translated += 1;
    }
}

/// Reads `key: N` from the results file.
fn floor(results: &str, key: &str) -> usize {
    results
        .lines()
        .find_map(|line| line.trim().strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("`{key}` missing from tests/openfga-results.md"))
}

#[test]
fn openfga_consolidated_check_tests() {
    let dir = corpus_dir();
    let mut totals = Totals::default();
    for name in ["consolidated_1_1_tests.yaml", "abac_tests.yaml"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let file: File = serde_yaml::from_str(&text).unwrap();
        for test in &file.tests {
            run_test(test, &mut totals);
        }
    }
    println!(
        "{} tests, {} translated, {} untranslatable; check assertions: {} passed, {} failed, {} skipped (wildcard subject)",
        totals.tests,
        totals.translated,
        totals.untranslatable.len(),
        totals.passed,
        totals.failed,
        totals.skipped
    );
    for line in &totals.untranslatable {
        println!("untranslatable: {line}");
    }
    for line in &totals.failures {
        println!("failed: {line}");
    }
    let results = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openfga-results.md"),
    )
    .unwrap();
    let min_passed = floor(&results, "- passed at least:");
    let max_failed = floor(&results, "- failed at most:");
    let min_translated = floor(&results, "- translated at least:");
    assert!(
        totals.passed >= min_passed,
        "passed {} < floor {min_passed}",
        totals.passed
    );
    assert!(
        totals.failed <= max_failed,
        "failed {} > ceiling {max_failed}",
        totals.failed
    );
    assert!(
        totals.translated >= min_translated,
        "translated {} < floor {min_translated}",
        totals.translated
    );
}
