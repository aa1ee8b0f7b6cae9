//! Randomized isolation between tenants (issue 8): tenants `a` and `b` share type names and
//! object ids; `a`'s tokens of every scope call every RPC of `authzed.api.v1` and
//! `ostiary.admin.v1` with `b`'s ids, cursors, consistency tokens, Watch start tokens, token
//! ids and the `ostiary-tenant: b` metadata. The same seeded sequence of attempts runs
//! against two servers: one where `b` holds data (and an extra definition), one where `b`
//! holds none. Every outcome `a` sees (response or error code and message, with its own
//! consistency tokens and cursors masked, as they encode global revisions) must be the same
//! in both, so nothing `a` observes depends on `b`'s data or on whether `b`'s things exist;
//! and `b`'s data, schema, tokens and audit log are unchanged afterwards.
//!
//! `OSTIARY_ISOLATION_ATTEMPTS` (default 10000) and `OSTIARY_ISOLATION_SEED` (a `u64`)
//! override the run.

use std::collections::BTreeMap;
use std::time::Duration;

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::ostiary::admin::v1 as admin;
use proptest::prelude::Rng as _;
use proptest::test_runner::{RngAlgorithm, TestRng};
use tonic::{Request, Status};

use crate::support::{
    ROOT, SCHEMA, TestServer, fully_consistent, object, rel, req, req_in, subject, touch,
};

/// `b`'s extra definition when it holds data; `a` never has it.
const B_EXTRA: &str = "definition secret {\n  relation owner: user\n}\n";
/// The schema `a` may switch to during the run.
const A_ALTERNATE: &str = "definition note {\n  relation owner: user\n}\n";

/// What only `b`'s data contains (never in `a`'s data nor in an `a` write): a response
/// listing relationships, resources, subjects or a schema must not contain them.
const B_MARKERS: &[&str] = &["mallory", "b-only", "secret"];
/// The markers a response that echoes its resource may still be checked for.
const B_SUBJECT_MARKERS: &[&str] = &["mallory", "secret"];
const NO_MARKERS: &[&str] = &[];

/// `b`'s relationships (ids overlapping `a`'s on purpose).
fn b_relationships() -> Vec<String> {
    let mut rels = vec![
        "document:1#viewer@user:alice".to_owned(),
        "document:1#viewer@user:mallory".to_owned(),
        "document:2#editor@user:mallory".to_owned(),
        "document:b-only#viewer@user:alice".to_owned(),
        "document:3#parent@folder:f1".to_owned(),
        "folder:f1#viewer@user:mallory".to_owned(),
        "folder:f1#viewer@group:g1#member".to_owned(),
        "group:g1#member@user:alice".to_owned(),
        "group:g1#member@user:mallory".to_owned(),
        "secret:s1#owner@user:alice".to_owned(),
    ];
    rels.extend((0..40).map(|idx| format!("document:b-only-{idx}#viewer@user:mallory")));
    rels
}

/// `a`'s relationships at the start.
const A_RELATIONSHIPS: [&str; 6] = [
    "document:1#viewer@user:carol",
    "document:2#editor@user:carol",
    "document:3#parent@folder:f1",
    "folder:f1#viewer@group:g1#member",
    "group:g1#member@user:dave",
    "document:4#viewer@user:alice",
];

const ACTORS: [&str; 8] = [
    "a_all",
    "a_check",
    "a_read",
    "a_write",
    "a_schema",
    "a_watch",
    "a_admin",
    "a_restricted",
];
const ZED_LABELS: [&str; 7] = [
    "a_early", "a_latest", "b_write", "b_schema", "b_read", "b_delete", "garbage",
];
/// Watch start tokens: `a_latest` would wait for a heartbeat (nothing after it).
const WATCH_STARTS: [&str; 6] = [
    "a_early", "b_write", "b_schema", "b_read", "b_delete", "garbage",
];
const CURSOR_LABELS: [&str; 6] = [
    "a_read_cursor",
    "a_lookup_cursor",
    "b_read_cursor",
    "b_lookup_cursor",
    "b_export_cursor",
    "garbage_cursor",
];
const TOKEN_ID_LABELS: [&str; 4] = ["b_check_id", "b_admin_id", "b_all_id", "unknown_id"];

const TYPES: [&str; 5] = ["document", "folder", "group", "user", "secret"];
const IDS: [&str; 8] = ["1", "2", "3", "4", "b-only", "f1", "g1", "s1"];
const PERMISSIONS: [&str; 6] = ["view", "edit", "viewer", "member", "owner", "nope"];
const SUBJECTS: [&str; 6] = [
    "user:alice",
    "user:mallory",
    "user:carol",
    "user:dave",
    "group:g1#member",
    "folder:f1",
];
/// Resources and subjects `a` writes (no `b` marker among them).
const WRITE_RESOURCES: [&str; 6] = [
    "document:1",
    "document:2",
    "document:5",
    "folder:f1",
    "group:g1",
    "secret:s1",
];
const WRITE_RELATIONS: [&str; 5] = ["viewer", "editor", "parent", "member", "owner"];
const WRITE_SUBJECTS: [&str; 5] = [
    "user:alice",
    "user:carol",
    "user:erin",
    "group:g1#member",
    "folder:f1",
];
const TENANT_HEADERS: [&str; 3] = ["b", "a", "nobody"];
const TOKEN_TENANTS: [&str; 3] = ["b", "", "nobody"];

