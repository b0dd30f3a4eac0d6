//! The Trade Desk first-party data (catalog type `trade_desk`), following
//! The Trade Desk's published Data API: `POST /data/advertiser` on a
//! regional data server puts ids into named segments of an advertiser, each
//! membership living `TTLInMinutes`.
//!
//! In: the destination's `advertiser_id`, the secret `token` (a Data API
//! token, sent as the `TTD-Auth` header), the optional `region` (which data
//! server: `use`, `usw`, `euw`, `sin`, `tok`, `cn`; absent: US East) and
//! `ttl_days` (how long a membership lives: 1 to 180 days, 30 when absent),
//! and the members of one batch. Out: the wire request, and what its answer
//! means as [`Outcome`]s.
//!
//! A segment is named, not created: the first upload that names it creates
//! it. So this vendor has no lists to find or create ([`Vendor::has_lists`]
//! is false) and names each audience's segment itself in
//! [`Vendor::encode_for`]: the audience's id pinned in `lists` when there is
//! one, else `list_prefix` + audience. Removal sends the member with `TTLInMinutes: 0`,
//! as the Data API documents; otherwise a membership ends when its TTL
//! passes, so the run re-sends members before then ([`Vendor::ttl`]).
//!
//! The answer is 200 even when some items failed: each failure is a line of
//! `FailedLines` with an `ErrorCode` and the failed item's `ItemNumber`
//! (read as the item's 1-based position; a line naming a `TDID` is matched
//! by it). A line that matches no member makes the whole batch refused, so
//! the executor splits it until the bad member is alone.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::plan::SettingPlan;

use super::super::config::Config;
use super::super::vendor::{Auth, ListRef, Member, Op, Outcome, RecordResult, Vendor, secret};
use super::super::wire::{WireRequest, WireResponse};

/// The data servers by region; an advertiser uploads to the one nearest
/// its users, and The Trade Desk replicates onward (except from China).
const DATA_SERVERS: [(&str, &str); 6] = [
    ("use", "https://use-data.adsrvr.org"),
    ("usw", "https://usw-data.adsrvr.org"),
    ("euw", "https://euw-data.adsrvr.org"),
    ("sin", "https://sin-data.adsrvr.org"),
    ("tok", "https://tok-data.adsrvr.org"),
    ("cn", "https://data-cn2.adsrvr.cn"),
];
const DEFAULT_REGION: &str = "use";

const DEFAULT_TTL_DAYS: i64 = 30;
/// The Data API's longest membership: 180 days.
const MAX_TTL_DAYS: i64 = 180;
const MINUTES_PER_DAY: i64 = 24 * 60;

/// The mapped column of each id and the item field that carries it, in the
/// order one is chosen (an item carries exactly one id).
const IDS: [(&str, &str); 3] = [("tdid", "TDID"), ("gaid", "DAID"), ("idfa", "DAID")];

/// The Trade Desk first-party data for one destination.
#[derive(Debug)]
pub struct TradeDesk {
    destination: String,
    url: String,
    advertiser_id: String,
    token: SecretString,
    ttl_days: i64,
    list_prefix: String,
    pinned: BTreeMap<String, String>,
}

impl TradeDesk {
    pub fn new(config: &Config) -> Result<TradeDesk, String> {
        let base = match config.endpoint.as_deref() {
            Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
            None => data_server(config)?.to_string(),
        };
        Ok(TradeDesk {
            destination: config.name.clone(),
            url: format!("{base}/data/advertiser"),
            advertiser_id: config.require("advertiser_id")?.to_string(),
            token: config.secret("token")?.clone(),
            ttl_days: ttl_days(config)?,
            list_prefix: config.list_prefix.clone(),
            pinned: config.lists.clone(),
        })
    }

    /// The segment an audience's members go to.
    fn segment_name(&self, audience: &str) -> String {
        self.pinned
            .get(audience)
            .cloned()
            .unwrap_or_else(|| format!("{}{audience}", self.list_prefix))
    }

