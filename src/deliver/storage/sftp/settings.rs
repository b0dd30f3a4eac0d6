//! An SFTP destination's settings as a connection needs them: where, as
//! whom, trusting which host key, logging in how; and the remote path of
//! each file name.

use secrecy::SecretString;

use crate::deliver::Config;
use crate::deliver::storage::{StorageError, StorageErrorKind};
use crate::host_key::{self, HostKey};
use crate::plan::SettingPlan;

/// The port when the destination sets none (the catalog's default).
const DEFAULT_PORT: u16 = 22;

/// How the store logs in; `check` makes sure a destination has exactly one.
pub enum Login {
    Password(SecretString),
    /// An OpenSSH private key's text (`-----BEGIN OPENSSH PRIVATE KEY-----`;
    /// PEM RSA and PKCS#8 keys are read too), with the passphrase of an
    /// encrypted one.
    PrivateKey {
        key: SecretString,
        passphrase: Option<SecretString>,
    },
}

/// Everything a connection to one SFTP destination needs.
pub struct SftpSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// The folder files go to: relative to the login folder, or absolute.
    pub path: String,
    /// The only key the server may present.
    pub host_key: HostKey,
    pub login: Login,
}

impl SftpSettings {
    /// The settings of an `sftp` destination with its secrets resolved.
    pub fn from_config(config: &Config) -> Result<SftpSettings, StorageError> {
        let invalid = |message: String| {
            StorageError::new(
                StorageErrorKind::Other,
                format!("destination `{}`: {message}", config.name),
            )
        };
        let port = match config.settings.get("port") {
            None => DEFAULT_PORT,
            Some(SettingPlan::Integer(port)) => u16::try_from(*port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid(format!("`port` {port} is not a TCP port")))?,
            Some(_) => return Err(invalid("`port` is not a number".into())),
        };
        let host_key = host_key::parse(config.require("host_key").map_err(&invalid)?)
            .map_err(|e| invalid(format!("`host_key`: {e}")))?;
        let secret = |key: &str| config.secrets.get(key).cloned();
        let login = match (secret("password"), secret("private_key")) {
            (Some(password), None) => Login::Password(password),
            (None, Some(key)) => Login::PrivateKey {
                key,
                passphrase: secret("passphrase"),
            },
            _ => {
                return Err(invalid(
                    "give exactly one of `password` and `private_key`".into(),
                ));
            }
        };
        Ok(SftpSettings {
            host: config.require("host").map_err(&invalid)?.to_string(),
            port,
            username: config.require("username").map_err(&invalid)?.to_string(),
            path: config.require("path").map_err(&invalid)?.to_string(),
            host_key,
            login,
        })
    }

    /// `sftp://HOST:PORT/FOLDER/`, with `~/` before a folder relative to
    /// the login folder (the SFTP URI convention).
    pub fn location(&self) -> String {
        let shown = match self.folder().as_str() {
            "." => "~/".to_string(),
            "/" => String::new(),
            folder => match folder.strip_prefix('/') {
                Some(absolute) => format!("{absolute}/"),
                None => format!("~/{folder}/"),
            },
        };
        format!("sftp://{}:{}/{shown}", self.host, self.port)
    }

    /// The destination folder without trailing slashes: `.` for the login
    /// folder itself, `/` for the root.
    pub(super) fn folder(&self) -> String {
        let trimmed = self.path.trim_end_matches('/');
        match (trimmed.is_empty(), self.path.starts_with('/')) {
            (true, true) => "/".to_string(),
            (true, false) => ".".to_string(),
            (false, _) => trimmed.to_string(),
        }
    }

