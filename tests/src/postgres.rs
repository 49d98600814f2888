//! A throwaway PostgreSQL cluster for tests: `initdb` into a temp dir, started on a free port on
//! 127.0.0.1 with trust auth, stopped and deleted when dropped. It runs Debian's own server
//! binaries (the `postgresql` package `./scripts/test` installs), as the `postgres` user when the
//! tests run as root, since the server refuses to run as root.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A running cluster; `url(name)` reaches a database in it.
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
    /// Whether commits reach the disk (`fsync` on, as a real server runs): off for tests, where
    /// it only costs time; on for benchmarks, whose figures must be a real server's.
    durable: bool,
}

/// The newest server binaries: Debian's versioned directory, else whatever `initdb` is on PATH.
fn server_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0").unwrap_or(false)
}

fn succeeded(what: &str, output: std::io::Result<Output>) -> Result<(), String> {
    match output {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
        Err(error) => Err(format!("{what} could not run: {error}")),
    }
}

impl TempPostgres {
    /// Starts a cluster, or says why there is none: `None` (with the reason printed) where the
    /// server is not installed, a panic instead where `BURNCLOUD_REQUIRE_POSTGRES` is set, as it
    /// is in `./scripts/test`.
    pub fn start() -> Option<TempPostgres> {
        TempPostgres::start_as(false)
    }

    /// As `start`, with commits that reach the disk, as a real server's do.
    pub fn start_durable() -> Option<TempPostgres> {
        TempPostgres::start_as(true)
    }

    fn start_as(durable: bool) -> Option<TempPostgres> {
        let required = std::env::var_os("BURNCLOUD_REQUIRE_POSTGRES").is_some();
        let Some(bin) = server_bin_dir() else {
            assert!(!required, "BURNCLOUD_REQUIRE_POSTGRES is set but no PostgreSQL server (initdb) is installed");
            eprintln!("skipping: no PostgreSQL server installed (apt install postgresql)");
            return None;
        };
        match TempPostgres::start_with(bin, durable) {
            Ok(cluster) => Some(cluster),
            Err(reason) => panic!("a temporary PostgreSQL cluster did not start: {reason}"),
        }
    }

    fn start_with(bin: PathBuf, durable: bool) -> Result<TempPostgres, String> {
        let dir = tempfile::Builder::new().prefix("burncloud-pg-").tempdir().map_err(|e| e.to_string())?;
        let as_postgres_user = running_as_root();
        if as_postgres_user {
            succeeded("chown", Command::new("chown").arg("postgres:").arg(dir.path()).output())?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let cluster = TempPostgres { dir, bin, port, as_postgres_user, durable };
        succeeded(
            "initdb",
            cluster
                .server_command("initdb")
                .arg("-D")
                .arg(cluster.data_dir())
                .args(["-U", "burncloud", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"])
                .output(),
        )?;
        cluster.start_server()?;
        Ok(cluster)
    }

    fn start_server(&self) -> Result<(), String> {
        let fsync = if self.durable { "on" } else { "off" };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        succeeded(
            "pg_ctl start",
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output(),
        )
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn server_command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// The URL of database `name` (see `create_database`).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://burncloud@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database, so that each test starts from nothing on the one cluster.
    pub fn create_database(&self, name: &str) -> String {
        let output = self
            .server_command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "burncloud", "-d", "postgres", "-q", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output();
        if let Err(reason) = succeeded("CREATE DATABASE", output) {
            panic!("{reason}");
        }
        self.url(name)
    }

    /// The server's own log, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server at once, as a crash or a power cut would, then starts it again on the same
    /// port and data.
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        self.start_server()
    }

    fn stop(&self) -> Result<(), String> {
        succeeded(
            "pg_ctl stop",
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .output(),
        )
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Err(reason) = self.stop() {
            eprintln!("{reason}");
        }
    }
}
