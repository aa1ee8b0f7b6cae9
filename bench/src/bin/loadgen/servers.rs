//! The servers under test, started and stopped by the load generator itself: `ostiary serve`
//! (embedded RocksDB or memory), SpiceDB through the harness's `spicedb_server.py`, and the
//! harness's `mock_server` (the gRPC floor). Each runs on a free port and is stopped by its PID
//! when its handle is dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::procfs;

/// A kind of server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `ostiary serve --datastore-engine rocksdb`.
    OstiaryRocks,
    /// `ostiary serve --datastore-engine rocksdb --dispatch-cache-max-cost 0` (Check cache off,
    /// as SpiceDB's caches are in the harness).
    OstiaryRocksUncached,
    /// `ostiary serve --datastore-engine memory`.
    OstiaryMemory,
    /// SpiceDB v1.54 (in-memory datastore, caches off) through the harness.
    SpiceDb,
    /// The harness's constant-answer server.
    Mock,
}

impl Target {
    /// The label used in the report.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::OstiaryRocks => "Ostiary (RocksDB)",
            Self::OstiaryRocksUncached => "Ostiary (RocksDB, no cache)",
            Self::OstiaryMemory => "Ostiary (memory)",
            Self::SpiceDb => "SpiceDB (memdb)",
            Self::Mock => "mock_server",
        }
    }

    /// True for both Ostiary datastores.
    pub(crate) fn is_ostiary(self) -> bool {
        matches!(
            self,
            Self::OstiaryRocks | Self::OstiaryRocksUncached | Self::OstiaryMemory
        )
    }
}

/// Where the server programs live.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// The release `ostiary` binary.
    pub(crate) ostiary: PathBuf,
    /// The harness folder (`spicedb_server.py`, `fast/target/release/mock_server`).
    pub(crate) harness: PathBuf,
    /// Where data directories and server logs go.
    pub(crate) work_dir: PathBuf,
}

/// A running server, stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) target: Target,
    pub(crate) addr: String,
    child: Child,
    data_dir: Option<PathBuf>,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Server {
    /// Starts `target` on a free port and waits until it answers gRPC calls.
    pub(crate) async fn start(
        target: Target,
        programs: &Programs,
        tag: &str,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&programs.work_dir)?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let log_path = programs.work_dir.join(format!("{tag}-{port}.log"));
        let log = File::create(&log_path)?;
        let mut data_dir = None;
        let mut command = match target {
            Target::OstiaryRocks | Target::OstiaryRocksUncached | Target::OstiaryMemory => {
                let mut command = Command::new(&programs.ostiary);
                command.args(["serve", "--insecure-no-auth", "--grpc-addr", &addr]);
                if target == Target::OstiaryRocksUncached {
                    command.args(["--dispatch-cache-max-cost", "0"]);
                }
                if target != Target::OstiaryMemory {
                    let dir = programs.work_dir.join(format!("{tag}-{port}-data"));
                    command.args(["--datastore-engine", "rocksdb", "--datastore-conn-uri"]);
                    command.arg(&dir);
                    data_dir = Some(dir);
                } else {
                    command.args(["--datastore-engine", "memory"]);
                }
                command
            }
            Target::SpiceDb => {
                let mut command = Command::new("python3");
                command.arg(programs.harness.join("spicedb_server.py"));
                command.args(["--port", &port.to_string()]);
                command
            }
            Target::Mock => {
                let mut command =
                    Command::new(programs.harness.join("fast/target/release/mock_server"));
                command.args(["--listen", &addr, "--threads", "2"]);
                command
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command
            .spawn()
            .with_context(|| format!("starting {} ({command:?})", target.label()))?;
        let server = Self {
            target,
            addr,
            child,
            data_dir,
        };
        crate::driver::wait_ready(&server.addr, Duration::from_secs(60))
            .await
            .with_context(|| format!("{} (log: {})", target.label(), log_path.display()))?;
        Ok(server)
    }

    /// The server's process id (`spicedb_server.py` execs into the proxy, keeping its PID).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's peak resident set size so far.
    pub(crate) fn peak_rss(&self) -> Option<u64> {
        procfs::peak_rss(self.pid())
    }
}

fn remove_data_dir(dir: &Path) {
    let _ignored = std::fs::remove_dir_all(dir);
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.pid().to_string();
        let _ignored = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ignored = self.child.kill();
            let _ignored = self.child.wait();
        }
        if let Some(dir) = &self.data_dir {
            remove_data_dir(dir);
        }
    }
}