    /// The remote path of a file name, which must stay inside the folder.
    pub(super) fn file(&self, name: &str) -> Result<RemoteFile, StorageError> {
        let inside = !name.is_empty()
            && !name.starts_with('/')
            && name.split('/').all(|part| !matches!(part, "" | "." | ".."));
        if !inside {
            return Err(StorageError::new(
                StorageErrorKind::Other,
                format!(
                    "{}: `{name}` is not a file name inside the folder",
                    self.location()
                ),
            ));
        }
        let (subfolder, file_name) = name.rsplit_once('/').unwrap_or(("", name));
        let folder = match (self.folder().as_str(), subfolder) {
            (folder, "") => folder.to_string(),
            ("/", sub) => format!("/{sub}"),
            (folder, sub) => format!("{folder}/{sub}"),
        };
        Ok(RemoteFile {
            shown: format!("{}{name}", self.location()),
            folder,
            file_name: file_name.to_string(),
        })
    }
}

/// One file on the server.
pub(super) struct RemoteFile {
    /// The folder it is in, as the server is asked for it.
    pub folder: String,
    pub file_name: String,
    /// Its place as messages show it (`sftp://host:22/~/inbound/a.csv`).
    pub shown: String,
}

impl RemoteFile {
    pub fn path(&self) -> String {
        join(&self.folder, &self.file_name)
    }

    /// The hidden name an upload is written to before it is renamed into
    /// place: in the same folder, so the rename never crosses file systems,
    /// and with a random part, so two writers of one name (two runs on two
    /// machines racing for a manifest) never write into each other's file.
    pub fn temporary_path(&self) -> String {
        let token: u64 = rand::random();
        join(
            &self.folder,
            &format!(".{}.{token:016x}.accord-tmp", self.file_name),
        )
    }
}

fn join(folder: &str, name: &str) -> String {
    match folder {
        "/" => format!("/{name}"),
        folder => format!("{folder}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(path: &str) -> SftpSettings {
        SftpSettings {
            host: "sftp.example".into(),
            port: 2222,
            username: "u".into(),
            path: path.into(),
            host_key: host_key::parse(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRWf/LhwpBfuFwTNUnE1iLi4VzHDioKu62zODnMj1C8",
            )
            .unwrap(),
            login: Login::Password(SecretString::from("p")),
        }
    }

    #[test]
    fn folders_and_files_are_named_as_the_server_and_the_report_need() {
        let cases = [
            // path, file, remote path, temporary path, location
            (
                "inbound/",
                "a.csv",
                "inbound/a.csv",
                "inbound/.a.csv.accord-tmp",
                "sftp://sftp.example:2222/~/inbound/",
            ),
            (
                "",
                "a.csv",
                "./a.csv",
                "./.a.csv.accord-tmp",
                "sftp://sftp.example:2222/~/",
            ),
            (
                "/",
                "a.csv",
                "/a.csv",
                "/.a.csv.accord-tmp",
                "sftp://sftp.example:2222/",
            ),
            (
                "/srv/in",
                "x/a.csv",
                "/srv/in/x/a.csv",
                "/srv/in/x/.a.csv.accord-tmp",
                "sftp://sftp.example:2222/srv/in/",
            ),
            (
                "/",
                "x/a.csv",
                "/x/a.csv",
                "/x/.a.csv.accord-tmp",
                "sftp://sftp.example:2222/",
            ),
        ];
        for (path, name, remote, temporary, location) in cases {
            let s = settings(path);
            let file = s.file(name).unwrap();
            assert_eq!(file.path(), remote, "{path} {name}");
            let (prefix, _) = temporary.rsplit_once(".accord-tmp").unwrap();
            let made = file.temporary_path();
            assert!(
                made.starts_with(&format!("{prefix}.")),
                "{made} for {temporary}"
            );
            assert!(made.ends_with(".accord-tmp") && made.len() == temporary.len() + 17);
            assert_ne!(made, file.temporary_path(), "each upload has its own name");
            assert_eq!(s.location(), location, "{path}");
            assert_eq!(file.shown, format!("{location}{name}"));
        }
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        let s = settings("inbound");
        for name in [
            "",
            "/etc/passwd",
            "../a.csv",
            "a/../../b",
            "a//b",
            "./a",
            "a/",
        ] {
            let err = s.file(name).err().unwrap_or_else(|| panic!("{name}"));
            assert_eq!(err.kind, StorageErrorKind::Other);
        }
    }
}
