//! The `sipreg` binary as a child process: started in a folder of the test's, its log lines
//! read as they come, killed (SIGKILL) whenever the test wants or when it ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// A running `sipreg`; killed when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Process {
    /// Starts `sipreg args` in `dir` (logging at info, without colours).
    pub fn start(args: &[&str], dir: &Path) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sipreg"))
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// `sipreg run --config <dir>/sipreg.toml`, once it listens; its first address.
    pub fn run(dir: &Path) -> (Process, SocketAddr) {
        let cfg = dir.join("sipreg.toml");
        let mut p = Process::start(&["run", "--config", cfg.to_str().unwrap()], dir);
        let addr = p.listening();
        (p, addr)
    }

    /// The next log line containing `what` (at most 10 s away).
    pub fn wait_for(&mut self, what: &str) -> String {
        self.next_with(what, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no log line with {what:?}"))
    }

    /// The next log line containing `what` within `within`, if any.
    pub fn next_with(&mut self, what: &str, within: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if line.contains(what) {
                return Some(line);
            }
        }
    }

    /// How many lines read so far (by earlier waits) contain `what`.
    pub fn seen_with(&self, what: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(what)).count()
    }

    /// A line read already (by an earlier wait) containing `what`.
    pub fn earlier(&self, what: &str) -> Option<&str> {
        self.seen
            .iter()
            .find(|l| l.contains(what))
            .map(String::as_str)
    }

    /// The address of the next `listening` line.
    pub fn listening(&mut self) -> SocketAddr {
        let line = self.wait_for("listening");
        loopback_in(&line)
    }

    /// The admin listener's address (from its `admin API listening` line).
    pub fn admin(&mut self) -> SocketAddr {
        let line = match self.earlier("admin API listening") {
            Some(l) => l.to_owned(),
            None => self.wait_for("admin API listening"),
        };
        loopback_in(&line)
    }

    /// The process id (for signals).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then its exit status (None if it is still running after `within`).
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .unwrap();
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first loopback address in a log line.
fn loopback_in(line: &str) -> SocketAddr {
    let at = line.find("127.0.0.1:").expect("a loopback address");
    line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect::<String>()
        .parse()
        .unwrap()
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
