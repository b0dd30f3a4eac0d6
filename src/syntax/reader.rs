//! A reader over spanned TOML tables that never fails.
//!
//! Each `get_*` call records the key as known, reports a wrong TOML type at the
//! value (`A0004`) and returns `None`, so a definition with one bad value still
//! yields everything else. [`Table::finish`] then warns about every key that no
//! call asked for (`A0003`), with a suggestion among the known ones.

use std::collections::BTreeSet;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostic, codes};
use crate::source::{SourceId, Span};

/// A value with the span it was written at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Sp<T> {
        Sp { value, span }
    }
}

impl Sp<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// Where diagnostics go while reading one file.
pub struct Cx<'d> {
    pub source: SourceId,
    pub diags: &'d mut Vec<Diagnostic>,
    /// The definition being read, as messages name it ("activation `x`"),
    /// so a message about one of its values says whose value it is; empty
    /// between definitions.
    pub subject: String,
}

impl Cx<'_> {
    pub fn span<T>(&self, spanned: &Spanned<T>) -> Span {
        Span::new(self.source, spanned.span())
    }

    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    pub fn wrong_type(&mut self, value: &Spanned<DeValue<'_>>, expected: &str) {
        let span = self.span(value);
        let found = type_name(value.get_ref());
        let message = if self.subject.is_empty() {
            format!("expected {expected}, found {found}")
        } else {
            format!("{}: expected {expected}, found {found}", self.subject)
        };
        self.report(
            Diagnostic::new(codes::spec::WRONG_TYPE, span, message)
                .label(format!("this is {found}"))
                .help(format!("write {expected} here")),
        );
    }
}

pub fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// One TOML table being read as a definition.
pub struct Table<'t, 'i> {
    entries: &'t DeTable<'i>,
    /// Where "missing key" errors point: the definition's name in its header.
    pub anchor: Span,
    /// How the definition is named in messages, such as "audience `B2B_ICP`".
    pub what: String,
    known: BTreeSet<&'static str>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn new(entries: &'t DeTable<'i>, anchor: Span, what: impl Into<String>) -> Self {
        Table {
            entries,
            anchor,
            what: what.into(),
            known: BTreeSet::new(),
        }
    }

    /// The raw value of a key, marking the key as known.
    pub fn raw(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.known.insert(key);
        self.entries.get(key)
    }

    /// Marks keys as known without reading them (read by another pass).
    pub fn allow(&mut self, keys: &[&'static str]) {
        self.known.extend(keys);
    }

    pub fn string(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Sp<String>> {
        let value = self.raw(key)?;
        as_string(cx, value)
    }

    pub fn required_string(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Sp<String>> {
        if self.entries.get(key).is_none() {
            self.missing(cx, key, "a string");
        }
        self.string(cx, key)
    }

    pub fn int(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Sp<i64>> {
        let value = self.raw(key)?;
        as_int(cx, value)
    }

    pub fn bool(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Sp<bool>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, cx.span(value))),
            _ => {
                cx.wrong_type(value, "a boolean");
                None
            }
        }
    }

    /// A string that must be one of `choices`; anything else is `A0006`.
    pub fn choice(
        &mut self,
        cx: &mut Cx<'_>,
        key: &'static str,
        choices: &[&'static str],
    ) -> Option<Sp<String>> {
        let value = self.string(cx, key)?;
        if choices.contains(&value.as_str()) {
            return Some(value);
        }
        let list = choices
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        cx.report(
            Diagnostic::new(
                codes::spec::INVALID_VALUE,
                value.span,
                format!("{}: `{}` is not a valid `{key}`", self.what, value.value),
            )
            .label(format!("expected one of {list}"))
            .suggest(
                &value.value,
                choices.iter().copied(),
                format!("use one of {list}"),
            ),
        );
        None
    }

    /// A list of strings; a single string is not accepted, to keep one spelling.
    pub fn string_list(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Vec<Sp<String>> {
        match self.raw(key) {
            Some(value) => as_string_list(cx, value),
            None => Vec::new(),
        }
    }

    pub fn date(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Sp<toml::value::Date>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Datetime(dt) if dt.date.is_some() && dt.time.is_none() => {
                dt.date.map(|d| Sp::new(d, cx.span(value)))
            }
            _ => {
                cx.wrong_type(value, "a date such as 2026-12-31");
                None
            }
        }
    }

    /// A sub-table, for example `compose` or `map`.
    pub fn table(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(&'t DeTable<'i>, Span)> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some((t, cx.span(value))),
            _ => {
                cx.wrong_type(value, "a table");
                None
            }
        }
    }

    /// The entries of the table whose keys were not read: type-specific settings.
    pub fn rest(
        &self,
    ) -> impl Iterator<
        Item = (
            &'t Spanned<std::borrow::Cow<'i, str>>,
            &'t Spanned<DeValue<'i>>,
        ),
    > {
        #[cfg(test)]
        known_keys::record(&self.what, &self.known);
        let known = self.known.clone();
        self.entries
            .iter()
            .filter(move |(k, _)| !known.contains(k.get_ref().as_ref()))
    }

    pub fn missing(&self, cx: &mut Cx<'_>, key: &str, expected: &str) {
        cx.report(
            Diagnostic::new(
                codes::spec::MISSING_KEY,
                self.anchor,
                format!("{} has no `{key}`", self.what),
            )
            .label(format!("`{key}` is required here"))
            .help(format!("add `{key} = ...` ({expected}) to this definition")),
        );
    }

    /// Warns about every key no reader asked for.
    pub fn finish(self, cx: &mut Cx<'_>) {
        #[cfg(test)]
        known_keys::record(&self.what, &self.known);
        for (key, _) in self.entries.iter() {
            let name = key.get_ref().as_ref();
            if self.known.contains(name) {
                continue;
            }
            let known: Vec<&str> = self.known.iter().copied().collect();
            let list = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            cx.report(
                Diagnostic::new(
                    codes::spec::UNKNOWN_KEY,
                    cx.span(key),
                    format!("unknown key `{name}` in {}", self.what),
                )
                .label("not a key of this definition; it is ignored")
                .suggest(
                    name,
                    known.iter().copied(),
                    format!("known keys here: {list}"),
                ),
            );
        }
    }
}

