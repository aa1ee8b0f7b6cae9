//! The load generator's workloads: for a seed and a scale, a schema, its relationships (listed, or
//! computed lazily for the multi-million `flat` data set) and the phases to measure, each a list
//! of pre-encoded requests. Everything here is a pure function of `(seed, scale)`.

use bytes::Bytes;
use ostiary_proto::authzed::api::v1 as pb;
use prost::Message;

use super::rng::{SplitMix64, mix, scale_to};

/// The workload names, in the order `bench/run` measures them.
pub const WORKLOAD_NAMES: &[&str] = &[
    "flat",
    "nested",
    "wide",
    "exclusion",
    "caveated",
    "lookup",
    "mixed",
];

/// How many distinct requests a check phase cycles through.
const N_CHECKS: usize = 20_000;

/// One call a load task makes; requests are encoded once, when the workload is built.
#[derive(Debug, Clone)]
pub enum Call {
    /// `PermissionsService/CheckPermission` with an encoded `CheckPermissionRequest`.
    Check(Bytes),
    /// `PermissionsService/LookupResources` (streamed) with an encoded request.
    LookupResources(Bytes),
    /// `PermissionsService/LookupSubjects` (streamed) with an encoded request.
    LookupSubjects(Bytes),
    /// `WriteRelationships` (an encoded request), then this check with its consistency set to
    /// `at_least_as_fresh` the token the write returned.
    WriteThenCheck {
        /// The encoded `WriteRelationshipsRequest`.
        write: Bytes,
        /// The check to make at least as fresh as the write.
        check: Box<pb::CheckPermissionRequest>,
    },
}

/// One measured phase of a workload: a name for the report and the calls it cycles through.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Short label, e.g. `check` or `LR 10000`.
    pub name: String,
    /// The distinct calls, cycled by the load tasks.
    pub calls: Vec<Call>,
}

/// The shape of the lazily computed `flat` data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatShape {
    /// Seed of the data.
    pub seed: u64,
    /// Number of documents.
    pub n_docs: u64,
    /// Number of users.
    pub n_users: u64,
    /// Direct viewers per document.
    pub viewers_per_doc: u64,
}

#[derive(Debug, Clone)]
enum Source {
    Listed(Vec<pb::Relationship>),
    Flat(FlatShape),
}

/// A workload: schema, data and phases.
#[derive(Debug, Clone)]
pub struct Workload {
    /// One of [`WORKLOAD_NAMES`].
    pub name: &'static str,
    /// What the data looks like, for the report.
    pub description: String,
    /// The schema, in SpiceDB's schema language.
    pub schema: String,
    source: Source,
    /// The measured phases.
    pub phases: Vec<Phase>,
}

/// Errors building a workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The name is not one of [`WORKLOAD_NAMES`].
    #[error("unknown workload `{0}`")]
    Unknown(String),
}

/// Builds the workload `name` for `seed` at `scale` (1.0 is the size issue 7 asks for, e.g. one
/// million relationships for `flat`; smaller scales keep the in-memory SpiceDB usable).
pub fn build(name: &str, seed: u64, scale: f64) -> Result<Workload, WorkloadError> {
    Ok(match name {
        "flat" => flat(seed, scale),
        "nested" => nested(seed, scale),
        "wide" => wide(seed, scale),
        "exclusion" => exclusion(seed, scale),
        "caveated" => caveated(seed, scale),
        "lookup" => lookup(seed, scale),
        "mixed" => mixed(seed, scale),
        other => return Err(WorkloadError::Unknown(other.to_owned())),
    })
}

impl Workload {
    /// The number of relationships [`Workload::relationships`] yields.
    pub fn n_relationships(&self) -> u64 {
        match &self.source {
            Source::Listed(rels) => rels.len() as u64,
            Source::Flat(shape) => flat_count(shape),
        }
    }

    /// The relationships to load, in a fixed order (no duplicates).
    pub fn relationships(&self) -> Box<dyn Iterator<Item = pb::Relationship> + Send + '_> {
        match &self.source {
            Source::Listed(rels) => Box::new(rels.iter().cloned()),
            Source::Flat(shape) => Box::new(flat_relationships(*shape)),
        }
    }

    /// True if every call of every phase is a CheckPermission (the mock server's floor applies).
    pub fn is_check_only(&self) -> bool {
        self.phases.iter().all(|phase| {
            phase
                .calls
                .iter()
                .all(|call| matches!(call, Call::Check(_)))
        })
    }
}