    fn request(&self, segment: &str, op: Op, members: &[Member]) -> Result<WireRequest, String> {
        if op == Op::Upsert {
            return Err("The Trade Desk segments have no upsert".into());
        }
        if members.is_empty() {
            return Err("a Trade Desk upload needs at least one member".into());
        }
        let data = json!([{ "Name": segment, "TTLInMinutes": self.ttl_minutes(op) }]);
        let items = members
            .iter()
            .map(|m| item(m, &data))
            .collect::<Result<Vec<_>, _>>()?;
        let body = json!({ "AdvertiserId": self.advertiser_id, "Items": items });
        Ok(WireRequest::new("POST", self.url.clone()).json(&body))
    }

    fn ttl_minutes(&self, op: Op) -> i64 {
        match op {
            Op::Remove => 0,
            Op::Add | Op::Upsert => self.ttl_days * MINUTES_PER_DAY,
        }
    }
}

impl Vendor for TradeDesk {
    fn kind(&self) -> &'static str {
        "trade_desk"
    }

    fn auth(&self) -> Auth {
        Auth::Bearer(self.token.clone())
    }

    fn authorize(&self, request: &mut WireRequest, token: &SecretString) {
        request.set_secret_header("TTD-Auth", secret(token).to_string());
    }

    fn has_lists(&self) -> bool {
        false
    }

    fn ttl(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.ttl_days as u64 * 86_400))
    }

    /// Without an audience, the segment is the list's (its id is its name).
    fn encode(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let segment = list.ok_or("a Trade Desk upload needs its segment name")?;
        self.request(&segment.id, op, members)
    }

    fn encode_for(
        &self,
        _activation: &str,
        audience: &str,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        match list {
            Some(list) => self.request(&list.id, op, members),
            None => self.request(&self.segment_name(audience), op, members),
        }
    }

    fn classify(&self, _op: Op, members: &[Member], response: &WireResponse) -> Outcome {
        let body = response.json();
        match response.status {
            200 => failed_lines(members, &body),
            429 => Outcome::Throttled {
                retry_after: response.retry_after(),
                code: error_code(&body, 429),
            },
            401 | 403 => Outcome::Fatal {
                code: error_code(&body, response.status),
                message: format!("{}: {}", self.destination, error_message(response)),
            },
            408 | 500..=599 => Outcome::Transient {
                code: error_code(&body, response.status),
                message: error_message(response),
            },
            status => Outcome::Refused {
                status,
                code: error_code(&body, status),
                message: error_message(response),
            },
        }
    }
}

/// One member's item: its first id, and the segment entry.
fn item(member: &Member, data: &Value) -> Result<Value, String> {
    let (field, id) = IDS
        .iter()
        .find_map(|(column, field)| text_field(member, column).map(|id| (*field, id)))
        .ok_or_else(|| format!("member `{}` has none of tdid, gaid, idfa", member.key))?;
    Ok(json!({ field: id, "Data": data }))
}

/// Per-record results from a 200's `FailedLines`.
fn failed_lines(members: &[Member], body: &Value) -> Outcome {
    let mut records = vec![RecordResult::Accepted { remote_id: None }; members.len()];
    let lines = body.get("FailedLines").and_then(Value::as_array);
    for line in lines.into_iter().flatten() {
        let code = line
            .get("ErrorCode")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string();
        let message = line
            .get("Message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        let Some(index) = failed_member(members, line) else {
            return Outcome::Refused {
                status: 200,
                code,
                message: format!("a failed line matches no member of the batch: {message}"),
            };
        };
        records[index] = RecordResult::Rejected { code, message };
    }
    Outcome::Records(records)
}

/// The member a failed line is about: by its TDID, by its item number, or
/// the only member of the batch.
fn failed_member(members: &[Member], line: &Value) -> Option<usize> {
    if members.len() == 1 {
        return Some(0);
    }
    if let Some(tdid) = line.get("TDID").and_then(Value::as_str) {
        return members
            .iter()
            .position(|m| text_field(m, "tdid").is_some_and(|t| t.eq_ignore_ascii_case(tdid)));
    }
    let number = match line.get("ItemNumber")? {
        Value::String(s) => s.trim().parse::<usize>().ok()?,
        Value::Number(n) => n.as_u64()? as usize,
        _ => return None,
    };
    number.checked_sub(1).filter(|i| *i < members.len())
}

