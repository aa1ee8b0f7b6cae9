//! Restarting the binary on the same RocksDB data directory: after a graceful SIGTERM and
//! after a SIGKILL, the schema and every acknowledged write are read back, tokens issued
//! before the restart still work, and a Watch resumes across the restart without losing or
//! repeating a change.

use std::time::Duration;

use crate::harness::{
    Engine, Ostiary, SCHEMA, at_exact_snapshot, at_least_as_fresh, create, delete, fully_consistent,
};
use crate::watch::{expected_deliveries, normalized, read_until, scripted_writes, watch_from};

#[tokio::test]
async fn rocksdb_survives_a_graceful_restart_and_watch_resumes_across_it() {
    let (server, data) = Ostiary::start(Engine::Rocksdb).await;
    let schema_token = server.write_schema(SCHEMA).await;
    let writes = scripted_writes();
    let mut tokens = Vec::new();
    let mut watch = watch_from(&server, Some(&schema_token), &[], &[]).await;
    for (updates, _) in &writes[..3] {
        tokens.push(server.write(updates.clone()).await.unwrap());
    }
    let mut delivered = read_until(&mut watch, &tokens[0]).await;
    let last_seen = delivered.last().unwrap().0.clone();
    let before = server.dump().await;
    let dir = server.data_dir().to_path_buf();

    let log = server.stop().await;
    assert!(log.contains("stopped"), "{log}");
    // The graceful shutdown ended the Watch stream rather than leaving it hanging.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the Watch stream outlived the server");

    let server = Ostiary::start_rocksdb(&dir).await;
    assert_eq!(server.dump().await, before, "everything is read back");
    // Tokens from before the restart still name their revisions.
    assert!(
        server
            .allowed(at_exact_snapshot(&tokens[0]), "document:w1", "user:alice")
            .await
    );
    assert!(
        !server
            .allowed(at_least_as_fresh(&tokens[1]), "document:w1", "user:alice")
            .await
    );
    for (updates, _) in &writes[3..] {
        tokens.push(server.write(updates.clone()).await.unwrap());
    }
    let mut resumed = watch_from(&server, Some(&last_seen), &[], &[]).await;
    delivered.extend(read_until(&mut resumed, &tokens[4]).await);
    assert_eq!(normalized(delivered), expected_deliveries(&tokens));
    drop(data);
}

#[tokio::test]
async fn rocksdb_keeps_acknowledged_writes_after_sigkill() {
    let (server, data) = Ostiary::start(Engine::Rocksdb).await;
    server.write_schema(SCHEMA).await;
    server
        .write(vec![
            create("folder:f#viewer@user:alice"),
            create("document:d#parent@folder:f"),
        ])
        .await
        .unwrap();
    let last = server
        .write(vec![
            delete("folder:f#viewer@user:alice"),
            create("document:d#viewer@user:bob"),
        ])
        .await
        .unwrap();
    let before = server.dump().await;
    let dir = server.data_dir().to_path_buf();
    server.kill();

    let server = Ostiary::start_rocksdb(&dir).await;
    assert_eq!(
        server.dump().await,
        before,
        "acknowledged writes are durable"
    );
    assert!(
        server
            .allowed(at_exact_snapshot(&last), "document:d", "user:bob")
            .await
    );
    assert!(
        !server
            .allowed(fully_consistent(), "document:d", "user:alice")
            .await
    );
    drop(data);
}

#[tokio::test]
async fn a_memory_server_removes_its_root_token_file_on_exit() {
    let (server, _data) = Ostiary::start(Engine::Memory).await;
    let log = server.log();
    // The bootstrap names the file it wrote: `path=<file> first start: ...`.
    let path = log
        .split_whitespace()
        .find_map(|word| word.strip_prefix("path="))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no root token path in the log:\n{log}"));
    assert!(path.exists(), "{} missing while serving", path.display());
    server.stop().await;
    // The store is gone, so is its only credential.
    assert!(
        !path.exists(),
        "{} outlived the memory server",
        path.display()
    );
}
