//! SchemaService ReflectSchema and DiffSchema, and LookupSubjects' concrete limit, against an
//! in-process server on `127.0.0.1:0` over `MemDatastore`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: helpers outside `#[test]` functions fail loudly too"
)]

use std::sync::Arc;

use ostiary_engine::Engine;
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::reflection_schema_diff::Diff;
use ostiary_proto::authzed::api::v1::reflection_type_reference::Typeref;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use ostiary_server::{ServerConfig, ServerState, serve};
use ostiary_store::DatastoreOptions;
use ostiary_store_mem::MemDatastore;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::{Code, Request};

const KEY: &str = "test-key";

const SCHEMA: &str = r#"/** the only kind of user */
definition user {}

caveat on_weekday(day string, allowed list<string>) {
  day in allowed
}

definition group {
  relation member: user | group#member
}

// a document
definition document {
  // who may view
  relation viewer: user | user:* | group#member | user with on_weekday
  relation owner: user
  /** viewers and owners */
  permission view = viewer + owner
  permission edit = owner
}
"#;

/// Starts a server; it stops when the test's runtime ends.
async fn start() -> Channel {
    let store = Arc::new(MemDatastore::new(DatastoreOptions::default()));
    let state = Arc::new(
        ServerState::new(
            store,
            Engine::default(),
            ServerConfig::default(),
            vec![KEY.to_owned()],
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, std::future::pending()));
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn authed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    request
}

fn fully_consistent() -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
    })
}

