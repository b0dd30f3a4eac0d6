//! One file per vendor, each following its published contract; `build`
//! picks the one for a destination's catalog type.

mod marketo;
pub mod webhook;

use super::config::Config;
use super::vendor::Vendor;

/// The vendor file of a destination, or why there is none.
pub fn build(config: &Config) -> Result<Box<dyn Vendor>, String> {
    match config.kind.as_str() {
        "marketo_engage" => Ok(Box::new(marketo::Marketo::new(config)?)),
        "http" => Ok(Box::new(webhook::Webhook::new(config)?)),
        other => Err(format!("{other} has no API delivery in this accord")),
    }
}
