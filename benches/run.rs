//! The `accord run` benchmark (accord against hand-written DuckDB SQL at
//! 100k accounts, 1M people, 10M events, 50 audiences) is not written yet:
//! this placeholder keeps the bench target declared in Cargo.toml. It says
//! so instead of printing numbers it did not measure.

fn main() {
    eprintln!("benches/run.rs: the run benchmark is not implemented yet");
}
