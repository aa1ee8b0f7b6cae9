//! Property test: random schemas and relationship graphs over small id pools (generator ideas
//! from `shared/harness/schemagen.py`), with every check compared with the reference
//! evaluator.
//!
//! On data whose objects form a cycle the engine, like SpiceDB, may fail with "max depth
//! exceeded" instead of answering; it must never fail so on acyclic data, and whenever it does
//! answer, the answer must be the reference's (the least fixpoint).
//!
//! A case is a pure function of a `u64` seed, so a failure names its seed and can be replayed
//! with `replay(seed)`.

use std::collections::{BTreeSet, HashMap, HashSet};

use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{AllowedSubject, DefinitionId, RelationId, Rewrite};

use ostiary_engine::{CheckItem, EngineError, Permissionship};
use ostiary_types::{ObjectId, Relationship, SubjectRef};
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

use crate::reference::{Reference, V};
use crate::support::fixture;

/// A small deterministic random number generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const RES_TYPES: &[&str] = &["folder", "document", "project"];
const REL_NAMES: &[&str] = &["viewer", "editor", "owner", "banned", "reader"];
const PERM_NAMES: &[&str] = &["view", "edit", "manage", "read"];
const USERS: &[&str] = &["u0", "u1", "u2", "u3"];
const GROUPS: &[&str] = &["g0", "g1", "g2"];
const RES_IDS: &[&str] = &["r0", "r1", "r2"];

struct GenRelation {
    name: String,
    /// Allowed types as written (`user`, `user:*`, `group#member`, `user with cav`).
    types: Vec<String>,
    /// Target type of a tupleset relation (`parent: folder`).
    tupleset: Option<String>,
}

struct GenDefinition {
    name: String,
    relations: Vec<GenRelation>,
    permissions: Vec<(String, String)>,
}

/// A generated case.
pub(crate) struct Case {
    pub(crate) schema: String,
    pub(crate) relationships: Vec<String>,
}

fn generate(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let n_types = 1 + rng.below(RES_TYPES.len());
    let mut defs: Vec<GenDefinition> = Vec::new();
    for (type_idx, type_name) in RES_TYPES.iter().enumerate().take(n_types) {
        let name = (*type_name).to_owned();
        let mut relations = Vec::new();
        let n_relations = 1 + rng.below(3);
        for rel_name in REL_NAMES.iter().take(n_relations) {
            let mut types = vec!["user".to_owned()];
            if rng.chance(0.3) {
                types.push("user:*".to_owned());
            }
            if rng.chance(0.5) {
                types.push("group#member".to_owned());
            }
            if rng.chance(0.25) {
                types = vec!["user with cav".to_owned()];
                if rng.chance(0.5) {
                    types.push("group#member".to_owned());
                }
            }
            relations.push(GenRelation {
                name: (*rel_name).to_owned(),
                types,
                tupleset: None,
            });
        }
        // A tupleset relation to this type (recursion) or an earlier one.
        if rng.chance(0.7) {
            let target = if type_idx == 0 || rng.chance(0.5) {
                name.clone()
            } else {
                defs[rng.below(defs.len())].name.clone()
            };
            let caveated = rng.chance(0.2);
            relations.push(GenRelation {
                name: "parent".to_owned(),
                types: vec![if caveated {
                    format!("{target} with cav")
                } else {
                    target.clone()
                }],
                tupleset: Some(target),
            });
        }
        let mut def = GenDefinition {
            name,
            relations,
            permissions: Vec::new(),
        };
        let n_permissions = 1 + rng.below(3);
        for perm_name in PERM_NAMES.iter().take(n_permissions) {
            let perm_name = (*perm_name).to_owned();
            let leaves = leaves(&mut rng, &def, &defs, &perm_name);
            let expr = expression(&mut rng, &leaves, 2);
            def.permissions.push((perm_name, expr));
        }
        defs.push(def);
    }

    let mut schema = String::from(
        "caveat cav(x int) {\n    x > 0\n}\n\ndefinition user {}\n\n\
         definition group {\n    relation member: user | group#member\n}\n",
    );
    for def in &defs {
        schema.push_str(&format!("\ndefinition {} {{\n", def.name));
        for relation in &def.relations {
            schema.push_str(&format!(
                "    relation {}: {}\n",
                relation.name,
                relation.types.join(" | ")
            ));
        }
        for (name, expr) in &def.permissions {
            schema.push_str(&format!("    permission {name} = {expr}\n"));
        }
        schema.push_str("}\n");
    }

    // Relationships.
    let mut relationships = BTreeSet::new();
    for group in GROUPS {
        for _ in 0..rng.below(3) {
            relationships.insert(format!("group:{group}#member@user:{}", rng.pick(USERS)));
        }
        if rng.chance(0.4) {
            relationships.insert(format!(
                "group:{group}#member@group:{}#member",
                rng.pick(GROUPS)
            ));
        }
    }
    for def in &defs {
        for relation in &def.relations {
            let n_rows = rng.below(5);
            for _ in 0..n_rows {
                let resource = format!("{}:{}#{}", def.name, rng.pick(RES_IDS), relation.name);
                let allowed = rng.pick(&relation.types).clone();
                let subject = if let Some(target) = &relation.tupleset {
                    let caveat = if allowed.ends_with("with cav") {
                        caveat_suffix(&mut rng)
                    } else {
                        String::new()
                    };
                    format!("{target}:{}{caveat}", rng.pick(RES_IDS))
                } else {
                    match allowed.as_str() {
                        "user" => format!("user:{}", rng.pick(USERS)),
                        "user:*" => "user:*".to_owned(),
                        "group#member" => format!("group:{}#member", rng.pick(GROUPS)),
                        _ => format!("user:{}{}", rng.pick(USERS), caveat_suffix(&mut rng)),
                    }
                };
                relationships.insert(format!("{resource}@{subject}"));
            }
        }
    }
    // Two lines equal up to the caveat are the same relationship: keep the first.
    let mut seen = BTreeSet::new();
    let relationships = relationships
        .into_iter()
        .filter(|line| seen.insert(line.split('[').next().unwrap_or(line).to_owned()))
        .collect();
    Case {
        schema,
        relationships,
    }
}

