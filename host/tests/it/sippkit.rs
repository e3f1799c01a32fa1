//! Running SIPp, a SIP client we did not write: scenarios built from pieces, one run to
//! its end (`sipp`) or one in the background (`Background`), over UDP or TCP.

use sipreg::config::Transport;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A loopback port free for both UDP and TCP now (SIPp binds the one of its transport).
pub fn free_udp_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn expect(code: u16, checks: &str) -> String {
    if checks.is_empty() {
        format!("  <recv response=\"{code}\" timeout=\"5000\"/>\n")
    } else {
        format!(
            "  <recv response=\"{code}\" timeout=\"5000\">\n    <action>\n{checks}    </action>\n  </recv>\n"
        )
    }
}

/// A header check: `regexp` must match (or, with `absent`, must not match) the header.
pub fn check(header: &str, regexp: &str, absent: bool) -> String {
    let inverse = if absent {
        " check_it_inverse=\"true\""
    } else {
        " check_it=\"true\""
    };
    format!(
        "      <ereg regexp=\"{regexp}\" search_in=\"hdr\" header=\"{header}:\"{inverse} assign_to=\"m{}\"/>\n",
        regexp.len()
    )
}

pub fn scenario(body: &str) -> String {
    // SIPp refuses variables that are assigned and never used: reference them all.
    let mut vars: Vec<&str> = body
        .split("assign_to=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    vars.sort_unstable();
    vars.dedup();
    let reference = if vars.is_empty() {
        String::new()
    } else {
        format!("  <Reference variables=\"{}\"/>\n", vars.join(","))
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"t\">\n{body}{reference}</scenario>\n"
    )
}

/// One REGISTER of `user` (From and To) in a scenario; `extra` holds more header lines
/// (Contact, Expires, SIPp's `[authentication]`), each indented and ending in a newline.
pub fn register_message(cseq: u32, user: &str, extra: &str) -> String {
    format!(
        r#"  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:{user}@[remote_ip]>;tag=[pid]SIPpTag[call_number]
      To: <sip:{user}@[remote_ip]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
{extra}      User-Agent: sipreg-tests
      Content-Length: 0

    ]]>
  </send>
"#
    )
}

/// SIPp registers `users` users with digest (`[authentication]`), each its own password
/// (`pw-u<n>`, users `u<first>` on, of `domain`), and expects `expect` to the
/// authenticated REGISTER. The Request-URI is `sip:<domain>`: SIPp needs
/// `-auth_uri <domain>` for its digest `uri` to match it (its default is the address it
/// sends to).
pub fn digest_each_call(
    first: usize,
    users: usize,
    domain: &str,
    expect: u16,
) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("SEQUENTIAL\n");
    for i in first..first + users {
        csv.push_str(&format!(
            "u{i};[authentication username=u{i} password=pw-u{i}]\n"
        ));
    }
    std::fs::write(dir.path().join("users.csv"), csv).unwrap();
    let register = |cseq: u32, auth: &str| {
        format!(
            r#"  <send retrans="500">
    <![CDATA[
      REGISTER sip:{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:[field0]@{domain}>;tag=[pid]SIPpTag[call_number]
      To: <sip:[field0]@{domain}>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Expires: 300
{auth}      Content-Length: 0

    ]]>
  </send>
"#
        )
    };
    let scenario = scenario(&format!(
        "{}  <recv response=\"401\" auth=\"true\" timeout=\"5000\"/>\n{}  <recv response=\"{expect}\" timeout=\"5000\"/>\n",
        register(1, ""),
        register(2, "      [field1]\n"),
    ));
    (scenario, dir)
}

/// SIPp, in the background, registering `u1`..`u<users>` of `domain` with digest
/// ([`digest_each_call`], each expecting a 200) at `rate` a second over UDP to `server`;
/// the folder of its user list goes with it.
pub fn register_digest_users(
    server: SocketAddr,
    users: usize,
    rate: u32,
    domain: &str,
) -> (Background, tempfile::TempDir) {
    let (scenario, dir) = digest_each_call(1, users, domain, 200);
    let csv = dir.path().join("users.csv");
    let run = Background::start(
        server,
        Transport::Udp,
        &scenario,
        &[
            "-m",
            &users.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            "1000",
            "-inf",
            csv.to_str().unwrap(),
            "-auth_uri",
            domain,
        ],
    );
    (run, dir)
}