fn data_server(config: &Config) -> Result<&'static str, String> {
    let region = config.text("region").unwrap_or(DEFAULT_REGION);
    DATA_SERVERS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(region))
        .map(|(_, url)| *url)
        .ok_or_else(|| {
            let known: Vec<&str> = DATA_SERVERS.iter().map(|(name, _)| *name).collect();
            format!(
                "destination `{}`: region `{region}` is not one of {}",
                config.name,
                known.join(", ")
            )
        })
}

fn ttl_days(config: &Config) -> Result<i64, String> {
    let days = match config.settings.get("ttl_days") {
        None => DEFAULT_TTL_DAYS,
        Some(SettingPlan::Integer(days)) => *days,
        Some(SettingPlan::Text(text)) => text.trim().parse().map_err(|_| {
            format!(
                "destination `{}`: `ttl_days` must be a whole number, not `{text}`",
                config.name
            )
        })?,
        Some(_) => {
            return Err(format!(
                "destination `{}`: `ttl_days` must be a whole number",
                config.name
            ));
        }
    };
    if !(1..=MAX_TTL_DAYS).contains(&days) {
        return Err(format!(
            "destination `{}`: `ttl_days` must be 1 to {MAX_TTL_DAYS}, not {days}",
            config.name
        ));
    }
    Ok(days)
}

fn text_field<'m>(member: &'m Member, column: &str) -> Option<&'m str> {
    member
        .field(column)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// The Data API's error code: the v2 envelope's `ErrorCode`, else the status.
fn error_code(body: &Value, status: u16) -> String {
    body.get("ErrorCode")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| status.to_string())
}

