//! `accord explain account` and `accord explain person`: why one account or
//! person is in or out of an audience, and why a person is or is not
//! exported by an activation.
//!
//! Input: the plan, the rendered jobs, the data, `now`, a key and what to
//! explain. Output: an explanation (plain data; the CLI prints it).
//!
//! Verdicts come from the engine, running the run's own rendered jobs: an
//! audience's members from the audience queries, an activation's rows from
//! its export query and the run's row rules. The reasons come from the same
//! SQL with its steps as columns (a composition's candidates, rank position
//! and bucket; an export's membership, exclusion, people filter, consent and
//! identity columns, unfiltered), and from the CEL interpreter, the
//! reference semantics, evaluating each rule one sub-expression at a time
//! on the record read back from the unified tables. Where the interpreter
//! and the engine disagree, the explanation says so: that is a bug.

mod account;
mod person;
mod records;
mod steps;

pub use account::{Explanation, RankStep, SplitPart, SplitStep, explain_account, explain_person};
pub use person::{
    AudienceExport, ConsentCheck, ExportExplanation, IdentityCheck, Route, explain_person_export,
};
pub use steps::{Step, print};

use crate::plan::{AudiencePlan, Entity, Plan};
use crate::render::Jobs;
use crate::run::Places;
use crate::run::engine::Choice;
use crate::time;

/// What every explanation evaluates, as the run would: the plan, its
/// rendered jobs (of the engine's dialect), the project's data, `now`, and
/// the engine that runs them.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub jobs: &'a Jobs,
    pub root: &'a std::path::Path,
    pub now: time::Micros,
    pub places: &'a Places,
    pub choice: &'a Choice,
}

impl Context<'_> {
    /// The run's evaluation of the audiences, on the chosen engine.
    fn evaluate(&self) -> Result<crate::run::execute::Evaluation, Problem> {
        crate::run::execute::evaluate_with(
            self.plan,
            self.jobs,
            self.root,
            self.now,
            self.places,
            self.choice,
        )
        .map_err(|e| Problem::new(e.to_string()))
    }
}

/// Input the explanation cannot take: what is wrong, and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
}

impl From<String> for Problem {
    fn from(message: String) -> Problem {
        Problem::new(message)
    }
}

impl From<&str> for Problem {
    fn from(message: &str) -> Problem {
        Problem::new(message)
    }
}

/// The audience (or split part) `reference` names, checked to be of
/// `entity`: its base name and definition.
fn audience_of<'p>(
    plan: &'p Plan,
    reference: &str,
    entity: Entity,
) -> Result<(&'p str, &'p AudiencePlan), Problem> {
    let (base, part) = match reference.split_once('.') {
        Some((base, part)) => (base, Some(part)),
        None => (reference, None),
    };
    let Some((name, definition)) = plan.audiences.get_key_value(base) else {
        let names = plan
            .audiences
            .iter()
            .filter(|(_, a)| a.entity == entity)
            .map(|(n, _)| n.as_str());
        let help = match crate::diag::did_you_mean(base, names) {
            Some(m) => format!("did you mean `{m}`?"),
            None => "`accord plan` lists the audiences".to_string(),
        };
        return Err(Problem::new(format!("no audience `{base}` in the plan")).help(help));
    };
    if definition.entity != entity {
        let (other, command) = match definition.entity {
            Entity::Person => ("a person audience", "explain person ID --audience"),
            Entity::Account => ("an account audience", "explain account ID --audience"),
        };
        return Err(Problem::new(format!("`{base}` is {other}"))
            .help(format!("`accord {command} {base}` explains its members")));
    }
    if let Some(part) = part
        && !definition.parts.iter().any(|p| p == part)
    {
        let help = if definition.parts.is_empty() {
            format!("`{base}` is not split; name the audience alone")
        } else {
            format!(
                "its parts: {}",
                definition
                    .parts
                    .iter()
                    .map(|p| format!("`{base}.{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(Problem::new(format!("`{base}` has no part `{part}`")).help(help));
    }
    Ok((name.as_str(), definition))
}

/// Members per audience reference, as the engine evaluated them.
type Members = crate::run::memberships::Memberships;
