//! Watch over the wire: a client that disconnects and resumes from the last token it
//! received sees every change exactly once and in order, on both engines; object-type
//! filters and checkpoints.

use std::time::Duration;

use ostiary_proto::authzed::api::v1 as pb;
use tonic::Streaming;

use crate::harness::{Engine, Ostiary, SCHEMA, create, delete, rel_text, touch};

/// How long a Watch may take to deliver a change that was already committed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// One revision as a Watch delivers it: `changes_through` and the updates in text form.
pub(crate) type Delivered = (pb::ZedToken, Vec<String>);

/// Reads responses until one reports `changes_through == until`; returns them all.
pub(crate) async fn read_until(
    stream: &mut Streaming<pb::WatchResponse>,
    until: &pb::ZedToken,
) -> Vec<Delivered> {
    let mut delivered = Vec::new();
    loop {
        let response = tokio::time::timeout(DELIVERY_TIMEOUT, stream.message())
            .await
            .unwrap_or_else(|_| {
                panic!("no Watch response through {until:?}; so far: {delivered:?}")
            })
            .unwrap()
            .expect("the Watch stream ended early");
        let through = response.changes_through.clone().unwrap();
        if !response.is_checkpoint {
            delivered.push((through.clone(), updates_text(&response)));
        }
        if &through == until {
            return delivered;
        }
    }
}

/// The updates of a response as `TOUCH document:a#viewer@user:alice`.
pub(crate) fn updates_text(response: &pb::WatchResponse) -> Vec<String> {
    response
        .updates
        .iter()
        .map(|update| {
            let operation = match update.operation() {
                pb::relationship_update::Operation::Touch => "TOUCH",
                pb::relationship_update::Operation::Delete => "DELETE",
                other => panic!("unexpected Watch operation {other:?}"),
            };
            format!(
                "{operation} {}",
                rel_text(update.relationship.as_ref().unwrap())
            )
        })
        .collect()
}

/// Starts a Watch on a connection of its own, from `start` (or head).
pub(crate) async fn watch_from(
    server: &Ostiary,
    start: Option<&pb::ZedToken>,
    object_types: &[&str],
    kinds: &[pb::WatchKind],
) -> Streaming<pb::WatchResponse> {
    server
        .watch_client()
        .await
        .watch(pb::WatchRequest {
            optional_object_types: object_types.iter().map(|t| (*t).to_owned()).collect(),
            optional_start_cursor: start.cloned(),
            optional_relationship_filters: Vec::new(),
            optional_update_kinds: kinds.iter().map(|kind| *kind as i32).collect(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn watch_resumes_after_a_disconnect_on_memory() {
    resume_after_disconnect(Engine::Memory).await;
}

#[tokio::test]
async fn watch_resumes_after_a_disconnect_on_rocksdb() {
    resume_after_disconnect(Engine::Rocksdb).await;
}

/// The writes of the resume scenario and what Watch must report for each, in order.
pub(crate) fn scripted_writes() -> Vec<(Vec<pb::RelationshipUpdate>, Vec<&'static str>)> {
    vec![
        (
            vec![create("document:w1#viewer@user:alice")],
            vec!["TOUCH document:w1#viewer@user:alice"],
        ),
        (
            vec![
                delete("document:w1#viewer@user:alice"),
                touch("document:w2#viewer@user:bob"),
            ],
            vec![
                "DELETE document:w1#viewer@user:alice",
                "TOUCH document:w2#viewer@user:bob",
            ],
        ),
        (
            vec![create("folder:f3#viewer@user:carol")],
            vec!["TOUCH folder:f3#viewer@user:carol"],
        ),
        (
            vec![
                create("document:w4#parent@folder:f3"),
                create("document:w4#viewer@user:dave"),
            ],
            vec![
                "TOUCH document:w4#parent@folder:f3",
                "TOUCH document:w4#viewer@user:dave",
            ],
        ),
        (
            vec![delete("folder:f3#viewer@user:carol")],
            vec!["DELETE folder:f3#viewer@user:carol"],
        ),
    ]
}

/// Sorts each revision's updates (the order within one revision is not part of the API).
pub(crate) fn normalized(mut delivered: Vec<Delivered>) -> Vec<Delivered> {
    for (_, updates) in &mut delivered {
        updates.sort();
    }
    delivered
}

/// The expected deliveries for `tokens` (one per scripted write, in order).
pub(crate) fn expected_deliveries(tokens: &[pb::ZedToken]) -> Vec<Delivered> {
    let expected = tokens
        .iter()
        .zip(scripted_writes())
        .map(|(token, (_, updates))| {
            (
                token.clone(),
                updates.iter().map(|text| (*text).to_owned()).collect(),
            )
        })
        .collect();
    normalized(expected)
}

async fn resume_after_disconnect(engine: Engine) {
    let (server, _data) = Ostiary::start(engine).await;
    let schema_token = server.write_schema(SCHEMA).await;
    let writes = scripted_writes();
    let mut tokens = Vec::new();

    // Session one: watch from the schema write, see the first write, then disconnect while
    // the next two may already be in flight to us.
    let mut first = watch_from(&server, Some(&schema_token), &[], &[]).await;
    for (updates, _) in &writes[..3] {
        tokens.push(server.write(updates.clone()).await.unwrap());
    }
    let mut delivered = read_until(&mut first, &tokens[0]).await;
    drop(first);
    let last_seen = delivered.last().unwrap().0.clone();

    // While disconnected, two more writes.
    for (updates, _) in &writes[3..] {
        tokens.push(server.write(updates.clone()).await.unwrap());
    }

    // Session two resumes from the last token received.
    let mut second = watch_from(&server, Some(&last_seen), &[], &[]).await;
    delivered.extend(read_until(&mut second, &tokens[4]).await);
    assert_eq!(
        normalized(delivered),
        expected_deliveries(&tokens),
        "every change exactly once, in revision order"
    );

    // A filtered Watch from the start sees only folder changes, with checkpoints in between.
    let mut folders = watch_from(
        &server,
        Some(&schema_token),
        &["folder"],
        &[
            pb::WatchKind::IncludeRelationshipUpdates,
            pb::WatchKind::IncludeCheckpoints,
        ],
    )
    .await;
    let seen = read_until(&mut folders, &tokens[4]).await;
    assert_eq!(
        seen,
        [
            (
                tokens[2].clone(),
                vec!["TOUCH folder:f3#viewer@user:carol".to_owned()]
            ),
            (
                tokens[4].clone(),
                vec!["DELETE folder:f3#viewer@user:carol".to_owned()]
            ),
        ]
    );
}
