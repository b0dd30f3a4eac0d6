//! The `accord` binary: everything lives in the library; see `accord::cli`.

// CEL parsing allocates many small short-lived nodes; mimalloc handles that
// pattern much better than the system allocator (measured in benches/check.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    accord::cli::main()
}
