//! PostgreSQL from Debian's packages (`postgresql`, the binaries under
//! `/usr/lib/postgresql/VERSION/bin`) on a free loopback port, for the
//! PostgreSQL source's tests.
//!
//! A cluster is made fresh in the process's temporary folder (`initdb`,
//! which refuses to run as root: as root, the cluster belongs to the
//! `postgres` user Debian's package creates, else to `nobody`, and the
//! server runs as that user). Its superuser `accord` logs in over TCP with
//! a password made for the run (SCRAM); nothing listens on a Unix socket
//! outside the folder. `with_tls` also serves TLS with a certificate for
//! 127.0.0.1 signed by a CA made for the run, and lets the user `tls_only`
//! in only over TLS.
//!
//! The server is stopped with a fast shutdown (SIGINT) when dropped, so its
//! processes are gone before the folder is removed.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Process, free_port};

const INSTALL_HINT: &str =
    "scripts/test installs it (apt-get install postgresql), or install it yourself";

/// A running PostgreSQL server.
pub struct Postgres {
    pub process: Process,
    /// The superuser's password (made for this server: tests check that it
    /// appears in no output).
    pub password: String,
    /// The CA certificate (PEM) that signed the server's, with `with_tls`.
    pub ca_pem: Option<PathBuf>,
    bin: PathBuf,
}

impl Postgres {
    pub fn port(&self) -> u16 {
        self.process.addr.port()
    }

    /// `postgresql://accord:PASSWORD@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://accord:{}@127.0.0.1:{}/{db}",
            self.password,
            self.port()
        )
    }

    /// Runs SQL as the superuser on `db` with `psql` (stopping at the first
    /// error); panics with psql's output when it fails. psql's
    /// meta-commands work (`\copy t FROM 'file.csv' CSV HEADER`).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.psql_with(Path::new("."), db, &["-c", sql], sql)
    }

    /// Runs the SQL file `file` (relative to `dir`, where psql runs, so
    /// that `\copy` reads files relative to it) as [`Postgres::psql`] does.
    pub fn psql_file(&self, dir: &Path, db: &str, file: &str) -> String {
        self.psql_with(dir, db, &["-f", file], file)
    }

    fn psql_with(&self, dir: &Path, db: &str, args: &[&str], shown: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .current_dir(dir)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!(
                "host=127.0.0.1 port={} user=accord dbname={db}",
                self.port()
            ))
            .args(args)
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap_or_else(|e| panic!("psql cannot run ({e}): {INSTALL_HINT}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "psql failed on `{shown}`:\n{text}");
        text
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        self.process.output()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A fast shutdown: the server ends its connections and its own
        // processes, then exits; `Process` kills it if it does not.
        let pid = self.process.pid().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
            if self.process.exited() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts PostgreSQL without TLS; panics (failing the test) when it cannot.
pub fn start() -> Postgres {
    start_with(false)
}

/// Starts PostgreSQL serving TLS as well (see the module's comment).
pub fn with_tls() -> Postgres {
    start_with(true)
}

fn start_with(tls: bool) -> Postgres {
    let bin = bin_dir();
    let dir = tempfile::Builder::new()
        .prefix("accord-postgres")
        .tempdir()
        .expect("temporary folder for PostgreSQL");
    let at = |name: &str| dir.path().join(name);
    let owner = owner();
    let password = format!(
        "pw-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    std::fs::write(at("pwfile"), format!("{password}\n")).expect("password file");
    let mut ca_pem = None;
    if tls {
        certificates(dir.path());
        ca_pem = Some(at("ca.pem"));
    }
    if let Some((uid, gid)) = owner {
        // The folder and everything in it belong to the server's user.
        for entry in walkdir::WalkDir::new(dir.path()) {
            let entry = entry.expect("walk the folder");
            std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid)).expect("chown");
        }
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(at("data"))
        .args([
            "-U",
            "accord",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", at("pwfile").display()));
    as_owner(&mut initdb, owner, dir.path());
    let out = initdb
        .output()
        .unwrap_or_else(|e| panic!("initdb cannot run ({e}): {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut hba = String::new();
    if tls {
        hba.push_str("hostnossl all tls_only 127.0.0.1/32 reject\n");
    }
    hba.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
    std::fs::write(at("data/pg_hba.conf"), hba).expect("pg_hba.conf");
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(at("data/pg_hba.conf"), Some(uid), Some(gid)).expect("chown");
    }

    let port = free_port();
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(at("data"))
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.path().display()))
        .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
        .args(["-c", "synchronous_commit=off", "-c", "max_connections=40"]);
    if tls {
        command
            .args(["-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", at("server.pem").display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", at("server.key").display()));
    }
    as_owner(&mut command, owner, dir.path());
    let process = Process::start("postgres", command, port, dir, Duration::from_secs(30));
    let server = Postgres {
        process,
        password,
        ca_pem,
        bin,
    };
    if tls {
        server.psql(
            "postgres",
            &format!("CREATE ROLE tls_only LOGIN PASSWORD '{}'", server.password),
        );
    }
    server
}

/// The newest `/usr/lib/postgresql/VERSION/bin` that holds `initdb`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("PostgreSQL is missing (/usr/lib/postgresql/*/bin): {INSTALL_HINT}")
    })
}

/// The user the cluster belongs to when the tests run as root: Debian's
/// `postgres`, else `nobody`. `None` when not root (the cluster is ours).
fn owner() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id(&["-u"]) != Some(0) {
        return None;
    }
    for user in ["postgres", "nobody"] {
        if let (Some(uid), Some(gid)) = (id(&["-u", user]), id(&["-g", user])) {
            return Some((uid, gid));
        }
    }
    panic!("the tests run as root and there is no `postgres` or `nobody` user to run PostgreSQL");
}

/// Runs `command` as the cluster's owner, with the folder as its home.
fn as_owner(command: &mut Command, owner: Option<(u32, u32)>, home: &Path) {
    command
        .env("HOME", home)
        .env("LC_ALL", "C")
        .current_dir(home);
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost it signs
/// (`ca.pem`, `server.pem`, `server.key`), made with `openssl`.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl cannot run ({e}): apt-get install openssl"));
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=accord test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    // PostgreSQL refuses a key others may read.
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("server.key mode");
}
