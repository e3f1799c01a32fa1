//! A PostgreSQL server of the test's own (Debian `postgresql`, which the README's test
//! command installs): a cluster made by `initdb` in a temporary folder, started by
//! `pg_ctl` on a free loopback port, trusting local connections. `initdb` refuses root, so
//! as root both run as the `postgres` user through `runuser`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running PostgreSQL; stopped when dropped.
#[derive(Debug)]
pub struct PostgresServer {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server: install it with the README's test command (package postgresql)"
        )
    })
}

fn is_root() -> bool {
    // std does not expose geteuid: ask `id`.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl PostgresServer {
    pub fn start() -> PostgresServer {
        let dir = tempfile::tempdir().unwrap();
        let s = PostgresServer {
            port: crate::sippkit::free_udp_port(),
            bin: bin_dir(),
            dir,
        };
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(s.dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown to postgres");
        }
        let out = s
            .command("initdb")
            .args([
                "-D",
                s.data().to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s.restart();
        s
    }

    /// A program of the server's, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// Starts it (again), once it accepts connections.
    pub fn restart(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.folder().display()
        );
        let out = self
            .command("pg_ctl")
            .args([
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-l",
            ])
            .arg(self.folder().join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops it at once, its clients cut off (`-m fast`).
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// `pg_ctl stop` in this shutdown mode, once it has stopped.
    fn pg_ctl_stop(&self, mode: &str) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs SQL with psql (stopping at the first error).
    pub fn psql(&self, sql: &str) {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-q",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgresql://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.pg_ctl_stop("immediate");
    }
}
