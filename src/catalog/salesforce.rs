//! Salesforce's naming rules for the custom field that holds an audience's
//! status on each record: the default name accord derives from an audience,
//! and whether a name is a valid custom field API name. `check` reports a
//! bad name at the spec; the vendor file uses the same names on the wire.

/// Characters a custom field name may have before `__c` (Salesforce's limit).
pub const MAX_FIELD_NAME: usize = 40;

/// Characters of a managed package's namespace prefix (`ns__Field__c`).
const MAX_NAMESPACE: usize = 15;

/// The field of an audience when `audience_fields` names none: every
/// character outside `[A-Za-z0-9]` becomes `_`, runs of `_` collapse, `_`
/// at either end goes, a leading digit gets an `A` before it, then `__c`.
/// (`B2B Intent.Surging` -> `B2B_Intent_Surging__c`, `3pl` -> `A3pl__c`.)
pub fn default_audience_field(audience: &str) -> String {
    let mut name = String::with_capacity(audience.len() + 4);
    for c in audience.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && (name.is_empty() || name.ends_with('_'))) {
            name.push(c);
        }
    }
    while name.ends_with('_') {
        name.pop();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 'A');
    }
    name.push_str("__c");
    name
}

/// Why `name` is not a custom field API name (`Name__c`, or
/// `ns__Name__c` for a managed package's field), or `None` when it is one.
pub fn custom_field_problem(name: &str) -> Option<String> {
    let Some(stem) = name.strip_suffix("__c") else {
        return Some(format!(
            "`{name}` does not end in `__c`, as custom field names do"
        ));
    };
    let (namespace, base) = match stem.split_once("__") {
        Some((namespace, base)) => (Some(namespace), base),
        None => (None, stem),
    };
    if let Some(namespace) = namespace
        && let Some(problem) = identifier_problem(namespace, MAX_NAMESPACE)
    {
        return Some(format!("the namespace of `{name}` {problem}"));
    }
    identifier_problem(base, MAX_FIELD_NAME).map(|problem| format!("`{name}`: the name {problem}"))
}

/// Salesforce's rule for API names: a letter first, then letters, digits
/// and single underscores, no `_` at the end, at most `max` characters.
fn identifier_problem(text: &str, max: usize) -> Option<String> {
    if text.is_empty() {
        return Some("is empty".into());
    }
    if text.len() > max {
        return Some(format!(
            "has {} characters before `__c`; Salesforce allows at most {max}",
            text.len()
        ));
    }
    if !text.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some("must start with a letter".into());
    }
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '_')
    {
        return Some(format!(
            "has `{c}`; only letters, digits and `_` are allowed"
        ));
    }
    if text.contains("__") || text.ends_with('_') {
        return Some("has `__` or ends with `_`, which Salesforce does not allow".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_salesforce_rules() {
        for (audience, field) in [
            ("B2B_Intent_Surging", "B2B_Intent_Surging__c"),
            ("B2B Intent.Surging", "B2B_Intent_Surging__c"),
            ("__hot--leads__", "hot_leads__c"),
            ("3pl_partners", "A3pl_partners__c"),
            ("accounts.tier_1", "accounts_tier_1__c"),
        ] {
            assert_eq!(default_audience_field(audience), field, "{audience}");
            assert_eq!(custom_field_problem(field), None, "{field}");
        }
    }

    #[test]
    fn bad_names_say_why() {
        let long = format!("{}__c", "A".repeat(41));
        for (name, why) in [
            ("Audience", "does not end in `__c`"),
            ("__c", "is empty"),
            (long.as_str(), "at most 40"),
            ("1st__c", "must start with a letter"),
            ("Hot-Leads__c", "has `-`"),
            ("Hot_Leads___c", "ends with `_`"),
            ("a__b__c__c", "has `__`"),
        ] {
            let problem = custom_field_problem(name).unwrap_or_default();
            assert!(problem.contains(why), "{name}: {problem}");
        }
        assert_eq!(
            custom_field_problem(&format!("{}__c", "A".repeat(40))),
            None
        );
        assert_eq!(custom_field_problem("acme__Hot_Leads__c"), None);
    }
}
