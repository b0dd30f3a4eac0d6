//! A Spark Connect server on loopback: the Spark that pyspark's package
//! holds (`scripts/test` installs it from PyPI; Java 17 from Debian when
//! missing), run in local mode on two cores, in UTC, its web UI off.
//!
//! `spark-submit` ends in an `exec` of the JVM, so the child is the server
//! itself and dies with its guard.

use std::process::Command;
use std::time::Duration;

use super::{Process, free_port, tool};

pub struct Spark {
    pub process: Process,
}

impl Spark {
    pub fn start() -> Spark {
        let dir = tempfile::tempdir().expect("spark dir");
        let port = free_port();
        let home = tool("lib/python3.11/site-packages/pyspark");
        let home = if home.exists() {
            home
        } else {
            // Another Python minor version in the virtual environment.
            let lib = tool("lib");
            std::fs::read_dir(&lib)
                .ok()
                .and_then(|mut entries| {
                    entries.find_map(|e| {
                        let p = e.ok()?.path().join("site-packages/pyspark");
                        p.exists().then_some(p)
                    })
                })
                .unwrap_or(home)
        };
        let mut command = Command::new(home.join("bin/spark-submit"));
        command
            .env("SPARK_HOME", &home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("SPARK_CONNECT_MODE", "0")
            .env("SPARK_LOCAL_DIRS", dir.path())
            // The server's JVM runs in another zone than the session: the
            // session zone (UTC, set by accord) must be what counts.
            .env("TZ", "America/Los_Angeles")
            .args([
                "--class",
                "org.apache.spark.sql.connect.service.SparkConnectServer",
                "--name",
                "accord-test",
                "--master",
                "local[2]",
                "--driver-memory",
                "1g",
            ]);
        for conf in [
            "spark.sql.shuffle.partitions=2".to_string(),
            "spark.ui.enabled=false".to_string(),
            "spark.connect.grpc.binding.address=127.0.0.1".to_string(),
            format!("spark.connect.grpc.binding.port={port}"),
            format!(
                "spark.sql.warehouse.dir={}",
                dir.path().join("warehouse").display()
            ),
        ] {
            command.args(["--conf", &conf]);
        }
        let process = Process::start(
            "spark connect",
            command,
            port,
            dir,
            Duration::from_secs(120),
        );
        Spark { process }
    }

    /// `sc://127.0.0.1:PORT`.
    pub fn remote(&self) -> String {
        format!("sc://{}", self.process.addr)
    }
}
