//! Tidy rules for the whole workspace, checked on every `cargo test` (rust-analyzer style):
//! the crate dependency graph of ARCHITECTURE.md, the foreign crates each layer may name,
//! and file conventions.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Every crate under `crates/` and the internal crates it may depend on (normal and build
/// dependencies). A new edge is an architecture change: update ARCHITECTURE.md too.
const ALLOWED_INTERNAL: &[(&str, &[&str])] = &[
    ("ostiary-types", &[]),
    ("ostiary-schema", &["ostiary-types"]),
    ("ostiary-store", &["ostiary-types"]),
    ("ostiary-store-mem", &["ostiary-types", "ostiary-store"]),
    ("ostiary-store-rocks", &["ostiary-types", "ostiary-store"]),
    (
        "ostiary-store-conformance",
        &["ostiary-types", "ostiary-store"],
    ),
    (
        "ostiary-engine",
        &["ostiary-types", "ostiary-schema", "ostiary-store"],
    ),
    ("ostiary-proto", &[]),
    ("ostiary-tenancy", &["ostiary-types", "ostiary-store"]),
    (
        "ostiary-validate",
        &[
            "ostiary-types",
            "ostiary-schema",
            "ostiary-store",
            "ostiary-store-mem",
            "ostiary-engine",
        ],
    ),
    (
        "ostiary-server",
        &[
            "ostiary-types",
            "ostiary-schema",
            "ostiary-store",
            "ostiary-engine",
            "ostiary-proto",
            "ostiary-tenancy",
        ],
    ),
    (
        "ostiary-testkit",
        &[
            "ostiary-types",
            "ostiary-schema",
            "ostiary-store",
            "ostiary-store-mem",
            "ostiary-store-rocks",
            "ostiary-engine",
            "ostiary-proto",
            "ostiary-server",
        ],
    ),
    (
        "ostiary",
        &[
            "ostiary-types",
            "ostiary-schema",
            "ostiary-store",
            "ostiary-store-mem",
            "ostiary-store-rocks",
            "ostiary-engine",
            "ostiary-proto",
            "ostiary-server",
            "ostiary-tenancy",
            "ostiary-validate",
        ],
    ),
];

/// Foreign crates a crate must never name, so that the pure layers stay pure and the
/// RocksDB C++ build stays confined to one crate.
const FORBIDDEN_EXTERNAL: &[(&str, &[&str])] = &[
    (
        "ostiary-types",
        &["tonic", "prost", "rocksdb", "anyhow", "tokio"],
    ),
    (
        "ostiary-schema",
        &["tonic", "prost", "rocksdb", "anyhow", "tokio"],
    ),
    ("ostiary-store", &["tonic", "prost", "rocksdb", "anyhow"]),
    (
        "ostiary-store-mem",
        &["tonic", "prost", "rocksdb", "anyhow"],
    ),
    (
        "ostiary-store-conformance",
        &["tonic", "prost", "rocksdb", "anyhow"],
    ),
    ("ostiary-engine", &["tonic", "prost", "rocksdb", "anyhow"]),
    ("ostiary-validate", &["tonic", "prost", "rocksdb", "anyhow"]),
    ("ostiary-tenancy", &["tonic", "prost", "rocksdb", "anyhow"]),
    ("ostiary-server", &["rocksdb"]),
];

/// The only crates allowed to name `tonic` or `prost` directly.
const GRPC_CRATES: &[&str] = &[
    "ostiary-proto",
    "ostiary-server",
    "ostiary-testkit",
    "ostiary",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}

struct Manifest {
    name: String,
    /// Dependency name → section it came from (`dependencies`, `build-dependencies`, ...).
    deps: BTreeMap<String, String>,
}

fn read_manifests() -> Vec<Manifest> {
    let crates_dir = workspace_root().join("crates");
    let mut manifests = Vec::new();
    for entry in fs::read_dir(&crates_dir).expect("crates/ is readable") {
        let path = entry.expect("directory entry").path().join("Cargo.toml");
        if !path.exists() {
            continue;
        }
        let text = fs::read_to_string(&path).expect("manifest is readable");
        let value: toml::Table = text.parse().expect("manifest is valid TOML");
        let name = value["package"]["name"]
            .as_str()
            .expect("package.name is a string")
            .to_owned();
        let mut deps = BTreeMap::new();
        for section in ["dependencies", "build-dependencies", "dev-dependencies"] {
            if let Some(table) = value.get(section).and_then(|v| v.as_table()) {
                for dep in table.keys() {
                    deps.insert(dep.clone(), section.to_owned());
                }
            }
        }
        manifests.push(Manifest { name, deps });
    }
    manifests.sort_by(|a, b| a.name.cmp(&b.name));
    manifests
}

#[test]
fn crate_graph_follows_architecture() {
    let manifests = read_manifests();
    assert!(!manifests.is_empty(), "no crates found under crates/");
    let mut problems = Vec::new();
    for manifest in &manifests {
        let Some((_, allowed)) = ALLOWED_INTERNAL.iter().find(|(n, _)| *n == manifest.name) else {
            problems.push(format!(
                "crate `{}` is not in the tidy table: add it to tests/tidy.rs and ARCHITECTURE.md",
                manifest.name
            ));
            continue;
        };
        for (dep, section) in &manifest.deps {
            let internal = dep.starts_with("ostiary");
            // The conformance suite is the one internal dev-dependency every backend takes.
            let is_conformance_dev =
                dep == "ostiary-store-conformance" && section == "dev-dependencies";
            if internal && !allowed.contains(&dep.as_str()) && !is_conformance_dev {
                // Dev-dependencies on crates already below us are fine; anything else is an edge.
                if section != "dev-dependencies" || dep == "ostiary-testkit" {
                    problems.push(format!(
                        "`{}` depends on `{dep}` ({section}), which the architecture does not allow",
                        manifest.name
                    ));
                }
            }
            if !internal && section != "dev-dependencies" {
                if let Some((_, forbidden)) =
                    FORBIDDEN_EXTERNAL.iter().find(|(n, _)| *n == manifest.name)
                    && forbidden.contains(&dep.as_str())
                {
                    problems.push(format!("`{}` must not depend on `{dep}`", manifest.name));
                }
                if (dep == "tonic" || dep == "prost")
                    && !GRPC_CRATES.contains(&manifest.name.as_str())
                {
                    problems.push(format!(
                        "`{}` names `{dep}`; only the proto and server layers may",
                        manifest.name
                    ));
                }
                if dep == "rocksdb" && manifest.name != "ostiary-store-rocks" {
                    problems.push(format!(
                        "`{}` names `rocksdb`; only ostiary-store-rocks may",
                        manifest.name
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "tidy violations:\n{}",
        problems.join("\n")
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_says_what_it_is_for() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "tests", "bench", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(!files.is_empty());
    let mut problems = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        if file.file_name().is_some_and(|n| n == "mod.rs") {
            problems.push(format!("{rel}: use `foo.rs` + `foo/`, not `mod.rs`"));
        }
        let text = fs::read_to_string(&file).expect("source is readable");
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        if !first.starts_with("//!") {
            problems.push(format!("{rel}: the file must open with a `//!` line"));
        }
    }
    assert!(
        problems.is_empty(),
        "tidy violations:\n{}",
        problems.join("\n")
    );
}
