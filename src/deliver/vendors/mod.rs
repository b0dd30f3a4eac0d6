//! One file per vendor, each following its published contract; `build`
//! picks the one for a destination's catalog type.

mod google;
pub mod webhook;

use super::config::Config;
use super::vendor::Vendor;

pub use google::Google;

/// The vendor file of a destination, or why there is none.
pub fn build(config: &Config) -> Result<Box<dyn Vendor>, String> {
    match config.kind.as_str() {
        "google_customer_match" => Ok(Box::new(google::Google::new(config)?)),
        "http" => Ok(Box::new(webhook::Webhook::new(config)?)),
        other => Err(format!("{other} has no API delivery in this accord")),
    }
}
