//! SpiceDB's integration testconfigs (`internal/services/integrationtesting/testconfigs`):
//! every file is loaded into a fresh `MemDatastore` and every assertion runs through Check.
//! The corpus is read in place from the shared conformance directory (never copied here).

use std::fs;
use std::path::PathBuf;

use ostiary_engine::Permissionship;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::support::fixture;

#[derive(Deserialize)]
struct ValidationFile {
    schema: Option<String>,
    relationships: Option<String>,
    assertions: Option<Assertions>,
}

#[derive(Deserialize, Default)]
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
    let assertions = file.assertions.unwrap_or_default();
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
    Ok((passed, failures))
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
        "testconfigs: {n_passed} assertions passed, {} failed, in {} files",
        failures.len(),
        paths.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
