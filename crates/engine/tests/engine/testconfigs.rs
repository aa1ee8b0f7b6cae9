//! SpiceDB's integration testconfigs (`internal/services/integrationtesting/testconfigs`):
//! every file is loaded into a fresh `MemDatastore` and every assertion runs through Check.
//! The corpus is read in place from the shared conformance directory (never copied here).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use ostiary_engine::Permissionship;
use ostiary_types::{ObjectRef, RelationName, Relationship};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::random::membership;
use crate::support::fixture;

#[derive(Deserialize)]
struct ValidationFile {
    schema: Option<String>,
    relationships: Option<String>,
    assertions: Option<Assertions>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct Assertions {
    #[serde(default)]
    assert_true: Vec<String>,
    #[serde(default)]
    assert_caveated: Vec<String>,
    #[serde(default)]
    assert_false: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expected {
    True,
    Caveated,
    False,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/conformance/spicedb/internal/services/integrationtesting/testconfigs",
    )
}

/// Splits `rel with {json}` into the check text and the request context.
fn split_assertion(text: &str) -> Result<(String, Map<String, Json>), String> {
    let text = text.trim();
    match text.split_once(" with ") {
        None => Ok((text.to_owned(), Map::new())),
        Some((check, context)) => {
            let context: Map<String, Json> = serde_json::from_str(context.trim())
                .map_err(|err| format!("context of `{text}`: {err}"))?;
            Ok((check.trim().to_owned(), context))
        }
    }
}

/// Runs one file; returns (passed, failures).
fn run_file(text: &str) -> Result<(usize, Vec<String>), String> {
    let file: ValidationFile = serde_yaml::from_str(text).map_err(|err| err.to_string())?;
    let fixture = fixture(
        file.schema.as_deref().unwrap_or(""),
        file.relationships.as_deref().unwrap_or(""),
    )?;
    let assertions = file.assertions.clone().unwrap_or_default();
    let mut passed = 0;
    let mut failures = Vec::new();
    let all = assertions
        .assert_true
        .iter()
        .map(|text| (text, Expected::True))
        .chain(
            assertions
                .assert_caveated
                .iter()
                .map(|text| (text, Expected::Caveated)),
        )
        .chain(
            assertions
                .assert_false
                .iter()
                .map(|text| (text, Expected::False)),
        );
    for (assertion, expected) in all {
        let (check, context) = split_assertion(assertion)?;
        let actual = fixture.check_with(&check, &context);
        let ok = matches!(
            (&actual, expected),
            (Ok(Permissionship::Has), Expected::True)
                | (Ok(Permissionship::No), Expected::False)
                | (Ok(Permissionship::Conditional { .. }), Expected::Caveated)
        );
        // As SpiceDB's suite does, the assertion must also hold through LookupResources.
        let key: ostiary_types::RelationshipKey = check.parse().map_err(|err| format!("{err}"))?;
        let found = fixture
            .lookup_resources(
                key.resource().object_type(),
                key.relation(),
                key.subject(),
                &context,
                None,
            )
            .map(|results| {
                results
                    .into_iter()
                    .find(|res| res.resource_id == *key.resource().object_id())
                    .map(|res| res.permissionship)
            });
        let lookup_ok = matches!(
            (&found, expected),
            (Ok(Some(Permissionship::Has)), Expected::True)
                | (Ok(None), Expected::False)
                | (
                    Ok(Some(Permissionship::Conditional { .. })),
                    Expected::Caveated
                )
        );
        if !lookup_ok {
            failures.push(format!(
                "{assertion}: LookupResources expected {expected:?}, got {found:?}"
            ));
        }
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "{assertion}: expected {expected:?}, got {actual:?}"
            ));
        }
    }
    passed += lookup_subjects_agree_with_check(&fixture, &file, &mut failures)?;
    Ok((passed, failures))
}

