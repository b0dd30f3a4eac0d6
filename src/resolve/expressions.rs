//! Type-checking every CEL expression of a project against its schemas.
//!
//! Builds the [`CelEnv`] (schemas, computed attributes, audience names), checks
//! each expression in the scope its place gives it (rules see `account` or
//! `person`; people filters and mappings also see `person`), and maps the
//! checker's ranges (bytes of the decoded string) back to byte spans in the
//! TOML file through the literal's escapes. The results feed the audience
//! graph, label lineage and the plan.

use std::collections::BTreeMap;

use super::Model;
use crate::cel::check::{CelError, Checked, check};
use crate::cel::env::{CelEnv, EntityDef, FieldDef, Scope};
use crate::cel::spans::OffsetMap;
use crate::cel::types::Type;
use crate::diag::Diagnostic;
use crate::source::{SourceSet, Span};
use crate::syntax::Sp;

/// Where an expression sits in the project. Its order is the plan's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExprSite {
    /// `[computed.ENTITY.NAME] expr`, keyed `ENTITY.NAME`.
    Computed(String),
    AudienceRule(String),
    ExcludeRule(String),
    RankBy(String),
    SplitBy(String),
    People(String),
    /// An activation's mapping: (activation, destination column).
    Map(String, String),
    Consent(String),
}

impl ExprSite {
    /// The definition the expression belongs to and its place in it, as
    /// messages name it: "the rule of audience `B2B_ICP`".
    pub fn subject(&self) -> String {
        match self {
            ExprSite::Computed(key) => format!("computed attribute `{key}`"),
            ExprSite::AudienceRule(a) => format!("the rule of audience `{a}`"),
            ExprSite::ExcludeRule(a) => format!("the `exclude_rule` of audience `{a}`"),
            ExprSite::RankBy(a) => format!("the `rank.by` of audience `{a}`"),
            ExprSite::SplitBy(a) => format!("the `split.by` of audience `{a}`"),
            ExprSite::People(a) => format!("the `people` filter of activation `{a}`"),
            ExprSite::Map(a, column) => format!("mapping `{column}` of activation `{a}`"),
            ExprSite::Consent(c) => format!("the condition of consent policy `{c}`"),
        }
    }
}

/// One checked expression.
#[derive(Clone, Debug)]
pub struct Expr {
    pub text: String,
    /// The whole TOML string literal.
    pub span: Span,
    pub checked: Checked,
    /// Maps checker ranges (decoded bytes) to file bytes.
    map: OffsetMap,
}

impl Expr {
    /// The file span of a range in the expression text.
    pub fn span_of(&self, range: std::ops::Range<usize>) -> Span {
        self.span.sub(self.map.raw_range(range))
    }
}

/// The schema names that the CEL variables `account` and `person` denote.
#[derive(Clone, Debug, Default)]
pub struct Roots {
    pub account: Option<String>,
    pub person: Option<String>,
}

pub fn roots(model: &Model) -> Roots {
    let first_of = |class: &str| {
        model
            .schema_info
            .iter()
            .find(|(_, info)| info.class == class)
            .map(|(name, _)| name.clone())
    };
    Roots {
        account: first_of("account"),
        person: first_of("person"),
    }
}

pub fn env(model: &Model, roots: &Roots) -> CelEnv {
    let mut entities = BTreeMap::new();
    for (name, info) in &model.schema_info {
        let fields = info
            .fields
            .iter()
            .filter_map(|(field, f)| {
                let ty = Type::parse(f.ty.name())?;
                Some((
                    field.clone(),
                    FieldDef {
                        ty,
                        values: f.values.clone(),
                        computed: false,
                    },
                ))
            })
            .collect();
        entities.insert(
            name.clone(),
            EntityDef {
                fields,
                to_many: info.to_many.clone(),
                to_one: info.to_one.clone(),
                read_from_target: info.read_from_target.clone(),
            },
        );
    }
    for computed in &model.syntax.computed {
        let schema = match computed.entity.as_str() {
            "account" => &roots.account,
            _ => &roots.person,
        };
        let (Some(schema), Some(ty)) = (
            schema,
            computed.ty.as_ref().and_then(|t| Type::parse(&t.value)),
        ) else {
            continue;
        };
        if let Some(entity) = entities.get_mut(schema) {
            entity
                .fields
                .entry(computed.name.value.clone())
                .or_insert(FieldDef {
                    ty,
                    values: None,
                    computed: true,
                });
        }
    }
    let mut audiences: std::collections::BTreeSet<String> =
        model.audiences.names().map(str::to_string).collect();
    audiences.extend(super::references::split_part_names(model));
    CelEnv {
        entities,
        audiences,
    }
}