#[derive(Debug, Clone)]
enum Consistency {
    Unset,
    Minimize,
    Full,
    Fresh(&'static str),
    Exact(&'static str),
}

#[derive(Debug, Clone)]
struct Filter {
    resource_type: &'static str,
    resource_id: Option<&'static str>,
    relation: Option<&'static str>,
    subject: Option<&'static str>,
}

#[derive(Debug, Clone)]
enum Call {
    Check {
        resource: String,
        permission: &'static str,
        subject: &'static str,
        consistency: Consistency,
    },
    CheckBulk {
        items: Vec<(String, &'static str, &'static str)>,
        consistency: Consistency,
    },
    Expand {
        resource: String,
        permission: &'static str,
        consistency: Consistency,
    },
    LookupResources {
        resource_type: &'static str,
        permission: &'static str,
        subject: &'static str,
        consistency: Consistency,
        limit: u32,
        cursor: Option<&'static str>,
    },
    LookupSubjects {
        resource: String,
        permission: &'static str,
        subject_type: &'static str,
        consistency: Consistency,
    },
    Read {
        filter: Filter,
        consistency: Consistency,
        limit: u32,
        cursor: Option<&'static str>,
    },
    Write {
        updates: Vec<(bool, String)>,
        precondition: Option<(bool, Filter)>,
    },
    Delete {
        filter: Filter,
        precondition: Option<(bool, Filter)>,
    },
    Import {
        relationships: Vec<String>,
    },
    Export {
        filter: Option<Filter>,
        consistency: Consistency,
        limit: u32,
        cursor: Option<&'static str>,
    },
    ReadSchema,
    WriteSchema {
        alternate: bool,
    },
    Reflect {
        consistency: Consistency,
    },
    Diff {
        consistency: Consistency,
        with_b_extra: bool,
    },
    Watch {
        start: &'static str,
        filter: Option<Filter>,
    },
    ListTokens {
        tenant: &'static str,
    },
    CreateToken {
        tenant: &'static str,
    },
    RotateToken {
        id: &'static str,
    },
    RevokeToken {
        id: &'static str,
    },
    ReadAudit {
        tenant: &'static str,
    },
    VerifyAudit {
        tenant: &'static str,
    },
    Tenant {
        what: usize,
        id: &'static str,
    },
}

#[derive(Debug, Clone)]
struct Attempt {
    actor: &'static str,
    tenant_header: Option<&'static str>,
    on_behalf_of: bool,
    call: Call,
}

/// A seeded source of choices.
struct Chooser(TestRng);

impl Chooser {
    fn new(seed: u64) -> Self {
        let mut bytes = [0_u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Self(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.0.next_u64() % u64::try_from(n).unwrap()).unwrap()
    }

    fn one<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn consistency(&mut self) -> Consistency {
        match self.below(6) {
            0 => Consistency::Unset,
            1 => Consistency::Minimize,
            2 => Consistency::Full,
            3 | 4 => Consistency::Fresh(self.one(&ZED_LABELS)),
            _ => Consistency::Exact(self.one(&ZED_LABELS)),
        }
    }

    fn cursor(&mut self) -> Option<&'static str> {
        self.chance(50).then(|| self.one(&CURSOR_LABELS))
    }

    fn resource(&mut self) -> String {
        format!("{}:{}", self.one(&TYPES), self.one(&IDS))
    }

    fn filter(&mut self) -> Filter {
        Filter {
            resource_type: self.one(&TYPES),
            resource_id: self.chance(50).then(|| self.one(&IDS)),
            relation: self.chance(30).then(|| self.one(&WRITE_RELATIONS)),
            subject: self.chance(30).then(|| self.one(&SUBJECTS)),
        }
    }

    fn write_relationship(&mut self) -> String {
        format!(
            "{}#{}@{}",
            self.one(&WRITE_RESOURCES),
            self.one(&WRITE_RELATIONS),
            self.one(&WRITE_SUBJECTS)
        )
    }

    fn precondition(&mut self) -> Option<(bool, Filter)> {
        self.chance(20).then(|| (self.chance(50), self.filter()))
    }

    fn call(&mut self) -> Call {
        match self.below(24) {
            0 | 1 => Call::Check {
                resource: self.resource(),
                permission: self.one(&PERMISSIONS),
                subject: self.one(&SUBJECTS),
                consistency: self.consistency(),
            },
            2 => Call::CheckBulk {
                items: (0..1 + self.below(3))
                    .map(|_| (self.resource(), self.one(&PERMISSIONS), self.one(&SUBJECTS)))
                    .collect(),
                consistency: self.consistency(),
            },
            3 => Call::Expand {
                resource: self.resource(),
                permission: self.one(&PERMISSIONS),
                consistency: self.consistency(),
            },
            4 | 5 => Call::LookupResources {
                resource_type: self.one(&TYPES),
                permission: self.one(&PERMISSIONS),
                subject: self.one(&SUBJECTS),
                consistency: self.consistency(),
                limit: self.one(&[0, 1, 2]),
                cursor: self.cursor(),
            },
            6 => Call::LookupSubjects {
                resource: self.resource(),
                permission: self.one(&PERMISSIONS),
                subject_type: self.one(&["user", "group", "folder"]),
                consistency: self.consistency(),
            },
            7 | 8 => Call::Read {
                filter: self.filter(),
                consistency: self.consistency(),
                limit: self.one(&[0, 1, 3]),
                cursor: self.cursor(),
            },
            9 | 10 => Call::Write {
                updates: (0..1 + self.below(3))
                    .map(|_| (self.chance(70), self.write_relationship()))
                    .collect(),
                precondition: self.precondition(),
            },
            11 => Call::Delete {
                filter: self.filter(),
                precondition: self.precondition(),
            },
            12 => Call::Import {
                relationships: (0..1 + self.below(3))
                    .map(|_| self.write_relationship())
                    .collect(),
            },
            13 => Call::Export {
                filter: self.chance(50).then(|| self.filter()),
                consistency: self.consistency(),
                limit: self.one(&[0, 1, 5]),
                cursor: self.cursor(),
            },
            14 => Call::ReadSchema,
            15 => Call::WriteSchema {
                alternate: self.chance(50),
            },
            16 => Call::Reflect {
                consistency: self.consistency(),
            },
            17 => Call::Diff {
                consistency: self.consistency(),
                with_b_extra: self.chance(50),
            },
            18 => Call::Watch {
                start: self.one(&WATCH_STARTS),
                filter: self.chance(30).then(|| self.filter()),
            },
            19 => Call::ListTokens {
                tenant: self.one(&TOKEN_TENANTS),
            },
            20 => match self.below(3) {
                0 => Call::CreateToken {
                    tenant: self.one(&["b", "nobody"]),
                },
                1 => Call::RotateToken {
                    id: self.one(&TOKEN_ID_LABELS),
                },
                _ => Call::RevokeToken {
                    id: self.one(&TOKEN_ID_LABELS),
                },
            },
            21 => Call::ReadAudit {
                tenant: self.one(&TOKEN_TENANTS),
            },
            22 => Call::VerifyAudit {
                tenant: self.one(&TOKEN_TENANTS),
            },
            _ => Call::Tenant {
                what: self.below(7),
                id: self.one(&["a", "b", "nobody"]),
            },
        }
    }

    fn attempt(&mut self) -> Attempt {
        Attempt {
            // Half the attempts with a token of every scope, so that they get past the
            // door and reach the handlers; the rest spread over the single scopes.
            actor: if self.chance(50) {
                "a_all"
            } else {
                self.one(&ACTORS)
            },
            tenant_header: self.chance(15).then(|| self.one(&TENANT_HEADERS)),
            on_behalf_of: self.chance(10),
            call: self.call(),
        }
    }
}

/// One server's concrete values behind the labels.
struct World {
    server: TestServer,
    /// Label to concrete value (tokens, ids, consistency tokens, cursors).
    values: BTreeMap<&'static str, String>,
}

impl World {
    fn value(&self, label: &str) -> &str {
        &self.values[label]
    }

    fn zed(&self, label: &str) -> pb::ZedToken {
        pb::ZedToken {
            token: self.value(label).to_owned(),
        }
    }

    fn consistency(&self, consistency: &Consistency) -> Option<pb::Consistency> {
        use pb::consistency::Requirement;
        let requirement = match consistency {
            Consistency::Unset => return None,
            Consistency::Minimize => Requirement::MinimizeLatency(true),
            Consistency::Full => Requirement::FullyConsistent(true),
            Consistency::Fresh(label) => Requirement::AtLeastAsFresh(self.zed(label)),
            Consistency::Exact(label) => Requirement::AtExactSnapshot(self.zed(label)),
        };
        Some(pb::Consistency {
            requirement: Some(requirement),
        })
    }

    fn cursor(&self, label: Option<&str>) -> Option<pb::Cursor> {
        label.map(|label| pb::Cursor {
            token: self.value(label).to_owned(),
        })
    }

    /// Replaces every concrete value by its label, so that outcomes of two servers compare.
    fn mask(&self, text: &str) -> String {
        let mut out = mask_tokens(text);
        let mut values: Vec<(&&str, &String)> = self.values.iter().collect();
        values.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        for (label, value) in values {
            if !value.is_empty() {
                out = out.replace(value.as_str(), &format!("<{label}>"));
            }
        }
        out
    }
}

/// Masks the text of every `token: "..."` (consistency tokens and cursors in responses:
/// they encode global revisions and server keys).
fn mask_tokens(text: &str) -> String {
    const NEEDLE: &str = "token: \"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(NEEDLE) {
        out.push_str(&rest[..at + NEEDLE.len()]);
        rest = &rest[at + NEEDLE.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("<masked>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn filter_pb(filter: &Filter) -> pb::RelationshipFilter {
    pb::RelationshipFilter {
        resource_type: filter.resource_type.to_owned(),
        optional_resource_id: filter.resource_id.unwrap_or_default().to_owned(),
        optional_resource_id_prefix: String::new(),
        optional_relation: filter.relation.unwrap_or_default().to_owned(),
        optional_subject_filter: filter.subject.map(|text| {
            let subject = subject(text);
            let object = subject.object.unwrap();
            pb::SubjectFilter {
                subject_type: object.object_type,
                optional_subject_id: object.object_id,
                optional_relation: (!subject.optional_relation.is_empty()).then_some(
                    pb::subject_filter::RelationFilter {
                        relation: subject.optional_relation,
                    },
                ),
            }
        }),
    }
}

fn precondition_pb(precondition: Option<&(bool, Filter)>) -> Vec<pb::Precondition> {
    use pb::precondition::Operation;
    precondition
        .map(|(must_match, filter)| pb::Precondition {
            operation: if *must_match {
                Operation::MustMatch
            } else {
                Operation::MustNotMatch
            } as i32,
            filter: Some(filter_pb(filter)),
        })
        .into_iter()
        .collect()
}

/// How a call ended, as comparable text, and what `b`'s data it must not contain.
struct Outcome {
    text: String,
    markers: &'static [&'static str],
}

fn status_text(status: &Status) -> String {
    format!("ERR {:?}: {}", status.code(), status.message())
}

fn outcome<T: std::fmt::Debug>(
    res: Result<T, Status>,
    markers: &'static [&'static str],
) -> Outcome {
    Outcome {
        text: match res {
            Ok(value) => format!("OK {value:?}"),
            Err(status) => status_text(&status),
        },
        markers,
    }
}

/// Reads a server stream to its end (or the first error) into lines.
async fn drain<T: std::fmt::Debug>(
    res: Result<tonic::Response<tonic::Streaming<T>>, Status>,
    sort: bool,
) -> Outcome {
    let mut stream = match res {
        Ok(response) => response.into_inner(),
        Err(status) => return outcome::<()>(Err(status), NO_MARKERS),
    };
    let mut lines = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(message)) => lines.push(format!("{message:?}")),
            Ok(None) => break,
            Err(status) => {
                lines.push(status_text(&status));
                break;
            }
        }
    }
    if sort {
        lines.sort();
    }
    Outcome {
        text: format!("STREAM {}", lines.join("\n")),
        markers: B_MARKERS,
    }
}

