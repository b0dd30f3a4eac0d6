//! Real servers for the storage, source and engine tests (S3 and Azure
//! Blob emulators, OpenSSH's sshd, PostgreSQL, Spark Connect), started on
//! loopback by the tests that need them and stopped when dropped.
//!
//! `scripts/test` installs them (Python packages in the test virtual
//! environment, npm packages under the cache, Debian packages); a server
//! that cannot start fails the test that asked for it, with the command and
//! its output, never skips it.
//!
//! One file per server next to this one; this file holds what they share:
//! a free loopback port, a child process that dies with its guard, and the
//! wait until the port answers.
#![allow(dead_code)]

pub mod azurite;
pub mod moto;
pub mod postgres;
pub mod spark;
pub mod sshd;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port no one listens on right now (the OS picks it; it is released
/// before the server binds it, which is racy only against other processes
/// picking ports the same way at the same instant).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Where the test tools live: the virtual environment `scripts/test` makes
/// (`ACCORD_TEST_VENV`, default `~/.cache/accord-test-venv`) and the npm
/// prefix beside it (`ACCORD_TEST_NPM`, default `~/.cache/accord-test-npm`).
pub fn tool(relative: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let (var, default) = if relative.starts_with("node_modules") {
        ("ACCORD_TEST_NPM", format!("{home}/.cache/accord-test-npm"))
    } else {
        (
            "ACCORD_TEST_VENV",
            format!("{home}/.cache/accord-test-venv"),
        )
    };
    PathBuf::from(std::env::var(var).unwrap_or(default)).join(relative)
}

/// A server process; killed (and reaped) when dropped.
pub struct Process {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    /// Scratch space the server owns (data folders, configs); removed on drop.
    pub dir: tempfile::TempDir,
}

impl Process {
    /// Starts `command` (its output in `dir/server.log`: a pipe nobody
    /// reads would fill and stall a chatty server) and waits up to `patience`
    /// for `port` on 127.0.0.1 to accept connections. Panics, with the
    /// command and what it printed, when it exits or never listens.
    pub fn start(
        name: &'static str,
        mut command: Command,
        port: u16,
        dir: tempfile::TempDir,
        patience: Duration,
    ) -> Process {
        let shown = format!("{command:?}");
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).expect("server log");
        let err = out.try_clone().expect("server log");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{name} cannot start ({e}): `{shown}`; scripts/test installs it")
            });
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut process = Process {
            name,
            addr,
            child,
            dir,
        };
        let deadline = Instant::now() + patience;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "{name} exited ({status}) before listening on {addr}: `{shown}`\n{}",
                    process.output()
                );
            }
            if Instant::now() > deadline {
                let _ = process.child.kill();
                let _ = process.child.wait();
                panic!(
                    "{name} did not listen on {addr} within {patience:?}: `{shown}`\n{}",
                    process.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's process id (its own children, such as sshd's
    /// per-connection processes, are found by it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (it is reaped if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request to a server on loopback, for setting a test
/// server up (a bucket, a user): `(status, body)`. No client crate and no
/// runtime, so the setup cannot depend on the code under test.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (key, value) in headers {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // A server that has just begun to listen may still drop a connection
    // before it reads it (seen with moto under load): the request never
    // reached it, so sending it again is safe. Only failures to send are
    // retried, never one after the server could have acted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        let sent = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            Ok(s)
        });
        match sent {
            Ok(stream) => break stream,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{method} {target} to {addr}: {e}; sending again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{method} {target}: cannot send to {addr}: {e}"),
        }
    };
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("response");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {target}: not an HTTP answer: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The text of the first `<tag>` in an XML body.
pub fn xml_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(&body[start..end])
}