fn caveat_suffix(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => "[cav]".to_owned(),
        1 => "[cav:{\"x\":1}]".to_owned(),
        _ => "[cav:{\"x\":0}]".to_owned(),
    }
}

/// The names a permission of `def` may use.
fn leaves(
    rng: &mut Rng,
    def: &GenDefinition,
    earlier: &[GenDefinition],
    current: &str,
) -> Vec<String> {
    let mut leaves: Vec<String> = def
        .relations
        .iter()
        .filter(|relation| relation.tupleset.is_none())
        .map(|relation| relation.name.clone())
        .collect();
    leaves.extend(def.permissions.iter().map(|(name, _)| name.clone()));
    for relation in &def.relations {
        let Some(target) = &relation.tupleset else {
            continue;
        };
        let targets: Vec<String> = if *target == def.name {
            let mut names: Vec<String> = def
                .relations
                .iter()
                .filter(|rel| rel.tupleset.is_none())
                .map(|rel| rel.name.clone())
                .collect();
            names.extend(def.permissions.iter().map(|(name, _)| name.clone()));
            names.push(current.to_owned());
            names
        } else {
            let target_def = earlier.iter().find(|d| d.name == *target).unwrap();
            let mut names: Vec<String> = target_def
                .relations
                .iter()
                .filter(|rel| rel.tupleset.is_none())
                .map(|rel| rel.name.clone())
                .collect();
            names.extend(target_def.permissions.iter().map(|(name, _)| name.clone()));
            names
        };
        for target_name in targets {
            leaves.push(format!("parent->{target_name}"));
            if rng.chance(0.3) {
                leaves.push(format!("parent.all({target_name})"));
            }
        }
    }
    if rng.chance(0.05) {
        leaves.push("nil".to_owned());
    }
    leaves
}

fn expression(rng: &mut Rng, leaves: &[String], depth: usize) -> String {
    if depth == 0 || rng.chance(0.35) {
        return rng.pick(leaves).clone();
    }
    let op = *rng.pick(&["+", "+", "&", "-"]);
    let left = expression(rng, leaves, depth - 1);
    let right = expression(rng, leaves, depth - 1);
    format!("({left} {op} {right})")
}

