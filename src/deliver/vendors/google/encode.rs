//! Audience members as the Data Manager API carries them.
//!
//! In: members whose mapped columns are the catalog's identity columns,
//! already normalised and SHA-256 hashed to hex by the run (mobile ids raw).
//! Out: the JSON of `audienceMembers:ingest` and `audienceMembers:remove`.
//!
//! A Customer Match list takes one kind of key (Google refuses mixed data
//! types on a list): contact ids (hashed email and phone, in `userData`) or
//! mobile advertising ids of one app (`mobileData`). A column the list's
//! kind cannot carry is an error here, before anything is sent.

use serde_json::{Value, json};

use crate::deliver::vendor::{Member, Op};

/// What a destination's lists are matched on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Hashed emails and phone numbers (`CONTACT_ID`).
    Contact,
    /// Advertising ids of one app (`MOBILE_ID`): `IOS` (idfa) or `ANDROID` (gaid).
    Mobile {
        app_id: String,
        key_space: &'static str,
    },
}

impl ListKind {
    /// The kind a destination's settings imply: with `app_id`, mobile ids
    /// of that app, whose store decides the key space (an App Store id is
    /// all digits; a Play package name is not).
    pub fn from_app_id(app_id: Option<&str>) -> ListKind {
        match app_id.map(str::trim).filter(|a| !a.is_empty()) {
            None => ListKind::Contact,
            Some(app_id) => {
                let ios = app_id.bytes().all(|b| b.is_ascii_digit());
                ListKind::Mobile {
                    app_id: app_id.to_string(),
                    key_space: if ios { "IOS" } else { "ANDROID" },
                }
            }
        }
    }
}

/// How one mapped column travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carrier {
    /// A `UserIdentifier` field of `userData`.
    Identifier(&'static str),
    /// An entry of `mobileData.mobileIds` in the given key space.
    MobileId(&'static str),
}

/// The catalog's identity columns the Data Manager API carries.
const COLUMNS: &[(&str, Carrier)] = &[
    ("email_lc_sha256", Carrier::Identifier("emailAddress")),
    ("phone_sha256_e.164", Carrier::Identifier("phoneNumber")),
    ("gaid", Carrier::MobileId("ANDROID")),
    ("idfa", Carrier::MobileId("IOS")),
];

/// Checks that lists of `kind` can carry every column in `columns`.
pub fn check_columns<'a>(
    kind: &ListKind,
    columns: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    for column in columns {
        carrier(kind, column)?;
    }
    Ok(())
}

fn carrier(kind: &ListKind, column: &str) -> Result<Carrier, String> {
    let Some(&(_, carrier)) = COLUMNS.iter().find(|(name, _)| *name == column) else {
        return Err(unknown_column(column));
    };
    match (kind, carrier) {
        (ListKind::Contact, Carrier::Identifier(_)) => Ok(carrier),
        (ListKind::Mobile { key_space, .. }, Carrier::MobileId(space)) if *key_space == space => {
            Ok(carrier)
        }
        (ListKind::Contact, Carrier::MobileId(_)) => Err(format!(
            "column `{column}` is a mobile id: Customer Match lists of mobile ids need the \
             destination's `app_id`, and such a destination carries only mobile ids"
        )),
        (ListKind::Mobile { app_id, key_space }, _) => Err(format!(
            "column `{column}` cannot go to the {key_space} mobile-id lists of app `{app_id}`: \
             a Customer Match list takes one kind of key (map only {}, or use a destination \
             without `app_id` for contact ids)",
            if *key_space == "IOS" {
                "`idfa`"
            } else {
                "`gaid`"
            }
        )),
    }
}

fn unknown_column(column: &str) -> String {
    let known: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    let why = if column == "user_id" {
        " (Customer Match user-id lists are not supported by accord's delivery yet)"
    } else {
        ""
    };
    format!(
        "column `{column}` cannot be sent to Google Customer Match{why}; the Data Manager API \
         carries {}",
        known.join(", ")
    )
}

/// One `AudienceMember`.
pub fn member(kind: &ListKind, member: &Member) -> Result<Value, String> {
    let mut identifiers = Vec::new();
    let mut mobile_ids = Vec::new();
    for (column, value) in &member.fields {
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text,
            _ => return Err(format!("column `{column}` of `{}` is not text", member.key)),
        };
        match carrier(kind, column)? {
            Carrier::Identifier(field) => identifiers.push(json!({ field: text })),
            Carrier::MobileId(_) => mobile_ids.push(Value::String(text.clone())),
        }
    }
    Ok(match kind {
        ListKind::Contact => json!({"userData": {"userIdentifiers": identifiers}}),
        ListKind::Mobile { .. } => json!({"mobileData": {"mobileIds": mobile_ids}}),
    })
}

