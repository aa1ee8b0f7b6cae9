//! A real `ostiary serve --datastore-engine memory` for the CLI's end-to-end tests (included
//! by `client.rs` and `tenancy.rs` with `#[path]`), and the commands that drive it.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `ostiary serve` on an in-memory store; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command with no `OSTIARY_*` variables from the test's environment and no client
/// configuration file from the user's home.
pub(crate) fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ostiary"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OSTIARY_") {
            command.env_remove(&name);
        }
    }
    command
        .env("NO_COLOR", "1")
        .env("OSTIARY_CLIENT_CONFIG", "/nonexistent/ostiary-client.toml");
    command
}

/// Starts a server accepting the preshared `key` (root), reading at the head revision (so
/// that each command sees the writes before it), with `extra` serve arguments; returns once
/// it logs its address.
pub(crate) fn start_server(key: &str, extra: &[&OsStr]) -> Server {
    let mut child = command()
        .args(["serve", "--grpc-addr", "127.0.0.1:0"])
        .args(["--datastore-engine", "memory", "--grpc-preshared-key", key])
        .args(["--datastore-revision-quantization-interval", "0s"])
        .args(extra)
        .env("OSTIARY_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    // Drains stderr for the life of the server and reports the bound address once.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("serving gRPC")
                && let Some((_, rest)) = line.split_once("addr=")
                && let Some(addr) = rest.split_whitespace().next()
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ostiary serve printed no `serving gRPC addr=...` line");
    Server { child, addr }
}
