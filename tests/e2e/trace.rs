//! CheckPermission and CheckBulkPermissions `with_tracing`: the debug trace in SpiceDB's
//! shape (`DebugInformation { check, schema_used }`) from a real server.

use ostiary_proto::authzed::api::v1 as pb;
use pb::check_debug_trace::{PermissionType, Permissionship, Resolution};

use crate::harness::{Engine, Ostiary, SCHEMA, fully_consistent, object, subject, touch};

/// `type:id#permission RESULT` of a node and its sub-problems, indented two spaces a level.
fn outline(node: &pb::CheckDebugTrace, depth: usize, lines: &mut Vec<String>) {
    let resource = node.resource.as_ref().unwrap();
    let kind = match node.permission_type() {
        PermissionType::Relation => "relation",
        PermissionType::Permission => "permission",
        PermissionType::Unspecified => "unspecified",
    };
    lines.push(format!(
        "{}{}:{}#{} {kind} {:?}",
        "  ".repeat(depth),
        resource.object_type,
        resource.object_id,
        node.permission,
        node.result()
    ));
    assert_eq!(node.subject, Some(subject("user:alice")));
    if let Some(Resolution::SubProblems(sub)) = &node.resolution {
        for child in &sub.traces {
            outline(child, depth + 1, lines);
        }
    }
}

async fn traced_check(server: &Ostiary, resource: &str, who: &str) -> pb::CheckPermissionResponse {
    server
        .permissions()
        .check_permission(pb::CheckPermissionRequest {
            consistency: fully_consistent(),
            resource: Some(object(resource)),
            permission: "view".to_owned(),
            subject: Some(subject(who)),
            context: None,
            with_tracing: true,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn check_with_tracing_returns_the_trace_and_the_schema() {
    let (server, _dir) = Ostiary::start(Engine::Memory).await;
    server.write_schema(SCHEMA).await;
    server
        .write(vec![
            touch("document:readme#parent@folder:root"),
            touch("folder:root#viewer@user:alice"),
            touch("document:secret#banned@user:alice"),
            touch("document:secret#parent@folder:root"),
        ])
        .await
        .unwrap();

    // Allowed through the folder.
    let response = traced_check(&server, "document:readme", "user:alice").await;
    assert_eq!(
        response.permissionship(),
        pb::check_permission_response::Permissionship::HasPermission
    );
    let debug = response.debug_trace.unwrap();
    assert_eq!(debug.schema_used, SCHEMA.trim());
    let root = debug.check.unwrap();
    let mut lines = Vec::new();
    outline(&root, 0, &mut lines);
    assert_eq!(
        lines,
        [
            "document:readme#view permission HasPermission",
            "  document:readme#viewer relation NoPermission",
            "  folder:root#view permission HasPermission",
            "    folder:root#viewer relation HasPermission",
            "  document:readme#banned relation NoPermission",
        ]
    );
    assert!(root.duration.is_some());
    assert_eq!(root.source, "ostiary:evaluated");

    // Denied: the exclusion's subtracted side has the subject.
    let response = traced_check(&server, "document:secret", "user:alice").await;
    assert_eq!(
        response.permissionship(),
        pb::check_permission_response::Permissionship::NoPermission
    );
    let root = response.debug_trace.unwrap().check.unwrap();
    let mut lines = Vec::new();
    outline(&root, 0, &mut lines);
    assert_eq!(
        lines,
        [
            "document:secret#view permission NoPermission",
            "  document:secret#viewer relation NoPermission",
            "  folder:root#view permission HasPermission",
            "    folder:root#viewer relation HasPermission",
            "  document:secret#banned relation HasPermission",
        ]
    );
    // A leaf decided by its relationships, not by a cache.
    let Some(Resolution::SubProblems(sub)) = &root.resolution else {
        panic!("the root has sub-problems");
    };
    assert_eq!(
        sub.traces[2].resolution,
        Some(Resolution::WasCachedResult(false))
    );
    assert_eq!(sub.traces[2].result(), Permissionship::HasPermission);

    // Without with_tracing there is no trace.
    let plain = server
        .check(fully_consistent(), "document:readme", "view", "user:alice")
        .await
        .unwrap();
    assert_eq!(
        plain.0,
        pb::check_permission_response::Permissionship::HasPermission
    );

    // CheckBulkPermissions traces each item.
    let item = |resource: &str| pb::CheckBulkPermissionsRequestItem {
        resource: Some(object(resource)),
        permission: "view".to_owned(),
        subject: Some(subject("user:alice")),
        context: None,
    };
    let bulk = server
        .permissions()
        .check_bulk_permissions(pb::CheckBulkPermissionsRequest {
            consistency: fully_consistent(),
            items: vec![item("document:readme"), item("document:secret")],
            with_tracing: true,
        })
        .await
        .unwrap()
        .into_inner();
    let roots: Vec<String> = bulk
        .pairs
        .iter()
        .map(|pair| {
            let Some(pb::check_bulk_permissions_pair::Response::Item(item)) = &pair.response else {
                panic!("an item, not an error: {pair:?}");
            };
            let root = item.debug_trace.as_ref().unwrap().check.as_ref().unwrap();
            format!("{} {:?}", root.permission, root.result())
        })
        .collect();
    assert_eq!(roots, ["view HasPermission", "view NoPermission"]);
    server.stop().await;
}
