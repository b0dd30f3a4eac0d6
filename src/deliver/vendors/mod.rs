//! One file per vendor, each following its published contract; `build`
//! picks the one for a destination's catalog type.

pub mod webhook;

use super::config::Config;
use super::vendor::Vendor;

/// The vendor file of a destination, or why there is none.
pub fn build(config: &Config) -> Result<Box<dyn Vendor>, String> {
    match config.kind.as_str() {
        "http" => Ok(Box::new(webhook::Webhook::new(config)?)),
        other => Err(format!("{other} has no API delivery in this accord")),
    }
}
