pub mod env;
pub mod spans;
pub mod types;
