//! Dataverse column names, shared by `check` (which reports a bad one at its
//! span) and the Dynamics 365 delivery (which writes the columns).
//!
//! A Dataverse logical name is lower case: a letter, then letters, digits
//! and underscores (custom columns start with the publisher prefix, as in
//! `nw_b2btier`). Each audience a `dynamics365` destination receives has
//! one text column on Contacts; its name is given in `audience_fields` or
//! derived from the audience's name.

/// The column an audience's status goes to when `audience_fields` does not
/// name one: the audience name lower-cased, every character outside
/// `[a-z0-9]` replaced by `_`, runs of `_` collapsed, and `_` trimmed from
/// both ends (`B2B_Intent.Surging` -> `b2b_intent_surging`). The result may
/// still be no logical name (empty, or starting with a digit): `check`
/// reports that.
pub fn default_column(audience: &str) -> String {
    let mut out = String::with_capacity(audience.len());
    for c in audience.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('_').to_string()
}

/// Whether `name` is a Dataverse logical name: `[a-z][a-z0-9_]*`.
pub fn is_logical_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_columns_follow_the_audience_name() {
        for (audience, column) in [
            ("B2B_Intent_Surging", "b2b_intent_surging"),
            ("B2B_Split.gold", "b2b_split_gold"),
            ("__Odd -- Name__", "odd_name"),
            ("Größe", "gr_e"),
            ("3rd_party", "3rd_party"),
            ("ÄÖ", ""),
        ] {
            assert_eq!(default_column(audience), column, "{audience}");
        }
    }

    #[test]
    fn logical_names_start_with_a_letter_and_are_lower_case() {
        for good in ["nw_b2btier", "emailaddress1", "a"] {
            assert!(is_logical_name(good), "{good}");
        }
        for bad in [
            "",
            "3rd_party",
            "_x",
            "NW_Tier",
            "nw-tier",
            "nw tier",
            "contactId",
        ] {
            assert!(!is_logical_name(bad), "{bad}");
        }
    }
}
