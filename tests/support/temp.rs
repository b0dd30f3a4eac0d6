//! A fresh, empty folder under the system temp dir, removed on drop (also
//! when the test panics), named after the test so a leftover is traceable.

/// `accord-NAME-XXXXXX`: unique per call, so tests never share a folder.
pub fn dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("accord-{name}-"))
        .tempdir()
        .expect("temp dir")
}