/// The body of an ingest (`Op::Add`) or remove (`Op::Remove`) request.
pub fn body(
    kind: &ListKind,
    destination: Value,
    op: Op,
    members: &[Member],
) -> Result<Value, String> {
    let audience_members = members
        .iter()
        .map(|m| member(kind, m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({
        "destinations": [destination],
        "audienceMembers": audience_members,
    });
    if *kind == ListKind::Contact {
        // The run hashes to lowercase hex.
        body["encoding"] = json!("HEX");
    }
    if op == Op::Add {
        // accord's consent policies have dropped everyone who did not grant
        // consent before delivery, so what reaches here was granted.
        body["consent"] = json!({
            "adUserData": "CONSENT_GRANTED",
            "adPersonalization": "CONSENT_GRANTED",
        });
        // Required for every upload to a Customer Match list.
        body["termsOfService"] = json!({"customerMatchTermsOfServiceStatus": "ACCEPTED"});
    }
    Ok(body)
}

/// The `Destination` of a request: the Google Ads account and user list.
pub fn destination(customer_id: &str, user_list_id: &str) -> Value {
    json!({
        "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": customer_id},
        "productDestinationId": user_list_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(fields: &[(&str, Value)]) -> Member {
        Member {
            key: "p1".into(),
            fields: fields
                .iter()
                .map(|(c, v)| (c.to_string(), v.clone()))
                .collect(),
            remote_id: None,
        }
    }

    #[test]
    fn every_catalog_identity_is_carried_or_refused_with_a_reason() {
        let catalog = crate::catalog::lookup("google_customer_match").unwrap();
        for identity in catalog.identities {
            let column = identity.column;
            let contact = check_columns(&ListKind::Contact, [column]);
            let android = check_columns(&ListKind::from_app_id(Some("com.example")), [column]);
            let ios = check_columns(&ListKind::from_app_id(Some("476943146")), [column]);
            let carried = [&contact, &android, &ios].iter().any(|r| r.is_ok());
            assert!(carried || column == "user_id", "{column} is never carried");
        }
        for (column, _) in COLUMNS {
            assert!(
                catalog.identities.iter().any(|i| i.column == *column),
                "{column} is not a catalog identity"
            );
        }
    }

    #[test]
    fn contact_members_carry_hashed_identifiers() {
        let m = person(&[
            ("email_lc_sha256", json!("a".repeat(64))),
            ("phone_sha256_e.164", Value::Null),
        ]);
        assert_eq!(
            member(&ListKind::Contact, &m).unwrap(),
            json!({"userData": {"userIdentifiers": [{"emailAddress": "a".repeat(64)}]}})
        );
    }

    #[test]
    fn mobile_members_carry_mobile_ids() {
        let kind = ListKind::from_app_id(Some("com.example.app"));
        let m = person(&[("gaid", json!("38400000-8cf0-11bd-b23e-10b96e40000d"))]);
        assert_eq!(
            member(&kind, &m).unwrap(),
            json!({"mobileData": {"mobileIds": ["38400000-8cf0-11bd-b23e-10b96e40000d"]}})
        );
    }

    #[test]
    fn columns_a_list_cannot_carry_are_errors() {
        let error = check_columns(&ListKind::Contact, ["gaid"]).unwrap_err();
        assert!(error.contains("app_id"), "{error}");
        let ios = ListKind::from_app_id(Some("476943146"));
        let error = check_columns(&ios, ["gaid"]).unwrap_err();
        assert!(error.contains("idfa"), "{error}");
        let error = check_columns(&ListKind::Contact, ["user_id"]).unwrap_err();
        assert!(error.contains("user-id lists"), "{error}");
        let error = check_columns(&ListKind::Contact, ["first_name"]).unwrap_err();
        assert!(error.contains("email_lc_sha256"), "{error}");
        let error = member(
            &ListKind::Contact,
            &person(&[("email_lc_sha256", json!(5))]),
        );
        assert!(error.unwrap_err().contains("not text"));
    }

    #[test]
    fn ingest_carries_consent_and_terms_and_remove_does_not() {
        let members = [person(&[("email_lc_sha256", json!("b".repeat(64)))])];
        let destination = destination("1234567890", "42");
        let add = body(&ListKind::Contact, destination.clone(), Op::Add, &members).unwrap();
        assert_eq!(add["encoding"], "HEX");
        assert_eq!(add["consent"]["adUserData"], "CONSENT_GRANTED");
        assert_eq!(add["consent"]["adPersonalization"], "CONSENT_GRANTED");
        assert_eq!(
            add["termsOfService"]["customerMatchTermsOfServiceStatus"],
            "ACCEPTED"
        );
        assert_eq!(add["destinations"][0]["productDestinationId"], "42");
        assert_eq!(
            add["destinations"][0]["operatingAccount"]["accountType"],
            "GOOGLE_ADS"
        );
        let remove = body(&ListKind::Contact, destination, Op::Remove, &members).unwrap();
        assert!(remove.get("consent").is_none() && remove.get("termsOfService").is_none());
        assert_eq!(remove["encoding"], "HEX");
    }
}