async fn write_schema(channel: &Channel, schema: &str) -> pb::ZedToken {
    SchemaServiceClient::new(channel.clone())
        .write_schema(authed(pb::WriteSchemaRequest {
            schema: schema.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap()
}

async fn reflect(
    channel: &Channel,
    filters: Vec<pb::ReflectionSchemaFilter>,
) -> Result<pb::ReflectSchemaResponse, tonic::Status> {
    SchemaServiceClient::new(channel.clone())
        .reflect_schema(authed(pb::ReflectSchemaRequest {
            consistency: fully_consistent(),
            optional_filters: filters,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn diff(channel: &Channel, comparison: &str) -> Result<Vec<Diff>, tonic::Status> {
    SchemaServiceClient::new(channel.clone())
        .diff_schema(authed(pb::DiffSchemaRequest {
            consistency: fully_consistent(),
            comparison_schema: comparison.to_owned(),
        }))
        .await
        .map(|response| {
            let response = response.into_inner();
            assert!(response.read_at.is_some());
            response
                .diffs
                .into_iter()
                .map(|diff| diff.diff.unwrap())
                .collect()
        })
}

fn terminal(name: &str) -> pb::ReflectionTypeReference {
    pb::ReflectionTypeReference {
        subject_definition_name: name.into(),
        optional_caveat_name: String::new(),
        typeref: Some(Typeref::IsTerminalSubject(false)),
    }
}

#[tokio::test]
async fn reflect_schema_describes_definitions_relations_permissions_and_caveats() {
    let channel = start().await;
    write_schema(&channel, SCHEMA).await;
    let response = reflect(&channel, Vec::new()).await.unwrap();
    assert!(response.read_at.is_some());
    let names: Vec<_> = response
        .definitions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["document", "group", "user"]);

    let user = &response.definitions[2];
    assert_eq!(user.comment, "/** the only kind of user */");
    assert!(user.relations.is_empty() && user.permissions.is_empty());

    let document = &response.definitions[0];
    assert_eq!(document.comment, "// a document");
    let viewer = &document.relations[0];
    assert_eq!(viewer.name, "viewer");
    assert_eq!(viewer.comment, "// who may view");
    assert_eq!(viewer.parent_definition_name, "document");
    assert_eq!(
        viewer.subject_types,
        vec![
            terminal("user"),
            pb::ReflectionTypeReference {
                subject_definition_name: "user".into(),
                optional_caveat_name: String::new(),
                typeref: Some(Typeref::IsPublicWildcard(true)),
            },
            pb::ReflectionTypeReference {
                subject_definition_name: "group".into(),
                optional_caveat_name: String::new(),
                typeref: Some(Typeref::OptionalRelationName("member".into())),
            },
            pb::ReflectionTypeReference {
                subject_definition_name: "user".into(),
                optional_caveat_name: "on_weekday".into(),
                typeref: Some(Typeref::IsTerminalSubject(false)),
            },
        ]
    );
    assert_eq!(document.relations[1].name, "owner");
    assert_eq!(
        document.permissions,
        vec![
            pb::ReflectionPermission {
                name: "view".into(),
                comment: "/** viewers and owners */".into(),
                parent_definition_name: "document".into(),
            },
            pb::ReflectionPermission {
                name: "edit".into(),
                comment: String::new(),
                parent_definition_name: "document".into(),
            },
        ]
    );

    assert_eq!(
        response.caveats,
        vec![pb::ReflectionCaveat {
            name: "on_weekday".into(),
            comment: String::new(),
            parameters: vec![
                pb::ReflectionCaveatParameter {
                    name: "allowed".into(),
                    r#type: "list<string>".into(),
                    parent_caveat_name: "on_weekday".into(),
                },
                pb::ReflectionCaveatParameter {
                    name: "day".into(),
                    r#type: "string".into(),
                    parent_caveat_name: "on_weekday".into(),
                },
            ],
            expression: "day in allowed".into(),
        }]
    );
}

#[tokio::test]
async fn reflect_schema_applies_prefix_filters_and_refuses_contradictory_ones() {
    let channel = start().await;
    write_schema(&channel, SCHEMA).await;
    let filter = |definition: &str, caveat: &str, relation: &str, permission: &str| {
        pb::ReflectionSchemaFilter {
            optional_definition_name_filter: definition.into(),
            optional_caveat_name_filter: caveat.into(),
            optional_relation_name_filter: relation.into(),
            optional_permission_name_filter: permission.into(),
        }
    };

    // A definition prefix: matching definitions only, and no caveats.
    let response = reflect(&channel, vec![filter("gr", "", "", "")])
        .await
        .unwrap();
    let names: Vec<_> = response
        .definitions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["group"]);
    assert!(response.caveats.is_empty());

    // A caveat prefix: caveats only.
    let response = reflect(&channel, vec![filter("", "on_", "", "")])
        .await
        .unwrap();
    assert!(response.definitions.is_empty());
    assert_eq!(response.caveats.len(), 1);

    // A relation filter keeps all permissions but only the matching relations.
    let response = reflect(&channel, vec![filter("doc", "", "own", "")])
        .await
        .unwrap();
    let document = &response.definitions[0];
    let relations: Vec<_> = document.relations.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(relations, ["owner"]);
    assert_eq!(document.permissions.len(), 2);

    // A permission filter, the other way around.
    let response = reflect(&channel, vec![filter("doc", "", "", "ed")])
        .await
        .unwrap();
    let document = &response.definitions[0];
    assert_eq!(document.relations.len(), 2);
    let permissions: Vec<_> = document
        .permissions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(permissions, ["edit"]);

    for (bad, message) in [
        (
            filter("doc", "on_", "", ""),
            "cannot filter by both definition and caveat name",
        ),
        (
            filter("", "", "viewer", ""),
            "relation name match requires definition name match",
        ),
        (
            filter("", "", "", "view"),
            "permission name match requires definition name match",
        ),
        (
            filter("doc", "", "viewer", "view"),
            "cannot filter by both relation and permission name",
        ),
    ] {
        let status = reflect(&channel, vec![bad]).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(message), "{}", status.message());
    }
}

#[tokio::test]
async fn reflect_schema_honours_consistency_and_reflects_no_schema_as_empty() {
    let channel = start().await;
    // SpiceDB v1.54 (legacy schema storage) lists no definitions rather than NotFound.
    let empty = reflect(&channel, Vec::new()).await.unwrap();
    assert!(empty.definitions.is_empty() && empty.caveats.is_empty());

    let first = write_schema(&channel, "definition user {}").await;
    write_schema(&channel, "definition user {}\ndefinition team {}").await;
    let at_first = SchemaServiceClient::new(channel.clone())
        .reflect_schema(authed(pb::ReflectSchemaRequest {
            consistency: Some(pb::Consistency {
                requirement: Some(pb::consistency::Requirement::AtExactSnapshot(first.clone())),
            }),
            optional_filters: Vec::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = at_first
        .definitions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["user"]);
    assert_eq!(at_first.read_at.unwrap().token, first.token);

    let status = SchemaServiceClient::new(channel.clone())
        .reflect_schema(authed(pb::ReflectSchemaRequest {
            consistency: Some(pb::Consistency {
                requirement: Some(pb::consistency::Requirement::AtLeastAsFresh(pb::ZedToken {
                    token: "garbage".into(),
                })),
            }),
            optional_filters: Vec::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn diff_schema_reports_each_kind_of_change() {
    let channel = start().await;
    write_schema(
        &channel,
        r#"definition user {}
definition anon {}
definition gone {}
caveat cav(a int, b string) { a < 42 && b == "y" }
caveat old_cav(x int) { x == 1 }
definition resource {
  relation viewer: anon
  relation editor: user
  relation dropped: user
  permission view = viewer
  permission edit = editor
  permission removed = nil
}"#,
    )
    .await;
    let diffs = diff(
        &channel,
        r#"definition user {}
definition anon {}
definition fresh {}
// cav has a comment
caveat cav(a string, c bool) { a == "x" && c }
caveat new_cav(y int) { y == 2 }
// resource has a comment
definition resource {
  relation viewer: user | anon
  // editor has a comment
  relation editor: anon
  relation added: user
  permission view = viewer + editor
  // edit has a comment
  permission edit = editor
  permission fresh_permission = nil
}"#,
    )
    .await
    .unwrap();
    let kinds: Vec<String> = diffs
        .iter()
        .map(|diff| match diff {
            Diff::DefinitionAdded(d) => format!("definition added {}", d.name),
            Diff::DefinitionRemoved(d) => format!("definition removed {}", d.name),
            Diff::DefinitionDocCommentChanged(d) => {
                format!("definition comment {} {:?}", d.name, d.comment)
            }
            Diff::RelationAdded(r) => format!("relation added {}", r.name),
            Diff::RelationRemoved(r) => format!("relation removed {}", r.name),
            Diff::RelationDocCommentChanged(r) => {
                format!("relation comment {} {:?}", r.name, r.comment)
            }
            Diff::RelationSubjectTypeAdded(change) => format!(
                "type added {} {}",
                change.relation.as_ref().unwrap().name,
                change
                    .changed_subject_type
                    .as_ref()
                    .unwrap()
                    .subject_definition_name
            ),
            Diff::RelationSubjectTypeRemoved(change) => format!(
                "type removed {} {}",
                change.relation.as_ref().unwrap().name,
                change
                    .changed_subject_type
                    .as_ref()
                    .unwrap()
                    .subject_definition_name
            ),
            Diff::PermissionAdded(p) => format!("permission added {}", p.name),
            Diff::PermissionRemoved(p) => format!("permission removed {}", p.name),
            Diff::PermissionDocCommentChanged(p) => {
                format!("permission comment {} {:?}", p.name, p.comment)
            }
            Diff::PermissionExprChanged(p) => format!("permission expr {}", p.name),
            Diff::CaveatAdded(c) => format!("caveat added {}", c.name),
            Diff::CaveatRemoved(c) => format!("caveat removed {}", c.name),
            Diff::CaveatDocCommentChanged(c) => {
                format!("caveat comment {} {:?}", c.name, c.comment)
            }
            Diff::CaveatExprChanged(c) => format!("caveat expr {} {}", c.name, c.expression),
            Diff::CaveatParameterAdded(p) => format!("param added {} {}", p.name, p.r#type),
            Diff::CaveatParameterRemoved(p) => format!("param removed {} {}", p.name, p.r#type),
            Diff::CaveatParameterTypeChanged(change) => {
                let param = change.parameter.as_ref().unwrap();
                format!(
                    "param type {} {} -> {}",
                    param.name, change.previous_type, param.r#type
                )
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "definition added fresh",
            "definition removed gone",
            "caveat added new_cav",
            "caveat removed old_cav",
            "definition comment resource \"// resource has a comment\"",
            "relation removed dropped",
            "relation added added",
            "permission removed removed",
            "permission added fresh_permission",
            "permission comment edit \"// edit has a comment\"",
            "permission expr view",
            "relation comment editor \"// editor has a comment\"",
            "type removed editor user",
            "type added editor anon",
            "type added viewer user",
            "caveat comment cav \"// cav has a comment\"",
            "param added c bool",
            "param removed b string",
            "param type a int -> string",
            "caveat expr cav a == \"x\" && c",
        ]
    );
    // Every kind of the proto's oneof appears above.
    assert_eq!(
        kinds
            .iter()
            .map(|kind| kind.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        19
    );

    // The same schema diffs to nothing, even with relations reordered.
    let same = diff(
        &channel,
        r#"definition user {}
definition anon {}
definition gone {}
caveat cav(a int, b string) { a < 42 && b == "y" }
caveat old_cav(x int) { x == 1 }
definition resource {
  relation dropped: user
  relation editor: user
  relation viewer: anon
  permission removed = nil
  permission edit = editor
  permission view = viewer
}"#,
    )
    .await
    .unwrap();
    assert_eq!(same, Vec::<Diff>::new());
}

#[tokio::test]
async fn diff_schema_refuses_a_schema_that_does_not_compile_and_diffs_against_nothing() {
    let channel = start().await;
    // No stored schema: everything in the comparison is added.
    let diffs = diff(&channel, "definition user {}").await.unwrap();
    assert!(matches!(&diffs[..], [Diff::DefinitionAdded(d)] if d.name == "user"));

    write_schema(&channel, "definition user {}").await;
    let status = diff(&channel, "definition user { relation x: nope }")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = diff(&channel, "definitio user {}").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn lookup_subjects_refuses_a_concrete_limit_like_spicedb_and_ignores_the_cursor() {
    let channel = start().await;
    write_schema(
        &channel,
        "definition user {}\ndefinition doc {\n  relation viewer: user\n}",
    )
    .await;
    let request = |limit: u32, cursor: Option<pb::Cursor>| pb::LookupSubjectsRequest {
        consistency: fully_consistent(),
        resource: Some(pb::ObjectReference {
            object_type: "doc".into(),
            object_id: "1".into(),
        }),
        permission: "viewer".into(),
        subject_object_type: "user".into(),
        optional_subject_relation: String::new(),
        context: None,
        optional_concrete_limit: limit,
        optional_cursor: cursor,
        wildcard_option: 0,
    };
    let mut client = PermissionsServiceClient::new(channel.clone());
    let status = client
        .lookup_subjects(authed(request(10, None)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(status.message(), "concrete limit is not yet supported");

    let mut stream = client
        .lookup_subjects(authed(request(
            0,
            Some(pb::Cursor {
                token: "anything".into(),
            }),
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_none());
}