/// The outcome of one case: how many checks ran (0 if the case was rejected).
fn run_case(seed: u64) -> Result<usize, String> {
    let case = generate(seed);
    let Ok(fixture) = fixture(&case.schema, &case.relationships.join("\n")) else {
        // The generator may build a schema the compiler rejects (e.g. a permission that can
        // reach itself only through itself); such seeds are skipped.
        return Ok(0);
    };
    let compiled = fixture.schema.compiled();
    if recursion_through_exclusion(compiled) {
        // Not stratified: there is no least fixpoint to compare with (SpiceDB runs into its
        // depth limit on such data).
        return Ok(0);
    }
    let rels: Vec<Relationship> = case
        .relationships
        .iter()
        .map(|line| line.parse().unwrap())
        .collect();
    let mut extra_ids = Vec::new();
    for def_idx in 0..compiled.definitions.len() {
        for id in RES_IDS.iter().chain(USERS).chain(GROUPS) {
            extra_ids.push((DefinitionId(def_idx as u32), ObjectId::new(id).unwrap()));
        }
    }
    let reference = Reference::new(compiled, &rels, &extra_ids);
    let cyclic = objects_form_cycle(&rels);
    // Whether an engine result is a depth failure this case allows (cyclic data only).
    let tolerated =
        |err: &EngineError| cyclic && matches!(err, EngineError::MaxDepthExceeded { .. });
    let mut subjects: Vec<SubjectRef> = USERS
        .iter()
        .map(|user| format!("user:{user}").parse().unwrap())
        .collect();
    subjects.push("group:g0#member".parse().unwrap());
    let contexts: Vec<Map<String, Json>> = vec![
        Map::new(),
        json!({"x": 1}).as_object().unwrap().clone(),
        json!({"x": 0}).as_object().unwrap().clone(),
    ];
    let mut n_checks = 0;
    for subject in &subjects {
        for context in &contexts {
            let Some(values) = reference.solve(subject, context) else {
                // Recursion through an exclusion: no least fixpoint to compare with.
                return Ok(n_checks);
            };
            let mut items = Vec::new();
            let mut expected = Vec::new();
            for (def_idx, definition) in compiled.definitions.iter().enumerate() {
                let def = DefinitionId(def_idx as u32);
                for (rel_idx, relation) in definition.relations.iter().enumerate() {
                    for id in RES_IDS {
                        let object_id = ObjectId::new(id).unwrap();
                        let key = (def, RelationId(rel_idx as u32), object_id);
                        let want = values.get(&key).cloned().unwrap_or(V::F);
                        let text = format!("{}:{id}#{}@{subject}", definition.name, relation.name);
                        let got = fixture.check_with(&text, context);
                        if got.as_ref().is_err_and(tolerated) {
                            continue;
                        }
                        let ok = match (&want, &got) {
                            (V::T, Ok(Permissionship::Has)) | (V::F, Ok(Permissionship::No)) => {
                                true
                            }
                            (V::P(names), Ok(Permissionship::Conditional { missing_params })) => {
                                !missing_params.is_empty()
                                    && missing_params.iter().all(|name| names.contains(name))
                            }
                            _ => false,
                        };
                        if !ok {
                            return Err(format!(
                                "seed {seed}: check {text} with {context:?}: reference {want:?}, engine {got:?}\nschema:\n{}\nrelationships:\n{}",
                                case.schema,
                                case.relationships.join("\n")
                            ));
                        }
                        n_checks += 1;
                        let key: ostiary_types::RelationshipKey = text.parse().unwrap();
                        let (resource, permission, subject) = key.into_parts();
                        items.push(CheckItem {
                            resource,
                            permission,
                            subject,
                            context: context.clone(),
                        });
                        expected.push(got.unwrap());
                    }
                }
            }
            // LookupResources must return exactly the resources Check grants (with the same
            // permissionship), whole and page by page.
            for definition in &compiled.definitions {
                let resource_type: ostiary_types::ObjectType = definition.name.parse().unwrap();
                for relation in &definition.relations {
                    let permission: ostiary_types::RelationName = relation.name.parse().unwrap();
                    let whole = fixture.lookup_resources(
                        &resource_type,
                        &permission,
                        subject,
                        context,
                        None,
                    );
                    let paged = fixture.lookup_resources(
                        &resource_type,
                        &permission,
                        subject,
                        context,
                        Some(2),
                    );
                    if whole.as_ref().is_err_and(tolerated) && paged.as_ref().is_err_and(tolerated)
                    {
                        continue;
                    }
                    let whole = whole.map_err(|err| format!("seed {seed}: lookup: {err}"))?;
                    let paged = paged.map_err(|err| format!("seed {seed}: lookup: {err}"))?;
                    if whole != paged {
                        return Err(format!(
                            "seed {seed}: paged lookup differs: {whole:?} vs {paged:?}"
                        ));
                    }
                    for res in &whole {
                        let text = format!(
                            "{}:{}#{}@{subject}",
                            definition.name, res.resource_id, relation.name
                        );
                        let got = fixture.check_with(&text, context);
                        if got.as_ref().is_err_and(tolerated) {
                            continue;
                        }
                        let got = got.map_err(|err| err.to_string())?;
                        if got != res.permissionship {
                            return Err(format!(
                                "seed {seed}: lookup {text}: {:?}, check {got:?}",
                                res.permissionship
                            ));
                        }
                    }
                    for id in RES_IDS {
                        let text = format!("{}:{id}#{}@{subject}", definition.name, relation.name);
                        let got = fixture.check_with(&text, context);
                        if got.as_ref().is_err_and(tolerated) {
                            continue;
                        }
                        let got = got.map_err(|err| err.to_string())?;
                        let listed = whole.iter().any(|res| res.resource_id.as_str() == *id);
                        // SpiceDB's LookupResources checks a resource reached through an
                        // exclusion with the branch it walked taken as a member; when that
                        // branch is also subtracted (`owner - owner`) and only caveats make
                        // Check conditional, the resource is left out. We do the same, so a
                        // conditional resource may be missing (never a granted one).
                        let omitted_conditional =
                            !listed && matches!(got, Permissionship::Conditional { .. });
                        if listed != (got != Permissionship::No) && !omitted_conditional {
                            return Err(format!(
                                "seed {seed}: {text}: check {got:?} but lookup listed it: {listed}\nschema:\n{}\nrelationships:\n{}",
                                case.schema,
                                case.relationships.join("\n")
                            ));
                        }
                    }
                }
            }
            // CheckBulk shares a memo across items: it must agree with single checks.
            let bulk =
                fixture
                    .engine
                    .check_bulk(fixture.snapshot.as_ref(), &fixture.schema, &items);
            for ((item, want), got) in items.iter().zip(&expected).zip(bulk) {
                if got.as_ref().is_err_and(tolerated) {
                    continue;
                }
                let got = got.map_err(|err| err.to_string())?.permissionship;
                if got != *want {
                    return Err(format!(
                        "seed {seed}: bulk check {}#{}@{} gave {got:?}, single {want:?}",
                        item.resource, item.permission, item.subject
                    ));
                }
            }
        }
    }
    // LookupSubjects must agree with Check for every subject of the pool: a subject's
    // membership in the answer (listed, or covered by a wildcard that does not exclude it)
    // has Check's permissionship.
    for context in &contexts {
        for definition in &compiled.definitions {
            for relation in &definition.relations {
                for id in RES_IDS {
                    let resource: ostiary_types::ObjectRef =
                        format!("{}:{id}", definition.name).parse().unwrap();
                    let permission: ostiary_types::RelationName = relation.name.parse().unwrap();
                    let kinds: [(&str, Option<&str>, &[&str]); 2] =
                        [("user", None, USERS), ("group", Some("member"), GROUPS)];
                    for (subject_type, subject_relation, pool) in kinds {
                        let subject_relation: Option<ostiary_types::RelationName> =
                            subject_relation.map(|name| name.parse().unwrap());
                        let found = fixture.engine.lookup_subjects(
                            fixture.snapshot.as_ref(),
                            &fixture.schema,
                            &resource,
                            &permission,
                            &subject_type.parse().unwrap(),
                            subject_relation.as_ref(),
                            context,
                        );
                        if found.as_ref().is_err_and(tolerated) {
                            continue;
                        }
                        let found =
                            found.map_err(|err| format!("seed {seed}: lookup subjects: {err}"))?;
                        for member in pool {
                            let subject = match &subject_relation {
                                Some(rel) => format!("{subject_type}:{member}#{rel}"),
                                None => format!("{subject_type}:{member}"),
                            };
                            let text = format!("{resource}#{permission}@{subject}");
                            let want = fixture.check_with(&text, context);
                            if want.as_ref().is_err_and(tolerated) {
                                continue;
                            }
                            let want = want.map_err(|err| err.to_string())?;
                            let got = membership(&found, member);
                            if class(&want) != got {
                                return Err(format!(
                                    "seed {seed}: {text} with {context:?}: check {want:?}, lookup subjects {found:?}\nschema:\n{}\nrelationships:\n{}",
                                    case.schema,
                                    case.relationships.join("\n")
                                ));
                            }
                            n_checks += 1;
                        }
                    }
                }
            }
        }
    }
    Ok(n_checks)
}

