//! Catching a panic of third-party code (the `cel` parser and interpreter
//! can panic on odd input) without printing it: a caught panic is a
//! diagnostic, and the default hook would still write "thread panicked at"
//! to stderr.
//!
//! The hook is installed once and stays silent only while the panicking
//! thread is inside `catch_unwind` here; any other panic reaches the hook
//! that was installed before.

use std::cell::Cell;
use std::panic::{self, UnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many `catch_unwind` calls of this module the thread is inside
    /// (a count, so nested calls stay silent until the outermost returns).
    static EXPECTED: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// `std::panic::catch_unwind`, without the panic message on stderr.
pub fn catch_unwind<R>(f: impl FnOnce() -> R + UnwindSafe) -> std::thread::Result<R> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if EXPECTED.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    EXPECTED.with(|n| n.set(n.get() + 1));
    let result = panic::catch_unwind(f);
    EXPECTED.with(|n| n.set(n.get() - 1));
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_caught_panic_is_an_err_and_the_thread_goes_on() {
        let caught = super::catch_unwind(|| panic!("expected"));
        assert!(caught.is_err());
        assert_eq!(super::catch_unwind(|| 1).ok(), Some(1));
        // Nested: the inner call returning does not end the outer silence.
        let nested = super::catch_unwind(|| {
            let _ = super::catch_unwind(|| panic!("inner"));
            panic!("outer")
        });
        assert!(nested.is_err());
    }

    /// Set in the child process of `a_caught_panic_prints_nothing`.
    const CHILD: &str = "ACCORD_QUIET_CHILD";

    /// In the child process: a caught panic, then an uncaught one on
    /// another thread, which must still reach the previous hook.
    #[test]
    fn quiet_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let _ = super::catch_unwind(|| panic!("caught-and-silent"));
        let _ = std::thread::spawn(|| panic!("uncaught-and-printed")).join();
    }

    /// Run in a child process with output not captured, the caught panic
    /// prints nothing to stderr, and the uncaught one still does.
    #[test]
    fn a_caught_panic_prints_nothing() {
        let exe = std::env::current_exe().expect("the test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "cel::quiet::tests::quiet_child", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .expect("the test binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("caught-and-silent"), "{stderr}");
        assert!(stderr.contains("uncaught-and-printed"), "{stderr}");
    }
}
