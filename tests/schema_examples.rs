//! Every schema in `schema-examples/` compiles without errors or warnings, is already in
//! canonical form (`ostiary schema fmt --check` would pass), and round-trips: printing and
//! re-compiling gives the same IR.

use std::fs;
use std::path::PathBuf;

use ostiary_schema::printer::format;
use ostiary_schema::{SourceFile, compile_str};

fn example_schemas() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema-examples");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("schema-examples/ exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "zed"))
        .collect();
    files.sort();
    files
}

#[test]
fn schema_examples_compile_cleanly_and_round_trip() {
    let files = example_schemas();
    assert!(
        files.len() >= 8,
        "expected at least 8 examples, found {}",
        files.len()
    );
    let mut problems = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let text = fs::read_to_string(&path).expect("example is readable");
        let compiled = match compile_str(&name, &text) {
            Ok(compiled) => compiled,
            Err(diags) => {
                problems.push(format!("{name} does not compile:\n{diags}"));
                continue;
            }
        };
        problems.extend(compiled.warnings.iter().map(ToString::to_string));

        // What `ostiary schema fmt` writes.
        let printed = format(&SourceFile::new(name.clone(), text.clone()))
            .unwrap_or_else(|diags| panic!("{name} cannot be formatted: {diags:?}"));
        if printed != text {
            problems.push(format!(
                "{name} is not in canonical form: run `ostiary schema fmt {name}`"
            ));
        }

        let reprinted = compile_str(&name, &printed).expect("printed form compiles");
        assert_eq!(
            reprinted.schema, compiled.schema,
            "{name}: printing changed the IR"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