fn scaled(base: f64, scale: f64, min: u64) -> u64 {
    ((base * scale).round() as u64).max(min)
}

fn object(object_type: &str, object_id: &str) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
    }
}

fn subject(subject_type: &str, subject_id: &str, relation: &str) -> pb::SubjectReference {
    pb::SubjectReference {
        object: Some(object(subject_type, subject_id)),
        optional_relation: relation.to_owned(),
    }
}

/// A relationship `resource_type:resource_id#relation@subject_type:subject_id[#subject_relation]`.
pub fn relationship(
    resource: (&str, &str),
    relation: &str,
    subject_ref: (&str, &str, &str),
) -> pb::Relationship {
    pb::Relationship {
        resource: Some(object(resource.0, resource.1)),
        relation: relation.to_owned(),
        subject: Some(subject(subject_ref.0, subject_ref.1, subject_ref.2)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

fn minimize_latency() -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::MinimizeLatency(true)),
    })
}

fn check_request(
    resource: (&str, &str),
    permission: &str,
    user: &str,
    context: Option<prost_types::Struct>,
) -> pb::CheckPermissionRequest {
    pb::CheckPermissionRequest {
        consistency: minimize_latency(),
        resource: Some(object(resource.0, resource.1)),
        permission: permission.to_owned(),
        subject: Some(subject("user", user, "")),
        context,
        with_tracing: false,
    }
}

fn check(resource: (&str, &str), permission: &str, user: &str) -> Call {
    Call::Check(Bytes::from(
        check_request(resource, permission, user, None).encode_to_vec(),
    ))
}

fn lookup_resources(resource_type: &str, permission: &str, user: &str) -> Call {
    let request = pb::LookupResourcesRequest {
        consistency: minimize_latency(),
        resource_object_type: resource_type.to_owned(),
        permission: permission.to_owned(),
        subject: Some(subject("user", user, "")),
        context: None,
        optional_limit: 0,
        optional_cursor: None,
        with_debug: false,
    };
    Call::LookupResources(Bytes::from(request.encode_to_vec()))
}

fn lookup_subjects(resource: (&str, &str), permission: &str) -> Call {
    let request = pb::LookupSubjectsRequest {
        consistency: minimize_latency(),
        resource: Some(object(resource.0, resource.1)),
        permission: permission.to_owned(),
        subject_object_type: "user".to_owned(),
        optional_subject_relation: String::new(),
        context: None,
        optional_concrete_limit: 0,
        optional_cursor: None,
        wildcard_option: 0,
    };
    Call::LookupSubjects(Bytes::from(request.encode_to_vec()))
}

fn int_struct(fields: &[(&str, i64)]) -> prost_types::Struct {
    prost_types::Struct {
        fields: fields
            .iter()
            .map(|(name, value)| {
                (
                    (*name).to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::NumberValue(*value as f64)),
                    },
                )
            })
            .collect(),
    }
}

// ---------------------------------------------------------------- flat

const FLAT_SCHEMA: &str = "definition user {}

definition document {
    relation viewer: user
    relation editor: user
    permission edit = editor
    permission view = viewer + edit
}
";

fn flat_shape(seed: u64, scale: f64) -> FlatShape {
    FlatShape {
        seed,
        n_docs: scaled(200_000.0, scale, 20),
        n_users: scaled(100_000.0, scale, 20),
        viewers_per_doc: 5,
    }
}

/// The `k`-th viewer of document `doc`: distinct for `k < viewers_per_doc` because the stride is
/// below `n_users / viewers_per_doc`.
fn flat_viewer(shape: &FlatShape, doc: u64, k: u64) -> u64 {
    let base = scale_to(mix(shape.seed, doc, 0), shape.n_users);
    let max_stride = ((shape.n_users - 1) / shape.viewers_per_doc).max(1);
    let stride = 1 + scale_to(mix(shape.seed, doc, 1), max_stride);
    (base + k * stride) % shape.n_users
}

/// The editor of document `doc`, if it has one (20% of documents).
fn flat_editor(shape: &FlatShape, doc: u64) -> Option<u64> {
    (scale_to(mix(shape.seed, doc, 2), 5) == 0)
        .then(|| scale_to(mix(shape.seed, doc, 3), shape.n_users))
}

