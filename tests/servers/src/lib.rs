//! Throwaway servers for the tests, through `start.sh` and `stop.sh` beside this crate.
//!
//! One instance per engine is shared by every test process of a run: its directory is keyed by the
//! parent process (cargo or nextest), a file lock makes exactly one process start it, and the script's
//! watchdog stops it when that parent exits. Tests that stop or restart a server get a private one.
//!
//! Test support only: a server that cannot be started is a failed test, so this crate panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MariaDb,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::MariaDb => "mariadb",
        }
    }
}

/// A running server and how to reach it.
#[derive(Debug)]
pub struct Server {
    pub engine: Engine,
    pub dir: PathBuf,
    pub port: u16,
    /// The fixture owner's DSN (`app` / `app-secret`, database `sluice`).
    pub dsn: String,
    /// The server's superuser (PostgreSQL: `postgres` over the Unix socket, trusted), for tests that must
    /// show what the engine itself would allow such a role.
    pub admin_dsn: String,
    /// Private servers are stopped and removed on drop; shared ones by their watchdog.
    private: bool,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn run_start(engine: Engine, dir: &Path, watch: u32) -> HashMap<String, String> {
    let output = Command::new("bash")
        .arg(script("start.sh"))
        .arg(engine.name())
        .arg(dir)
        .arg("--watch")
        .arg(watch.to_string())
        .output()
        .expect("run tests/servers/start.sh");
    assert!(
        output.status.success(),
        "start.sh {} failed:\n{}",
        engine.name(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_env(&String::from_utf8_lossy(&output.stdout))
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl Server {
    fn from_env(engine: Engine, dir: PathBuf, env: &HashMap<String, String>, private: bool) -> Server {
        Server {
            engine,
            dir,
            port: env["PORT"].parse().unwrap(),
            dsn: env["DSN"].clone(),
            admin_dsn: env["ADMIN"].clone(),
            private,
        }
    }

    /// The run-wide instance of `engine`, started on first use.
    pub fn shared(engine: Engine) -> &'static Server {
        static POSTGRES: OnceLock<Server> = OnceLock::new();
        static MARIADB: OnceLock<Server> = OnceLock::new();
        let cell = match engine {
            Engine::Postgres => &POSTGRES,
            Engine::MariaDb => &MARIADB,
        };
        cell.get_or_init(|| {
            let parent = std::os::unix::process::parent_id();
            let root = std::env::temp_dir().join(format!("sluice-servers-{parent}"));
            std::fs::create_dir_all(&root).unwrap();
            let lock = File::create(root.join(format!("{}.lock", engine.name()))).unwrap();
            lock.lock().unwrap();
            let dir = root.join(engine.name());
            // Another test process of this run may have started it already; a leftover from an earlier
            // run whose parent id was reused is started again (same data, same port).
            let env = match std::fs::read_to_string(dir.join("env")).map(|t| parse_env(&t)) {
                Ok(env) if listening(&env["PORT"]) => env,
                _ => run_start(engine, &dir, parent),
            };
            lock.unlock().unwrap();
            Server::from_env(engine, dir, &env, false)
        })
    }

    /// An instance of `engine` for this test alone (for stopping and restarting it).
    pub fn private(engine: Engine) -> Server {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sluice-{}-", engine.name()))
            .tempdir()
            .unwrap()
            .keep();
        // The servers run as their own users (postgres, mysql), which must reach the data directory.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let env = run_start(engine, &dir.join("srv"), std::process::id());
        Server::from_env(engine, dir.join("srv"), &env, true)
    }

    pub fn stop(&self) {
        let status = Command::new("bash")
            .arg(script("stop.sh"))
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Starts a stopped instance again, same port, same data.
    pub fn start(&self) {
        let env = run_start(self.engine, &self.dir, std::process::id());
        assert_eq!(env["PORT"], self.port.to_string());
    }

    /// This server's DSN with other credentials or database.
    pub fn dsn_with(&self, user: &str, password: &str, database: &str) -> String {
        let scheme = match self.engine {
            Engine::Postgres => "postgres",
            Engine::MariaDb => "mysql",
        };
        format!("{scheme}://{user}:{password}@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.private {
            let _ = Command::new("bash")
                .arg(script("stop.sh"))
                .arg(&self.dir)
                .arg("--remove")
                .status();
            if let Some(parent) = self.dir.parent() {
                let _ = std::fs::remove_dir_all(parent);
            }
        }
    }
}

fn listening(port: &str) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap_or(0))).is_ok()
}

/// A loopback port nothing listens on, held for as long as the value lives.
///
/// The socket is bound but never listens, so a connection is refused at once, and no other process (a test
/// server started meanwhile by another test, say) can be handed the port. A port bound and released at once
/// was not enough: a MariaDB server that another test started took it, and "unreachable" connected.
#[derive(Debug)]
pub struct ClosedPort {
    /// Held, never read: the reservation lasts as long as the socket.
    _socket: socket2::Socket,
    port: u16,
}

impl ClosedPort {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Reserves a loopback port that refuses connections; see [`ClosedPort`].
pub fn closed_port() -> ClosedPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket
        .local_addr()
        .unwrap()
        .as_socket()
        .map(|address| address.port())
        .unwrap();
    ClosedPort {
        _socket: socket,
        port,
    }
}

/// The fixture SQL for an engine, from `tests/servers/fixtures/`.
pub fn fixture_sql(name: &str) -> String {
    std::fs::read_to_string(script("fixtures").join(name)).unwrap()
}