/// The variables of an expression: `account` and `person` as asked (when
/// the project has those schemas), and `now`.
pub fn scope(roots: &Roots, account: bool, person: bool) -> Scope {
    let mut vars = Vec::new();
    if let (true, Some(a)) = (account, &roots.account) {
        vars.push(("account".to_string(), Type::Entity(a.clone())));
    }
    if let (true, Some(p)) = (person, &roots.person) {
        vars.push(("person".to_string(), Type::Entity(p.clone())));
    }
    vars.push(("now".to_string(), Type::Timestamp));
    Scope { vars }
}

pub fn check_all(
    model: &Model,
    sources: &SourceSet,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<ExprSite, Expr> {
    let roots = model.roots.clone();
    let env = &model.cel_env;
    // First collect every expression with the scope its place gives it,
    // then check them (in parallel), then map results back to the files.
    let mut jobs: Vec<Job> = Vec::new();
    let mut run = |site: ExprSite,
                   text: &Sp<String>,
                   scope: &Scope,
                   expected: Option<&Type>,
                   _: &mut Vec<Diagnostic>| {
        jobs.push(Job {
            site,
            text: text.clone(),
            scope: scope.clone(),
            expected: expected.cloned(),
        });
    };
    let account_scope = scope(&roots, true, false);
    let person_scope = scope(&roots, false, true);
    let people_scope = scope(&roots, true, true);
    for c in &model.syntax.computed {
        let (Some(expr), Some(ty)) = (&c.expr, &c.ty) else {
            continue;
        };
        let Some(declared) = Type::parse(&ty.value) else {
            let names = [
                "string",
                "int",
                "double",
                "bool",
                "timestamp",
                "list<string>",
                "list<int>",
                "list<double>",
            ];
            diags.push(
                Diagnostic::new(
                    crate::diag::codes::spec::INVALID_VALUE,
                    ty.span,
                    format!("`{}` is not a field type", ty.value),
                )
                .label("unknown type")
                .suggest(
                    &ty.value,
                    names,
                    format!("field types: {}", names.join(", ")),
                ),
            );
            continue;
        };
        let scope = if c.entity.as_str() == "account" {
            &account_scope
        } else {
            &person_scope
        };
        run(
            ExprSite::Computed(format!("{}.{}", c.entity.value, c.name.value)),
            expr,
            scope,
            Some(&declared),
            diags,
        );
    }
    for a in &model.syntax.audiences {
        let name = a.name.value.clone();
        let is_person = a.entity.as_ref().is_some_and(|e| e.as_str() == "person");
        let rule_scope = if is_person {
            scope(&roots, false, true)
        } else {
            account_scope.clone()
        };
        if let Some(rule) = &a.rule {
            run(
                ExprSite::AudienceRule(name.clone()),
                rule,
                &rule_scope,
                Some(&Type::Bool),
                diags,
            );
        }
        let Some(compose) = &a.compose else { continue };
        if let Some(rule) = &compose.exclude_rule {
            run(
                ExprSite::ExcludeRule(name.clone()),
                rule,
                &rule_scope,
                Some(&Type::Bool),
                diags,
            );
        }
        if let Some(by) = compose.rank.as_ref().and_then(|r| r.by.as_ref()) {
            run(
                ExprSite::RankBy(name.clone()),
                by,
                &rule_scope,
                Some(&Type::Double),
                diags,
            );
        }
        if let Some(crate::syntax::Split::ByAttribute { by: Some(by), .. }) = &compose.split {
            run(
                ExprSite::SplitBy(name.clone()),
                by,
                &rule_scope,
                Some(&Type::String),
                diags,
            );
        }
    }
    for act in &model.syntax.activations {
        let name = act.name.value.clone();
        if let Some(people) = &act.people {
            run(
                ExprSite::People(name.clone()),
                people,
                &people_scope,
                Some(&Type::Bool),
                diags,
            );
        }
        // Rows are people when the activation expands accounts to people, or
        // when it activates a person audience.
        let person_rows = act.people.is_some()
            || act.audiences.iter().any(|a| {
                model
                    .audiences
                    .get(super::audiences::base_name(&a.value))
                    .and_then(|i| model.syntax.audiences[i].entity.as_ref())
                    .is_some_and(|e| e.as_str() == "person")
            });
        let map_scope = if person_rows {
            &people_scope
        } else {
            &account_scope
        };
        for (column, value) in &act.map {
            run(
                ExprSite::Map(name.clone(), column.value.clone()),
                value,
                map_scope,
                None,
                diags,
            );
        }
    }
    for consent in &model.syntax.consents {
        if let Some(require) = &consent.require {
            run(
                ExprSite::Consent(consent.name.value.clone()),
                require,
                &people_scope,
                Some(&Type::Bool),
                diags,
            );
        }
    }
    check_jobs(jobs, env, sources, diags)
}

/// One expression to check.
struct Job {
    site: ExprSite,
    text: Sp<String>,
    scope: Scope,
    expected: Option<Type>,
}

type Outcome = (Option<Checked>, Vec<CelError>);

/// Checks every distinct (text, scope, expected type) once: projects repeat
/// expressions a lot (the same mapping in many activations), and checking is
/// a pure function of those three for one environment. The distinct checks
/// run on every core; CEL parsing dominates the front end's time.
fn check_jobs(
    jobs: Vec<Job>,
    env: &CelEnv,
    sources: &SourceSet,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<ExprSite, Expr> {
    type Key<'a> = (&'a str, &'a [(String, Type)], Option<&'a Type>);
    let mut index: std::collections::HashMap<Key<'_>, usize> = std::collections::HashMap::new();
    let mut distinct: Vec<&Job> = Vec::new();
    let slots: Vec<usize> = jobs
        .iter()
        .map(|job| {
            let key = (
                job.text.value.as_str(),
                job.scope.vars.as_slice(),
                job.expected.as_ref(),
            );
            *index.entry(key).or_insert_with(|| {
                distinct.push(job);
                distinct.len() - 1
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = on_every_core(&distinct, |job| {
        check(&job.text.value, env, &job.scope, job.expected.as_ref())
    });
    let mut out = BTreeMap::new();
    for (job, slot) in jobs.into_iter().zip(slots) {
        let (checked, errors) = &outcomes[slot];
        let map = OffsetMap::new(sources.text(job.text.span));
        for error in errors {
            diags.push(to_diagnostic(error, &job.site, job.text.span, &map));
        }
        if let Some(checked) = checked {
            out.insert(
                job.site,
                Expr {
                    text: job.text.value,
                    span: job.text.span,
                    checked: checked.clone(),
                    map,
                },
            );
        }
    }
    out
}

/// `f` of every item, in order, computed on every core: the items are cut
/// into one run per core, each run checked on its own thread. Checking is
/// pure, so the runs need nothing from each other. (A rayon pool measured
/// no faster on the check benchmark, so the std threads stay.)
fn on_every_core<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                // An explicit stack: the depth bound on expressions is
                // measured against it, whatever RUST_MIN_STACK says. Like
                // `scope.spawn`, a thread that cannot start is a panic.
                std::thread::Builder::new()
                    .stack_size(crate::cel::depth::STACK_SIZE)
                    .spawn_scoped(scope, move || part.iter().map(f).collect::<Vec<R>>())
                    .expect("a checker thread starts")
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn to_diagnostic(error: &CelError, site: &ExprSite, literal: Span, map: &OffsetMap) -> Diagnostic {
    let span = literal.sub(map.raw_range(error.range.clone()));
    // The checker knows the expression, not where it sits: the message
    // names the definition, so it reads on its own in every format.
    let message = format!("{}: {}", site.subject(), error.message);
    let mut d = Diagnostic::new(error.code, span, message).label(error.label.clone());
    if let Some(help) = &error.help {
        d = d.help(help.clone());
    }
    d
}