fn flat_count(shape: &FlatShape) -> u64 {
    let editors = (0..shape.n_docs)
        .filter(|&doc| flat_editor(shape, doc).is_some())
        .count() as u64;
    shape.n_docs * shape.viewers_per_doc + editors
}

fn flat_relationships(shape: FlatShape) -> impl Iterator<Item = pb::Relationship> + Send {
    (0..shape.n_docs).flat_map(move |doc| {
        let doc_id = format!("doc{doc}");
        let mut rels: Vec<pb::Relationship> = (0..shape.viewers_per_doc)
            .map(|k| {
                let user = format!("user{}", flat_viewer(&shape, doc, k));
                relationship(("document", &doc_id), "viewer", ("user", &user, ""))
            })
            .collect();
        if let Some(editor) = flat_editor(&shape, doc) {
            let user = format!("user{editor}");
            rels.push(relationship(
                ("document", &doc_id),
                "editor",
                ("user", &user, ""),
            ));
        }
        rels
    })
}

/// Checks of `view`: even ones are known grants (allowed), odd ones random pairs (almost all
/// denied).
fn flat_checks(shape: &FlatShape, rng: &mut SplitMix64, n: usize) -> Vec<Call> {
    (0..n)
        .map(|check_idx| {
            let doc = rng.below(shape.n_docs);
            let user = if check_idx % 2 == 0 {
                flat_viewer(shape, doc, rng.below(shape.viewers_per_doc))
            } else {
                rng.below(shape.n_users)
            };
            check(
                ("document", &format!("doc{doc}")),
                "view",
                &format!("user{user}"),
            )
        })
        .collect()
}

fn flat(seed: u64, scale: f64) -> Workload {
    let shape = flat_shape(seed, scale);
    let mut rng = SplitMix64::new(seed ^ 0xF1A7);
    let checks = flat_checks(&shape, &mut rng, N_CHECKS);
    Workload {
        name: "flat",
        description: format!(
            "{} documents x {} direct viewers from {} users (+ an editor on 20%); \
             checks of `view`, half known grants, half random pairs",
            shape.n_docs, shape.viewers_per_doc, shape.n_users
        ),
        schema: FLAT_SCHEMA.to_owned(),
        source: Source::Flat(shape),
        phases: vec![Phase {
            name: "check".to_owned(),
            calls: checks,
        }],
    }
}

// ---------------------------------------------------------------- nested

const NESTED_SCHEMA: &str = "definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user | group#member
    relation editor: user | group#member
    permission edit = editor + parent->edit
    permission view = viewer + edit + parent->view
}

definition document {
    relation folder: folder
    relation viewer: user | group#member
    relation editor: user | group#member
    permission edit = editor + folder->edit
    permission view = viewer + edit + folder->view
}
";

