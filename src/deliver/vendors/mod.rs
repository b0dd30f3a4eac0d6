//! One file per vendor, each following its published contract; `build`
//! picks the one for a destination's catalog type.

mod dynamics;
mod google;
mod linkedin;
mod marketo;
pub mod marketo_activities;
mod salesforce;
mod trade_desk;
pub mod webhook;

use super::config::Config;
use super::vendor::Vendor;

pub use google::Google;
pub use linkedin::{LINKEDIN_VERSION, SETTLE_AFTER_CREATE};
pub use salesforce::API_VERSION as SALESFORCE_API_VERSION;

/// The catalog types this accord delivers to through a vendor file.
const SUPPORTED: &[&str] = &[
    "dynamics365",
    "google_customer_match",
    "http",
    "linkedin_companies",
    "linkedin_contacts",
    "marketo_engage",
    "salesforce",
    "trade_desk",
];

/// Whether a catalog type has a vendor file here.
pub fn supports(kind: &str) -> bool {
    SUPPORTED.contains(&kind)
}

/// The vendor file of a destination, or why there is none.
pub fn build(config: &Config) -> Result<Box<dyn Vendor>, String> {
    match config.kind.as_str() {
        "dynamics365" => Ok(Box::new(dynamics::Dynamics::new(config)?)),
        "google_customer_match" => Ok(Box::new(google::Google::new(config)?)),
        "http" => Ok(Box::new(webhook::Webhook::new(config)?)),
        "linkedin_companies" => Ok(Box::new(linkedin::LinkedIn::new(
            config,
            linkedin::Matched::Companies,
        )?)),
        "linkedin_contacts" => Ok(Box::new(linkedin::LinkedIn::new(
            config,
            linkedin::Matched::Contacts,
        )?)),
        "marketo_engage" => Ok(Box::new(marketo::Marketo::new(config)?)),
        "salesforce" => Ok(Box::new(salesforce::Salesforce::new(config)?)),
        "trade_desk" => Ok(Box::new(trade_desk::TradeDesk::new(config)?)),
        other => Err(format!("{other} has no API delivery in this accord")),
    }
}