pub fn as_string(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>) -> Option<Sp<String>> {
    match value.get_ref() {
        DeValue::String(s) => Some(Sp::new(s.to_string(), cx.span(value))),
        _ => {
            cx.wrong_type(value, "a string");
            None
        }
    }
}

pub fn as_int(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>) -> Option<Sp<i64>> {
    match value.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => Some(Sp::new(n, cx.span(value))),
            Err(_) => {
                cx.wrong_type(value, "an integer that fits in 64 bits");
                None
            }
        },
        _ => {
            cx.wrong_type(value, "an integer");
            None
        }
    }
}

pub fn as_string_list(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>) -> Vec<Sp<String>> {
    match value.get_ref() {
        DeValue::Array(items) => items
            .iter()
            .filter_map(|item| as_string(cx, item))
            .collect(),
        _ => {
            cx.wrong_type(value, "an array of strings");
            Vec::new()
        }
    }
}

/// The name key and table of every `[KIND.NAME]` entry; non-table entries are
/// reported and skipped.
pub fn definitions<'t, 'i>(
    cx: &mut Cx<'_>,
    kind: &str,
    value: &'t Spanned<DeValue<'i>>,
) -> Vec<(Sp<String>, &'t DeTable<'i>)> {
    let DeValue::Table(entries) = value.get_ref() else {
        cx.wrong_type(value, &format!("a table of `[{kind}.NAME]` definitions"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, def) in entries.iter() {
        match def.get_ref() {
            DeValue::Table(t) => {
                let name = Sp::new(name.get_ref().to_string(), cx.span(name));
                // `computed` is keyed by entity first; its names are checked
                // one level down.
                if kind != "computed" {
                    super::names::check(cx, kind, &name);
                }
                out.push((name, t))
            }
            _ => cx.wrong_type(def, &format!("a `[{kind}.{}]` table", name.get_ref())),
        }
    }
    out
}

/// The keys each table read on this thread knew when it was finished, by
/// the table's name in messages: the JSON Schema's tests compare them with
/// the schema's keys, so a key added to a reader cannot miss the schema.
#[cfg(test)]
pub mod known_keys {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static LOG: RefCell<Vec<(String, BTreeSet<&'static str>)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn record(what: &str, known: &BTreeSet<&'static str>) {
        LOG.with(|log| log.borrow_mut().push((what.to_string(), known.clone())));
    }

    /// Everything recorded since the last call, in order.
    pub fn take() -> Vec<(String, BTreeSet<&'static str>)> {
        LOG.with(|log| std::mem::take(&mut *log.borrow_mut()))
    }
}
