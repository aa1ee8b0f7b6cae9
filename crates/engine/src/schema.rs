//! `EngineSchema`: a compiled schema plus the validated names the engine needs to build store
//! queries, prepared once per schema revision so that evaluation never re-validates names.

use std::sync::Arc;

use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{DefinitionId, RelationId};
use ostiary_types::{ObjectType, RelationName};

use crate::EngineError;

/// A compiled schema ready for evaluation. Build it once per schema revision and share it
/// (it is cheap to clone: everything is behind `Arc`s).
#[derive(Debug, Clone)]
pub struct EngineSchema {
    compiled: Arc<CompiledSchema>,
    /// `ObjectType` of each definition, indexed by [`DefinitionId`].
    types: Arc<[ObjectType]>,
    /// `RelationName` of each relation, indexed by [`DefinitionId`] then [`RelationId`].
    relations: Arc<[Vec<RelationName>]>,
    /// Whether relationships may carry an expiration (then answers change with time at one
    /// revision and must not be cached).
    may_expire: bool,
}

impl EngineSchema {
    /// Prepares a compiled schema.
    ///
    /// # Errors
    ///
    /// [`EngineError::Internal`] if a definition or relation name is not a valid object type
    /// or relation name (the compiler guarantees they are).
    pub fn new(compiled: Arc<CompiledSchema>) -> Result<Self, EngineError> {
        let mut types = Vec::with_capacity(compiled.definitions.len());
        let mut relations = Vec::with_capacity(compiled.definitions.len());
        for definition in &compiled.definitions {
            types.push(
                ObjectType::new(&definition.name)
                    .map_err(|err| EngineError::Internal(err.to_string()))?,
            );
            let names = definition
                .relations
                .iter()
                .map(|relation| RelationName::new(&relation.name))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| EngineError::Internal(err.to_string()))?;
            relations.push(names);
        }
        let may_expire = compiled.features.expiration
            || compiled.definitions.iter().any(|definition| {
                definition.relations.iter().any(|relation| {
                    relation
                        .allowed_types()
                        .iter()
                        .any(|allowed| allowed.expiration)
                })
            });
        Ok(Self {
            compiled,
            types: types.into(),
            relations: relations.into(),
            may_expire,
        })
    }

    /// Whether relationships under this schema may expire.
    pub(crate) fn may_expire(&self) -> bool {
        self.may_expire
    }

    /// The compiled schema.
    pub fn compiled(&self) -> &CompiledSchema {
        &self.compiled
    }

    /// The object type of definition `id`.
    pub(crate) fn object_type(&self, id: DefinitionId) -> &ObjectType {
        &self.types[id.index()]
    }

    /// The name of relation `rel` of definition `def`.
    pub(crate) fn relation_name(&self, def: DefinitionId, rel: RelationId) -> &RelationName {
        &self.relations[def.index()][rel.index()]
    }

    /// Resolves a definition by object type.
    pub(crate) fn definition_id(&self, object_type: &ObjectType) -> Option<DefinitionId> {
        self.compiled.definition_id(object_type.as_str())
    }

    /// Resolves a definition by type, or fails with [`EngineError::UnknownDefinition`].
    pub(crate) fn require_definition(
        &self,
        object_type: &ObjectType,
    ) -> Result<DefinitionId, EngineError> {
        self.definition_id(object_type)
            .ok_or_else(|| EngineError::UnknownDefinition(object_type.to_string()))
    }

    /// Resolves `definition#relation`, or fails with [`EngineError::UnknownRelation`].
    pub(crate) fn require_relation(
        &self,
        def: DefinitionId,
        relation: &str,
    ) -> Result<RelationId, EngineError> {
        let definition = self.compiled.definition(def);
        definition
            .relation_id(relation)
            .ok_or_else(|| EngineError::UnknownRelation {
                definition: definition.name.clone(),
                relation: relation.to_owned(),
            })
    }
}

impl TryFrom<CompiledSchema> for EngineSchema {
    type Error = EngineError;

    fn try_from(compiled: CompiledSchema) -> Result<Self, Self::Error> {
        Self::new(Arc::new(compiled))
    }
}