fn nested(seed: u64, scale: f64) -> Workload {
    const FOLDER_LEVELS: usize = 8;
    const FOLDER_FAN: usize = 3;
    const GROUP_LEVELS: usize = 5;
    const GROUP_FAN: usize = 4;
    const DOCS_PER_LEAF: usize = 3;
    let mut rng = SplitMix64::new(seed ^ 0x4E57);
    let n_roots = scaled(10.0, scale, 1) as usize;
    let n_top_groups = scaled(5.0, scale, 1) as usize;
    let n_users = scaled(20_000.0, scale, 100);
    let mut rels = Vec::new();

    let mut group_levels: Vec<Vec<String>> =
        vec![(0..n_top_groups).map(|i| format!("g{i}")).collect()];
    for _ in 1..GROUP_LEVELS {
        let mut next = Vec::new();
        for parent in group_levels.last().into_iter().flatten() {
            for k in 0..GROUP_FAN {
                let child = format!("{parent}_{k}");
                rels.push(relationship(
                    ("group", parent),
                    "member",
                    ("group", &child, "member"),
                ));
                next.push(child);
            }
        }
        group_levels.push(next);
    }
    let leaf_groups = group_levels.last().cloned().unwrap_or_default();
    for user in 0..n_users {
        let first = rng.index(leaf_groups.len());
        let user_id = format!("user{user}");
        rels.push(relationship(
            ("group", &leaf_groups[first]),
            "member",
            ("user", &user_id, ""),
        ));
        if rng.chance(0.3) {
            let second = (first + 1 + rng.index(leaf_groups.len() - 1)) % leaf_groups.len();
            if second != first {
                rels.push(relationship(
                    ("group", &leaf_groups[second]),
                    "member",
                    ("user", &user_id, ""),
                ));
            }
        }
    }

    let mut folder_levels: Vec<Vec<String>> = vec![(0..n_roots).map(|i| format!("f{i}")).collect()];
    for _ in 1..FOLDER_LEVELS {
        let mut next = Vec::new();
        for parent in folder_levels.last().into_iter().flatten() {
            for k in 0..FOLDER_FAN {
                let child = format!("{parent}_{k}");
                rels.push(relationship(
                    ("folder", &child),
                    "parent",
                    ("folder", parent, ""),
                ));
                next.push(child);
            }
        }
        folder_levels.push(next);
    }
    let some_group = |rng: &mut SplitMix64| -> String {
        // favour upper levels so that grants reach many users
        let level = match rng.below(10) {
            0..=3 => 0,
            4..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        let groups = &group_levels[level];
        groups[rng.index(groups.len())].clone()
    };
    for folders in &folder_levels[..FOLDER_LEVELS - 1] {
        for folder in folders {
            if rng.chance(0.15) {
                let group = some_group(&mut rng);
                rels.push(relationship(
                    ("folder", folder),
                    "viewer",
                    ("group", &group, "member"),
                ));
            }
            if rng.chance(0.05) {
                let group = some_group(&mut rng);
                rels.push(relationship(
                    ("folder", folder),
                    "editor",
                    ("group", &group, "member"),
                ));
            }
            if rng.chance(0.3) {
                let user = format!("user{}", rng.below(n_users));
                rels.push(relationship(
                    ("folder", folder),
                    "viewer",
                    ("user", &user, ""),
                ));
            }
        }
    }
    let mut docs = Vec::new();
    for folder in folder_levels.last().into_iter().flatten() {
        for k in 0..DOCS_PER_LEAF {
            let doc = format!("d{folder}_{k}");
            rels.push(relationship(
                ("document", &doc),
                "folder",
                ("folder", folder, ""),
            ));
            if rng.chance(0.3) {
                let user = format!("user{}", rng.below(n_users));
                rels.push(relationship(
                    ("document", &doc),
                    "viewer",
                    ("user", &user, ""),
                ));
            }
            docs.push(doc);
        }
    }
    let checks = (0..N_CHECKS)
        .map(|_| {
            let doc = &docs[rng.index(docs.len())];
            let permission = if rng.below(4) == 0 { "edit" } else { "view" };
            let user = format!("user{}", rng.below(n_users));
            check(("document", doc), permission, &user)
        })
        .collect();
    let n_folders: usize = folder_levels.iter().map(Vec::len).sum();
    let n_groups: usize = group_levels.iter().map(Vec::len).sum();
    Workload {
        name: "nested",
        description: format!(
            "{n_folders} folders {FOLDER_LEVELS} levels deep ({n_roots} roots, fan-out \
             {FOLDER_FAN}), {} documents, {n_groups} groups nested {GROUP_LEVELS} levels, \
             {n_users} users; `view`/`edit` through `parent->`, `folder->` and `group#member`",
            docs.len()
        ),
        schema: NESTED_SCHEMA.to_owned(),
        source: Source::Listed(rels),
        phases: vec![Phase {
            name: "check".to_owned(),
            calls: checks,
        }],
    }
}

// ---------------------------------------------------------------- wide

const WIDE_SCHEMA: &str = "definition user {}

definition group {
    relation member: user | group#member
}

definition document {
    relation viewer: user | group#member
    permission view = viewer
}
";

fn wide(seed: u64, scale: f64) -> Workload {
    let mut rng = SplitMix64::new(seed ^ 0x817E);
    let n_users = scaled(100_000.0, scale, 200);
    let n_groups = scaled(1_000.0, scale, 20);
    let group_size = (n_users / 10).max(10);
    let n_docs = scaled(20_000.0, scale, 200);
    let mut rels = Vec::new();
    for user in 0..n_users {
        rels.push(relationship(
            ("group", "everyone"),
            "member",
            ("user", &format!("user{user}"), ""),
        ));
    }
    for group in 0..n_groups {
        // a contiguous run of users from a random start: distinct members, overlapping groups
        let start = rng.below(n_users);
        let group_id = format!("grp{group}");
        for k in 0..group_size {
            let user = format!("user{}", (start + k) % n_users);
            rels.push(relationship(
                ("group", &group_id),
                "member",
                ("user", &user, ""),
            ));
        }
    }
    let n_everyone_docs = (n_docs / 100).max(1);
    for doc in 0..n_docs {
        let doc_id = format!("doc{doc}");
        let first = rng.below(n_groups);
        let n_shares = 1 + rng.below(3).min(n_groups - 1);
        for k in 0..n_shares {
            let group = format!("grp{}", (first + k) % n_groups);
            rels.push(relationship(
                ("document", &doc_id),
                "viewer",
                ("group", &group, "member"),
            ));
        }
        if doc < n_everyone_docs {
            rels.push(relationship(
                ("document", &doc_id),
                "viewer",
                ("group", "everyone", "member"),
            ));
        }
    }
    let checks = (0..N_CHECKS)
        .map(|check_idx| {
            let doc = if check_idx % 10 == 0 {
                rng.below(n_everyone_docs)
            } else {
                rng.below(n_docs)
            };
            let user = format!("user{}", rng.below(n_users));
            check(("document", &format!("doc{doc}")), "view", &user)
        })
        .collect();
    Workload {
        name: "wide",
        description: format!(
            "group `everyone` with {n_users} members (viewer of {n_everyone_docs} documents), \
             {n_groups} groups x {group_size} members (each user in ~{} groups), {n_docs} \
             documents shared with 1-3 groups",
            n_groups * group_size / n_users
        ),
        schema: WIDE_SCHEMA.to_owned(),
        source: Source::Listed(rels),
        phases: vec![Phase {
            name: "check".to_owned(),
            calls: checks,
        }],
    }
}

// ---------------------------------------------------------------- exclusion

const EXCLUSION_SCHEMA: &str = "definition user {}

definition group {
    relation member: user
}

definition org {
    relation member: user
}

definition document {
    relation org: org
    relation viewer: user | user:*
    relation banned: user | group#member
    permission view = (viewer & org->member) - banned
}
";

fn exclusion(seed: u64, scale: f64) -> Workload {
    const N_ORGS: u64 = 10;
    const N_BAN_GROUPS: u64 = 50;
    const BAN_GROUP_SIZE: u64 = 20;
    let mut rng = SplitMix64::new(seed ^ 0xE8C1);
    let n_users = scaled(50_000.0, scale, 200);
    let n_docs = scaled(100_000.0, scale, 200);
    let mut rels = Vec::new();
    let org_of = |user: u64| user % N_ORGS;
    for user in 0..n_users {
        rels.push(relationship(
            ("org", &format!("org{}", org_of(user))),
            "member",
            ("user", &format!("user{user}"), ""),
        ));
    }
    for group in 0..N_BAN_GROUPS {
        let start = rng.below(n_users);
        for k in 0..BAN_GROUP_SIZE.min(n_users) {
            rels.push(relationship(
                ("group", &format!("ban{group}")),
                "member",
                ("user", &format!("user{}", (start + k) % n_users), ""),
            ));
        }
    }
    let mut grants = Vec::new();
    for doc in 0..n_docs {
        let doc_id = format!("doc{doc}");
        let org = rng.below(N_ORGS);
        rels.push(relationship(
            ("document", &doc_id),
            "org",
            ("org", &format!("org{org}"), ""),
        ));
        if rng.chance(0.2) {
            rels.push(relationship(
                ("document", &doc_id),
                "viewer",
                ("user", "*", ""),
            ));
        } else {
            // three distinct members of the document's org (users org, org + N_ORGS, ...)
            let per_org = n_users / N_ORGS;
            let first = rng.below(per_org);
            for k in 0..3 {
                let user = ((first + k) % per_org) * N_ORGS + org;
                grants.push((doc, user));
                rels.push(relationship(
                    ("document", &doc_id),
                    "viewer",
                    ("user", &format!("user{user}"), ""),
                ));
            }
        }
        if rng.chance(0.3) {
            rels.push(relationship(
                ("document", &doc_id),
                "banned",
                (
                    "group",
                    &format!("ban{}", rng.below(N_BAN_GROUPS)),
                    "member",
                ),
            ));
        }
        if rng.chance(0.1) {
            rels.push(relationship(
                ("document", &doc_id),
                "banned",
                ("user", &format!("user{}", rng.below(n_users)), ""),
            ));
        }
    }
    let checks = (0..N_CHECKS)
        .map(|check_idx| {
            let (doc, user) = if check_idx % 2 == 0 && !grants.is_empty() {
                grants[rng.index(grants.len())]
            } else {
                (rng.below(n_docs), rng.below(n_users))
            };
            check(
                ("document", &format!("doc{doc}")),
                "view",
                &format!("user{user}"),
            )
        })
        .collect();
    Workload {
        name: "exclusion",
        description: format!(
            "{n_docs} documents in {N_ORGS} orgs, {n_users} users; `view = (viewer & \
             org->member) - banned`, 20% of documents public (`user:*`), 30% with a banned \
             group of {BAN_GROUP_SIZE}, 10% with a banned user"
        ),
        schema: EXCLUSION_SCHEMA.to_owned(),
        source: Source::Listed(rels),
        phases: vec![Phase {
            name: "check".to_owned(),
            calls: checks,
        }],
    }
}

// ---------------------------------------------------------------- caveated

const CAVEATED_SCHEMA: &str = "caveat within_limit(amount int, limit int) {
    amount <= limit
}

