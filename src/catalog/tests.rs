//! Invariants of the catalog data, and snapshots of its text views.

use super::*;

/// The platform's core marketing actions; implied actions must be core,
/// since a project's custom actions do not exist when the catalog is built.
const CORE_ACTIONS: &[&str] = &[
    "analytics",
    "combine_with_pii",
    "cross_site_targeting",
    "data_science",
    "email_targeting",
    "export_to_third_party",
    "onsite_advertising",
    "onsite_personalization",
    "segment_match",
    "single_identity_personalization",
];

#[test]
fn has_every_spec_type() {
    let spec = [
        "marketo_engage",
        "linkedin_companies",
        "linkedin_contacts",
        "salesforce",
        "dynamics365",
        "google_customer_match",
        "trade_desk",
        "trade_desk_crm",
        "s3",
        "azure_blob",
        "gcs",
        "sftp",
        "filesystem",
        "http",
    ];
    let mut spec = spec.to_vec();
    spec.sort_unstable();
    assert_eq!(names().collect::<Vec<_>>(), spec);
}

#[test]
fn names_are_unique_and_sorted() {
    let names: Vec<&str> = names().collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not strictly sorted: {names:?}"
    );
}

#[test]
fn lookup_finds_every_type_and_only_those() {
    for t in all() {
        assert_eq!(lookup(t.name).map(|found| found.name), Some(t.name));
    }
    assert!(lookup("S3").is_none());
    assert!(lookup("").is_none());
    assert!(lookup("linkedin").is_none());
}

#[test]
fn actions_are_core_and_fixed_ones_are_implied() {
    for t in all() {
        for a in t.implied_actions {
            assert!(CORE_ACTIONS.contains(a), "{}: {a} is not core", t.name);
        }
        for a in t.fixed_actions {
            assert!(
                t.implied_actions.contains(a),
                "{}: fixed {a} not implied",
                t.name
            );
        }
        let mut sorted = t.implied_actions.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted, t.implied_actions,
            "{}: implied actions unsorted",
            t.name
        );
    }
}

#[test]
fn reference_actions() {
    let gcm = lookup("google_customer_match").map(|t| t.fixed_actions);
    assert_eq!(gcm, Some(&["combine_with_pii"][..]));
    for name in ["linkedin_companies", "linkedin_contacts", "trade_desk"] {
        let t = lookup(name).expect("in the catalog");
        assert!(t.implied_actions.contains(&"export_to_third_party"));
        assert!(t.implied_actions.contains(&"cross_site_targeting"));
    }
}

#[test]
fn schedules_and_export_modes_fit_delivery() {
    for t in all() {
        assert!(!t.schedules.is_empty(), "{}: no schedule", t.name);
        assert!(!t.export_modes.is_empty(), "{}: no export mode", t.name);
        let streams = t.schedules.contains(&ScheduleKind::Streaming);
        match t.delivery {
            Delivery::Streaming | Delivery::Either => assert!(streams, "{}", t.name),
            Delivery::Batch => assert!(!streams, "{}", t.name),
        }
        // Every allowed mode is usable with at least one allowed schedule.
        for mode in t.export_modes {
            assert!(
                t.schedules.iter().any(|s| t.allows(*s, *mode)),
                "{}: {mode:?} unusable",
                t.name
            );
        }
        // Schedules are listed once each, in display order.
        let order: Vec<usize> = t
            .schedules
            .iter()
            .filter_map(|s| ScheduleKind::ALL.iter().position(|k| k == s))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", t.name);
    }
}

#[test]
fn full_exports_run_at_most_daily() {
    let s3 = lookup("s3").expect("in the catalog");
    assert!(s3.allows(ScheduleKind::Daily, ExportMode::Full));
    assert!(!s3.allows(ScheduleKind::Every3h, ExportMode::Full));
    assert!(s3.allows(ScheduleKind::Every3h, ExportMode::Incremental));
    assert!(!s3.allows(ScheduleKind::Streaming, ExportMode::Incremental));
    let crm = lookup("trade_desk_crm").expect("in the catalog");
    assert!(crm.allows(ScheduleKind::Daily, ExportMode::Full));
    assert!(!crm.allows(ScheduleKind::Daily, ExportMode::Incremental));
}

#[test]
fn file_types_have_formats_and_file_limits() {
    for t in all() {
        let files = t.membership == Membership::FileRows;
        assert_eq!(files, !t.formats.is_empty(), "{}", t.name);
        if files {
            assert!(t.any_columns, "{}", t.name);
            assert_eq!(t.limits.max_rows_per_file, Some(5_000_000), "{}", t.name);
            assert_eq!(t.limits.max_file_name_len, Some(255), "{}", t.name);
            let format = t.setting("format").expect("file types take a format");
            assert_eq!(format.value, SettingValue::Choice(t.formats));
        }
    }
}

