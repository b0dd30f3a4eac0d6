//! The `accord` binary: everything lives in the library; see `accord::cli`.

fn main() -> std::process::ExitCode {
    accord::cli::main()
}
