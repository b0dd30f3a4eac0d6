//! The closed sets of the model: what a spec chooses from a fixed list
//! (an entity, a schema class, a merge, a rank order, a source format, a
//! mapping transform, a schedule). Resolve produces them, the plan carries
//! them, and render, run, diff and the plan text match on them, so a value
//! no stage knows cannot pass silently as some default.
//!
//! Each serialises as the spelling a spec writes (`exclude_overlap`,
//! `daily@02:00`), which is also the plan file's spelling.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{ExportMode, ScheduleKind};
use crate::closed_set::closed_set;

closed_set! {
    /// What an audience, a computed attribute or an exported row is about.
    pub enum Entity {
        Account = "account",
        Person = "person",
    }
}

closed_set! {
    /// The class of a schema.
    pub enum SchemaClass {
        Account = "account",
        Person = "person",
        Opportunity = "opportunity",
        Campaign = "campaign",
        Event = "event",
        Relation = "relation",
    }
}

closed_set! {
    /// How a composed audience combines the audiences it is composed `from`.
    pub enum Merge {
        /// Members of any of them.
        Union = "union",
        /// Members of all of them.
        Intersection = "intersection",
        /// Members of exactly one of them.
        ExcludeOverlap = "exclude_overlap",
    }
}

closed_set! {
    /// The direction of a rank; ties break by the account key, ascending.
    pub enum Order {
        Asc = "asc",
        Desc = "desc",
    }
}

closed_set! {
    /// How a link matches records that lack its key.
    pub enum LinkFallback {
        /// People without the account key link to the account whose domain
        /// identity is their email's domain.
        EmailDomain = "email_domain",
    }
}

closed_set! {
    /// The file format of a data source.
    pub enum SourceFormat {
        Csv = "csv",
        Jsonl = "jsonl",
        Parquet = "parquet",
    }
}

closed_set! {
    /// The normalise-and-hash a mapping expression applies (SHA-256,
    /// lowercase hex): the `hash_*` function it calls, if any.
    pub enum Transform {
        None = "none",
        HashEmail = "hash_email",
        HashPhone = "hash_phone",
    }
}

impl Entity {
    /// The entity of an audience or computed attribute as written (the
    /// syntax admits only these names), `account` when none is written.
    pub fn written(value: Option<&crate::syntax::Sp<String>>) -> Entity {
        value
            .and_then(|v| Entity::parse(&v.value))
            .unwrap_or(Entity::Account)
    }
}

/// An activation schedule: `streaming`, `daily@HH:MM` or `every Nh`.
/// Serialised as that text; only the values [`Schedule::parse`] accepts
/// exist, so a consumer never meets a schedule it cannot read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Schedule {
    Streaming,
    /// Once a day at `hour:minute` (UTC).
    Daily {
        hour: u8,
        minute: u8,
    },
    /// Every 3, 6, 8 or 12 hours.
    Every {
        hours: u8,
    },
}

impl Schedule {
    /// The schedule a spec writes, surrounding blanks ignored.
    pub fn parse(text: &str) -> Option<Schedule> {
        let text = text.trim();
        if text == "streaming" {
            return Some(Schedule::Streaming);
        }
        if let Some(time) = text.strip_prefix("daily@") {
            let (h, m) = time.split_once(':')?;
            // Two ASCII digits each: `u8::parse` alone would take `+1`.
            let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
            if !two_digits(h) || !two_digits(m) {
                return None;
            }
            let (hour, minute) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
            return (hour < 24 && minute < 60).then_some(Schedule::Daily { hour, minute });
        }
        match text {
            "every 3h" => Some(Schedule::Every { hours: 3 }),
            "every 6h" => Some(Schedule::Every { hours: 6 }),
            "every 8h" => Some(Schedule::Every { hours: 8 }),
            "every 12h" => Some(Schedule::Every { hours: 12 }),
            _ => None,
        }
    }

    /// The schedule without its time of day, as the catalog lists them.
    pub fn kind(self) -> ScheduleKind {
        match self {
            Schedule::Streaming => ScheduleKind::Streaming,
            Schedule::Daily { .. } => ScheduleKind::Daily,
            Schedule::Every { hours: 3 } => ScheduleKind::Every3h,
            Schedule::Every { hours: 6 } => ScheduleKind::Every6h,
            Schedule::Every { hours: 8 } => ScheduleKind::Every8h,
            Schedule::Every { .. } => ScheduleKind::Every12h,
        }
    }

    /// Whether this schedule can carry `mode` (full exports run at most daily).
    pub fn allows(self, mode: ExportMode) -> bool {
        self.kind().allows(mode)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Streaming => f.write_str("streaming"),
            Schedule::Daily { hour, minute } => write!(f, "daily@{hour:02}:{minute:02}"),
            Schedule::Every { hours } => write!(f, "every {hours}h"),
        }
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Schedule {
    type Error = String;
    fn try_from(text: String) -> Result<Schedule, String> {
        Schedule::parse(&text).ok_or_else(|| format!("`{text}` is not a schedule"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_json() {
        for m in Merge::ALL {
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<Merge>(&json).unwrap(), *m);
        }
        assert_eq!(Merge::parse("exclude_overlap"), Some(Merge::ExcludeOverlap));
        assert_eq!(Merge::parse("overlap"), None);
    }

    /// The syntax admits exactly the names these enums parse, so a value
    /// the syntax accepts always has a variant.
    #[test]
    fn the_syntax_choices_are_the_enums() {
        use crate::catalog::ExportMode;
        use crate::resolve::Evaluation;
        use crate::syntax::{activation, audience, data_source, schema};
        fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|v| name(*v)).collect()
        }
        assert_eq!(names(Entity::ALL, Entity::as_str), audience::ENTITIES);
        assert_eq!(
            names(Evaluation::ALL, Evaluation::as_str),
            audience::EVALUATIONS
        );
        assert_eq!(names(Merge::ALL, Merge::as_str), audience::MERGES);
        assert_eq!(names(Order::ALL, Order::as_str), audience::ORDERS);
        assert_eq!(
            names(SchemaClass::ALL, SchemaClass::as_str),
            schema::CLASSES
        );
        assert_eq!(
            names(SourceFormat::ALL, SourceFormat::as_str),
            data_source::FORMATS
        );
        assert_eq!(
            names(LinkFallback::ALL, LinkFallback::as_str),
            schema::FALLBACKS
        );
        let mut exports = names(ExportMode::ALL, ExportMode::as_str);
        exports.sort();
        let mut written = activation::EXPORTS.to_vec();
        written.sort();
        assert_eq!(exports, written);
    }

    #[test]
    fn schedules_print_as_written() {
        for text in [
            "streaming",
            "daily@02:00",
            "daily@23:59",
            "every 3h",
            "every 12h",
        ] {
            let s = Schedule::parse(text).unwrap();
            assert_eq!(s.to_string(), text);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Schedule>(&format!("\"{text}\"")).unwrap(),
                s
            );
        }
        assert!(serde_json::from_str::<Schedule>("\"hourly\"").is_err());
    }

    #[test]
    fn schedule_times_are_two_digits() {
        for text in [
            "daily@+1:00",
            "daily@1:00",
            "daily@01:-1",
            "daily@24:00",
            "daily@01:60",
        ] {
            assert_eq!(Schedule::parse(text), None, "{text}");
        }
    }
}
