//! Runs SpiceDB's compiler test table (`compiler_test_cases.derived.yaml`) through
//! [`ostiary_schema::check_translation`]: the same cases succeed and fail, and where SpiceDB
//! names a position, our first error is at it (or inside the item SpiceDB points at).

use std::path::PathBuf;

use ostiary_schema::{CompileOptions, ObjectTypePrefix, SourceFile, check_translation};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Table {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    object_type_prefix: String,
    input: String,
    expected_error: Option<String>,
    expect_success: bool,
}

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
}

/// Parses `line L, column C` (SpiceDB's 1-based position) out of an expected error.
fn expected_position(error: &str) -> Option<(u32, u32)> {
    let rest = &error[error.find(", line ")? + 7..];
    let (line, rest) = rest.split_once(", column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// Parses `ERROR: name:L:C:` (a CEL position, 1-based line and column).
fn expected_cel_position(error: &str) -> Option<(u32, u32)> {
    let rest = error.strip_prefix("ERROR: ")?;
    let mut parts = rest.split(':');
    let _name = parts.next()?;
    let line: u32 = parts.next()?.parse().ok()?;
    let column: u32 = parts.next()?.parse().ok()?;
    Some((line, column))
}

#[test]
fn spicedb_compiler_cases() {
    let path =
        conformance_dir().join("spicedb/pkg/schemadsl/compiler/compiler_test_cases.derived.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let table: Table = serde_yaml::from_str(&text).expect("valid fixture yaml");
    assert!(
        table.cases.len() >= 79,
        "expected the whole table, found {}",
        table.cases.len()
    );
    let mut failures = Vec::new();
    for case in &table.cases {
        let prefix = match case.object_type_prefix.as_str() {
            "sometenant" => ObjectTypePrefix::Prepend("sometenant".into()),
            "unset" => ObjectTypePrefix::Require,
            _ => ObjectTypePrefix::AllowUnprefixed,
        };
        let options = CompileOptions {
            object_type_prefix: prefix,
        };
        let file = SourceFile::new(case.name.clone(), case.input.clone());
        let result = check_translation(&[file], &options);
        match (&result, case.expect_success) {
            (Ok(()), true) => {}
            (Ok(()), false) => failures.push(format!(
                "{}: accepted, SpiceDB fails with {:?}",
                case.name, case.expected_error
            )),
            (Err(diags), true) => failures.push(format!("{}: rejected: {diags}", case.name)),
            (Err(diags), false) => {
                let expected = case.expected_error.as_deref().unwrap_or_default();
                let wanted =
                    expected_position(expected).or_else(|| expected_cel_position(expected));
                if let Some((line, column)) = wanted {
                    let first = diags.first();
                    let got = first.position();
                    // SpiceDB points at the start of the enclosing node (the definition, the
                    // relation, the parameter); we point at the offending name inside it, so
                    // the same line at or after SpiceDB's column is a match.
                    if got.line != line || got.column < column {
                        failures.push(format!(
                            "{}: first error at {got}, SpiceDB at {line}:{column}: {first}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    println!(
        "{} of {} compiler cases pass",
        table.cases.len() - failures.len(),
        table.cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