definition user {}

definition document {
    relation viewer: user | user with within_limit
    permission view = viewer
}
";

fn caveated(seed: u64, scale: f64) -> Workload {
    let mut rng = SplitMix64::new(seed ^ 0xCAFE);
    let n_users = scaled(20_000.0, scale, 100);
    let n_docs = scaled(100_000.0, scale, 200);
    let mut rels = Vec::new();
    let mut grants = Vec::new();
    for doc in 0..n_docs {
        let doc_id = format!("doc{doc}");
        let first = rng.below(n_users);
        for k in 0..3 {
            let user = (first + k) % n_users;
            let mut rel = relationship(
                ("document", &doc_id),
                "viewer",
                ("user", &format!("user{user}"), ""),
            );
            if k > 0 {
                let limit = rng.below(100) as i64;
                rel.optional_caveat = Some(pb::ContextualizedCaveat {
                    caveat_name: "within_limit".to_owned(),
                    context: Some(int_struct(&[("limit", limit)])),
                });
            }
            grants.push((doc, user));
            rels.push(rel);
        }
    }
    let checks = (0..N_CHECKS)
        .map(|check_idx| {
            let (doc, user) = if check_idx % 2 == 0 {
                grants[rng.index(grants.len())]
            } else {
                (rng.below(n_docs), rng.below(n_users))
            };
            let amount = rng.below(100) as i64;
            let request = check_request(
                ("document", &format!("doc{doc}")),
                "view",
                &format!("user{user}"),
                Some(int_struct(&[("amount", amount)])),
            );
            Call::Check(Bytes::from(request.encode_to_vec()))
        })
        .collect();
    Workload {
        name: "caveated",
        description: format!(
            "{n_docs} documents x 3 viewers from {n_users} users, two of them under caveat \
             `within_limit(amount, limit)` with `limit` stored on the relationship; every check \
             sends `amount` in its context"
        ),
        schema: CAVEATED_SCHEMA.to_owned(),
        source: Source::Listed(rels),
        phases: vec![Phase {
            name: "check".to_owned(),
            calls: checks,
        }],
    }
}

