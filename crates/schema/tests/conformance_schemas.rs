//! Every schema in the conformance corpus (`schema:`/`schemaFile:` of the validation YAML files
//! under `spicedb/` and `examples/`, and every `.zed` file there) compiles exactly when SpiceDB
//! v1.54's WriteSchema accepts it. The list of rejected inputs was produced by sending each one
//! to the real SpiceDB (see `/work/shared/harness`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ostiary_schema::{CompileOptions, SourceFile, compile};

/// Inputs SpiceDB's WriteSchema rejects (parse errors, unknown references, imports, which
/// WriteSchema does not allow, alias cycles, unused caveat parameters, ...).
const REJECTED_BY_SPICEDB: &[&str] = &[
    "spicedb/internal/namespace/test/testdata/schema/basic.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/circular-import/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/circular-import/subjects.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/circular-import/user.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/conflicting-definitions/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/diamond-shaped/left.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/diamond-shaped/right.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/diamond-shaped/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/escape-attempt/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/many-imports/apps.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/many-imports/aws.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/many-imports/iam.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/many-imports/okta.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/many-imports/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/many-imports/teams.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/missing-import/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/multiple-use-directives/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/nested-local/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/nested-local-with-hop/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/nested-local-with-hop/transitive/transitive.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/nested-two-layer-local/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/simple-local/root.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/simple-local-with-hop/indirection.zed",
    "spicedb/pkg/schemadsl/compiler/importer-test/simple-local-with-hop/root.zed",
    "spicedb/pkg/schemadsl/parser/tests/arrow.zed",
    "spicedb/pkg/schemadsl/parser/tests/arrowillegalfunc.zed",
    "spicedb/pkg/schemadsl/parser/tests/arrowillegalops.zed",
    "spicedb/pkg/schemadsl/parser/tests/arrowops.zed",
    "spicedb/pkg/schemadsl/parser/tests/associativity.zed",
    "spicedb/pkg/schemadsl/parser/tests/basic.zed",
    "spicedb/pkg/schemadsl/parser/tests/broken.zed",
    "spicedb/pkg/schemadsl/parser/tests/brokenwildcard.zed",
    "spicedb/pkg/schemadsl/parser/tests/caveatstype.zed",
    "spicedb/pkg/schemadsl/parser/tests/complexcaveat.zed",
    "spicedb/pkg/schemadsl/parser/tests/crosstenant.zed",
    "spicedb/pkg/schemadsl/parser/tests/duplicate_use_statement.zed",
    "spicedb/pkg/schemadsl/parser/tests/emptycaveat.zed",
    "spicedb/pkg/schemadsl/parser/tests/expirationbeforecaveat.zed",
    "spicedb/pkg/schemadsl/parser/tests/indentedcomments.zed",
    "spicedb/pkg/schemadsl/parser/tests/invalid_perm_name.zed",
    "spicedb/pkg/schemadsl/parser/tests/invalidcaveatexpr.zed",
    "spicedb/pkg/schemadsl/parser/tests/invaliduse.zed",
    "spicedb/pkg/schemadsl/parser/tests/invaliduseexpiration.zed",
    "spicedb/pkg/schemadsl/parser/tests/localimport.zed",
    "spicedb/pkg/schemadsl/parser/tests/localimport_import_path_with_keyword.zed",
    "spicedb/pkg/schemadsl/parser/tests/localimport_with_mismatched_quotes.zed",
    "spicedb/pkg/schemadsl/parser/tests/localimport_with_quotes_in_quotes.zed",
    "spicedb/pkg/schemadsl/parser/tests/localimport_with_singlequotes.zed",
    "spicedb/pkg/schemadsl/parser/tests/localimport_with_unterminated_string.zed",
    "spicedb/pkg/schemadsl/parser/tests/multidef.zed",
    "spicedb/pkg/schemadsl/parser/tests/multiparen.zed",
    "spicedb/pkg/schemadsl/parser/tests/nil.zed",
    "spicedb/pkg/schemadsl/parser/tests/nonsense_top_level_block.zed",
    "spicedb/pkg/schemadsl/parser/tests/parens.zed",
    "spicedb/pkg/schemadsl/parser/tests/partials_with_malformed_partial_block.zed",
    "spicedb/pkg/schemadsl/parser/tests/partials_with_malformed_partial_reference.zed",
    "spicedb/pkg/schemadsl/parser/tests/partials_with_malformed_reference_splat.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_edge_cases.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_invalid_expression.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_missing_expression.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_mixed_annotations.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_mixed_single_multiple.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_multiple_types.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_type_annotation.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_type_annotation_double_colon.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_type_annotation_empty_after_colon.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_type_annotation_just_pipe.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_type_annotation_newline_after_colon.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_type_annotation_pipe_no_type_before.zed",
    "spicedb/pkg/schemadsl/parser/tests/permission_type_annotation_trailing_pipe_no_type_after.zed",
    "spicedb/pkg/schemadsl/parser/tests/relation_invalid_type.zed",
    "spicedb/pkg/schemadsl/parser/tests/relation_missing_type.zed",
    "spicedb/pkg/schemadsl/parser/tests/unclosedcaveat.zed",
    "spicedb/pkg/schemadsl/parser/tests/unionpos.zed",
    "spicedb/pkg/schemadsl/parser/tests/use_self.zed",
    "spicedb/pkg/schemadsl/parser/tests/useafterdef.zed",
    "spicedb/pkg/schemadsl/parser/tests/useexpiration.zed",
    "spicedb/pkg/schemadsl/parser/tests/useexpirationkeyword.zed",
    "spicedb/pkg/schemadsl/parser/tests/wildcard.zed",
    "spicedb/pkg/validationfile/testdata/invalid_caveat.yaml",
    "spicedb/pkg/validationfile/testdata/invalid_schemafile.zed",
    "spicedb/pkg/validationfile/testdata/loader_using_invalid_schemafile.yaml -> ./invalid_schemafile.zed",
    "examples/authzed-zed/internal/cmd/preview-test/composable-schema-invalid-root.zed",
    "examples/authzed-zed/internal/cmd/preview-test/composable-schema-root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/composable-schema-imported-with-error.zed",
    "examples/authzed-zed/internal/cmd/validate-test/composable-schema-imports-file-with-error.zed",
    "examples/authzed-zed/internal/cmd/validate-test/composable-schema-root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/composable-schema-warning-root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/composable-schema-with-import-error-imported.zed",
    "examples/authzed-zed/internal/cmd/validate-test/composable-schema-with-import-error-root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/external-and-composable.yaml -> ./composable-schema-root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/external-composable-with-error.yaml -> ./composable-schema-with-import-error-root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/invalid-schema.zed",
    "examples/authzed-zed/internal/cmd/validate-test/missing-relation.yaml",
    "examples/authzed-zed/internal/cmd/validate-test/missing-relation.zed",
    "examples/authzed-zed/internal/cmd/validate-test/nested-composable-schema.zed",
    "examples/authzed-zed/internal/cmd/validate-test/nonexistant-import.zed",
    "examples/authzed-zed/internal/cmd/validate-test/schema-error-after-assertions.yaml",
    "examples/authzed-zed/internal/cmd/validate-test/schema-error-after-relationships.yaml",
    "examples/authzed-zed/internal/cmd/validate-test/warnings.zed",
    "examples/authzed-zed/internal/cmd/validate-test/yaml-with-zed-extension.zed",
    "examples/authzed-zed/internal/cmd/validate-test/sibling-folders/schema/domain.zed",
    "examples/authzed-zed/internal/cmd/validate-test/sibling-folders/schema/root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/sibling-folders/tests/validation.yaml -> ../schema/root.zed",
    "examples/authzed-zed/internal/cmd/validate-test/upwards-walk-schema-with-nonexistant-import/validation.yaml -> ../nonexistant-import.zed",
    "examples/tree-sitter-spicedb/test/highlight/keywords.zed",
    "examples/tree-sitter-spicedb/test/highlight/punctuation.zed",
    "examples/tree-sitter-spicedb/test/tags/schema.zed",
];

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
}

