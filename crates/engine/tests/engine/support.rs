//! Test fixtures: a schema and relationships in text form loaded into a `MemDatastore`.

use std::sync::Arc;

use ostiary_engine::{Engine, EngineError, EngineSchema, LookupResult, Permissionship};
use ostiary_store::{DatastoreExt, RelationshipUpdate, Snapshot};
use ostiary_store_mem::MemDatastore;
use ostiary_types::{
    ObjectType, RelationName, Relationship, RelationshipKey, SubjectRef, TenantId,
};
use serde_json::{Map, Value as Json};

/// A loaded store and schema.
pub(crate) struct Fixture {
    pub(crate) schema: EngineSchema,
    pub(crate) snapshot: Arc<dyn Snapshot>,
    pub(crate) engine: Engine,
}

/// Compiles `schema_text` and writes the relationships (one per line; blank lines and `//`
/// comments skipped).
pub(crate) fn fixture(schema_text: &str, relationships: &str) -> Result<Fixture, String> {
    let compiled = ostiary_schema::compile_str("schema.zed", schema_text)
        .map_err(|diags| format!("schema: {diags:?}"))?
        .schema;
    let schema = EngineSchema::new(Arc::new(compiled)).map_err(|err| err.to_string())?;
    let store = MemDatastore::default();
    let tenant = TenantId::default_tenant();
    let mut updates = Vec::new();
    for line in relationships.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let rel: Relationship = line
            .parse()
            .map_err(|err| format!("relationship `{line}`: {err}"))?;
        updates.push(RelationshipUpdate::Touch(rel));
    }
    for chunk in updates.chunks(500) {
        store
            .write_relationships(&tenant, &[], chunk)
            .map_err(|err| err.to_string())?;
    }
    let snapshot = store
        .head_snapshot(&tenant)
        .map_err(|err| err.to_string())?;
    Ok(Fixture {
        schema,
        snapshot,
        engine: Engine::default(),
    })
}

impl Fixture {
    /// Checks `resource#permission@subject` (text form) with a context.
    pub(crate) fn check_with(
        &self,
        text: &str,
        context: &Map<String, Json>,
    ) -> Result<Permissionship, EngineError> {
        let key: RelationshipKey = text.parse().expect("valid check text");
        self.engine
            .check(
                self.snapshot.as_ref(),
                &self.schema,
                key.resource(),
                key.relation(),
                key.subject(),
                context,
            )
            .map(|res| res.permissionship)
    }

    /// LookupResources, all pages of `page_size` (or one unlimited page).
    pub(crate) fn lookup_resources(
        &self,
        resource_type: &ObjectType,
        permission: &RelationName,
        subject: &SubjectRef,
        context: &Map<String, Json>,
        page_size: Option<usize>,
    ) -> Result<Vec<LookupResult>, EngineError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.engine.lookup_resources(
                self.snapshot.as_ref(),
                &self.schema,
                resource_type,
                permission,
                subject,
                context,
                page_size,
                cursor.as_deref(),
            )?;
            all.extend(page.results);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }
}
