//! End-to-end tests of `ostiary schema check` and `ostiary schema fmt`, running the built
//! binary.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const VALID: &str = "definition user {}\n\ndefinition doc {\n\trelation viewer: user\n\tpermission view = viewer\n}\n";
const UNFORMATTED: &str = "// the users\ndefinition user {}\ndefinition doc {\n    relation viewer: user\n\n\n    permission view = (viewer)\n}";
const FORMATTED: &str = "// the users\ndefinition user {}\n\ndefinition doc {\n\trelation viewer: user\n\n\tpermission view = viewer\n}\n";
const SYNTAX_ERROR: &str =
    "definition doc {\n  relation viewer: user\n  permission view = viewer +\n}\n";
const UNKNOWN_RELATION: &str =
    "definition user {}\n\ndefinition doc {\n  permission view = missing\n}\n";

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ostiary-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn ostiary(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ostiary"))
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn check_accepts_valid_files() {
    let dir = temp_dir("check-valid");
    let path = write(&dir, "valid.zed", VALID);
    let out = ostiary(&["schema", "check", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("checked 1 file: 0 errors, 0 warnings"));
}

#[test]
fn check_reports_errors_with_file_line_and_column() {
    let dir = temp_dir("check-invalid");
    let valid = write(&dir, "valid.zed", VALID);
    let broken = write(&dir, "broken.zed", SYNTAX_ERROR);
    let unknown = write(&dir, "unknown.zed", UNKNOWN_RELATION);
    let out = ostiary(
        &[
            "schema",
            "check",
            valid.to_str().unwrap(),
            broken.to_str().unwrap(),
            unknown.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // Piped stderr is not a terminal, so there is no colour.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:4:1", broken.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:4:21", unknown.display())),
        "{stderr}"
    );
    assert!(stderr.contains("`missing`"), "{stderr}");
    assert!(stderr.contains("checked 3 files: 2 errors"), "{stderr}");
}

#[test]
fn check_colours_when_asked() {
    let out = ostiary(
        &["schema", "check", "--color", "always", "-"],
        Some(SYNTAX_ERROR),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains('\u{1b}'));
}

#[test]
fn check_prints_warnings_but_succeeds() {
    let schema = "definition user {}\n\ndefinition org {\n  relation member: user\n}\n\ndefinition doc {\n  relation org: org\n  permission view = org->member\n}\n";
    let out = ostiary(&["schema", "check", "-"], Some(schema));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("<stdin>:9:21"), "{stderr}");
    assert!(stderr.contains("1 warning"), "{stderr}");
}

#[test]
fn check_json_lists_every_diagnostic_on_stdout() {
    let out = ostiary(&["schema", "check", "--json", "-"], Some(SYNTAX_ERROR));
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = value.as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    let mut keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "code",
            "column",
            "end_column",
            "end_line",
            "file",
            "help",
            "label",
            "line",
            "message",
            "severity",
        ]
    );
    assert_eq!(item["file"], "<stdin>");
    assert_eq!(
        (item["line"].as_u64(), item["column"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        (item["end_line"].as_u64(), item["end_column"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(item["severity"], "error");
    assert_eq!(item["code"], "syntax");
    assert_eq!(item["message"], "unexpected `}`");

    let valid = ostiary(&["schema", "check", "--json", "-"], Some(VALID));
    assert_eq!(valid.status.code(), Some(0));
    assert_eq!(text(&valid.stdout).trim(), "[]");
}

#[test]
fn check_resolves_imports_relative_to_the_file() {
    let dir = temp_dir("check-imports");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    write(&dir, "sub/user.zed", "definition user {}\n");
    let root = write(
        &dir,
        "root.zed",
        "use import\n\nimport \"sub/user.zed\"\n\ndefinition doc {\n  relation viewer: user\n}\n",
    );
    let out = ostiary(&["schema", "check", root.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let escaping = write(
        &dir,
        "escape.zed",
        "use import\n\nimport \"../outside.zed\"\n\ndefinition doc {}\n",
    );
    let out = ostiary(&["schema", "check", escaping.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("outside the schema's directory"));
}

#[test]
fn check_fails_with_2_on_a_missing_file() {
    let out = ostiary(&["schema", "check", "/nonexistent/schema.zed"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read `/nonexistent/schema.zed`"));
}

#[test]
fn fmt_rewrites_files_in_place() {
    let dir = temp_dir("fmt-rewrite");
    let messy = write(&dir, "messy.zed", UNFORMATTED);
    let tidy = write(&dir, "tidy.zed", FORMATTED);
    let out = ostiary(
        &[
            "schema",
            "fmt",
            messy.to_str().unwrap(),
            tidy.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), FORMATTED);
    assert_eq!(std::fs::read_to_string(&tidy).unwrap(), FORMATTED);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}

#[test]
fn fmt_check_lists_files_that_would_change_and_writes_nothing() {
    let dir = temp_dir("fmt-check");
    let messy = write(&dir, "messy.zed", UNFORMATTED);
    let tidy = write(&dir, "tidy.zed", FORMATTED);
    let out = ostiary(
        &[
            "schema",
            "fmt",
            "--check",
            messy.to_str().unwrap(),
            tidy.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), format!("{}\n", messy.display()));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), UNFORMATTED);

    let out = ostiary(&["schema", "fmt", "--check", tidy.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn fmt_refuses_files_with_syntax_errors() {
    let dir = temp_dir("fmt-syntax");
    let broken = write(&dir, "broken.zed", SYNTAX_ERROR);
    let out = ostiary(&["schema", "fmt", broken.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:4:1", broken.display())),
        "{stderr}"
    );
    assert!(stderr.contains("not formatted"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), SYNTAX_ERROR);
}

#[test]
fn fmt_refuses_to_drop_a_comment() {
    let schema = "definition doc {\n  relation a: doc\n  permission b = a /* why */ + a\n}\n";
    let out = ostiary(&["schema", "fmt", "-"], Some(schema));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("<stdin>:3:20"));
    assert!(text(&out.stderr).contains("formatting would drop this comment"));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn fmt_formats_stdin_to_stdout() {
    let out = ostiary(&["schema", "fmt", "-"], Some(UNFORMATTED));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), FORMATTED);

    let out = ostiary(&["schema", "fmt", "--check", "-"], Some(UNFORMATTED));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "<stdin>\n");
}

#[test]
fn schema_examples_all_check() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema-examples");
    let mut args = vec!["schema".to_owned(), "check".to_owned()];
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "zed") {
            args.push(path.display().to_string());
        }
    }
    assert!(args.len() > 2);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ostiary(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn from_openfga_prints_the_translated_schema() {
    let dir = temp_dir("from-openfga");
    let path = write(
        &dir,
        "model.fga",
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define editor: [user with small]\n    define viewer: [user] or editor\ncondition small(x: int) {\n  x < 10\n}\n",
    );
    let out = ostiary(&["schema", "from-openfga", path.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let zed = text(&out.stdout);
    assert!(zed.contains("caveat small(x int)"), "{zed}");
    assert!(zed.contains("relation viewer_direct: user"), "{zed}");
    assert!(
        zed.contains("permission viewer = viewer_direct + editor"),
        "{zed}"
    );
    let checked = ostiary(&["schema", "check", "-"], Some(&zed));
    assert!(checked.status.success(), "{}", text(&checked.stderr));
}

#[test]
fn from_openfga_rejects_untranslatable_models_with_a_location() {
    let out = ostiary(
        &["schema", "from-openfga", "-"],
        Some("model\n  schema 1.1\nmodule core\ntype user\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("<stdin>:3:1: cannot translate `module core`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
