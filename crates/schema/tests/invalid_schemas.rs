//! Golden tests for diagnostics: every `test_data/check/NAME.zed` is compiled and its rendered
//! diagnostics (position, message, label, help) are compared with `NAME.txt`.
//!
//! A missing `.txt` is written out; `UPDATE_EXPECT=1` rewrites them all. Files named `warn_*`
//! must compile with warnings, `ok_*` must compile cleanly, every other file must fail.
//! Each case was checked against SpiceDB v1.54 WriteSchema: it rejects every failing case
//! and accepts every `warn_*`/`ok_*` case.

use std::path::PathBuf;

use ostiary_schema::{CompileOptions, Diagnostic, SourceFile, compile};

fn render(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diag in diags {
        out.push_str(&format!("{diag}\n"));
        if let Some(label) = &diag.label {
            out.push_str(&format!(
                "  label: {label} (`{}`)\n",
                diag.file.slice(diag.span)
            ));
        }
        if let Some(help) = &diag.help {
            out.push_str(&format!("  help: {help}\n"));
        }
    }
    if diags.is_empty() {
        out.push_str("no diagnostics\n");
    }
    out
}

#[test]
fn check_goldens() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data/check");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("test_data/check exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "zed"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 60,
        "expected at least 60 cases, found {}",
        paths.len()
    );
    let mut failures = Vec::new();
    for path in &paths {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let file = SourceFile::new(format!("{stem}.zed"), text);
        let result = compile(&[file], &CompileOptions::default());
        let diags: Vec<Diagnostic> = match &result {
            Ok(compiled) => compiled.warnings.clone(),
            Err(diags) => diags.items().to_vec(),
        };
        let expect_ok = stem.starts_with("warn_") || stem.starts_with("ok_");
        if result.is_ok() != expect_ok {
            failures.push(format!(
                "{stem}: compiled = {}, expected {expect_ok}",
                result.is_ok()
            ));
        }
        if stem.starts_with("warn_") && diags.is_empty() {
            failures.push(format!("{stem}: expected warnings"));
        }
        if stem.starts_with("ok_") && !diags.is_empty() {
            failures.push(format!("{stem}: expected no diagnostics"));
        }
        let rendered = render(&diags);
        let golden = path.with_extension("txt");
        match std::fs::read_to_string(&golden) {
            Ok(expected) if !update => {
                if expected != rendered {
                    failures.push(format!(
                        "{stem}: diagnostics differ (UPDATE_EXPECT=1 to accept)\n--- expected\n{expected}--- actual\n{rendered}"
                    ));
                }
            }
            _ => std::fs::write(&golden, &rendered).unwrap(),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