/// A REGISTER per call for user `u<call number>` at 127.0.0.1 (so `-m N` registers N
/// users): a 200 is logged `stored u<n>`, and with `refused` a 503 is accepted and logged
/// `refused u<n>` (read them with `-trace_logs` and [`Background::finish_with_logs`]).
pub fn register_each_call(expires: u32, refused: bool) -> String {
    let on_503 = if refused {
        r#"  <recv response="503" optional="true" next="end">
    <action>
      <log message="refused u[call_number]"/>
    </action>
  </recv>
"#
    } else {
        ""
    };
    let end = if refused {
        "  <label id=\"end\"/>\n"
    } else {
        ""
    };
    scenario(&format!(
        r#"  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:u[call_number]@127.0.0.1>;tag=[pid]SIPpTag[call_number]
      To: <sip:u[call_number]@127.0.0.1>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:u[call_number]@[local_ip]:[local_port]>
      Expires: {expires}
      Content-Length: 0

    ]]>
  </send>
{on_503}  <recv response="200" timeout="3000">
    <action>
      <log message="stored u[call_number]"/>
    </action>
  </recv>
{end}"#
    ))
}

/// A SIPp command for `scenario` against `server` over `transport`, in a fresh folder
/// (its logs land there), listening on `port`.
fn command(
    server: SocketAddr,
    transport: Transport,
    scenario: &str,
    port: u16,
    extra: &[&str],
) -> (Command, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "sipreg-sipp-{}-{}",
        std::process::id(),
        free_udp_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.xml");
    std::fs::write(&file, scenario).unwrap();
    let port = port.to_string();
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir)
        .arg(server.to_string())
        .args([
            "-sf",
            file.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &port,
        ])
        .args(if extra.contains(&"-m") {
            &[][..]
        } else {
            &["-m", "1"][..]
        })
        .args(["-timeout", "15s", "-nostdin", "-trace_err", "-t"])
        .arg(if transport == Transport::Tcp {
            "t1"
        } else {
            "u1"
        })
        .args(extra);
    (cmd, dir)
}

/// The text of SIPp's files in `dir` whose names end with `suffix`.
fn files_ending(dir: &std::path::Path, suffix: &str) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

/// What SIPp said: Ok on exit 0, else its exit code, call counts and error log.
fn verdict(out: std::process::Output, dir: &std::path::Path) -> Result<(), String> {
    let errors = files_ending(dir, "errors.log");
    // KEEP_SIPP=1 keeps the scenario and SIPp's logs for a look by hand.
    if std::env::var_os("KEEP_SIPP").is_some() {
        eprintln!("SIPp files kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sipp exit {:?}\n{}\n{}\n{errors}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("call"))
                .collect::<Vec<_>>()
                .join("\n"),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn spawn_error(e: std::io::Error) -> ! {
    panic!("cannot run sipp ({e}): install it with the README's test command (package sip-tester)")
}

/// Runs SIPp with `scenario` against `server` over `transport` to its end; Err with what
/// SIPp said.
pub fn sipp(
    server: SocketAddr,
    transport: Transport,
    scenario: &str,
    extra: &[&str],
) -> Result<(), String> {
    let (mut cmd, dir) = command(server, transport, scenario, free_udp_port(), extra);
    let out = cmd.output().unwrap_or_else(|e| spawn_error(e));
    verdict(out, &dir)
}

/// A SIPp run in the background (a device waiting for calls); killed when dropped.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl Background {
    /// Starts SIPp with `scenario` against `server`, listening on a free port.
    pub fn start(
        server: SocketAddr,
        transport: Transport,
        scenario: &str,
        extra: &[&str],
    ) -> Background {
        let (mut cmd, dir) = command(server, transport, scenario, free_udp_port(), extra);
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| spawn_error(e));
        Background {
            child: Some(child),
            dir,
        }
    }

    /// Waits (at most 20 s) for the scenario to end; Err with what SIPp said.
    pub fn finish(self) -> Result<(), String> {
        self.finish_with_logs().0
    }

    /// [`Background::finish`], and what the scenario's `<log>` actions wrote (SIPp run
    /// with `-trace_logs`).
    pub fn finish_with_logs(mut self) -> (Result<(), String>, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let logs = files_ending(&self.dir, "_logs.log");
        (verdict(out, &self.dir), logs)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