/// SpiceDB's "accessibility set" comparison: for every resource, every relation or
/// permission of its type and every kind of subject defined in the relationships,
/// LookupSubjects must give each defined subject Check's permissionship. Returns the number
/// of subjects compared.
fn lookup_subjects_agree_with_check(
    fixture: &crate::support::Fixture,
    file: &ValidationFile,
    failures: &mut Vec<String>,
) -> Result<usize, String> {
    let mut resources: BTreeSet<(String, String)> = BTreeSet::new();
    let mut subjects: BTreeMap<(String, Option<String>), BTreeSet<String>> = BTreeMap::new();
    for line in file.relationships.as_deref().unwrap_or("").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let rel: Relationship = line.parse().map_err(|err| format!("{err}"))?;
        let resource = rel.resource();
        resources.insert((
            resource.object_type().to_string(),
            resource.object_id().to_string(),
        ));
        let subject = rel.subject();
        if !subject.is_wildcard() {
            subjects
                .entry((
                    subject.object_type().to_string(),
                    subject.relation().map(ToString::to_string),
                ))
                .or_default()
                .insert(subject.object_id().to_string());
        }
    }
    let context = Map::new();
    let compiled = fixture.schema.compiled();
    let mut n_compared = 0;
    for (resource_type, resource_id) in &resources {
        let Some(definition) = compiled.definition_by_name(resource_type) else {
            continue;
        };
        let resource: ObjectRef = format!("{resource_type}:{resource_id}")
            .parse()
            .map_err(|err| format!("{err}"))?;
        for relation in &definition.relations {
            let permission: RelationName = relation.name.parse().map_err(|err| format!("{err}"))?;
            for ((subject_type, subject_relation), ids) in &subjects {
                let subject_relation: Option<RelationName> = subject_relation
                    .as_deref()
                    .map(|name| name.parse())
                    .transpose()
                    .map_err(|err| format!("{err}"))?;
                let found = fixture.engine.lookup_subjects(
                    fixture.snapshot.as_ref(),
                    &fixture.schema,
                    &resource,
                    &permission,
                    &subject_type.parse().map_err(|err| format!("{err}"))?,
                    subject_relation.as_ref(),
                    &context,
                );
                for id in ids {
                    let subject = match &subject_relation {
                        Some(rel) => format!("{subject_type}:{id}#{rel}"),
                        None => format!("{subject_type}:{id}"),
                    };
                    let text = format!("{resource}#{permission}@{subject}");
                    let Ok(want) = fixture.check_with(&text, &context) else {
                        // Check failed (depth limit): nothing to compare with.
                        continue;
                    };
                    let ok = match &found {
                        Ok(found) => membership(found, id) == class(&want),
                        Err(_) => false,
                    };
                    if ok {
                        n_compared += 1;
                    } else {
                        failures.push(format!(
                            "LookupSubjects {resource}#{permission}@{subject_type}: {found:?}, check {text}: {want:?}"
                        ));
                    }
                }
            }
        }
    }
    Ok(n_compared)
}

/// 2 for has, 1 for conditional, 0 for no.
fn class(permissionship: &Permissionship) -> u8 {
    match permissionship {
        Permissionship::Has => 2,
        Permissionship::Conditional { .. } => 1,
        Permissionship::No => 0,
    }
}

#[test]
fn spicedb_integration_testconfigs() {
    let dir = corpus_dir();
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 70,
        "expected the 73 testconfigs, found {}",
        paths.len()
    );
    let mut n_passed = 0;
    let mut failures = Vec::new();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(path).unwrap();
        match run_file(&text) {
            Ok((passed, file_failures)) => {
                n_passed += passed;
                failures.extend(file_failures.into_iter().map(|f| format!("{name}: {f}")));
            }
            Err(err) => failures.push(format!("{name}: failed to load: {err}")),
        }
    }
    eprintln!(
        "testconfigs: {n_passed} assertions and lookup-subjects comparisons passed, {} failed, in {} files",
        failures.len(),
        paths.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
