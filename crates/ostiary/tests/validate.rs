//! End-to-end tests of `ostiary validate`, running the built binary on validation files.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCHEMA: &str = "definition user {}\n\ndefinition document {\n\trelation writer: user\n\trelation viewer: user\n\tpermission view = viewer + writer\n}\n";

const PASSING: &str = r#"---
schemaFile: schema.zed
relationships: |-
  document:readme#writer@user:alice
  document:readme#viewer@user:bob
assertions:
  assertTrue:
    - "document:readme#view@user:alice"
    - "document:readme#view@user:bob"
  assertFalse:
    - "document:readme#view@user:carol"
validation:
  document:readme#view:
    - "[user:alice] is <document:readme#writer>"
    - "[user:bob] is <document:readme#viewer>"
"#;

const FAILING_ASSERTION: &str = r#"---
schemaFile: schema.zed
relationships: |-
  document:readme#writer@user:alice
assertions:
  assertTrue:
    - "document:readme#view@user:alice"
    - "document:readme#view@user:mallory"
"#;

const WRONG_EXPECTED: &str = r#"---
schemaFile: schema.zed
relationships: |-
  document:readme#writer@user:alice
  document:readme#viewer@user:bob
validation:
  document:readme#view:
    - "[user:alice] is <document:readme#viewer>"
"#;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ostiary-validate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schema.zed"), SCHEMA).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn ostiary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn passing_file_exits_zero_with_a_summary() {
    let dir = temp_dir("pass");
    let path = write(&dir, "pass.yaml", PASSING);
    let out = ostiary(&["validate", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "Success! - 2 relationships loaded, 3 assertions run, 1 expected relations validated"
        ),
        "{stderr}"
    );
}

#[test]
fn schema_files_alone_are_validated() {
    let dir = temp_dir("zed");
    let good = dir.join("schema.zed");
    let out = ostiary(&["validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bad = write(
        &dir,
        "bad.zed",
        "definition doc {\n\tpermission view = nobody\n}\n",
    );
    let out = ostiary(&["validate", bad.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.zed:2"), "{stderr}");
}

#[test]
fn failing_assertion_names_file_line_assertion_expected_and_actual() {
    let dir = temp_dir("fail");
    let path = write(&dir, "fail.yaml", FAILING_ASSERTION);
    let out = ostiary(&["validate", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fail.yaml:8"), "{stderr}");
    assert!(
        stderr
            .contains("Expected relation or permission document:readme#view@user:mallory to exist"),
        "{stderr}"
    );
    assert!(stderr.contains("expected true, got false"), "{stderr}");
    assert!(stderr.contains("FAILED - 1 failure"), "{stderr}");
}

#[test]
fn json_output_parses_and_carries_the_failure() {
    let dir = temp_dir("json");
    let pass = write(&dir, "pass.yaml", PASSING);
    let fail = write(&dir, "fail.yaml", FAILING_ASSERTION);
    let out = ostiary(&[
        "validate",
        "--json",
        pass.to_str().unwrap(),
        fail.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["passed"], true);
    assert_eq!(reports[0]["relationships_loaded"], 2);
    assert_eq!(reports[1]["passed"], false);
    let failure = &reports[1]["failures"][0];
    assert_eq!(failure["kind"], "assertion");
    assert_eq!(failure["line"], 8);
    assert_eq!(failure["item"], "document:readme#view@user:mallory");
    assert_eq!(failure["expected"], "true");
    assert_eq!(failure["actual"], "false");
}

#[test]
fn wrong_expected_relations_get_a_suggested_block() {
    let dir = temp_dir("expected");
    let path = write(&dir, "expected.yaml", WRONG_EXPECTED);
    let out = ostiary(&["validate", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("expected.yaml:8"), "{stderr}");
    assert!(
        stderr.contains("subject `user:bob` found but not"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "validation:\n  document:readme#view:\n      - '[user:alice] is <document:readme#writer>'\n      - '[user:bob] is <document:readme#viewer>'\n"
        ),
        "{stderr}"
    );
    let out = ostiary(&["validate", "--json", path.to_str().unwrap()]);
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        reports[0]["suggested_validation"],
        "document:readme#view:\n    - '[user:alice] is <document:readme#writer>'\n    - '[user:bob] is <document:readme#viewer>'\n"
    );
}

#[test]
fn unusable_input_exits_two() {
    let dir = temp_dir("unusable");
    let missing = dir.join("missing.yaml");
    let out = ostiary(&["validate", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let garbage = write(&dir, "garbage.yaml", "- just\n- a list\n");
    let out = ostiary(&["validate", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not a validation file"));
}