#[test]
fn identities_are_well_formed() {
    for t in all() {
        for i in t.identities {
            assert!(
                NAMESPACES.contains(&i.namespace),
                "{}: {}",
                t.name,
                i.namespace
            );
        }
        let mut columns: Vec<&str> = t.identities.iter().map(|i| i.column).collect();
        columns.sort_unstable();
        let count = columns.len();
        columns.dedup();
        assert_eq!(
            count,
            columns.len(),
            "{}: duplicate identity column",
            t.name
        );
        // An identity rule that demands identities needs some to demand.
        assert_eq!(
            t.identity_rule == IdentityRule::NotRequired,
            t.identities.is_empty(),
            "{}",
            t.name
        );
        for (a, b) in t.exclusive_identities {
            assert!(
                t.identity(a).is_some() && t.identity(b).is_some(),
                "{}",
                t.name
            );
        }
        // Hashes are only useful when every sender normalises the same way.
        for i in t.identities {
            if i.hashing != HashingRule::Forbidden {
                assert_ne!(i.normalise, Normalise::None, "{}: {}", t.name, i.column);
            }
        }
    }
}

#[test]
fn required_columns_are_accepted() {
    for t in all() {
        for r in t.required_columns {
            assert!(t.accepts_column(r.column), "{}: {}", t.name, r.column);
            if let Some((key, value)) = r.when {
                let setting = t.setting(key).expect("condition names a setting");
                if let SettingValue::Choice(values) = setting.value {
                    assert!(values.contains(&value), "{}: {key} = {value}", t.name);
                }
            }
        }
    }
}

#[test]
fn salesforce_requires_company_only_for_leads() {
    let sf = lookup("salesforce").expect("in the catalog");
    let lead: Vec<&str> = sf
        .required_columns_with(|k| (k == "object").then_some("lead"))
        .collect();
    assert_eq!(lead, ["LastName", "Company"]);
    let contact: Vec<&str> = sf
        .required_columns_with(|k| (k == "object").then_some("contact"))
        .collect();
    assert_eq!(contact, ["LastName"]);
}

#[test]
fn settings_are_well_formed() {
    for t in all() {
        // A type's own settings never shadow the delivery keys of API types.
        let mut keys: Vec<&str> = t
            .settings
            .iter()
            .chain(t.delivery_settings())
            .map(|s| s.key)
            .collect();
        keys.sort_unstable();
        let count = keys.len();
        keys.dedup();
        assert_eq!(count, keys.len(), "{}: duplicate setting", t.name);
        for s in t.settings {
            // The caller handles these on every type.
            assert!(!["type", "actions"].contains(&s.key), "{}", t.name);
            if s.secret {
                assert_eq!(s.value, SettingValue::Text, "{}: {}", t.name, s.key);
                assert!(s.default.is_none(), "{}: {}", t.name, s.key);
            }
            if s.default.is_some() {
                assert!(!s.required, "{}: {} has a default", t.name, s.key);
            }
            if let (Some(default), SettingValue::Choice(values)) = (s.default, s.value) {
                assert!(values.contains(&default), "{}: {}", t.name, s.key);
            }
        }
        assert_eq!(
            t.declares_fields,
            t.setting("fields").is_some_and(|s| s.required),
            "{}: declares_fields needs a required `fields` setting",
            t.name
        );
    }
}

#[test]
fn limits_follow_the_reference() {
    for t in all() {
        assert_eq!(t.limits.max_mapped_attributes, 50, "{}", t.name);
        let expected = match t.delivery {
            Delivery::Streaming => 250,
            Delivery::Batch | Delivery::Either => 100,
        };
        assert_eq!(t.limits.max_audiences_per_dataflow, expected, "{}", t.name);
    }
    let marketo = lookup("marketo_engage").expect("in the catalog");
    assert_eq!(
        marketo.limits.rate_limit,
        Some(RateLimit {
            window: Some(crate::catalog::Window {
                calls: 100,
                per_seconds: 20,
            }),
            concurrency: Some(10),
            daily: Some(50_000)
        })
    );
    assert_eq!(marketo.limits.batch_size, Some(300));
    let sf = lookup("salesforce").expect("in the catalog");
    assert_eq!(sf.limits.max_audience_fields, Some(25));
}

#[test]
fn delivery_keys_belong_to_api_types_only() {
    for t in all() {
        let keys: Vec<&str> = t.delivery_settings().iter().map(|s| s.key).collect();
        if t.membership == Membership::FileRows {
            assert!(keys.is_empty(), "{}", t.name);
        } else {
            assert_eq!(
                keys,
                ["endpoint", "rate_limit", "lists", "list_prefix"],
                "{}",
                t.name
            );
        }
    }
}

#[test]
fn serialises_to_json() {
    let json = serde_json::to_value(all()).expect("plain data serialises");
    let first = &json[0];
    assert_eq!(first["name"], "azure_blob");
    assert_eq!(first["schedules"][1], "every 3h");
    // account, container, prefix, endpoint, access_key, sas_token, then format.
    assert_eq!(first["settings"][6]["value"]["choice"][0], "csv");
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../../snapshots/catalog",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn list_snapshot() {
    snapshot("list", &render_list());
}

#[test]
fn one_snapshot_per_type() {
    for t in all() {
        snapshot(t.name, &render_one(t));
    }
}