/// Errors other than 200/400 come as plain text; keep them short.
fn error_message(response: &WireResponse) -> String {
    let body = response.json();
    if let Some(message) = body.get("Message").and_then(Value::as_str) {
        return message.to_string();
    }
    let text = String::from_utf8_lossy(&response.body);
    let text = text.trim();
    match text.is_empty() {
        true => format!("HTTP {}", response.status),
        false => text.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::deliver::config::Limits;

    fn config(settings: &[(&str, SettingPlan)]) -> Config {
        let mut all: BTreeMap<String, SettingPlan> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        all.entry("advertiser_id".into())
            .or_insert(SettingPlan::Text("adv1".into()));
        Config {
            name: "ttd".into(),
            kind: "trade_desk".into(),
            endpoint: None,
            settings: all,
            secrets: [(
                "token".to_string(),
                SecretString::from("tok-secret".to_string()),
            )]
            .into(),
            limits: Limits {
                batch_size: 100,
                max_bytes: None,
                window: None,
                concurrent: 1,
                daily: None,
            },
            lists: BTreeMap::new(),
            list_prefix: String::new(),
            dry_run: false,
        }
    }

    fn member(key: &str, column: &str, value: &str) -> Member {
        Member {
            key: key.into(),
            fields: vec![(column.to_string(), Value::String(value.to_string()))],
            remote_id: None,
        }
    }

    fn segment() -> ListRef {
        ListRef {
            audience: "buyers".into(),
            name: "buyers".into(),
            id: "buyers".into(),
        }
    }

    fn ok(body: Value) -> WireResponse {
        WireResponse {
            status: 200,
            headers: vec![],
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    #[test]
    fn adds_carry_the_ttl_and_removes_zero() {
        let ttd = TradeDesk::new(&config(&[("ttl_days", SettingPlan::Integer(7))])).unwrap();
        let members = [member("p1", "tdid", "T-1"), member("p2", "idfa", "I-2")];
        let add = ttd.encode(Some(&segment()), Op::Add, &members).unwrap();
        assert_eq!(add.url, "https://use-data.adsrvr.org/data/advertiser");
        assert_eq!(
            add.redacted()["body"],
            json!({"AdvertiserId": "adv1", "Items": [
                {"TDID": "T-1", "Data": [{"Name": "buyers", "TTLInMinutes": 10080}]},
                {"DAID": "I-2", "Data": [{"Name": "buyers", "TTLInMinutes": 10080}]}]})
        );
        let remove = ttd
            .encode(Some(&segment()), Op::Remove, &members[..1])
            .unwrap();
        assert_eq!(
            remove.redacted()["body"]["Items"][0]["Data"][0]["TTLInMinutes"],
            0
        );
        assert_eq!(ttd.ttl(), Some(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn segments_are_named_from_the_audience_or_pinned() {
        let mut cfg = config(&[]);
        cfg.list_prefix = "accord_".into();
        cfg.lists.insert("vips".into(), "Legacy VIPs".into());
        let ttd = TradeDesk::new(&cfg).unwrap();
        assert!(!ttd.has_lists());
        let m = [member("p", "tdid", "T")];
        let name = |audience: &str| {
            let request = ttd.encode_for("act", audience, None, Op::Add, &m).unwrap();
            request.redacted()["body"]["Items"][0]["Data"][0]["Name"].clone()
        };
        assert_eq!(name("buyers"), "accord_buyers");
        assert_eq!(name("vips"), "Legacy VIPs");
    }

    #[test]
    fn the_token_goes_in_ttd_auth_and_never_shows() {
        let ttd = TradeDesk::new(&config(&[])).unwrap();
        let mut request = ttd
            .encode(Some(&segment()), Op::Add, &[member("p", "tdid", "T")])
            .unwrap();
        ttd.authorize(&mut request, &SecretString::from("tok-secret".to_string()));
        assert_eq!(request.redacted()["headers"]["TTD-Auth"], "<redacted>");
        assert!(!format!("{request:?}{ttd:?}").contains("tok-secret"));
    }

    #[test]
    fn failed_lines_reject_their_members() {
        let ttd = TradeDesk::new(&config(&[])).unwrap();
        let members = [
            member("a", "gaid", "G"),
            member("b", "tdid", "T-2"),
            member("c", "gaid", "H"),
        ];
        let answer = ok(json!({"FailedLines": [
            {"ErrorCode": "UserNotMapped", "Message": "no", "TDID": "t-2"},
            {"ErrorCode": "MissingUserId", "Message": "none", "ItemNumber": "3"}]}));
        let Outcome::Records(records) = ttd.classify(Op::Add, &members, &answer) else {
            panic!("records expected");
        };
        assert_eq!(records[0], RecordResult::Accepted { remote_id: None });
        assert!(
            matches!(&records[1], RecordResult::Rejected { code, .. } if code == "UserNotMapped")
        );
        assert!(
            matches!(&records[2], RecordResult::Rejected { code, .. } if code == "MissingUserId")
        );
        let unmatched = ok(json!({"FailedLines": [{"ErrorCode": "Unknown", "ItemNumber": "9"}]}));
        assert!(matches!(
            ttd.classify(Op::Add, &members, &unmatched),
            Outcome::Refused { .. }
        ));
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let ttd = TradeDesk::new(&config(&[])).unwrap();
        let m = [member("a", "tdid", "T")];
        let status = |s: u16| WireResponse {
            status: s,
            headers: vec![("retry-after".into(), "2".into())],
            body: vec![],
        };
        assert!(matches!(
            ttd.classify(Op::Add, &m, &status(429)),
            Outcome::Throttled {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            ttd.classify(Op::Add, &m, &status(401)),
            Outcome::Fatal { .. }
        ));
        assert!(matches!(
            ttd.classify(Op::Add, &m, &status(403)),
            Outcome::Fatal { .. }
        ));
        assert!(matches!(
            ttd.classify(Op::Add, &m, &status(503)),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            ttd.classify(Op::Add, &m, &status(400)),
            Outcome::Refused { status: 400, .. }
        ));
    }

    #[test]
    fn settings_are_checked() {
        let region =
            TradeDesk::new(&config(&[("region", SettingPlan::Text("euw".into()))])).unwrap();
        assert_eq!(region.url, "https://euw-data.adsrvr.org/data/advertiser");
        let unknown =
            TradeDesk::new(&config(&[("region", SettingPlan::Text("mars".into()))])).unwrap_err();
        assert!(unknown.contains("mars"), "{unknown}");
        let long = TradeDesk::new(&config(&[("ttl_days", SettingPlan::Integer(181))])).unwrap_err();
        assert!(long.contains("180"), "{long}");
        let no_id = TradeDesk::new(&config(&[]))
            .unwrap()
            .encode(Some(&segment()), Op::Add, &[member("x", "email", "e")])
            .unwrap_err();
        assert!(no_id.contains("`x`"), "{no_id}");
    }
}
