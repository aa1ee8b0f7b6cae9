//! SpiceDB's steel-thread golden results (`internal/services/steelthreadtesting`) for
//! LookupSubjects: each operation listed in `MANIFEST.derived.yaml` runs against its data
//! file, and the rendered answer must equal the results file. Read in place from the shared
//! conformance directory.

use std::fs;
use std::path::PathBuf;

use ostiary_engine::{FoundSubject, Permissionship, ResolvedSubject};
use serde::Deserialize;
use serde_json::Map;

use crate::support::fixture;

#[derive(Deserialize)]
struct Manifest {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    datafile: String,
    operations: Vec<Operation>,
}

#[derive(Deserialize)]
struct Operation {
    name: String,
    operation: String,
    #[serde(default)]
    arguments: serde_yaml::Mapping,
    results_file: Option<String>,
}

#[derive(Deserialize)]
struct DataFile {
    schema: String,
    relationships: String,
}

fn steel_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/spicedb/internal/services/steelthreadtesting")
}

fn argument(arguments: &serde_yaml::Mapping, name: &str) -> String {
    arguments
        .get(name)
        .and_then(serde_yaml::Value::as_str)
        .unwrap_or_else(|| panic!("argument `{name}`"))
        .to_owned()
}

/// The steel-thread format: `id`, `id (conditional)`, `* - [a, b]`, sorted.
fn render(found: &[FoundSubject]) -> Vec<String> {
    let one = |subject: &ResolvedSubject| {
        let suffix = match subject.permissionship {
            Permissionship::Conditional { .. } => " (conditional)",
            _ => "",
        };
        format!("{}{suffix}", subject.subject_object_id)
    };
    let mut lines: Vec<String> = found
        .iter()
        .map(|result| {
            let mut line = one(&result.subject);
            if !result.excluded_subjects.is_empty() {
                let excluded: Vec<String> = result.excluded_subjects.iter().map(one).collect();
                line.push_str(&format!(" - [{}]", excluded.join(", ")));
            }
            line
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn steel_thread_lookup_subjects() {
    let dir = steel_dir();
    let manifest: Manifest =
        serde_yaml::from_str(&fs::read_to_string(dir.join("MANIFEST.derived.yaml")).unwrap())
            .unwrap();
    let mut n_compared = 0;
    for case in &manifest.cases {
        let operations: Vec<&Operation> = case
            .operations
            .iter()
            .filter(|operation| operation.operation == "lookupSubjects")
            .collect();
        if operations.is_empty() {
            continue;
        }
        let data: DataFile =
            serde_yaml::from_str(&fs::read_to_string(dir.join(&case.datafile)).unwrap()).unwrap();
        let fixture = fixture(&data.schema, &data.relationships).unwrap();
        for operation in operations {
            let args = &operation.arguments;
            let resource = format!(
                "{}:{}",
                argument(args, "resource_type"),
                argument(args, "resource_object_id")
            );
            let found = fixture
                .engine
                .lookup_subjects(
                    fixture.snapshot.as_ref(),
                    &fixture.schema,
                    &resource.parse().unwrap(),
                    &argument(args, "permission").parse().unwrap(),
                    &argument(args, "subject_type").parse().unwrap(),
                    None,
                    &Map::new(),
                )
                .unwrap();
            let results_file = operation.results_file.as_ref().unwrap();
            let expected: Vec<String> =
                serde_yaml::from_str(&fs::read_to_string(dir.join(results_file)).unwrap()).unwrap();
            assert_eq!(
                render(&found),
                expected,
                "{} / {}",
                case.name,
                operation.name
            );
            n_compared += 1;
        }
    }
    assert_eq!(
        n_compared, 4,
        "the manifest lists 4 LookupSubjects operations"
    );
}
