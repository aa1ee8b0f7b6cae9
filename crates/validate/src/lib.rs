//! Runs SpiceDB-format validation files entirely in process, as `zed validate` does: the
//! schema is compiled, the relationships are loaded into a throwaway [`MemDatastore`], the
//! `assertions` run through Check and the `validation` block (expected relations) is compared
//! with a recursive Expand.
//!
//! ```
//! let text = r#"
//! schema: |
//!   definition user {}
//!   definition doc {
//!     relation viewer: user
//!   }
//! relationships: doc:readme#viewer@user:alice
//! assertions:
//!   assertTrue:
//!     - doc:readme#viewer@user:alice
//! "#;
//! let report = ostiary_validate::validate_str("example.yaml", text, std::path::Path::new("."))?;
//! assert!(report.passed(), "{:?}", report.failures);
//! assert_eq!(report.assertions_run, 1);
//! # Ok::<(), ostiary_validate::ValidateError>(())
//! ```
//!
//! Stages run in zed's order and stop at the first that fails: load (schema, then
//! relationships), assertions (true, caveated, false), expected relations.
//!
//! [`MemDatastore`]: ostiary_store_mem::MemDatastore

mod assertions;
mod expected;
mod file;
mod fixture;
mod lines;
mod openfga;

use std::path::Path;

pub use expected::{ExpectedSubject, parse_expected_line};
pub use fixture::Fixture;
pub use openfga::{OpenFgaError, OpenFgaTranslation, openfga_to_zed, translate_openfga};

/// Input that cannot be validated at all (as opposed to a validation that fails).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// The file cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a YAML mapping of a validation file.
    #[error("`{path}` is not a validation file: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// What the YAML decoder said.
        message: String,
    },
}

/// Which stage of a validation file a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The file's keys (`schema` and `schemaFile` both or neither, legacy keys).
    File,
    /// The schema does not compile.
    Schema,
    /// A relationship does not parse, repeats or does not fit the schema.
    Relationship,
    /// An assertion does not hold (or cannot be run).
    Assertion,
    /// The `validation` block differs from the expected relations of the data.
    ExpectedRelations,
}

/// One failure, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The stage.
    pub kind: FailureKind,
    /// The file the line is in (the validation file, or the schema file it names).
    pub file: String,
    /// The 1-based line, when known.
    pub line: Option<u32>,
    /// What failed: the assertion, the relationship, the expected-relations key or line.
    pub item: String,
    /// What went wrong.
    pub message: String,
    /// The expected answer (assertions: `true`, `caveated`, `false`).
    pub expected: Option<String>,
    /// The actual answer.
    pub actual: Option<String>,
}

/// The outcome of one validation file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The file's name as given.
    pub file: String,
    /// Relationships written to the store.
    pub relationships_loaded: usize,
    /// Assertions run (all three kinds).
    pub assertions_run: usize,
    /// Keys of the `validation` block compared.
    pub expected_relations_validated: usize,
    /// Everything that failed, in file order within each stage.
    pub failures: Vec<Failure>,
    /// Schema lint warnings (they do not fail the validation).
    pub warnings: Vec<Failure>,
    /// When the `validation` block differs: the block regenerated from the data, in zed's
    /// YAML form (keys and lines sorted).
    pub suggested_validation: Option<String>,
}

impl Report {
    fn new(file: &str) -> Self {
        Report {
            file: file.to_owned(),
            relationships_loaded: 0,
            assertions_run: 0,
            expected_relations_validated: 0,
            failures: Vec::new(),
            warnings: Vec::new(),
            suggested_validation: None,
        }
    }

    /// Whether every stage passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Validates one file: a YAML validation file, or (ending in `.zed`) a schema on its own.
///
/// # Errors
///
/// The file cannot be read, or is not a YAML mapping.
pub fn validate_file(path: &Path) -> Result<Report, ValidateError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ValidateError::Io {
        path: name.clone(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    if path.extension().is_some_and(|ext| ext == "zed") {
        return Ok(file::validate_zed(&name, &text, dir));
    }
    validate_str(&name, &text, dir)
}

/// Validates the text of a YAML validation file named `name`; `schemaFile` is resolved
/// relative to `dir`.
///
/// # Errors
///
/// The text is not a YAML mapping.
pub fn validate_str(name: &str, text: &str, dir: &Path) -> Result<Report, ValidateError> {
    file::validate_yaml(name, text, dir)
}

/// Loads only the schema and relationships of a YAML validation file (its `assertions` and
/// `validation` blocks are not run), for queries of one's own through [`Fixture::engine`]:
/// the report of the load, and the store when the load succeeded (the report then has no
/// failures).
///
/// ```
/// use ostiary_types::{ObjectRef, ObjectType, RelationName};
///
/// let text = "schema: |\n  definition user {}\n  definition doc {\n    relation viewer: user\n  }\nrelationships: doc:readme#viewer@user:alice\n";
/// let (report, fixture) = ostiary_validate::load_str("example.yaml", text, std::path::Path::new("."))?;
/// assert!(report.passed(), "{:?}", report.failures);
/// let fixture = fixture.expect("loaded");
/// let readme: ObjectRef = "doc:readme".parse()?;
/// let found = fixture.engine().lookup_subjects(
///     fixture.snapshot(),
///     fixture.schema(),
///     &readme,
///     &RelationName::new("viewer")?,
///     &ObjectType::new("user")?,
///     None,
///     &serde_json::Map::new(),
/// )?;
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].subject.subject_object_id.as_str(), "alice");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// The text is not a YAML mapping.
pub fn load_str(
    name: &str,
    text: &str,
    dir: &Path,
) -> Result<(Report, Option<Fixture>), ValidateError> {
    file::load_yaml(name, text, dir)
}
