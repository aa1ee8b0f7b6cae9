//! The official `authzed` Python client against the real binary, on memory and on RocksDB:
//! runs `tests/python/authzed_e2e.py` (every RPC, each consistency mode, garbled tokens, the
//! new enemy, Watch resume, bad input with the store unchanged, authentication) and requires
//! every check it lists to pass.
//!
//! The interpreter is `$OSTIARY_PYTHON`, else `~/.cache/ostiary/venv/bin/python`; both come
//! from `deploy/setup.sh`, which `deploy/test.sh` runs first. Without either the test fails
//! (it never skips) and says to run `deploy/setup.sh`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Engine, KEY, Ostiary, wait_timeout};

/// How long the whole script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn authzed_python_client_on_memory() {
    run_script(Engine::Memory).await;
}

#[tokio::test]
async fn authzed_python_client_on_rocksdb() {
    run_script(Engine::Rocksdb).await;
}

/// The venv interpreter `deploy/setup.sh` provides.
fn python() -> PathBuf {
    let candidate = match std::env::var_os("OSTIARY_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/ostiary/venv/bin/python")
        }
    };
    assert!(
        candidate.exists(),
        "no Python with the `authzed` client at `{}`: run `deploy/setup.sh` (it creates the venv \
         and exports OSTIARY_PYTHON), or point OSTIARY_PYTHON at a Python that has the pinned \
         packages of deploy/python-requirements.txt",
        candidate.display()
    );
    candidate
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/authzed_e2e.py")
}

/// Runs the script with `args` (bounded by [`SCRIPT_TIMEOUT`]); returns the exit success,
/// stdout and stderr.
fn run(python: &Path, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(python)
        .arg(script())
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        stdout_pipe.read_to_string(&mut text).unwrap();
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).unwrap();
        text
    });
    let status = wait_timeout(&mut child, SCRIPT_TIMEOUT);
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        status.is_some(),
        "the Python script ran longer than {SCRIPT_TIMEOUT:?}; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (
        status.is_some_and(|status| status.success()),
        stdout,
        stderr,
    )
}

async fn run_script(engine: Engine) {
    let python = python();
    let list_python = python.clone();
    let (listed, names, list_err) =
        tokio::task::spawn_blocking(move || run(&list_python, &["--list"]))
            .await
            .unwrap();
    assert!(
        listed,
        "the Python script cannot even list its checks (is `authzed` installed? run \
         `deploy/setup.sh`):\n{list_err}"
    );
    let names: Vec<String> = names.lines().map(str::to_owned).collect();
    assert!(names.len() >= 10, "too few checks listed: {names:?}");

    let (server, _data) = Ostiary::start(engine).await;
    let addr = server.addr().to_string();
    let (passed, stdout, stderr) =
        tokio::task::spawn_blocking(move || run(&python, &["--addr", &addr, "--token", KEY]))
            .await
            .unwrap();
    assert!(
        passed,
        "the authzed Python checks failed on {engine:?}.\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        server.log()
    );
    for name in &names {
        assert!(
            stdout.lines().any(|line| line == format!("ok {name}")),
            "check `{name}` did not report ok:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("all {} checks passed", names.len())),
        "{stdout}"
    );
}