fn audit_entry_text(entry: &admin::AuditEntry) -> String {
    // The commit's token, hashes, time and request id are left out: the token is keyed per
    // server (and encrypts the global revision, so it counts nothing), the hashes cover
    // it, and the request id is per server.
    format!(
        "#{} {} by {} for {:?} at {}: {}",
        entry.sequence,
        entry.action,
        entry.actor,
        entry.on_behalf_of,
        entry.client_address,
        entry.details_json
    )
}

/// `message` as `attempt`'s actor sends it (bearer, tenant and on-behalf-of metadata).
fn wrap<T>(world: &World, attempt: &Attempt, message: T) -> Request<T> {
    let token = world.value(attempt.actor);
    let mut request = match attempt.tenant_header {
        Some(tenant) => req_in(token, tenant, message),
        None => req(token, message),
    };
    if attempt.on_behalf_of {
        request
            .metadata_mut()
            .insert("ostiary-on-behalf-of", "support-7".parse().unwrap());
    }
    request
}

async fn run(world: &World, attempt: &Attempt) -> Outcome {
    let server = &world.server;
    match &attempt.call {
        Call::Check {
            resource,
            permission,
            subject: subject_text,
            consistency,
        } => outcome(
            server
                .permissions()
                .check_permission(wrap(
                    world,
                    attempt,
                    pb::CheckPermissionRequest {
                        consistency: world.consistency(consistency),
                        resource: Some(object(resource)),
                        permission: (*permission).to_owned(),
                        subject: Some(subject(subject_text)),
                        context: None,
                        with_tracing: false,
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::CheckBulk { items, consistency } => outcome(
            server
                .permissions()
                .check_bulk_permissions(wrap(
                    world,
                    attempt,
                    pb::CheckBulkPermissionsRequest {
                        consistency: world.consistency(consistency),
                        items: items
                            .iter()
                            .map(|(resource, permission, subject_text)| {
                                pb::CheckBulkPermissionsRequestItem {
                                    resource: Some(object(resource)),
                                    permission: (*permission).to_owned(),
                                    subject: Some(subject(subject_text)),
                                    context: None,
                                }
                            })
                            .collect(),
                        with_tracing: false,
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::Expand {
            resource,
            permission,
            consistency,
        } => outcome(
            server
                .permissions()
                .expand_permission_tree(wrap(
                    world,
                    attempt,
                    pb::ExpandPermissionTreeRequest {
                        consistency: world.consistency(consistency),
                        resource: Some(object(resource)),
                        permission: (*permission).to_owned(),
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            B_SUBJECT_MARKERS,
        ),
        Call::LookupResources {
            resource_type,
            permission,
            subject: subject_text,
            consistency,
            limit,
            cursor,
        } => {
            drain(
                server
                    .permissions()
                    .lookup_resources(wrap(
                        world,
                        attempt,
                        pb::LookupResourcesRequest {
                            consistency: world.consistency(consistency),
                            resource_object_type: (*resource_type).to_owned(),
                            permission: (*permission).to_owned(),
                            subject: Some(subject(subject_text)),
                            context: None,
                            optional_limit: *limit,
                            optional_cursor: world.cursor(*cursor),
                            with_debug: false,
                        },
                    ))
                    .await,
                true,
            )
            .await
        }
        Call::LookupSubjects {
            resource,
            permission,
            subject_type,
            consistency,
        } => {
            drain(
                server
                    .permissions()
                    .lookup_subjects(wrap(
                        world,
                        attempt,
                        pb::LookupSubjectsRequest {
                            consistency: world.consistency(consistency),
                            resource: Some(object(resource)),
                            permission: (*permission).to_owned(),
                            subject_object_type: (*subject_type).to_owned(),
                            ..Default::default()
                        },
                    ))
                    .await,
                true,
            )
            .await
        }
        Call::Read {
            filter,
            consistency,
            limit,
            cursor,
        } => {
            drain(
                server
                    .permissions()
                    .read_relationships(wrap(
                        world,
                        attempt,
                        pb::ReadRelationshipsRequest {
                            consistency: world.consistency(consistency),
                            relationship_filter: Some(filter_pb(filter)),
                            optional_limit: *limit,
                            optional_cursor: world.cursor(*cursor),
                        },
                    ))
                    .await,
                false,
            )
            .await
        }
        Call::Write {
            updates,
            precondition,
        } => outcome(
            server
                .permissions()
                .write_relationships(wrap(
                    world,
                    attempt,
                    pb::WriteRelationshipsRequest {
                        updates: updates
                            .iter()
                            .map(|(is_touch, text)| {
                                if *is_touch {
                                    touch(text)
                                } else {
                                    crate::support::delete(text)
                                }
                            })
                            .collect(),
                        optional_preconditions: precondition_pb(precondition.as_ref()),
                        optional_transaction_metadata: None,
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::Delete {
            filter,
            precondition,
        } => outcome(
            server
                .permissions()
                .delete_relationships(wrap(
                    world,
                    attempt,
                    pb::DeleteRelationshipsRequest {
                        relationship_filter: Some(filter_pb(filter)),
                        optional_preconditions: precondition_pb(precondition.as_ref()),
                        ..Default::default()
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::Import { relationships } => {
            let message = pb::ImportBulkRelationshipsRequest {
                relationships: relationships.iter().map(|text| rel(text)).collect(),
            };
            outcome(
                server
                    .permissions()
                    .import_bulk_relationships(wrap(
                        world,
                        attempt,
                        tokio_stream::iter(vec![message]),
                    ))
                    .await
                    .map(tonic::Response::into_inner),
                NO_MARKERS,
            )
        }
        Call::Export {
            filter,
            consistency,
            limit,
            cursor,
        } => {
            drain(
                server
                    .permissions()
                    .export_bulk_relationships(wrap(
                        world,
                        attempt,
                        pb::ExportBulkRelationshipsRequest {
                            consistency: world.consistency(consistency),
                            optional_limit: *limit,
                            optional_cursor: world.cursor(*cursor),
                            optional_relationship_filter: filter.as_ref().map(filter_pb),
                        },
                    ))
                    .await,
                false,
            )
            .await
        }
        Call::ReadSchema => outcome(
            server
                .schema()
                .read_schema(wrap(world, attempt, pb::ReadSchemaRequest {}))
                .await
                .map(tonic::Response::into_inner),
            B_MARKERS,
        ),
        Call::WriteSchema { alternate } => {
            let schema = if *alternate {
                format!("{SCHEMA}{A_ALTERNATE}")
            } else {
                SCHEMA.to_owned()
            };
            outcome(
                server
                    .schema()
                    .write_schema(wrap(world, attempt, pb::WriteSchemaRequest { schema }))
                    .await
                    .map(tonic::Response::into_inner),
                NO_MARKERS,
            )
        }
        Call::Reflect { consistency } => outcome(
            server
                .schema()
                .reflect_schema(wrap(
                    world,
                    attempt,
                    pb::ReflectSchemaRequest {
                        consistency: world.consistency(consistency),
                        optional_filters: Vec::new(),
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            B_MARKERS,
        ),
        Call::Diff {
            consistency,
            with_b_extra,
        } => {
            let comparison_schema = if *with_b_extra {
                format!("{SCHEMA}{B_EXTRA}")
            } else {
                SCHEMA.to_owned()
            };
            // The diff names what the comparison adds: the `b` marker in the request comes
            // back as an addition, which is the caller's own input, not `b`'s data.
            outcome(
                server
                    .schema()
                    .diff_schema(wrap(
                        world,
                        attempt,
                        pb::DiffSchemaRequest {
                            consistency: world.consistency(consistency),
                            comparison_schema,
                        },
                    ))
                    .await
                    .map(tonic::Response::into_inner),
                NO_MARKERS,
            )
        }
        Call::Watch { start, filter } => {
            let request = pb::WatchRequest {
                optional_object_types: Vec::new(),
                optional_start_cursor: Some(world.zed(start)),
                optional_relationship_filters: filter.iter().map(filter_pb).collect(),
                optional_update_kinds: vec![
                    pb::WatchKind::IncludeRelationshipUpdates as i32,
                    pb::WatchKind::IncludeCheckpoints as i32,
                ],
            };
            let mut stream = match server.watch().watch(wrap(world, attempt, request)).await {
                Ok(response) => response.into_inner(),
                Err(status) => return outcome::<()>(Err(status), NO_MARKERS),
            };
            // Everything up to the first checkpoint: `a`'s changes since the start.
            let mut lines = Vec::new();
            loop {
                let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
                    .await
                    .expect("a watch reaches a checkpoint");
                match next {
                    Ok(Some(message)) => {
                        let done = message.is_checkpoint;
                        lines.push(format!("{message:?}"));
                        if done {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        lines.push(status_text(&status));
                        break;
                    }
                }
            }
            Outcome {
                text: format!("WATCH {}", lines.join("\n")),
                markers: B_MARKERS,
            }
        }
        Call::ListTokens { tenant } => {
            let res = server
                .tokens()
                .list_tokens(wrap(
                    world,
                    attempt,
                    admin::ListTokensRequest {
                        tenant: (*tenant).to_owned(),
                    },
                ))
                .await
                .map(|response| {
                    let mut lines: Vec<String> = response
                        .into_inner()
                        .tokens
                        .iter()
                        .map(|token| format!("{token:?}"))
                        .collect();
                    // Listed by id, and ids are random: compare as a set (after masking).
                    lines = lines.iter().map(|line| world.mask(line)).collect();
                    lines.sort();
                    lines
                });
            outcome(res, NO_MARKERS)
        }
        Call::CreateToken { tenant } => outcome(
            server
                .tokens()
                .create_token(wrap(
                    world,
                    attempt,
                    admin::CreateTokenRequest {
                        tenant: (*tenant).to_owned(),
                        scopes: vec![admin::Scope::Check as i32],
                        definitions: Vec::new(),
                        ttl: Some(crate::support::duration(Duration::from_secs(60))),
                        description: "escalation".into(),
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::RotateToken { id } => outcome(
            server
                .tokens()
                .rotate_token(wrap(
                    world,
                    attempt,
                    admin::RotateTokenRequest {
                        token_id: world.value(id).to_owned(),
                        grace_period: None,
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::RevokeToken { id } => outcome(
            server
                .tokens()
                .revoke_token(wrap(
                    world,
                    attempt,
                    admin::RevokeTokenRequest {
                        token_id: world.value(id).to_owned(),
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::ReadAudit { tenant } => {
            let res = server
                .audit()
                .read_audit_log(wrap(
                    world,
                    attempt,
                    admin::ReadAuditLogRequest {
                        tenant: (*tenant).to_owned(),
                        ..Default::default()
                    },
                ))
                .await;
            let mut stream = match res {
                Ok(response) => response.into_inner(),
                Err(status) => return outcome::<()>(Err(status), NO_MARKERS),
            };
            let mut lines = Vec::new();
            while let Some(message) = stream.message().await.transpose() {
                match message {
                    Ok(message) => lines.push(audit_entry_text(&message.entry.unwrap())),
                    Err(status) => {
                        lines.push(status_text(&status));
                        break;
                    }
                }
            }
            // `a`'s own audit entries echo its own inputs (filters naming `b`'s ids).
            Outcome {
                text: format!("AUDIT {}", lines.join("\n")),
                markers: NO_MARKERS,
            }
        }
        Call::VerifyAudit { tenant } => outcome(
            server
                .audit()
                .verify_audit_log(wrap(
                    world,
                    attempt,
                    admin::VerifyAuditLogRequest {
                        tenant: (*tenant).to_owned(),
                    },
                ))
                .await
                .map(tonic::Response::into_inner),
            NO_MARKERS,
        ),
        Call::Tenant { what, id } => {
            let id = (*id).to_owned();
            let tenants = server.tenants();
            let mut tenants = tenants;
            let res = match what {
                0 => tenants
                    .create_tenant(wrap(
                        world,
                        attempt,
                        admin::CreateTenantRequest { id, quotas: None },
                    ))
                    .await
                    .map(|_| ()),
                1 => tenants
                    .list_tenants(wrap(world, attempt, admin::ListTenantsRequest {}))
                    .await
                    .map(|_| ()),
                2 => tenants
                    .get_tenant(wrap(world, attempt, admin::GetTenantRequest { id }))
                    .await
                    .map(|_| ()),
                3 => tenants
                    .suspend_tenant(wrap(world, attempt, admin::SuspendTenantRequest { id }))
                    .await
                    .map(|_| ()),
                4 => tenants
                    .resume_tenant(wrap(world, attempt, admin::ResumeTenantRequest { id }))
                    .await
                    .map(|_| ()),
                5 => tenants
                    .delete_tenant(wrap(world, attempt, admin::DeleteTenantRequest { id }))
                    .await
                    .map(|_| ()),
                _ => tenants
                    .set_tenant_quotas(wrap(
                        world,
                        attempt,
                        admin::SetTenantQuotasRequest {
                            id,
                            quotas: Some(admin::TenantQuotas {
                                max_relationships: 1,
                                ..Default::default()
                            }),
                        },
                    ))
                    .await
                    .map(|_| ()),
            };
            outcome(res, NO_MARKERS)
        }
    }
}

/// One cursor from a read stream of `b` or `a` (limit 1).
async fn read_cursor(server: &TestServer, token: &str) -> String {
    let mut stream = server
        .permissions()
        .read_relationships(req(
            token,
            pb::ReadRelationshipsRequest {
                consistency: fully_consistent(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                optional_limit: 1,
                optional_cursor: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    first.after_result_cursor.unwrap().token
}

async fn lookup_cursor(server: &TestServer, token: &str, subject_text: &str) -> String {
    let mut stream = server
        .permissions()
        .lookup_resources(req(
            token,
            pb::LookupResourcesRequest {
                consistency: fully_consistent(),
                resource_object_type: "document".into(),
                permission: "view".into(),
                subject: Some(subject(subject_text)),
                optional_limit: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    first.after_result_cursor.unwrap().token
}

/// Builds a server with tenants `a` and `b`; `b` keeps its data when `b_has_data`, and
/// otherwise deletes it (and its extra definition) after its tokens and cursors were taken.
async fn world(b_has_data: bool) -> World {
    use admin::Scope;
    let server = TestServer::start().await;
    for tenant in ["a", "b"] {
        server
            .create_tenant(tenant, admin::TenantQuotas::default())
            .await;
    }
    let mut values = BTreeMap::new();
    // `b`: schema with an extra definition, data, tokens, consistency tokens, cursors.
    let b_all = server
        .create_token("b", &crate::support::TENANT_SCOPES, &[])
        .await;
    let b_check = server.create_token("b", &[Scope::Check], &[]).await;
    let b_admin = server.create_token("b", &[Scope::Admin], &[]).await;
    let b_schema = server
        .write_schema(&b_all.secret, &format!("{SCHEMA}{B_EXTRA}"))
        .await;
    let rels = b_relationships();
    let b_write = server
        .write(&b_all.secret, rels.iter().map(|text| touch(text)).collect())
        .await
        .unwrap();
    let b_read_cursor = read_cursor(&server, &b_all.secret).await;
    let b_lookup_cursor = lookup_cursor(&server, &b_all.secret, "user:mallory").await;
    let mut export = server
        .permissions()
        .export_bulk_relationships(req(
            &b_all.secret,
            pb::ExportBulkRelationshipsRequest {
                consistency: fully_consistent(),
                optional_limit: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let b_export_cursor = export
        .message()
        .await
        .unwrap()
        .unwrap()
        .after_result_cursor
        .unwrap()
        .token;
    drop(export);
    let b_read = server
        .schema()
        .read_schema(req(&b_all.secret, pb::ReadSchemaRequest {}))
        .await
        .unwrap()
        .into_inner()
        .read_at
        .unwrap();
    let b_delete = if b_has_data {
        server
            .permissions()
            .delete_relationships(req(
                &b_all.secret,
                pb::DeleteRelationshipsRequest {
                    relationship_filter: Some(pb::RelationshipFilter {
                        resource_type: "document".into(),
                        optional_resource_id: "none".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .deleted_at
            .unwrap()
    } else {
        let mut deleted = None;
        for resource_type in ["document", "folder", "group", "secret"] {
            deleted = server
                .permissions()
                .delete_relationships(req(
                    &b_all.secret,
                    pb::DeleteRelationshipsRequest {
                        relationship_filter: Some(pb::RelationshipFilter {
                            resource_type: resource_type.into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .deleted_at;
        }
        server.write_schema(&b_all.secret, SCHEMA).await;
        deleted.unwrap()
    };
    // `a`: the shared schema, its data, and its tokens.
    let a_all = server
        .create_token("a", &crate::support::TENANT_SCOPES, &[])
        .await;
    server.write_schema(&a_all.secret, SCHEMA).await;
    let (last, rest) = A_RELATIONSHIPS.split_last().unwrap();
    let a_early = server
        .write(&a_all.secret, rest.iter().map(|text| touch(text)).collect())
        .await
        .unwrap();
    let scoped = [
        ("a_check", Scope::Check),
        ("a_read", Scope::Read),
        ("a_write", Scope::Write),
        ("a_schema", Scope::Schema),
        ("a_watch", Scope::Watch),
        ("a_admin", Scope::Admin),
    ];
    for (label, scope) in scoped {
        let token = server.create_token("a", &[scope], &[]).await;
        values.insert(label, token.secret);
        values.insert(id_label(label), token.id);
    }
    let restricted = server
        .create_token(
            "a",
            &[Scope::Check, Scope::Read, Scope::Write, Scope::Watch],
            &["document"],
        )
        .await;
    values.insert("a_restricted", restricted.secret);
    values.insert("a_restricted_id", restricted.id);
    // `a`'s last write is the last commit before the attempts: reads at `a_latest` and
    // fully consistent reads share its revision with the checks `b` now makes, so a
    // Check cache keyed without the tenant would hand `b`'s answers to `a`.
    let a_latest = server
        .write(&a_all.secret, vec![touch(last)])
        .await
        .unwrap();
    let a_read_cursor = read_cursor(&server, &a_all.secret).await;
    let a_lookup_cursor = lookup_cursor(&server, &a_all.secret, "user:dave").await;
    for resource in [
        "document:1",
        "document:2",
        "document:3",
        "document:4",
        "folder:f1",
    ] {
        for permission in ["view", "edit", "viewer"] {
            for subject_text in SUBJECTS {
                let _ = server
                    .permissions()
                    .check_permission(req(
                        &b_all.secret,
                        pb::CheckPermissionRequest {
                            consistency: fully_consistent(),
                            resource: Some(object(resource)),
                            permission: permission.to_owned(),
                            subject: Some(subject(subject_text)),
                            context: None,
                            with_tracing: false,
                        },
                    ))
                    .await;
            }
        }
    }
    values.insert("a_all", a_all.secret);
    values.insert("a_all_id", a_all.id);
    values.insert("b_all", b_all.secret);
    values.insert("b_all_id", b_all.id);
    values.insert("b_check_id", b_check.id);
    values.insert("b_admin_id", b_admin.id);
    values.insert("unknown_id", "vvvvvvvvvvvvvvvv".to_owned());
    for (label, zed) in [
        ("a_early", a_early),
        ("a_latest", a_latest),
        ("b_write", b_write),
        ("b_schema", b_schema),
        ("b_read", b_read),
        ("b_delete", b_delete),
    ] {
        values.insert(label, zed.token);
    }
    values.insert("garbage", "AgAAAAAAAAAAAAAAAAAAAAAA".to_owned());
    values.insert("a_read_cursor", a_read_cursor);
    values.insert("a_lookup_cursor", a_lookup_cursor);
    values.insert("b_read_cursor", b_read_cursor);
    values.insert("b_lookup_cursor", b_lookup_cursor);
    values.insert("b_export_cursor", b_export_cursor);
    values.insert(
        "garbage_cursor",
        "AgAAAAAAAAAAAAAAAAAAAAAAAGRvY3VtZW50".to_owned(),
    );
    World { server, values }
}

fn id_label(label: &'static str) -> &'static str {
    match label {
        "a_check" => "a_check_id",
        "a_read" => "a_read_id",
        "a_write" => "a_write_id",
        "a_schema" => "a_schema_id",
        "a_watch" => "a_watch_id",
        "a_admin" => "a_admin_id",
        other => panic!("no id label for {other}"),
    }
}

/// What root sees of `b`: relationships, schema, token ids, audit log length.
async fn b_state(world: &World) -> (Vec<String>, String, Vec<String>, usize) {
    let server = &world.server;
    let mut token_ids: Vec<String> = server
        .tokens()
        .list_tokens(req(ROOT, admin::ListTokensRequest { tenant: "b".into() }))
        .await
        .unwrap()
        .into_inner()
        .tokens
        .into_iter()
        .map(|token| token.id)
        .collect();
    token_ids.sort();
    (
        server.dump("b").await,
        server.schema_text("b").await.unwrap(),
        token_ids,
        server.audit_log("b").await.len(),
    )
}

/// Runs `attempts` against `world`, returning each outcome masked.
async fn run_all(world: &World, attempts: &[Attempt]) -> Vec<String> {
    let mut out = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        let outcome = run(world, attempt).await;
        let text = world.mask(&outcome.text);
        if !text.starts_with("ERR") {
            for marker in outcome.markers {
                assert!(
                    !text.contains(marker),
                    "`a` observed `b`'s data ({marker}) with {attempt:?}: {text}"
                );
            }
        }
        out.push(text);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_a_never_observes_nor_changes_tenant_b() {
    let n_attempts: usize = std::env::var("OSTIARY_ISOLATION_ATTEMPTS")
        .ok()
        .map_or(10_000, |text| text.parse().unwrap());
    let seed: u64 = std::env::var("OSTIARY_ISOLATION_SEED")
        .ok()
        .map_or(0x05_71A2_1508, |text| text.parse().unwrap());
    let mut chooser = Chooser::new(seed);
    let attempts: Vec<Attempt> = (0..n_attempts).map(|_| chooser.attempt()).collect();
    let started = std::time::Instant::now();
    let (with_data, without_data) = tokio::join!(world(true), world(false));
    let b_before = b_state(&with_data).await;
    let b_empty_before = b_state(&without_data).await;
    let (seen_with, seen_without) = tokio::join!(
        run_all(&with_data, &attempts),
        run_all(&without_data, &attempts)
    );
    for (idx, (with, without)) in seen_with.iter().zip(&seen_without).enumerate() {
        assert_eq!(
            with, without,
            "attempt {idx} (seed {seed}) differs with `b`'s data: {:?}",
            attempts[idx]
        );
    }
    // `b` is unchanged on both servers.
    assert_eq!(b_state(&with_data).await, b_before);
    assert_eq!(b_state(&without_data).await, b_empty_before);
    let mut b_rels = b_relationships();
    b_rels.sort();
    assert_eq!(b_before.0, b_rels);
    assert!(b_empty_before.0.is_empty());
    // The attempts were not all refused at the door: every RPC `a` may call succeeded
    // at least once, and the outcomes cover each kind of refusal.
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for (attempt, seen) in attempts.iter().zip(&seen_with) {
        let kind = format!("{:?}", attempt.call);
        let kind = kind.split([' ', '{']).next().unwrap().to_owned();
        *answered.entry(kind).or_default() += usize::from(!seen.starts_with("ERR"));
    }
    for kind in [
        "Check",
        "CheckBulk",
        "Expand",
        "LookupResources",
        "LookupSubjects",
        "Read",
        "Write",
        "Delete",
        "Import",
        "Export",
        "ReadSchema",
        "WriteSchema",
        "Reflect",
        "Diff",
        "Watch",
        "ListTokens",
        "ReadAudit",
        "VerifyAudit",
    ] {
        assert!(
            answered.get(kind).copied().unwrap_or(0) > 0,
            "no `{kind}` attempt succeeded: {answered:?}"
        );
    }
    let count = |prefix: &str| {
        seen_with
            .iter()
            .filter(|text| text.starts_with(prefix))
            .count()
    };
    let n_ok = count("OK") + count("STREAM") + count("WATCH") + count("AUDIT");
    let n_denied = count("ERR PermissionDenied");
    let n_invalid = count("ERR InvalidArgument");
    assert!(n_ok > n_attempts / 10, "{n_ok} successes");
    assert!(n_denied > n_attempts / 10, "{n_denied} denials");
    assert!(n_invalid > n_attempts / 50, "{n_invalid} invalid arguments");
    eprintln!(
        "{n_attempts} attempts on each of two servers in {:?}: {n_ok} answered, {n_denied} denied, {n_invalid} invalid",
        started.elapsed()
    );
    with_data.server.stop().await;
    without_data.server.stop().await;
}

/// Every foreign thing `a` can name, existing and not: the outcome must not tell which.
#[tokio::test]
async fn errors_do_not_depend_on_whether_the_foreign_thing_exists() {
    let world = world(true).await;
    // Pairs of calls that differ only in naming an existing or a missing thing of `b`.
    let mut pairs: Vec<(Call, Call, Option<&str>, Option<&str>)> = Vec::new();
    let header = |tenant: &'static str| Some(tenant);
    for existing in ["b_check_id", "b_admin_id", "b_all_id"] {
        pairs.push((
            Call::RotateToken { id: existing },
            Call::RotateToken { id: "unknown_id" },
            None,
            None,
        ));
        pairs.push((
            Call::RevokeToken { id: existing },
            Call::RevokeToken { id: "unknown_id" },
            None,
            None,
        ));
    }
    pairs.push((
        Call::ListTokens { tenant: "b" },
        Call::ListTokens { tenant: "nobody" },
        None,
        None,
    ));
    pairs.push((
        Call::CreateToken { tenant: "b" },
        Call::CreateToken { tenant: "nobody" },
        None,
        None,
    ));
    pairs.push((
        Call::ReadAudit { tenant: "b" },
        Call::ReadAudit { tenant: "nobody" },
        None,
        None,
    ));
    pairs.push((
        Call::VerifyAudit { tenant: "b" },
        Call::VerifyAudit { tenant: "nobody" },
        None,
        None,
    ));
    for what in 0..7 {
        pairs.push((
            Call::Tenant { what, id: "b" },
            Call::Tenant { what, id: "nobody" },
            None,
            None,
        ));
    }
    // The same call naming `b` or a tenant that does not exist in metadata.
    pairs.push((
        Call::ReadSchema,
        Call::ReadSchema,
        header("b"),
        header("nobody"),
    ));
    // `b`'s consistency tokens and cursors against garbage ones.
    for label in ["b_write", "b_schema", "b_read", "b_delete"] {
        pairs.push((
            Call::Watch {
                start: label,
                filter: None,
            },
            Call::Watch {
                start: "garbage",
                filter: None,
            },
            None,
            None,
        ));
        pairs.push((
            Call::Check {
                resource: "document:1".into(),
                permission: "view",
                subject: "user:alice",
                consistency: Consistency::Exact(label),
            },
            Call::Check {
                resource: "document:1".into(),
                permission: "view",
                subject: "user:alice",
                consistency: Consistency::Exact("garbage"),
            },
            None,
            None,
        ));
    }
    for label in ["b_read_cursor", "b_export_cursor"] {
        pairs.push((
            Call::Read {
                filter: Filter {
                    resource_type: "document",
                    resource_id: None,
                    relation: None,
                    subject: None,
                },
                consistency: Consistency::Full,
                limit: 1,
                cursor: Some(label),
            },
            Call::Read {
                filter: Filter {
                    resource_type: "document",
                    resource_id: None,
                    relation: None,
                    subject: None,
                },
                consistency: Consistency::Full,
                limit: 1,
                cursor: Some("garbage_cursor"),
            },
            None,
            None,
        ));
    }
    // Only the names differ in the texts.
    let neutral = |text: String| {
        let mut text = text;
        for label in ["<b_check_id>", "<b_admin_id>", "<b_all_id>", "<unknown_id>"] {
            text = text.replace(label, "<id>");
        }
        for label in [
            "<b_write>",
            "<b_schema>",
            "<b_read>",
            "<b_delete>",
            "<garbage>",
        ] {
            text = text.replace(label, "<zedtoken>");
        }
        for label in ["<b_read_cursor>", "<b_export_cursor>", "<garbage_cursor>"] {
            text = text.replace(label, "<cursor>");
        }
        text.replace("`nobody`", "`b`")
    };
    let mut n_compared = 0;
    for actor in ACTORS {
        for (existing, missing, existing_header, missing_header) in &pairs {
            let attempt = |call: &Call, header: Option<&'static str>| Attempt {
                actor,
                tenant_header: header,
                on_behalf_of: false,
                call: call.clone(),
            };
            let existing_attempt = attempt(existing, *existing_header);
            let missing_attempt = attempt(missing, *missing_header);
            let seen_existing = neutral(world.mask(&run(&world, &existing_attempt).await.text));
            let seen_missing = neutral(world.mask(&run(&world, &missing_attempt).await.text));
            assert!(
                seen_existing.starts_with("ERR"),
                "{existing_attempt:?} succeeded: {seen_existing}"
            );
            assert_eq!(
                seen_existing, seen_missing,
                "{existing_attempt:?} and {missing_attempt:?} tell apart"
            );
            n_compared += 1;
        }
    }
    assert!(n_compared > 200);
    world.server.stop().await;
}

#[tokio::test]
async fn a_watch_stream_carries_only_its_own_tenants_changes() {
    let world = world(true).await;
    let server = &world.server;
    let mut stream = server
        .watch()
        .watch(req(
            world.value("a_watch"),
            pb::WatchRequest {
                optional_update_kinds: vec![
                    pb::WatchKind::IncludeRelationshipUpdates as i32,
                    pb::WatchKind::IncludeSchemaUpdates as i32,
                ],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // `b` writes relationships with the same ids, deletes some and rewrites its schema;
    // then `a` writes one relationship.
    let b_all = world.value("b_all");
    for idx in 0..20 {
        server
            .write(
                b_all,
                vec![touch(&format!("document:1#viewer@user:x{idx}"))],
            )
            .await
            .unwrap();
    }
    server
        .write(
            b_all,
            vec![crate::support::delete("document:1#viewer@user:x3")],
        )
        .await
        .unwrap();
    server
        .write_schema(b_all, &format!("{SCHEMA}{B_EXTRA}definition more {{}}\n"))
        .await;
    server
        .write(
            world.value("a_all"),
            vec![touch("document:1#viewer@user:marker")],
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!first.schema_updated, "{first:?}");
    let seen: Vec<String> = first
        .updates
        .iter()
        .map(|update| crate::support::text(update.relationship.as_ref().unwrap()))
        .collect();
    assert_eq!(seen, vec!["document:1#viewer@user:marker".to_owned()]);
    // Nothing else follows.
    let next = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
    assert!(next.is_err(), "unexpected message: {next:?}");
    world.server.stop().await;
}

#[tokio::test]
async fn root_cannot_carry_one_tenants_tokens_or_cursors_into_another() {
    let world = world(true).await;
    let server = &world.server;
    for (label, field) in [
        ("a_latest", "at_exact_snapshot"),
        ("a_early", "at_least_as_fresh"),
    ] {
        let requirement = if field == "at_exact_snapshot" {
            pb::consistency::Requirement::AtExactSnapshot(world.zed(label))
        } else {
            pb::consistency::Requirement::AtLeastAsFresh(world.zed(label))
        };
        let res = server
            .permissions()
            .check_permission(req_in(
                ROOT,
                "b",
                pb::CheckPermissionRequest {
                    consistency: Some(pb::Consistency {
                        requirement: Some(requirement),
                    }),
                    resource: Some(object("document:1")),
                    permission: "view".into(),
                    subject: Some(subject("user:alice")),
                    context: None,
                    with_tracing: false,
                },
            ))
            .await;
        let status = crate::support::expect_code(res, tonic::Code::InvalidArgument);
        assert!(status.message().contains(field), "{status:?}");
    }
    let watch = server
        .watch()
        .watch(req_in(
            ROOT,
            "b",
            pb::WatchRequest {
                optional_start_cursor: Some(world.zed("a_early")),
                ..Default::default()
            },
        ))
        .await;
    crate::support::expect_code(watch.map(|_| ()), tonic::Code::InvalidArgument);
    let read = server
        .permissions()
        .read_relationships(req_in(
            ROOT,
            "b",
            pb::ReadRelationshipsRequest {
                consistency: fully_consistent(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                optional_limit: 1,
                optional_cursor: world.cursor(Some("a_read_cursor")),
            },
        ))
        .await;
    crate::support::expect_code(read.map(|_| ()), tonic::Code::InvalidArgument);
    // In its own tenant the same token and cursor work.
    let own = server
        .permissions()
        .read_relationships(req_in(
            ROOT,
            "a",
            pb::ReadRelationshipsRequest {
                consistency: world.consistency(&Consistency::Exact("a_latest")),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                optional_limit: 1,
                optional_cursor: world.cursor(Some("a_read_cursor")),
            },
        ))
        .await;
    assert!(own.is_ok(), "{own:?}");
    world.server.stop().await;
}
