//! The `accord` binary: everything lives in the library; see `accord::cli`.

// CEL parsing allocates many small short-lived nodes; mimalloc handles that
// pattern much better than the system allocator (measured in benches/check.rs),
// and a run at scale is faster with it too (benches/run.rs). It is built
// without transparent huge pages (`no_thp` in Cargo.toml): with them, a run on
// the 10x benchmark data peaked at 9.4 GB instead of 7.5 GB (docs/scale.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    accord::cli::main()
}
