//! A fresh, empty folder under the system temp dir, removed on drop.

use std::path::PathBuf;

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `accord-NAME-PID`: one folder per test name and test process.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("accord-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
