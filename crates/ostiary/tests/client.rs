//! End-to-end tests of the client commands (`ostiary check`, `ostiary rel ...`,
//! `ostiary schema read|write|diff`, lookups, `ostiary expand`, `ostiary watch`), running
//! them as subprocesses against a real `ostiary serve`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const KEY: &str = "client-test-key";

const SCHEMA: &str = "caveat not_on(day string) {\n\tday != \"sat\"\n}\n\n\
definition user {}\n\n\
definition group {\n\trelation member: user\n}\n\n\
definition document {\n\trelation viewer: user | user with not_on | group#member\n\trelation banned: user\n\tpermission view = viewer - banned\n}\n";

#[path = "support/server.rs"]
mod server;

use server::{Server, command};

fn start_server() -> Server {
    server::start_server(KEY, &[])
}

/// Runs a client command against `server` with the key, feeding `stdin`.
fn client(server: &Server, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = command()
        .args(args)
        .args(["--endpoint", &server.addr, "--insecure"])
        .env("OSTIARY_TOKEN", KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed and returns its standard output.
fn ok(server: &Server, args: &[&str], stdin: Option<&str>) -> String {
    let output = client(server, args, stdin);
    assert!(
        output.status.success(),
        "`ostiary {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Writes the schema, retrying while the server finishes starting.
fn write_schema(server: &Server, dir: &std::path::Path) {
    let path = dir.join("schema.zed");
    std::fs::write(&path, SCHEMA).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = client(server, &["schema", "write", path.to_str().unwrap()], None);
        if output.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "schema write keeps failing: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn client_commands_against_a_server() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    write_schema(&server, dir.path());

    // schema read returns what was written; diff against it is empty, against a changed one
    // names the change.
    let schema = ok(&server, &["schema", "read"], None);
    assert!(schema.contains("definition document"), "{schema}");
    assert!(schema.contains("caveat not_on"), "{schema}");
    let same = dir.path().join("same.zed");
    std::fs::write(&same, SCHEMA).unwrap();
    assert_eq!(
        ok(
            &server,
            &[
                "schema",
                "diff",
                same.to_str().unwrap(),
                "--consistency",
                "full"
            ],
            None
        )
        .trim(),
        "no differences"
    );
    let changed = dir.path().join("changed.zed");
    std::fs::write(
        &changed,
        SCHEMA.replace(
            "definition user {}",
            "definition user {}\n\ndefinition team {}",
        ),
    )
    .unwrap();
    let diff = ok(
        &server,
        &[
            "schema",
            "diff",
            changed.to_str().unwrap(),
            "--consistency",
            "full",
        ],
        None,
    );
    assert!(diff.contains("definition added: team"), "{diff}");

    // rel create from arguments and from stdin; touch is idempotent; create of an existing
    // one fails.
    let token = ok(
        &server,
        &[
            "rel",
            "create",
            "document:readme#viewer@user:alice",
            "document:readme#viewer@group:eng#member",
        ],
        None,
    );
    assert!(!token.trim().is_empty());
    ok(
        &server,
        &["rel", "create"],
        Some("// members\ngroup:eng#member@user:bob\n\ndocument:plan#viewer@user:carol[not_on]\n"),
    );
    ok(
        &server,
        &["rel", "touch", "document:readme#banned@user:dave"],
        None,
    );
    ok(
        &server,
        &["rel", "touch", "document:readme#banned@user:dave"],
        None,
    );
    let again = client(
        &server,
        &["rel", "create", "document:readme#viewer@user:alice"],
        None,
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("server error"));

    // rel read with filters.
    let read = ok(&server, &["rel", "read", "document:readme"], None);
    let mut lines: Vec<&str> = read.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "document:readme#banned@user:dave",
            "document:readme#viewer@group:eng#member",
            "document:readme#viewer@user:alice",
        ]
    );
    assert_eq!(
        ok(
            &server,
            &["rel", "read", "document", "viewer", "user:carol"],
            None
        )
        .trim(),
        "document:plan#viewer@user:carol[not_on]"
    );

    // check: allowed, through a group, denied, caveated with and without context.
    let check = |args: &[&str]| ok(&server, &[&["check"], args].concat(), None);
    assert_eq!(
        check(&["document:readme", "view", "user:alice"]).trim(),
        "true"
    );
    assert_eq!(
        check(&["document:readme", "view", "user:bob"]).trim(),
        "true"
    );
    assert_eq!(
        check(&["document:readme", "view", "user:eve"]).trim(),
        "false"
    );
    assert_eq!(
        check(&["document:readme", "view", "user:dave"]).trim(),
        "false"
    );
    assert_eq!(
        check(&["document:plan", "view", "user:carol"]).trim(),
        "caveated (missing context: day)"
    );
    assert_eq!(
        check(&[
            "document:plan",
            "view",
            "user:carol",
            "--caveat-context",
            r#"{"day":"mon"}"#
        ])
        .trim(),
        "true"
    );
    assert_eq!(
        check(&[
            "document:plan",
            "view",
            "user:carol",
            "--caveat-context",
            r#"{"day":"sat"}"#
        ])
        .trim(),
        "false"
    );
    assert_eq!(
        check(&[
            "document:readme",
            "view",
            "user:alice",
            "--consistency",
            "full"
        ])
        .trim(),
        "true"
    );
    let json: serde_json::Value =
        serde_json::from_str(&check(&["document:plan", "view", "user:carol", "--json"])).unwrap();
    assert_eq!(json["permissionship"], "caveated");
    assert_eq!(json["missing_context"], serde_json::json!(["day"]));
    assert!(json["checked_at"].as_str().is_some_and(|t| !t.is_empty()));
    let denied = client(
        &server,
        &[
            "check",
            "document:readme",
            "view",
            "user:eve",
            "--error-on-no-permission",
        ],
        None,
    );
    assert_eq!(denied.status.code(), Some(1));

    // lookups.
    let resources = ok(
        &server,
        &["lookup-resources", "document", "view", "user:carol"],
        None,
    );
    assert_eq!(
        resources.trim(),
        "document:plan caveated (missing context: day)"
    );
    let resources = ok(
        &server,
        &["lookup-resources", "document", "view", "user:bob", "--json"],
        None,
    );
    let line: serde_json::Value = serde_json::from_str(resources.trim()).unwrap();
    assert_eq!(line["resource"], "document:readme");
    assert_eq!(line["caveated"], false);
    let subjects = ok(
        &server,
        &["lookup-subjects", "document:readme", "view", "user"],
        None,
    );
    let mut subjects: Vec<&str> = subjects.lines().collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["user:alice", "user:bob"]);

    // expand renders an indented tree.
    let tree = ok(&server, &["expand", "document:readme", "viewer"], None);
    assert!(tree.starts_with("document:readme#viewer"), "{tree}");
    assert!(tree.contains("\n  user:alice"), "{tree}");
    assert!(tree.contains("\n  group:eng#member"), "{tree}");
    let tree = ok(
        &server,
        &["expand", "document:readme", "view", "--json"],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(&tree).unwrap();
    assert_eq!(json["tree"]["operation"], "exclusion");

    // delete removes.
    ok(
        &server,
        &["rel", "delete", "document:readme#banned@user:dave"],
        None,
    );
    assert_eq!(
        check(&[
            "document:readme",
            "view",
            "user:dave",
            "--consistency",
            "full"
        ])
        .trim(),
        "false"
    );
    assert!(!ok(&server, &["rel", "read", "document:readme", "banned"], None).contains("dave"));
}

#[test]
fn profiles_of_the_client_configuration_file_supply_endpoint_and_token() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    write_schema(&server, dir.path());
    let config = dir.path().join("client.toml");
    std::fs::write(
        &config,
        format!(
            "default-profile = \"wrong\"\n\n\
             [profiles.wrong]\nendpoint = \"{}\"\ntoken = \"not-the-key\"\ninsecure = true\n\n\
             [profiles.test]\nendpoint = \"{}\"\ntoken = \"{KEY}\"\ninsecure = true\n",
            server.addr, server.addr
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        command()
            .args(args)
            .env("OSTIARY_CLIENT_CONFIG", &config)
            .output()
            .unwrap()
    };
    let good = run(&[
        "check",
        "document:readme",
        "view",
        "user:alice",
        "--profile",
        "test",
    ]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&good.stdout).trim(), "false");

    // The default profile has the wrong key: the server refuses.
    let refused = run(&["schema", "read"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"));
    // A flag wins over the profile.
    let flagged = run(&["schema", "read", "--token", KEY]);
    assert!(flagged.status.success());
    assert!(String::from_utf8_lossy(&flagged.stdout).contains("definition document"));

    let missing = run(&["schema", "read", "--profile", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("profile `nope` not found"));
}

#[test]
fn watch_follows_changes() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    write_schema(&server, dir.path());
    let mut watcher = command()
        .args([
            "watch",
            "--endpoint",
            &server.addr,
            "--insecure",
            "--token",
            KEY,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The watch starts at the head revision once connected: write until it sees a change.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    let mut n = 0;
    while seen.is_none() && Instant::now() < deadline {
        n += 1;
        ok(
            &server,
            &["rel", "touch", &format!("document:w{n}#viewer@user:alice")],
            None,
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            seen = Some(line);
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let line = seen.expect("watch printed nothing");
    assert!(line.starts_with("TOUCH document:w"), "{line}");
    assert!(line.ends_with("#viewer@user:alice"), "{line}");
}

#[test]
fn bad_input_and_unreachable_server_fail_clearly() {
    let run = |args: &[&str]| command().args(args).output().unwrap();

    let bad = run(&["rel", "create", "document:readme#viewer", "--insecure"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("document:readme#viewer"), "{stderr}");
    assert!(stderr.contains("expected `@`"), "{stderr}");

    let bad = run(&["check", "document", "view", "user:alice", "--insecure"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("document"));

    let bad = run(&[
        "check",
        "document:a",
        "view",
        "user:alice",
        "--caveat-context",
        "[1]",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a JSON object"));

    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("127.0.0.1:{port}");
    let down = run(&[
        "check",
        "document:a",
        "view",
        "user:alice",
        "--insecure",
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(down.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to `{endpoint}`")),
        "{stderr}"
    );

    let tls = run(&["schema", "read", "--endpoint", &endpoint]);
    assert_eq!(tls.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&tls.stderr).contains("--insecure"));
}

#[test]
fn explain_shows_why_a_check_grants_or_denies() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    write_schema(&server, dir.path());
    ok(
        &server,
        &[
            "rel",
            "create",
            "document:readme#viewer@group:eng#member",
            "group:eng#member@user:alice",
            r#"document:readme#viewer@user:carol[not_on]"#,
            "document:readme#viewer@user:mallory",
            "document:readme#banned@user:mallory",
        ],
        None,
    );
    let explain = |who: &str, extra: &[&str]| {
        let mut args = vec!["explain", "document:readme", "view", who];
        args.extend_from_slice(extra);
        let output = client(&server, &args, None);
        let text = String::from_utf8(output.stdout).unwrap();
        (output.status.code(), text)
    };

    // Allowed through a group: the path down to the granting relationship.
    let (code, text) = explain("user:alice", &[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "document:readme#view  HAS_PERMISSION  = viewer - banned",
            "├─ document:readme#viewer  HAS_PERMISSION",
            "│  └─ group:eng#member  HAS_PERMISSION  via document:readme#viewer@group:eng#member",
            "│     └─ ✓ group:eng#member@user:alice",
            "└─ document:readme#banned  NO_PERMISSION  no relationship for user:alice",
        ],
        "{text}"
    );

    // Denied by the exclusion: both sides name their relationships.
    let (code, text) = explain("user:mallory", &["--error-on-no-permission"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "document:readme#view  NO_PERMISSION  = viewer - banned",
            "├─ document:readme#viewer  HAS_PERMISSION",
            "│  └─ ✓ document:readme#viewer@user:mallory",
            "└─ document:readme#banned  HAS_PERMISSION",
            "   └─ ✓ document:readme#banned@user:mallory",
        ],
        "{text}"
    );

    // Caveated: false with the context given, conditional without it.
    let (code, text) = explain("user:carol", &["--context", r#"{"day":"sat"}"#]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "document:readme#view  NO_PERMISSION  = viewer - banned",
            "└─ document:readme#viewer  NO_PERMISSION",
            r#"   ├─ caveat not_on(day != "sat") = false with {"day":"sat"}"#,
            "   ├─ ✗ document:readme#viewer@user:carol[not_on]",
            "   └─ group:eng#member  NO_PERMISSION  via document:readme#viewer@group:eng#member  no relationship for user:carol",
        ],
        "{text}"
    );
    let (code, text) = explain("user:carol", &["--error-on-no-permission"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains(r#"caveat not_on(day != "sat") = missing context: day with {}"#),
        "{text}"
    );
    assert!(
        text.starts_with("document:readme#view  CONDITIONAL_PERMISSION"),
        "{text}"
    );

    // --json: the same trace as data.
    let (code, text) = explain("user:alice", &["--json"]);
    assert_eq!(code, Some(0), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["permissionship"], "true");
    let trace = &json["trace"];
    assert_eq!(trace["resource"], "document:readme");
    assert_eq!(trace["result"], "HAS_PERMISSION");
    assert_eq!(trace["expression"], "viewer - banned");
    let group = &trace["sub_problems"][0]["sub_problems"][0];
    assert_eq!(group["via"], "document:readme#viewer@group:eng#member");
    assert_eq!(group["relationships"][0], "group:eng#member@user:alice");
}
