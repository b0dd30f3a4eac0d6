//! The built-in vocabulary: core data-usage labels, core marketing actions and
//! core policies, as the platform that accord mirrors ships them.
//! Projects add their own with `[label.*]`,
//! `[marketing_action.*]` and `[policy.*]`.

/// Core labels with their meaning.
pub const CORE_LABELS: &[(&str, &str)] = &[
    (
        "C1",
        "export only in aggregated form, without individual or device identifiers",
    ),
    ("C2", "no export to a third party"),
    (
        "C3",
        "not to be combined with directly identifiable information",
    ),
    (
        "C4",
        "no targeting of ads or content, on-site or cross-site",
    ),
    ("C5", "no interest-based cross-site targeting"),
    ("C6", "no on-site ad targeting"),
    ("C7", "no on-site content targeting"),
    ("C8", "no measurement of the organisation's sites or apps"),
    ("C9", "no data science (AI, ML, modelling)"),
    ("C10", "no stitched-identity activation"),
    ("C11", "not to be shared with segment-match partners"),
    ("C12", "no export of any kind"),
    ("I1", "directly identifies or contacts a person"),
    ("I2", "identifies a person when combined with other data"),
    ("S1", "precise geolocation of a device"),
    ("S2", "broad geofence area"),
    ("PSPD", "permitted sensitive personal data"),
    ("RHD", "regulated health data"),
    (
        "third_party",
        "data from a third-party vendor (prospect data)",
    ),
];

/// Core marketing actions with their meaning.
pub const CORE_ACTIONS: &[(&str, &str)] = &[
    ("analytics", "measuring the organisation's sites and apps"),
    (
        "combine_with_pii",
        "combining data with directly identifying information",
    ),
    (
        "cross_site_targeting",
        "targeting ads or content across sites",
    ),
    ("data_science", "AI, machine learning and modelling"),
    ("email_targeting", "targeting people by email"),
    ("export_to_third_party", "handing data to a third party"),
    (
        "onsite_advertising",
        "targeting ads on the organisation's own sites",
    ),
    (
        "onsite_personalization",
        "personalising content on the organisation's own sites",
    ),
    (
        "segment_match",
        "sharing audiences with segment-match partners",
    ),
    (
        "single_identity_personalization",
        "personalising for one known identity",
    ),
];

/// Actions that count as targeting, denied by C4.
pub const TARGETING_ACTIONS: &[&str] = &[
    "cross_site_targeting",
    "email_targeting",
    "onsite_advertising",
    "onsite_personalization",
    "single_identity_personalization",
];

/// A core policy: one per core contract label.
pub struct CorePolicy {
    pub name: &'static str,
    pub label: &'static str,
    /// The denied actions; `None` denies every action (C12).
    pub actions: Option<&'static [&'static str]>,
}

pub const CORE_POLICIES: &[CorePolicy] = &[
    CorePolicy {
        name: "core_C2_no_third_party_export",
        label: "C2",
        actions: Some(&["export_to_third_party"]),
    },
    CorePolicy {
        name: "core_C3_no_combine_with_pii",
        label: "C3",
        actions: Some(&["combine_with_pii"]),
    },
    CorePolicy {
        name: "core_C4_no_targeting",
        label: "C4",
        actions: Some(TARGETING_ACTIONS),
    },
    CorePolicy {
        name: "core_C5_no_cross_site_targeting",
        label: "C5",
        actions: Some(&["cross_site_targeting"]),
    },
    CorePolicy {
        name: "core_C6_no_onsite_advertising",
        label: "C6",
        actions: Some(&["onsite_advertising"]),
    },
    CorePolicy {
        name: "core_C7_no_onsite_personalization",
        label: "C7",
        actions: Some(&["onsite_personalization"]),
    },
    CorePolicy {
        name: "core_C8_no_analytics",
        label: "C8",
        actions: Some(&["analytics"]),
    },
    CorePolicy {
        name: "core_C9_no_data_science",
        label: "C9",
        actions: Some(&["data_science"]),
    },
    CorePolicy {
        name: "core_C11_no_segment_match",
        label: "C11",
        actions: Some(&["segment_match"]),
    },
    CorePolicy {
        name: "core_C12_no_export",
        label: "C12",
        actions: None,
    },
];

pub fn is_core_label(name: &str) -> bool {
    CORE_LABELS.iter().any(|(n, _)| *n == name)
}

pub fn is_core_action(name: &str) -> bool {
    CORE_ACTIONS.iter().any(|(n, _)| *n == name)
}