/// 2 for has, 1 for conditional, 0 for no.
fn class(permissionship: &Permissionship) -> u8 {
    match permissionship {
        Permissionship::Has => 2,
        Permissionship::Conditional { .. } => 1,
        Permissionship::No => 0,
    }
}

/// The membership class of `id` in a LookupSubjects answer: listed, or covered by the
/// wildcard and not excluded (Kleene logic over the classes).
pub(crate) fn membership(found: &[ostiary_engine::FoundSubject], id: &str) -> u8 {
    let mut concrete = 0;
    let mut via_wildcard = 0;
    for result in found {
        let subject = &result.subject;
        if subject.subject_object_id.as_str() == id {
            concrete = concrete.max(class(&subject.permissionship));
        }
        if subject.subject_object_id.is_wildcard() {
            let excluded = result
                .excluded_subjects
                .iter()
                .find(|ex| ex.subject_object_id.as_str() == id)
                .map_or(0, |ex| class(&ex.permissionship));
            via_wildcard = class(&subject.permissionship).min(2 - excluded);
        }
    }
    concrete.max(via_wildcard)
}

/// Whether the objects of the relationships form a cycle (an edge from each resource object
/// to its subject object), the only data on which a depth failure is allowed.
fn objects_form_cycle(rels: &[Relationship]) -> bool {
    let mut edges: HashMap<String, Vec<String>> = HashMap::new();
    for rel in rels {
        edges
            .entry(rel.resource().to_string())
            .or_default()
            .push(format!(
                "{}:{}",
                rel.subject().object_type(),
                rel.subject().object_id()
            ));
    }
    // Depth-first search with colours: 1 on the stack, 2 done.
    let mut colour: HashMap<String, u8> = HashMap::new();
    for start in edges.keys() {
        if colour.contains_key(start) {
            continue;
        }
        let mut stack = vec![(start.clone(), 0_usize)];
        colour.insert(start.clone(), 1);
        while let Some((node, next)) = stack.pop() {
            let children = edges.get(&node).map_or(&[][..], Vec::as_slice);
            if let Some(child) = children.get(next) {
                stack.push((node, next + 1));
                match colour.get(child) {
                    Some(1) => return true,
                    Some(_) => {}
                    None => {
                        colour.insert(child.clone(), 1);
                        stack.push((child.clone(), 0));
                    }
                }
            } else {
                colour.insert(node, 2);
            }
        }
    }
    false
}