#[expect(
    clippy::panic,
    clippy::unwrap_used,
    reason = "a test helper: a broken corpus must fail loudly"
)]
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// (name, schema text) for every schema in the corpus.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a broken corpus must fail loudly"
)]
fn corpus() -> BTreeMap<String, String> {
    let root = conformance_dir();
    let mut items = BTreeMap::new();
    for tree in ["spicedb", "examples"] {
        let mut paths = Vec::new();
        walk(&root.join(tree), &mut paths);
        for path in paths {
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let ext = path
                .extension()
                .and_then(|ext| ext.to_str())
                .unwrap_or_default();
            if ext == "zed" {
                items.insert(rel, std::fs::read_to_string(&path).unwrap());
            } else if ext == "yaml" || ext == "yml" {
                let text = std::fs::read_to_string(&path).unwrap();
                let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&text) else {
                    continue;
                };
                if let Some(schema) = doc.get("schema").and_then(|value| value.as_str()) {
                    items.insert(rel, schema.to_string());
                } else if let Some(file) = doc.get("schemaFile").and_then(|value| value.as_str()) {
                    let schema_path = path.parent().unwrap().join(file);
                    // One fixture deliberately names a file that does not exist.
                    let Ok(schema) = std::fs::read_to_string(&schema_path) else {
                        continue;
                    };
                    items.insert(format!("{rel} -> {file}"), schema);
                }
            }
        }
    }
    items
}

#[test]
fn corpus_schemas_compile_exactly_when_spicedb_accepts_them() {
    let items = corpus();
    assert!(
        items.len() >= 270,
        "the corpus shrank: {} schemas",
        items.len()
    );
    for name in REJECTED_BY_SPICEDB {
        assert!(
            items.contains_key(*name),
            "listed input `{name}` is not in the corpus"
        );
    }
    let mut mismatches = Vec::new();
    let mut n_accepted = 0;
    let mut n_compiled = 0;
    for (name, text) in &items {
        let spicedb_accepts = !REJECTED_BY_SPICEDB.contains(&name.as_str());
        n_accepted += usize::from(spicedb_accepts);
        let result = compile(
            &[SourceFile::new(name.clone(), text.clone())],
            &CompileOptions::default(),
        );
        if spicedb_accepts && result.is_ok() {
            n_compiled += 1;
        }
        match (&result, spicedb_accepts) {
            (Ok(_), true) | (Err(_), false) => {}
            (Ok(_), false) => mismatches.push(format!("{name}: compiles, SpiceDB rejects it")),
            (Err(diags), true) => {
                mismatches.push(format!("{name}: SpiceDB accepts it, we report:\n{diags}"))
            }
        }
    }
    println!(
        "{n_compiled} of {n_accepted} schemas SpiceDB accepts compile; {} inputs in total, {} rejected by both",
        items.len(),
        items.len() - n_accepted
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