// ---------------------------------------------------------------- lookup

const LOOKUP_SCHEMA: &str = "definition user {}

definition group {
    relation member: user | group#member
}

definition document {
    relation viewer: user | group#member
    permission view = viewer
}
";

fn lookup(seed: u64, scale: f64) -> Workload {
    let mut rng = SplitMix64::new(seed ^ 0x100C);
    // sizes stay distinct at every scale, so that the phase names are too
    let small = 100;
    let mid = scaled(10_000.0, scale, 300);
    let big = scaled(100_000.0, scale, 1_000).max(3 * mid);
    let mut rels = Vec::new();
    // `reader_small` and `reader_mid` view documents directly; `reader_big` through group `all`.
    for doc in 0..big {
        rels.push(relationship(
            ("document", &format!("doc{doc}")),
            "viewer",
            ("group", "all", "member"),
        ));
    }
    rels.push(relationship(
        ("group", "all"),
        "member",
        ("user", "reader_big", ""),
    ));
    for (user, count) in [("reader_small", small), ("reader_mid", mid)] {
        let start = rng.below(big);
        for k in 0..count {
            rels.push(relationship(
                ("document", &format!("doc{}", (start + k) % big)),
                "viewer",
                ("user", user, ""),
            ));
        }
    }
    // LookupSubjects: `team_doc` is viewed by group `team` (mid members, two levels) and
    // `org_doc` by group `org` (big members).
    for (group, doc, count) in [("team", "team_doc", mid), ("org", "org_doc", big)] {
        rels.push(relationship(
            ("document", doc),
            "viewer",
            ("group", group, "member"),
        ));
        let sub = format!("{group}_sub");
        rels.push(relationship(
            ("group", group),
            "member",
            ("group", &sub, "member"),
        ));
        for k in 0..count {
            let owner = if k % 2 == 0 { group } else { sub.as_str() };
            rels.push(relationship(
                ("group", owner),
                "member",
                ("user", &format!("m{k}"), ""),
            ));
        }
    }
    let phases = vec![
        Phase {
            name: format!("LR {small}"),
            calls: vec![lookup_resources("document", "view", "reader_small")],
        },
        Phase {
            name: format!("LR {mid}"),
            calls: vec![lookup_resources("document", "view", "reader_mid")],
        },
        Phase {
            name: format!("LR {big}"),
            calls: vec![lookup_resources("document", "view", "reader_big")],
        },
        Phase {
            name: format!("LS {mid}"),
            calls: vec![lookup_subjects(("document", "team_doc"), "view")],
        },
        Phase {
            name: format!("LS {big}"),
            calls: vec![lookup_subjects(("document", "org_doc"), "view")],
        },
    ];
    Workload {
        name: "lookup",
        description: format!(
            "LookupResources of `document#view` for users with {small}, {mid} (direct) and \
             {big} (through a group) documents; LookupSubjects of documents viewed by groups of \
             {mid} and {big} members (half of them in a nested group)"
        ),
        schema: LOOKUP_SCHEMA.to_owned(),
        source: Source::Listed(rels),
        phases,
    }
}