type TypeNode = (DefinitionId, RelationId);

/// Whether some relation can reach itself through the subtracted side of an exclusion.
fn recursion_through_exclusion(schema: &CompiledSchema) -> bool {
    let mut edges: HashMap<TypeNode, Vec<(TypeNode, bool)>> = HashMap::new();
    for (def_idx, definition) in schema.definitions.iter().enumerate() {
        let def = DefinitionId(def_idx as u32);
        for (rel_idx, relation) in definition.relations.iter().enumerate() {
            let node = (def, RelationId(rel_idx as u32));
            let out = edges.entry(node).or_default();
            for allowed in relation.allowed_types() {
                if let AllowedSubject::Relation(subject_rel) = allowed.subject {
                    out.push(((allowed.definition, subject_rel), false));
                }
            }
            if let Some(rewrite) = relation.rewrite() {
                rewrite_edges(def, rewrite, false, out);
            }
        }
    }
    let reaches = |from: TypeNode, to: TypeNode| {
        let mut seen = HashSet::new();
        let mut stack = vec![from];
        while let Some(node) = stack.pop() {
            if node == to {
                return true;
            }
            if seen.insert(node) {
                stack.extend(
                    edges
                        .get(&node)
                        .into_iter()
                        .flatten()
                        .map(|(next, _)| *next),
                );
            }
        }
        false
    };
    edges.iter().any(|(from, out)| {
        out.iter()
            .any(|(to, negative)| *negative && reaches(*to, *from))
    })
}

fn rewrite_edges(
    def: DefinitionId,
    rewrite: &Rewrite,
    negative: bool,
    out: &mut Vec<(TypeNode, bool)>,
) {
    match rewrite {
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            for child in children {
                rewrite_edges(def, child, negative, out);
            }
        }
        Rewrite::Exclusion(base, subtracted) => {
            rewrite_edges(def, base, negative, out);
            rewrite_edges(def, subtracted, true, out);
        }
        Rewrite::ComputedUserset(rel) => out.push(((def, *rel), negative)),
        Rewrite::TupleToUserset(ttu) => {
            out.push(((def, ttu.tupleset), negative));
            for target in &ttu.targets {
                out.push((*target, negative));
            }
        }
        Rewrite::Nil | Rewrite::This => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn check_matches_reference(seed in any::<u64>()) {
        let res = run_case(seed);
        prop_assert!(res.is_ok(), "{}", res.unwrap_err());
    }
}

#[test]
fn most_generated_cases_run() {
    let mut n_ran = 0;
    let mut n_checks = 0;
    for seed in 0..64 {
        let checks = run_case(seed).unwrap();
        n_checks += checks;
        if checks > 0 {
            n_ran += 1;
        }
    }
    eprintln!("random: {n_ran}/64 seeds ran, {n_checks} checks compared");
    assert!(
        n_ran >= 40,
        "only {n_ran} of 64 seeds produced a usable case"
    );
}
