//! End-to-end tests of the administration commands (`ostiary tenant ...`, `ostiary token ...`,
//! `ostiary audit ...`) and of the `--tenant` / `--on-behalf-of` client options, running them
//! as subprocesses against a real `ostiary serve --datastore-engine memory`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

/// The preshared key the server is started with; it acts as root.
const KEY: &str = "tenancy-test-key";

const SCHEMA: &str = "definition user {}\n\n\
definition folder {\n\trelation viewer: user\n}\n\n\
definition document {\n\trelation viewer: user\n\tpermission view = viewer\n}\n";

#[path = "support/server.rs"]
mod server;

use server::{Server, command};

/// Starts a server with [`KEY`] that writes its root token to `root_token_file`.
fn start_server(root_token_file: &Path) -> Server {
    server::start_server(
        KEY,
        &["--root-token-file".as_ref(), root_token_file.as_os_str()],
    )
}

impl Server {
    /// Runs a client command with `token`.
    fn run(&self, token: &str, args: &[&str]) -> Output {
        command()
            .args(args)
            .args(["--endpoint", &self.addr, "--insecure"])
            .env("OSTIARY_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, token: &str, args: &[&str]) -> String {
        let output = self.run(token, args);
        assert!(
            output.status.success(),
            "`ostiary {}` failed ({:?}): {}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must succeed with `--json`; returns its parsed output.
    fn json(&self, token: &str, args: &[&str]) -> Value {
        let text = self.ok(token, &[args, &["--json"]].concat());
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"))
    }

    /// Runs a command that must fail with a server error of `code`; returns its stderr.
    fn refused(&self, token: &str, args: &[&str], code: &str) -> String {
        let output = self.run(token, args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(2),
            "`ostiary {}` should fail: {stderr}",
            args.join(" ")
        );
        assert!(
            stderr.contains(&format!("server error ({code})")),
            "`ostiary {}`: expected {code}, got: {stderr}",
            args.join(" ")
        );
        stderr
    }

    /// Runs `audit read --json` and parses its JSON lines.
    fn audit(&self, token: &str, args: &[&str]) -> Vec<Value> {
        self.ok(token, &[&["audit", "read", "--json"], args].concat())
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// The value of the `label:` line of a command's human output.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{label}:")))
        .unwrap_or_else(|| panic!("no `{label}:` line in:\n{text}"))
        .trim()
        .to_owned()
}

/// The `actions` of audit entries.
fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect()
}

#[test]
fn tenants_tokens_and_audit_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root_file = dir.path().join("root-token");
    let server = start_server(&root_file);

    // The first start wrote a root token, owner-only; it manages tenants like the key.
    let root = std::fs::read_to_string(&root_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(root.starts_with("ost_"), "{root}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&root_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Tenants: create (with a quota), list, get, change one quota keeping the others.
    let created = server.ok(
        &root,
        &["tenant", "create", "acme", "--max-relationships", "100"],
    );
    assert_eq!(field(&created, "id"), "acme");
    assert_eq!(field(&created, "state"), "active");
    assert_eq!(field(&created, "max relationships"), "100");
    assert_eq!(field(&created, "max schema bytes"), "unlimited");
    server.refused(&root, &["tenant", "create", "acme"], "AlreadyExists");
    let list = server.ok(KEY, &["tenant", "list"]);
    let mut lines = list.lines();
    assert!(lines.next().unwrap().starts_with("ID "), "{list}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(rows[0][..2], ["acme", "active"]);
    assert_eq!(rows[0][3], "100");
    assert_eq!(rows[1][..2], ["default", "active"]);
    let listed = server.json(KEY, &["tenant", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let quotas = server.json(
        KEY,
        &["tenant", "quotas", "acme", "--max-schema-bytes", "64KiB"],
    );
    assert_eq!(quotas["quotas"]["max_schema_bytes"], 65536);
    assert_eq!(quotas["quotas"]["max_relationships"], 100);
    let got = server.json(KEY, &["tenant", "get", "acme"]);
    assert_eq!(got["state"], "active");
    assert_eq!(got["quotas"]["max_schema_bytes"], 65536);
    server.refused(KEY, &["tenant", "get", "nope"], "NotFound");

    // The tenant's admin token, created with the root key for tenant acme.
    let admin = server.json(
        KEY,
        &[
            "token",
            "create",
            "--scope",
            "admin,check,read,write,schema",
            "--ttl",
            "30d",
            "--for-tenant",
            "acme",
            "--description",
            "acme admin",
        ],
    );
    assert_eq!(admin["tenant"], "acme");
    assert_eq!(
        admin["scopes"],
        serde_json::json!(["check", "read", "write", "schema", "admin"])
    );
    assert_eq!(admin["description"], "acme admin");
    let admin_id = admin["id"].as_str().unwrap().to_owned();
    let admin_secret = admin["secret_token"].as_str().unwrap().to_owned();
    assert!(
        admin_secret.starts_with(&format!("ost_{admin_id}_")),
        "{admin_secret}"
    );
    let expires = admin["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z'), "{expires}");

    // The admin token acts on its tenant: schema and relationships.
    let schema = dir.path().join("schema.zed");
    std::fs::write(&schema, SCHEMA).unwrap();
    server.ok(
        &admin_secret,
        &["schema", "write", schema.to_str().unwrap()],
    );
    server.ok(
        &admin_secret,
        &[
            "rel",
            "create",
            "document:plan#viewer@user:alice",
            "folder:f#viewer@user:alice",
        ],
    );

    // It creates a check-only token restricted to `document`: the secret is labelled and
    // shown once.
    let output = server.run(
        &admin_secret,
        &[
            "token",
            "create",
            "--scope",
            "check",
            "--definition",
            "document",
            "--ttl",
            "1d",
            "--description",
            "checker",
        ],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(field(&text, "tenant"), "acme");
    assert_eq!(field(&text, "scopes"), "check");
    assert_eq!(field(&text, "definitions"), "document");
    assert_eq!(field(&text, "description"), "checker");
    let checker_id = field(&text, "id");
    let checker = field(&text, "secret");
    assert!(checker.starts_with(&format!("ost_{checker_id}_")), "{text}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("shown only this once"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The check-only token checks, but may not write, read relationships or use `folder`.
    assert_eq!(
        server
            .ok(&checker, &["check", "document:plan", "view", "user:alice"])
            .trim(),
        "true"
    );
    assert_eq!(
        server
            .ok(&checker, &["check", "document:plan", "view", "user:bob"])
            .trim(),
        "false"
    );
    let stderr = server.refused(
        &checker,
        &["rel", "create", "document:plan#viewer@user:bob"],
        "PermissionDenied",
    );
    assert!(stderr.contains("`write` scope"), "{stderr}");
    server.refused(&checker, &["rel", "read", "document"], "PermissionDenied");
    let stderr = server.refused(
        &checker,
        &["check", "folder:f", "viewer", "user:alice"],
        "PermissionDenied",
    );
    assert!(stderr.contains("`folder`"), "{stderr}");

    // No privilege escalation: a check-only token cannot create tokens at all, the admin
    // token cannot grant a scope it lacks nor outlive itself.
    server.refused(
        &checker,
        &["token", "create", "--scope", "check", "--ttl", "1h"],
        "PermissionDenied",
    );
    let stderr = server.refused(
        &admin_secret,
        &["token", "create", "--scope", "check,watch", "--ttl", "1h"],
        "PermissionDenied",
    );
    assert!(stderr.contains("`watch`"), "{stderr}");
    let stderr = server.refused(
        &admin_secret,
        &["token", "create", "--scope", "check", "--ttl", "60d"],
        "PermissionDenied",
    );
    assert!(stderr.contains("expiry"), "{stderr}");
    server.refused(
        &admin_secret,
        &["token", "create", "--scope", "root", "--ttl", "1h"],
        "PermissionDenied",
    );
    // Nor can it reach another tenant's tokens or audit log.
    server.refused(
        &admin_secret,
        &["token", "list", "--for-tenant", "default"],
        "PermissionDenied",
    );
    server.refused(
        &admin_secret,
        &["audit", "read", "--for-tenant", "default"],
        "PermissionDenied",
    );
    let bad_scope = server.run(&admin_secret, &["token", "create", "--scope", "everything"]);
    assert_eq!(bad_scope.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope `everything`"));

    // token list shows the three tokens of acme, without secrets.
    let list = server.ok(&admin_secret, &["token", "list"]);
    assert!(list.starts_with("ID "), "{list}");
    assert!(!list.contains("ost_"), "{list}");
    let checker_row = list
        .lines()
        .find(|line| line.starts_with(&checker_id))
        .unwrap_or_else(|| panic!("{list}"));
    let cells: Vec<&str> = checker_row.split_whitespace().collect();
    assert_eq!(cells[1..4], ["acme", "check", "document"], "{list}");
    assert_eq!(cells[6], admin_id, "created by the admin token: {list}");
    assert_eq!(cells.last(), Some(&"checker"));
    let tokens = server.json(KEY, &["token", "list", "--for-tenant", "acme"]);
    let mut ids: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![admin_id.as_str(), checker_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    // Rotation with a grace period: the old and the new secret both work.
    let rotated = server.ok(
        &admin_secret,
        &["token", "rotate", &checker_id, "--grace", "1h"],
    );
    assert_eq!(field(&rotated, "id"), checker_id);
    let rotated_secret = field(&rotated, "secret");
    assert_ne!(rotated_secret, checker);
    assert!(field(&rotated, "old secret valid until").ends_with('Z'));
    for secret in [&checker, &rotated_secret] {
        assert_eq!(
            server
                .ok(secret, &["check", "document:plan", "view", "user:alice"])
                .trim(),
            "true"
        );
    }
    // Rotation without grace: the previous secret stops at once.
    let again = server.json(&admin_secret, &["token", "rotate", &checker_id]);
    let newest = again["secret_token"].as_str().unwrap().to_owned();
    assert_eq!(again["previous_secret_valid_until"], Value::Null);
    server.refused(
        &rotated_secret,
        &["check", "document:plan", "view", "user:alice"],
        "Unauthenticated",
    );
    assert_eq!(
        server
            .ok(&newest, &["check", "document:plan", "view", "user:alice"])
            .trim(),
        "true"
    );

    // Revocation: refused from then on.
    let revoked = server.ok(&admin_secret, &["token", "revoke", &checker_id]);
    assert!(
        revoked.starts_with(&format!(
            "revoked token `{checker_id}` of tenant `acme` at "
        )),
        "{revoked}"
    );
    server.refused(
        &newest,
        &["check", "document:plan", "view", "user:alice"],
        "Unauthenticated",
    );
    let remaining = server.json(&admin_secret, &["token", "list"]);
    assert_eq!(remaining.as_array().unwrap().len(), 1, "{remaining}");
    assert_eq!(remaining[0]["id"], admin_id.as_str());
    assert!(remaining[0]["last_used_at"].is_string(), "{remaining}");

    // A root caller picks the tenant with --tenant (or OSTIARY_TENANT), and notes whom it
    // acts for with --on-behalf-of.
    assert_eq!(
        server
            .ok(
                KEY,
                &[
                    "check",
                    "document:plan",
                    "view",
                    "user:alice",
                    "--tenant",
                    "acme"
                ]
            )
            .trim(),
        "true"
    );
    // Without it, the root key acts on the default tenant, which has no schema.
    server.refused(
        KEY,
        &["check", "document:plan", "view", "user:alice"],
        "FailedPrecondition",
    );
    let env_tenant = command()
        .args([
            "rel",
            "read",
            "document",
            "--endpoint",
            &server.addr,
            "--insecure",
        ])
        .env("OSTIARY_TOKEN", KEY)
        .env("OSTIARY_TENANT", "acme")
        .output()
        .unwrap();
    assert!(env_tenant.status.success());
    assert_eq!(
        String::from_utf8_lossy(&env_tenant.stdout).trim(),
        "document:plan#viewer@user:alice"
    );
    server.ok(
        KEY,
        &[
            "rel",
            "touch",
            "document:plan#viewer@user:bob",
            "--tenant",
            "acme",
            "--on-behalf-of",
            "support ticket 7",
        ],
    );
    // A tenant's token cannot name another tenant.
    server.refused(
        &admin_secret,
        &[
            "check",
            "document:plan",
            "view",
            "user:bob",
            "--tenant",
            "default",
        ],
        "PermissionDenied",
    );

    // Suspension refuses the tenant's tokens until it is resumed.
    let suspended = server.ok(&root, &["tenant", "suspend", "acme"]);
    assert_eq!(field(&suspended, "state"), "suspended");
    server.refused(
        &admin_secret,
        &["check", "document:plan", "view", "user:bob"],
        "PermissionDenied",
    );
    let resumed = server.json(&root, &["tenant", "resume", "acme"]);
    assert_eq!(resumed["state"], "active");
    assert_eq!(
        server
            .ok(
                &admin_secret,
                &["check", "document:plan", "view", "user:bob"]
            )
            .trim(),
        "true"
    );

    // The tenant's audit log: every action above, in order, with its actor.
    let entries = server.audit(&admin_secret, &[]);
    assert_eq!(
        actions(&entries),
        [
            "token.create",        // admin, by the root key
            "schema.write",        // by admin
            "relationships.write", // by admin
            "token.create",        // checker, by admin
            "token.rotate",
            "token.rotate",
            "token.revoke",
            "relationships.write", // by the root key, on behalf of a ticket
        ]
    );
    let sequences: Vec<u64> = entries
        .iter()
        .map(|entry| entry["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=8).collect::<Vec<_>>());
    assert_eq!(entries[1]["actor"], admin_id.as_str());
    assert_eq!(entries[3]["details"]["token"], checker_id.as_str());
    assert_eq!(
        entries[3]["details"]["scopes"],
        serde_json::json!(["check"])
    );
    assert_eq!(entries[6]["details"]["token"], checker_id.as_str());
    assert_eq!(entries[7]["on_behalf_of"], "support ticket 7");
    assert_eq!(entries[6]["on_behalf_of"], Value::Null);
    // Filters: by actor and action, paging, and time.
    let by_admin = server.audit(
        &admin_secret,
        &["--actor", &admin_id, "--action", "token.create"],
    );
    assert_eq!(by_admin.len(), 1);
    assert_eq!(by_admin[0]["sequence"], 4);
    let page = server.audit(&admin_secret, &["--after", "2", "--limit", "3"]);
    assert_eq!(
        page.iter()
            .map(|entry| entry["sequence"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert!(
        server
            .audit(&admin_secret, &["--since", "2999-01-01T00:00:00Z"])
            .is_empty()
    );
    assert_eq!(
        server
            .audit(&admin_secret, &["--until", "2999-01-01T00:00:00Z"])
            .len(),
        8
    );
    let bad_time = server.run(&admin_secret, &["audit", "read", "--since", "yesterday"]);
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_time.stderr).contains("not an RFC 3339 time"));
    // The table: a header and one row per entry.
    let table = server.ok(
        &admin_secret,
        &["audit", "read", "--action", "token.revoke"],
    );
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("SEQ  TIME"), "{table}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[0], "7");
    assert_eq!(cells[2..4], [admin_id.as_str(), "token.revoke"], "{table}");

    // The root reads the tenant management log of the system tenant.
    let system = server.audit(
        KEY,
        &["--for-tenant", "_system", "--action", "tenant.suspend"],
    );
    assert_eq!(system.len(), 1);
    assert_eq!(system[0]["details"]["tenant"], "acme");
    let managed: Vec<Value> = server.audit(KEY, &["--for-tenant", "_system"]);
    let managed = actions(&managed);
    for action in [
        "tenant.create",
        "tenant.set_quotas",
        "tenant.suspend",
        "tenant.resume",
    ] {
        assert!(managed.contains(&action), "{action} missing: {managed:?}");
    }

    // Verify: intact.
    let verified = server.ok(&admin_secret, &["audit", "verify"]);
    assert_eq!(
        verified.trim(),
        "intact: 8 entries checked, the hash chain is unbroken"
    );
    let verified = server.json(KEY, &["audit", "verify", "--for-tenant", "acme"]);
    assert_eq!(verified["intact"], true);
    assert_eq!(verified["entries_checked"], 8);
    assert_eq!(verified["problem"], Value::Null);

    // Export: one parseable JSON entry a line, hash-chained, the same as `audit read`.
    let file = dir.path().join("audit.jsonl");
    let exported = server.ok(&admin_secret, &["audit", "export", file.to_str().unwrap()]);
    assert_eq!(
        exported.trim(),
        format!("exported 8 audit entries to `{}`", file.display())
    );
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, entries);
    for pair in lines.windows(2) {
        assert_eq!(pair[1]["previous_hash"], pair[0]["hash"]);
    }
    assert!(
        lines
            .iter()
            .all(|line| line["hash"].as_str().unwrap().len() == 64)
    );

    // Deleting the tenant stops its tokens at once.
    let deleted = server.ok(KEY, &["tenant", "delete", "acme"]);
    assert_eq!(field(&deleted, "state"), "deleting");
    assert!(deleted.contains("removed in the background"), "{deleted}");
    let stderr = server.run(
        &admin_secret,
        &["check", "document:plan", "view", "user:bob"],
    );
    assert_eq!(stderr.status.code(), Some(2));
}

#[test]
fn the_tenant_option_comes_from_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    // A stale root token file (of a memory store that is gone) does not stop a memory
    // server: it is replaced by the new store's token.
    let root_file = dir.path().join("root-token");
    std::fs::write(&root_file, "ost_stale\n").unwrap();
    let server = start_server(&root_file);
    let root = std::fs::read_to_string(&root_file).unwrap();
    assert!(
        root.starts_with("ost_") && root.trim() != "ost_stale",
        "{root}"
    );
    server.ok(root.trim(), &["tenant", "list"]);
    server.ok(KEY, &["tenant", "create", "team-a"]);
    let schema = dir.path().join("schema.zed");
    std::fs::write(&schema, SCHEMA).unwrap();
    server.ok(
        KEY,
        &[
            "schema",
            "write",
            schema.to_str().unwrap(),
            "--tenant",
            "team-a",
        ],
    );
    server.ok(
        KEY,
        &[
            "rel",
            "create",
            "document:x#viewer@user:ann",
            "--tenant",
            "team-a",
        ],
    );
    let config = dir.path().join("client.toml");
    std::fs::write(
        &config,
        format!(
            "default-profile = \"a\"\n\n[profiles.a]\nendpoint = \"{}\"\ntoken = \"{KEY}\"\ninsecure = true\ntenant = \"team-a\"\n",
            server.addr
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
    let checked = run(&["check", "document:x", "view", "user:ann"]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&checked.stdout).trim(), "true");
    // The flag wins over the profile: the default tenant has no schema.
    let other = run(&[
        "check",
        "document:x",
        "view",
        "user:ann",
        "--tenant",
        "default",
    ]);
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("FailedPrecondition"));
    // export and import take --tenant too: copy team-a into team-b.
    server.ok(KEY, &["tenant", "create", "team-b"]);
    let file = dir.path().join("team-a.jsonl");
    let transfer = |args: &[&str]| {
        let output = command()
            .args(args)
            .args(["--endpoint", &server.addr, "--token", KEY])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    transfer(&["export", file.to_str().unwrap(), "--tenant", "team-a"]);
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(
        exported.contains(r#"{"resource":{"type":"document","id":"x"},"relation":"viewer""#),
        "{exported}"
    );
    assert!(exported.contains(r#""count":1"#), "{exported}");
    transfer(&[
        "import",
        file.to_str().unwrap(),
        "--tenant",
        "team-b",
        "--on-behalf-of",
        "migration",
    ]);
    assert_eq!(
        server
            .ok(KEY, &["rel", "read", "document", "--tenant", "team-b"])
            .trim(),
        "document:x#viewer@user:ann"
    );
    let imported = server.audit(KEY, &["--for-tenant", "team-b"]);
    assert_eq!(actions(&imported), ["schema.write", "relationships.import"]);
    assert!(
        imported
            .iter()
            .all(|entry| entry["on_behalf_of"] == "migration")
    );

    // A malformed tenant id is refused by the server.
    let bad = run(&[
        "check",
        "document:x",
        "view",
        "user:ann",
        "--tenant",
        "Not/A/Tenant",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ostiary-tenant"));
}
