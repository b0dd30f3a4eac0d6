//! Marketo's standard activity types, by the names Marketo gives them (the
//! `name` of each type `GET /rest/v1/activities/types.json` lists): what a
//! Marketo activity source's `activity_types` may name without a warning.
//!
//! vendor doc: Marketo ships these types in every instance; an instance
//! adds its own custom activity types on top, under names its admins
//! choose. The run resolves every name (standard or custom) to the
//! instance's type id through that endpoint, so a name the instance does
//! not have is found there; `check` can only tell a misspelt standard name
//! (an error with a did-you-mean) from another name (a warning: it must be
//! a custom type of the instance).

/// The standard activity type names, sorted.
pub const STANDARD: &[&str] = &[
    "Add to List",
    "Add to Nurture",
    "Add to Opportunity",
    "Add to SFDC Campaign",
    "Call Webhook",
    "Change Data Value",
    "Change Lead Partition",
    "Change Nurture Cadence",
    "Change Nurture Track",
    "Change Owner",
    "Change Revenue Stage",
    "Change Revenue Stage Manually",
    "Change Score",
    "Change Segment",
    "Change Status in Progression",
    "Change Status in SFDC Campaign",
    "Click Email",
    "Click Link",
    "Click Sales Email",
    "Click Shared Link",
    "Convert Lead",
    "Delete Lead",
    "Email Bounced",
    "Email Bounced Soft",
    "Email Delivered",
    "Fill Out Facebook Lead Ads Form",
    "Fill Out Form",
    "Fill Out LinkedIn Lead Gen Form",
    "Interesting Moment",
    "Merge Leads",
    "New Lead",
    "Open Email",
    "Open Sales Email",
    "Receive Sales Email",
    "Received Forward to Friend Email",
    "Remove from List",
    "Remove from Opportunity",
    "Remove from SFDC Campaign",
    "Request Campaign",
    "SFDC Activity",
    "Sales Email Bounced",
    "Send Alert",
    "Send Email",
    "Send Sales Email",
    "Sent Forward to Friend Email",
    "Share Content",
    "Sync Lead to SFDC",
    "Unsubscribe Email",
    "Update Opportunity",
    "Visit Webpage",
    "Vote in Poll",
];

/// What `check` makes of an activity type name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// A standard type, spelt as Marketo spells it.
    Standard,
    /// Close to this standard type: a different case or spacing, the same
    /// words in another order, or at most two letters apart.
    Misspelt(&'static str),
    /// Nothing like a standard type: a custom activity, if the instance has
    /// it.
    Other,
}

/// Classifies one activity type name.
pub fn classify(name: &str) -> Known {
    if STANDARD.contains(&name) {
        return Known::Standard;
    }
    let words = |s: &str| {
        let mut w: Vec<String> = s.split_whitespace().map(str::to_lowercase).collect();
        w.sort();
        w
    };
    let flat = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let (wanted_words, wanted) = (words(name), flat(name));
    // The closest by letters, ties to the first in name order.
    let mut best: Option<(usize, &'static str)> = None;
    for standard in STANDARD {
        if words(standard) == wanted_words {
            return Known::Misspelt(standard);
        }
        let distance = strsim::osa_distance(&wanted, &standard.to_lowercase());
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, standard));
        }
    }
    best.map_or(Known::Other, |(_, s)| Known::Misspelt(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_unique() {
        assert!(STANDARD.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn standard_misspelt_and_custom_names() {
        assert_eq!(classify("Open Email"), Known::Standard);
        assert_eq!(classify("open email"), Known::Misspelt("Open Email"));
        assert_eq!(classify("Email  Open"), Known::Misspelt("Open Email"));
        assert_eq!(classify("Clik Email"), Known::Misspelt("Click Email"));
        assert_eq!(classify("Visit Web Page"), Known::Misspelt("Visit Webpage"));
        assert_eq!(classify("Attended Webinar"), Known::Other);
        assert_eq!(classify("Email Opened"), Known::Other);
        assert_eq!(classify("Product Trial Started"), Known::Other);
    }
}
