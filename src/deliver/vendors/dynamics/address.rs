//! How an upsert names its Contact in the Web API URL: by the primary key
//! (`contacts(GUID)`) or by an alternate key (`contacts(emailaddress1='a%40b.com')`),
//! as OData 4.01 writes key values: a GUID bare, a number bare, text in
//! single quotes with each quote doubled, percent-encoded for the URL.

use serde_json::Value;

use super::super::super::vendor::Member;
use super::super::super::wire::percent_encode;

/// The column of the primary key as the catalog maps it (`contactId`), and
/// its Dataverse logical name.
pub const PRIMARY_COLUMN: &str = "contactId";

/// What an upsert addresses a Contact by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey {
    /// `contactid`, from the mapped `contactId`.
    Primary,
    /// An alternate key defined on Contact over one column, mapped by every
    /// activation to the destination.
    Alternate(String),
}

impl RecordKey {
    /// The mapped column the key's value comes from.
    pub fn column(&self) -> &str {
        match self {
            RecordKey::Primary => PRIMARY_COLUMN,
            RecordKey::Alternate(column) => column,
        }
    }

    /// `contacts(KEY)` for a member, or why it cannot be addressed.
    pub fn path(&self, member: &Member) -> Result<String, String> {
        let column = self.column();
        let value = member.field(column).filter(|v| !is_empty(v));
        let Some(value) = value else {
            return Err(format!(
                "member `{}` has no `{column}`, which addresses its Contact",
                member.key
            ));
        };
        let key = match self {
            RecordKey::Primary => {
                let id = value.as_str().map(str::trim).unwrap_or_default();
                if !is_guid(id) {
                    return Err(format!(
                        "member `{}`: `{PRIMARY_COLUMN}` {value} is not a Dataverse id (a GUID)",
                        member.key
                    ));
                }
                id.to_ascii_lowercase()
            }
            RecordKey::Alternate(column) => format!("{column}={}", literal(value)),
        };
        Ok(format!("contacts({key})"))
    }
}

fn is_empty(value: &Value) -> bool {
    value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty())
}

/// An OData key literal, percent-encoded: numbers and booleans bare, text
/// (and anything else, as its JSON text) quoted.
fn literal(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => format!("'{}'", percent_encode(&s.replace('\'', "''"))),
        other => format!(
            "'{}'",
            percent_encode(&other.to_string().replace('\'', "''"))
        ),
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(fields: &[(&str, Value)]) -> Member {
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
    fn contacts_are_addressed_by_their_id() {
        let m = member(&[("contactId", json!(" 7A3D6C2E-1B4F-4C8A-9E2D-0123456789AB "))]);
        assert_eq!(
            RecordKey::Primary.path(&m),
            Ok("contacts(7a3d6c2e-1b4f-4c8a-9e2d-0123456789ab)".into())
        );
        for bad in [
            json!("42"),
            json!("7a3d6c2e-1b4f-4c8a-9e2d-0123456789ag"),
            json!(42),
            json!(""),
        ] {
            assert!(
                RecordKey::Primary
                    .path(&member(&[("contactId", bad)]))
                    .is_err()
            );
        }
        let error = RecordKey::Primary.path(&member(&[])).unwrap_err();
        assert!(error.contains("no `contactId`"), "{error}");
    }

    #[test]
    fn alternate_keys_are_quoted_odata_literals_percent_encoded() {
        let key = RecordKey::Alternate("emailaddress1".into());
        let path = |v: Value| key.path(&member(&[("emailaddress1", v)]));
        assert_eq!(
            path(json!("a@b.com")),
            Ok("contacts(emailaddress1='a%40b.com')".into())
        );
        assert_eq!(
            path(json!("o'brien & co/x y")),
            Ok("contacts(emailaddress1='o%27%27brien%20%26%20co%2Fx%20y')".into())
        );
        assert_eq!(path(json!(1042)), Ok("contacts(emailaddress1=1042)".into()));
        assert!(path(json!(null)).is_err());
        assert!(path(json!("  ")).is_err());
    }
}
