//! OpenSSH's sshd (Debian's `openssh-server`, `/usr/sbin/sshd`) on a free
//! loopback port, for the SFTP store's tests.
//!
//! Everything it uses is made fresh in the process's temporary folder: host
//! keys of the three pinnable kinds (ed25519, ECDSA P-256, RSA), client keys
//! (one plain, one encrypted, one the server does not know), the
//! `authorized_keys` file and the config. SFTP is OpenSSH's `internal-sftp`,
//! started in `files/` of that folder, so relative destination paths land
//! there and nothing is written elsewhere.
//!
//! The login user is the user running the tests (root in CI; sshd can only
//! log in the user it runs as when it is not root). Password logins are not
//! hermetic (they check the system's password database), so the server
//! offers them only to refuse them: the tests use it for "wrong password".
//! Run as root, sshd needs its privilege separation folder `/run/sshd`,
//! which the Debian service makes at boot and a container has not; it is
//! made here when missing (root-owned, 0755, as the service makes it).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Process, free_port};

const SSHD: &str = "/usr/sbin/sshd";
const INSTALL_HINT: &str =
    "scripts/test installs it (apt-get install openssh-server), or install it yourself";

/// The passphrase of [`Sshd::encrypted_client_key`].
pub const PASSPHRASE: &str = "correct horse battery staple";

/// A running sshd and the keys to talk to it.
pub struct Sshd {
    pub process: Process,
    pub user: String,
    /// Where SFTP sessions start: relative paths are inside it.
    pub files: PathBuf,
    /// Its host keys' public lines (`ssh-ed25519 AAAA... comment`).
    pub host_key_ed25519: String,
    pub host_key_ecdsa: String,
    pub host_key_rsa: String,
    /// OpenSSH private keys, as a `private_key` secret holds them.
    pub client_key: String,
    pub encrypted_client_key: String,
    /// A well-formed key the server does not authorise.
    pub unknown_client_key: String,
}

impl Sshd {
    pub fn port(&self) -> u16 {
        self.process.addr.port()
    }

    /// What sshd logged (connections, refused logins, SFTP operations).
    pub fn log(&self) -> String {
        self.process.output()
    }
}

/// Starts sshd; panics (failing the test) when it cannot, with the hint to
/// install it.
pub fn start() -> Sshd {
    start_denying(&[])
}

/// Starts sshd with SFTP requests its server announces but refuses
/// (`internal-sftp -P`, as hardened servers are set up), such as
/// `posix-rename`.
pub fn start_denying(requests: &[&str]) -> Sshd {
    assert!(
        Path::new(SSHD).is_file(),
        "OpenSSH's sshd is missing ({SSHD}): {INSTALL_HINT}"
    );
    let dir = tempfile::Builder::new()
        .prefix("accord-sshd")
        .tempdir()
        .expect("temporary folder for sshd");
    let at = |name: &str| dir.path().join(name);
    keygen(
        &[
            ("ed25519", "host_ed25519", ""),
            ("ecdsa", "host_ecdsa", ""),
            ("rsa", "host_rsa", ""),
            ("ed25519", "client", ""),
            ("ed25519", "client_encrypted", PASSPHRASE),
            ("ed25519", "client_unknown", ""),
        ]
        .map(|(kind, name, passphrase)| (kind, at(name), passphrase)),
    );
    let authorized: String = ["client.pub", "client_encrypted.pub"]
        .iter()
        .map(|name| read(&at(name)))
        .collect();
    std::fs::write(at("authorized_keys"), authorized).expect("authorized_keys");
    let files = at("files");
    std::fs::create_dir(&files).expect("sftp folder");

    let user = command_output("id", &["-un"]);
    if command_output("id", &["-u"]) == "0" {
        privilege_separation_folder();
    }
    let port = free_port();
    let config = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {dir}/host_ed25519\n\
         HostKey {dir}/host_ecdsa\n\
         HostKey {dir}/host_rsa\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         StrictModes no\n\
         UsePAM no\n\
         PermitRootLogin yes\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication yes\n\
         KbdInteractiveAuthentication no\n\
         AllowUsers {user}\n\
         MaxStartups 64\n\
         LogLevel VERBOSE\n\
         Subsystem sftp internal-sftp -d {files} -l VERBOSE{denied}\n",
        dir = dir.path().display(),
        files = files.display(),
        denied = if requests.is_empty() {
            String::new()
        } else {
            format!(" -P {}", requests.join(","))
        },
    );
    std::fs::write(at("sshd_config"), config).expect("sshd_config");
    // sshd refuses to start when its config is not valid: `-t` says why in
    // a message that fails the test, before it is started for real.
    let test = Command::new(SSHD)
        .arg("-t")
        .arg("-f")
        .arg(at("sshd_config"))
        .output()
        .unwrap_or_else(|e| panic!("{SSHD} cannot run ({e}): {INSTALL_HINT}"));
    assert!(
        test.status.success(),
        "sshd refuses its config: {}",
        String::from_utf8_lossy(&test.stderr)
    );

    let mut command = Command::new(SSHD);
    command.arg("-D").arg("-e").arg("-f").arg(at("sshd_config"));
    let host_key_ed25519 = read(&at("host_ed25519.pub"));
    let host_key_ecdsa = read(&at("host_ecdsa.pub"));
    let host_key_rsa = read(&at("host_rsa.pub"));
    let client_key = read(&at("client"));
    let encrypted_client_key = read(&at("client_encrypted"));
    let unknown_client_key = read(&at("client_unknown"));
    let process = Process::start("sshd", command, port, dir, Duration::from_secs(20));
    Sshd {
        process,
        user,
        files,
        host_key_ed25519: host_key_ed25519.trim().to_string(),
        host_key_ecdsa: host_key_ecdsa.trim().to_string(),
        host_key_rsa: host_key_rsa.trim().to_string(),
        client_key,
        encrypted_client_key,
        unknown_client_key,
    }
}

/// `ssh-keygen` for each key at once (RSA takes a moment).
fn keygen(keys: &[(&str, PathBuf, &str)]) {
    let children: Vec<_> = keys
        .iter()
        .map(|(kind, path, passphrase)| {
            let mut command = Command::new("ssh-keygen");
            command.args([
                "-q",
                "-t",
                kind,
                "-N",
                passphrase,
                "-C",
                "accord-test",
                "-f",
            ]);
            command.arg(path);
            if *kind == "rsa" {
                command.args(["-b", "2048"]);
            }
            command
                .spawn()
                .unwrap_or_else(|e| panic!("ssh-keygen cannot run ({e}): {INSTALL_HINT}"))
        })
        .collect();
    for mut child in children {
        let status = child.wait().expect("ssh-keygen");
        assert!(status.success(), "ssh-keygen failed: {status}");
    }
}

fn privilege_separation_folder() {
    let folder = Path::new("/run/sshd");
    if !folder.is_dir() {
        std::fs::create_dir_all(folder).expect("/run/sshd");
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755))
            .expect("/run/sshd mode");
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
