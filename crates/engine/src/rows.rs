//! Reads of one node's relationships into buffers reused across a request, shared by the
//! evaluators (Check, LookupSubjects) so the hot path allocates a buffer only when the
//! recursion goes deeper than it has before.

use ostiary_schema::ir::{DefinitionId, RelationId};
use ostiary_store::{Page, ResourceQuery, Snapshot};
use ostiary_types::{ObjectId, Relationship, SubjectFilter};

use crate::{EngineError, EngineSchema};

/// A pool of relationship buffers.
#[derive(Debug, Default)]
pub(crate) struct RowPool {
    buffers: Vec<Vec<Relationship>>,
}

impl RowPool {
    /// Reads `def:id#rel` relationships (matching `filter`, if any) into a pooled buffer;
    /// give it back with [`RowPool::recycle`].
    pub(crate) fn read(
        &mut self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        (def, rel, id): (DefinitionId, RelationId, &ObjectId),
        filter: Option<&SubjectFilter>,
    ) -> Result<Vec<Relationship>, EngineError> {
        let mut buffer = self.buffers.pop().unwrap_or_default();
        let query = ResourceQuery {
            resource_type: schema.object_type(def),
            resource_ids: std::slice::from_ref(id),
            relation: Some(schema.relation_name(def, rel)),
            subject: filter,
        };
        snapshot.read_resources(&query, Page::ALL, &mut buffer)?;
        Ok(buffer)
    }

    /// Returns a buffer to the pool.
    pub(crate) fn recycle(&mut self, mut buffer: Vec<Relationship>) {
        buffer.clear();
        self.buffers.push(buffer);
    }
}