// ---------------------------------------------------------------- mixed

fn mixed(seed: u64, scale: f64) -> Workload {
    let shape = flat_shape(seed, scale);
    let mut rng = SplitMix64::new(seed ^ 0x313D);
    let mut calls = Vec::with_capacity(N_CHECKS);
    let n_blocks = N_CHECKS / 100;
    for block in 0..n_blocks {
        let mut block_calls = flat_checks(&shape, &mut rng, 95);
        for _ in 0..4 {
            let user = format!("user{}", rng.below(shape.n_users));
            block_calls.push(lookup_resources("document", "view", &user));
        }
        let doc = format!("mixdoc{block}");
        let user = format!("user{}", rng.below(shape.n_users));
        let write = pb::WriteRelationshipsRequest {
            updates: vec![pb::RelationshipUpdate {
                operation: pb::relationship_update::Operation::Touch as i32,
                relationship: Some(relationship(
                    ("document", &doc),
                    "viewer",
                    ("user", &user, ""),
                )),
            }],
            optional_preconditions: Vec::new(),
            optional_transaction_metadata: None,
        };
        block_calls.push(Call::WriteThenCheck {
            write: Bytes::from(write.encode_to_vec()),
            check: Box::new(check_request(("document", &doc), "view", &user, None)),
        });
        rng.shuffle(&mut block_calls);
        calls.extend(block_calls);
    }
    Workload {
        name: "mixed",
        description: format!(
            "the `flat` data ({} documents, {} users); 95% checks, 4% LookupResources, 1% \
             writes (TOUCH) each followed by a check `at_least_as_fresh` the written token",
            shape.n_docs, shape.n_users
        ),
        schema: FLAT_SCHEMA.to_owned(),
        source: Source::Flat(shape),
        phases: vec![Phase {
            name: "mixed".to_owned(),
            calls,
        }],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn key(rel: &pb::Relationship) -> String {
        let resource = rel.resource.clone().unwrap_or_default();
        let subject = rel.subject.clone().unwrap_or_default();
        let subject_object = subject.object.unwrap_or_default();
        format!(
            "{}:{}#{}@{}:{}#{}",
            resource.object_type,
            resource.object_id,
            rel.relation,
            subject_object.object_type,
            subject_object.object_id,
            subject.optional_relation
        )
    }

    fn encoded(workload: &Workload) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = workload
            .relationships()
            .map(|rel| rel.encode_to_vec())
            .collect();
        for phase in &workload.phases {
            for call in &phase.calls {
                out.push(match call {
                    Call::Check(bytes)
                    | Call::LookupResources(bytes)
                    | Call::LookupSubjects(bytes) => bytes.to_vec(),
                    Call::WriteThenCheck { write, check } => {
                        let mut both = write.to_vec();
                        both.extend(check.encode_to_vec());
                        both
                    }
                });
            }
        }
        out
    }

    #[test]
    fn every_workload_is_a_pure_function_of_seed_and_scale() {
        for name in WORKLOAD_NAMES {
            let a = build(name, 1, 0.01).unwrap();
            let b = build(name, 1, 0.01).unwrap();
            assert_eq!(encoded(&a), encoded(&b), "{name}");
            let other_seed = build(name, 2, 0.01).unwrap();
            assert_ne!(encoded(&a), encoded(&other_seed), "{name}");
        }
    }

    #[test]
    fn relationships_are_distinct_and_counted_exactly() {
        for name in WORKLOAD_NAMES {
            let workload = build(name, 5, 0.02).unwrap();
            let keys: Vec<String> = workload.relationships().map(|rel| key(&rel)).collect();
            let distinct: HashSet<&String> = keys.iter().collect();
            assert_eq!(distinct.len(), keys.len(), "{name} has duplicates");
            assert_eq!(workload.n_relationships(), keys.len() as u64, "{name}");
            assert!(!workload.phases.is_empty());
            assert!(workload.phases.iter().all(|phase| !phase.calls.is_empty()));
        }
    }

    #[test]
    fn flat_at_scale_one_has_a_million_viewers_and_half_the_checks_are_grants() {
        let workload = build("flat", 1, 1.0).unwrap();
        let count = workload.n_relationships();
        assert!((1_000_000..1_050_000).contains(&count), "{count}");
        let shape = flat_shape(1, 0.01);
        let mut rng = SplitMix64::new(3);
        let checks = flat_checks(&shape, &mut rng, 10);
        let viewers: HashSet<String> = flat_relationships(shape).map(|rel| key(&rel)).collect();
        for (check_idx, call) in checks.iter().enumerate() {
            let Call::Check(bytes) = call else {
                panic!("flat makes only checks")
            };
            let request = pb::CheckPermissionRequest::decode(bytes.clone()).unwrap();
            let rel = relationship(
                (
                    "document",
                    &request.resource.clone().unwrap_or_default().object_id,
                ),
                "viewer",
                (
                    "user",
                    &request
                        .subject
                        .clone()
                        .unwrap_or_default()
                        .object
                        .unwrap_or_default()
                        .object_id,
                    "",
                ),
            );
            if check_idx % 2 == 0 {
                assert!(viewers.contains(&key(&rel)), "check {check_idx} is a grant");
            }
        }
    }

    #[test]
    fn mixed_is_95_checks_4_lookups_1_write_per_hundred() {
        let workload = build("mixed", 1, 0.01).unwrap();
        let calls = &workload.phases[0].calls;
        let checks = calls.iter().filter(|c| matches!(c, Call::Check(_))).count();
        let lookups = calls
            .iter()
            .filter(|c| matches!(c, Call::LookupResources(_)))
            .count();
        let writes = calls
            .iter()
            .filter(|c| matches!(c, Call::WriteThenCheck { .. }))
            .count();
        assert_eq!((checks, lookups, writes), (19_000, 800, 200));
        assert!(!workload.is_check_only());
        assert!(build("flat", 1, 0.01).unwrap().is_check_only());
    }

    #[test]
    fn lookup_phases_are_named_by_their_result_counts() {
        let workload = build("lookup", 1, 0.1).unwrap();
        let names: Vec<&str> = workload.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["LR 100", "LR 1000", "LR 10000", "LS 1000", "LS 10000"]
        );
        for scale in [0.001, 0.01, 0.05] {
            let workload = build("lookup", 1, scale).unwrap();
            let names: HashSet<&str> = workload.phases.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names.len(), workload.phases.len(), "scale {scale}");
        }
        assert!(
            matches!(build("nope", 1, 1.0), Err(WorkloadError::Unknown(name)) if name == "nope")
        );
    }
}
