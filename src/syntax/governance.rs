//! Governance kinds: `[label.*]`, `[marketing_action.*]`, `[policy.*]`,
//! `[consent.*]` and `[waiver.*]`.

use toml::de::DeTable;

use super::reader::{Cx, Sp, Table};

/// A custom label or marketing action: a name and what it means.
#[derive(Clone, Debug)]
pub struct Declared {
    pub name: Sp<String>,
    pub description: Option<Sp<String>>,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub name: Sp<String>,
    pub actions: Vec<Sp<String>>,
    /// A label expression: `&&`, `||`, `!` and parentheses over label names.
    pub deny: Option<Sp<String>>,
    pub enforcement: Option<Sp<String>>,
    pub status: Option<Sp<String>>,
    /// Required to disable a core policy.
    pub reason: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
}

#[derive(Clone, Debug)]
pub struct Consent {
    pub name: Sp<String>,
    pub actions: Vec<Sp<String>>,
    /// A CEL condition over `person` that consenting people satisfy.
    pub require: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
}

#[derive(Clone, Debug)]
pub struct Waiver {
    pub name: Sp<String>,
    pub policy: Option<Sp<String>>,
    pub activation: Option<Sp<String>>,
    pub reason: Option<Sp<String>>,
    pub owner: Option<Sp<String>>,
    pub expires: Option<Sp<toml::value::Date>>,
}

pub const ENFORCEMENTS: &[&str] = &["hard", "soft", "advisory"];
pub const STATUSES: &[&str] = &["enabled", "disabled", "draft"];

pub fn declared(cx: &mut Cx<'_>, kind: &str, name: Sp<String>, table: &DeTable<'_>) -> Declared {
    let mut t = Table::new(table, name.span, format!("{kind} `{}`", name.value));
    let d = Declared {
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    d
}

pub fn policy(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Policy {
    let mut t = Table::new(table, name.span, format!("policy `{}`", name.value));
    // A core policy is restated only to change its status (with a reason);
    // its actions and label expression are built in.
    let is_core = crate::builtins::CORE_POLICIES
        .iter()
        .any(|p| p.name == name.value);
    let actions = t.string_list(cx, "actions");
    if table.get("actions").is_none() && !is_core {
        t.missing(cx, "actions", "an array of marketing actions");
    }
    let deny = if is_core {
        t.string(cx, "deny")
    } else {
        t.required_string(cx, "deny")
    };
    let p = Policy {
        actions,
        deny,
        enforcement: t.choice(cx, "enforcement", ENFORCEMENTS),
        status: t.choice(cx, "status", STATUSES),
        reason: t.string(cx, "reason"),
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    p
}

pub fn consent(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Consent {
    let mut t = Table::new(table, name.span, format!("consent policy `{}`", name.value));
    let actions = t.string_list(cx, "actions");
    if table.get("actions").is_none() {
        t.missing(cx, "actions", "an array of marketing actions");
    }
    let c = Consent {
        actions,
        require: t.required_string(cx, "require"),
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    c
}

pub fn waiver(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Waiver {
    let mut t = Table::new(table, name.span, format!("waiver `{}`", name.value));
    let expires = t.date(cx, "expires");
    if table.get("expires").is_none() {
        t.missing(cx, "expires", "a date such as 2026-12-31");
    }
    let w = Waiver {
        policy: t.required_string(cx, "policy"),
        activation: t.required_string(cx, "activation"),
        reason: t.required_string(cx, "reason"),
        owner: t.required_string(cx, "owner"),
        expires,
        name,
    };
    t.finish(cx);
    w
}
