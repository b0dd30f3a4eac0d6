//! The CEL type checker: parses an expression with the `cel` crate and checks
//! it against the schemas, the audiences and the variables in scope.
//!
//! Input: the decoded expression text, a `CelEnv`, a `Scope` and the type the
//! context expects. Output: the expression's type and what it references
//! (`Checked`), plus errors whose ranges are byte ranges into the text.
//!
//! Invariants: never panics on any input; one mistake gives one error (a
//! wrong sub-expression types as `Dyn`, which every check accepts); every
//! error range covers the whole offending sub-expression as written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SelectExpr,
};
use cel::common::types::{CelBool, CelInt};

use super::env::{CelEnv, Scope};
use super::functions::{self, Returns, Style};
use super::ranges::{self, Ranges};
use super::typed::{self, Built, Typed};
use super::types::Type;
use crate::diag::codes::cel::{
    CEL_SYNTAX, CEL_TYPE_MISMATCH, DIVISION_BY_ZERO, INVALID_LITERAL, LITERAL_OUT_OF_RANGE,
    REGEX_TOO_LARGE, UNKNOWN_AUDIENCE_REF, UNKNOWN_CEL_FIELD, UNKNOWN_FUNCTION,
    VALUE_OUTSIDE_DOMAIN,
};
use crate::diag::{Code, did_you_mean};

/// A field read by an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRead {
    pub schema: String,
    pub field: String,
    /// Byte range in the expression text of the first read, in source order.
    pub range: Range<usize>,
}

/// What a well-parsed expression is and references.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The expression's type; `Dyn` when it has an error.
    pub ty: Type,
    /// Every field read, through comprehension variables and links; sorted by
    /// (schema, field), deduplicated.
    pub reads: Vec<FieldRead>,
    /// (schema, collection) traversed, e.g. `("account", "people")`; sorted.
    pub collections: Vec<(String, String)>,
    /// `in_audience("NAME")` references to existing audiences, with the range
    /// of the NAME literal, in source order. Unknown names are errors instead.
    pub audiences: Vec<(String, Range<usize>)>,
    /// The first sub-expression (in source order) that makes the expression
    /// ineligible for streaming evaluation, and why ("reads the collection
    /// `account.people`").
    pub needs_batch: Option<(Range<usize>, String)>,
    pub uses_now: bool,
    /// The typed tree the interpreter and the SQL lowering walk, built in
    /// the same walk as the check; `Err` with a reason for a construct the
    /// tree does not model. Meaningful only when the check found no error
    /// (a wrong sub-expression types as `Dyn`). Shared, so every place an
    /// expression is repeated holds one tree.
    pub typed: Result<Arc<Typed>, String>,
}

/// One problem in an expression; the caller turns it into a `Diagnostic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CelError {
    pub code: Code,
    pub message: String,
    pub label: String,
    /// Byte range into the expression text.
    pub range: Range<usize>,
    pub help: Option<String>,
}

/// Checks `text` against `env` with the variables of `scope`.
///
/// `expected`: the type the context requires (bool for rules, people filters
/// and consent; the declared type for computed attributes; `None` for
/// mappings). Returns `None` only when the text does not parse; otherwise the
/// references are reported even when there are type errors, so later stages
/// can still check them. Never panics on any input.
pub fn check(
    text: &str,
    env: &CelEnv,
    scope: &Scope,
    expected: Option<&Type>,
) -> (Option<Checked>, Vec<CelError>) {
    // The parser and every walk of the tree recurse per level: a tree too
    // deep for the stack is refused before any of them sees it.
    if let Some(too_deep) = super::depth::check(text) {
        return (None, vec![too_deep_error(text, &too_deep)]);
    }
    // The parser is third-party code: a panic inside it must not take the
    // compiler down, so it becomes a syntax error over the whole text.
    let parser = cel::parser::Parser::default();
    let parsed =
        super::quiet::catch_unwind(AssertUnwindSafe(|| parser.parse_with_source_info(text)));
    let (root, info) = match parsed {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(errors)) => {
            // The parser's own nesting limit (ternaries, which the depth
            // scan lets through) is a depth problem, not a typo.
            if errors
                .errors
                .iter()
                .any(|e| e.msg.contains("Recursion limit"))
            {
                let depth = super::depth::estimate(text);
                let mut error = too_deep_error(text, &super::depth::TooDeep { depth });
                error.label = "nested deeper than the CEL parser allows".into();
                return (None, vec![error]);
            }
            let error = errors
                .errors
                .iter()
                .min_by_key(|e| e.pos)
                .map(|e| syntax_error(text, e.pos, &e.msg));
            return (
                None,
                vec![error.unwrap_or_else(|| whole_syntax_error(text))],
            );
        }
        Err(_) => return (None, vec![whole_syntax_error(text)]),
    };
    let ranges = ranges::compute(text, &root, &info);
    let mut checker = Checker::new(text, env, scope, ranges);
    let ty = checker.expr(&root);
    if let Some(expected) = expected
        && !ty.is_assignable_to(expected)
    {
        checker.expected_type_error(&ty, expected);
    }
    let checked = checker.finish(ty);
    (Some(checked), checker.errors)
}

/// The tree of `text` when it checks without an error (warnings allowed),
/// else the message of its first error.
pub fn checked_tree(text: &str, env: &CelEnv, scope: &Scope) -> Result<Arc<Typed>, String> {
    let (checked, errors) = check(text, env, scope, None);
    let error = errors
        .iter()
        .find(|e| e.code.info().severity == crate::diag::Severity::Error);
    if let Some(error) = error {
        return Err(error.message.clone());
    }
    checked.map_or_else(|| Err("the expression does not parse".into()), |c| c.typed)
}

/// A parse error at the parser's 1-based (line, column) position.
fn syntax_error(text: &str, (line, column): (isize, isize), msg: &str) -> CelError {
    // The ANTLR listener reports columns in characters; the parser's own
    // errors (macro arguments) count bytes.
    let in_chars = msg.starts_with("Syntax error:");
    let msg = msg.trim_start_matches("Syntax error:").trim();
    // Errors raised inside the ANTLR runtime arrive as a Rust debug
    // rendering (`OtherError(ParseError { .., msg: "..", .. })`): users see
    // the message it carries, never the struct.
    let msg = msg
        .split_once("msg: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or(msg, |(inner, _)| inner);
    let line_start: usize = text
        .split_inclusive('\n')
        .take(usize::try_from(line - 1).unwrap_or(0))
        .map(str::len)
        .sum();
    let line_text = text[line_start.min(text.len())..]
        .split('\n')
        .next()
        .unwrap_or("");
    let column = usize::try_from(column - 1).unwrap_or(0);
    let in_line = if in_chars {
        line_text
            .char_indices()
            .nth(column)
            .map_or(line_text.len(), |(i, _)| i)
    } else {
        let mut at = column.min(line_text.len());
        while !line_text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let start = (line_start + in_line).min(text.len());
    // Cover the offending token when the message quotes it, else one char;
    // at the end of the text, the last char.
    let quoted = quoted_token(msg).filter(|t| *t != "<EOF>" && text[start..].starts_with(t));
    let (start, end) = match quoted {
        Some(token) => (start, start + token.len()),
        None if start < text.len() => (
            start,
            start + text[start..].chars().next().map_or(0, char::len_utf8),
        ),
        None => (text.char_indices().last().map_or(0, |(i, _)| i), text.len()),
    };
    let label = if msg.contains("'<EOF>'") {
        "the expression ends too early".to_string()
    } else if let Some(token) = quoted_token(msg)
        .filter(|_| msg.starts_with("mismatched input") || msg.starts_with("extraneous input"))
    {
        format!("unexpected `{token}`")
    } else if let Some(token) =
        quoted_token(msg).filter(|_| msg.starts_with("token recognition error"))
    {
        format!("`{token}` is not CEL")
    } else {
        msg.to_string()
    };
    CelError {
        code: CEL_SYNTAX,
        message: "invalid CEL syntax".into(),
        label,
        range: start..end,
        help: (!msg.is_empty()).then(|| format!("the parser said: {msg}")),
    }
}

/// The first `'...'`-quoted token of a parser message.
fn quoted_token(msg: &str) -> Option<&str> {
    let start = msg.find('\'')? + 1;
    let len = msg[start..].find('\'')?;
    Some(&msg[start..start + len])
}

fn too_deep_error(text: &str, too_deep: &super::depth::TooDeep) -> CelError {
    CelError {
        code: crate::diag::codes::cel::CEL_TOO_DEEP,
        message: "the expression nests too deep".into(),
        label: format!(
            "about {} levels deep; at most {} are supported",
            too_deep.depth,
            super::depth::MAX_DEPTH
        ),
        range: 0..text.len(),
        help: Some(
            "split it: move parts into computed attributes or audiences \
             (`in_audience`), and write long chains of `+` or member access \
             another way"
                .into(),
        ),
    }
}

fn whole_syntax_error(text: &str) -> CelError {
    CelError {
        code: CEL_SYNTAX,
        message: "invalid CEL syntax".into(),
        label: "the expression could not be parsed".into(),
        range: 0..text.len(),
        help: None,
    }
}

/// A field with a closed domain, read by a select node.
struct Domain<'a> {
    /// `account.industry`, for messages.
    path: String,
    values: &'a [String],
}

/// Which comprehension macro a `Comprehension` node was expanded from, with
/// the user's expressions in it.
pub(crate) enum Macro<'e> {
    Exists(&'e IdedExpr),
    All(&'e IdedExpr),
    ExistsOne(&'e IdedExpr),
    Filter(&'e IdedExpr),
    Map {
        transform: &'e IdedExpr,
        filter: Option<&'e IdedExpr>,
    },
}

struct Checker<'a> {
    text: &'a str,
    env: &'a CelEnv,
    scope: &'a Scope,
    ranges: Ranges,
    /// Comprehension variables, innermost last; they shadow the scope.
    locals: Vec<(String, Type)>,
    errors: Vec<CelError>,
    reads: BTreeMap<(String, String), Range<usize>>,
    collections: BTreeSet<(String, String)>,
    audiences: Vec<(String, Range<usize>)>,
    needs_batch: Option<(Range<usize>, String)>,
    uses_now: bool,
    /// Select nodes that read a closed-domain field, by node id.
    domains: HashMap<u64, Domain<'a>>,
    /// The trees of the nodes checked and not yet taken by their parent,
    /// in visiting order: leaving a node takes its children's trees and
    /// leaves its own.
    trees: Vec<Built>,
}

impl<'a> Checker<'a> {
    fn new(text: &'a str, env: &'a CelEnv, scope: &'a Scope, ranges: Ranges) -> Checker<'a> {
        Checker {
            text,
            env,
            scope,
            ranges,
            locals: Vec::new(),
            errors: Vec::new(),
            reads: BTreeMap::new(),
            collections: BTreeSet::new(),
            audiences: Vec::new(),
            needs_batch: None,
            uses_now: false,
            domains: HashMap::new(),
            trees: Vec::new(),
        }
    }

    fn finish(&mut self, ty: Type) -> Checked {
        let typed = self
            .trees
            .pop()
            .unwrap_or_else(|| Err("an empty expression".into()))
            .map(Arc::new);
        Checked {
            typed,
            ty,
            reads: std::mem::take(&mut self.reads)
                .into_iter()
                .map(|((schema, field), range)| FieldRead {
                    schema,
                    field,
                    range,
                })
                .collect(),
            collections: std::mem::take(&mut self.collections).into_iter().collect(),
            audiences: std::mem::take(&mut self.audiences),
            needs_batch: self.needs_batch.take(),
            uses_now: self.uses_now,
        }
    }

    /// The byte range of a node; the whole text if the parser recorded none.
    fn range(&self, id: u64) -> Range<usize> {
        self.ranges.get(&id).cloned().unwrap_or(0..self.text.len())
    }

    fn snippet(&self, id: u64) -> &'a str {
        let text: &'a str = self.text;
        text.get(self.range(id)).unwrap_or("")
    }

    fn error(
        &mut self,
        code: Code,
        range: Range<usize>,
        message: String,
        label: impl Into<String>,
        help: Option<String>,
    ) {
        self.errors.push(CelError {
            code,
            message,
            label: label.into(),
            range,
            help,
        });
    }

    /// Records a reason for batch evaluation; the first in source order wins.
    fn batch(&mut self, range: Range<usize>, reason: String) {
        if self
            .needs_batch
            .as_ref()
            .is_none_or(|(first, _)| range.start < first.start)
        {
            self.needs_batch = Some((range, reason));
        }
    }

    fn read(&mut self, schema: &str, field: &str, range: Range<usize>) {
        let entry = self
            .reads
            .entry((schema.to_string(), field.to_string()))
            .or_insert_with(|| range.clone());
        if range.start < entry.start {
            *entry = range;
        }
    }

    fn expected_type_error(&mut self, ty: &Type, expected: &Type) {
        // The whole expression, parentheses and all, without surrounding blanks.
        let start = self.text.len() - self.text.trim_start().len();
        let end = self.text.trim_end().len().max(start);
        let help = if *expected == Type::Bool {
            "a rule, people filter or consent condition must be a condition: compare the value, e.g. `x > 0` or `x != \"\"`".to_string()
        } else {
            format!("make the expression evaluate to `{expected}`, or declare the type it has")
        };
        self.error(
            CEL_TYPE_MISMATCH,
            start..end,
            format!("the expression must be `{expected}`, found `{ty}`"),
            format!("this is `{ty}`"),
            Some(help),
        );
    }

    /// Checks node `e` and builds its typed tree from its children's.
    fn expr(&mut self, e: &IdedExpr) -> Type {
        let mark = self.trees.len();
        let ty = self.node(e);
        let children = self.trees.split_off(mark);
        let tree = typed::assemble(self.env, e, &ty, children);
        self.trees.push(tree);
        ty
    }

    fn node(&mut self, e: &IdedExpr) -> Type {
        match &e.expr {
            Expr::Literal(literal) => self.literal(e.id, literal),
            Expr::Ident(name) => self.ident(e.id, name),
            Expr::Select(select) => self.select(e.id, select),
            Expr::Call(call) => self.call(e.id, call),
            Expr::List(list) => {
                let mut elem = Type::Dyn;
                let mut ok = true;
                for element in &list.elements {
                    let ty = self.expr(element);
                    match elem.unify(&ty) {
                        Some(unified) => elem = unified,
                        None if ok && !ty.is_dyn() => {
                            ok = false;
                            self.error(
                                CEL_TYPE_MISMATCH,
                                self.range(element.id),
                                format!("list elements have different types: `{elem}` and `{ty}`"),
                                format!("this is `{ty}`"),
                                Some("a list holds values of one type".into()),
                            );
                        }
                        None => {}
                    }
                }
                Type::list(if ok { elem } else { Type::Dyn })
            }
            Expr::Map(map) => {
                let (mut key, mut value) = (Type::Dyn, Type::Dyn);
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        let k = self.expr(&entry.key);
                        let v = self.expr(&entry.value);
                        for (acc, ty, node) in
                            [(&mut key, k, &entry.key), (&mut value, v, &entry.value)]
                        {
                            match acc.unify(&ty) {
                                Some(unified) => *acc = unified,
                                None => {
                                    let range = self
                                        .ranges
                                        .get(&node.id)
                                        .cloned()
                                        .unwrap_or(0..self.text.len());
                                    self.errors.push(CelError {
                                        code: CEL_TYPE_MISMATCH,
                                        message: format!(
                                            "map entries have different types: `{acc}` and `{ty}`"
                                        ),
                                        label: format!("this is `{ty}`"),
                                        range,
                                        help: Some(
                                            "a map holds keys of one type and values of one type"
                                                .into(),
                                        ),
                                    });
                                    *acc = Type::Dyn;
                                }
                            }
                        }
                    }
                }
                Type::Map(Box::new(key), Box::new(value))
            }
            Expr::Struct(_) => {
                self.error(
                    CEL_TYPE_MISMATCH,
                    self.range(e.id),
                    "message construction is not supported".into(),
                    "not supported in accord",
                    Some("use a map literal `{\"key\": value}` instead".into()),
                );
                Type::Dyn
            }
            Expr::Comprehension(comp) => self.comprehension(comp),
            Expr::Unspecified => Type::Dyn,
        }
    }

    fn literal(&mut self, id: u64, literal: &LiteralValue) -> Type {
        match literal {
            LiteralValue::Boolean(_) => Type::Bool,
            LiteralValue::Int(_) | LiteralValue::UInt(_) => Type::Int,
            LiteralValue::Double(_) => Type::Double,
            LiteralValue::String(_) => Type::String,
            LiteralValue::Null => Type::Null,
            LiteralValue::Bytes(_) => {
                self.error(
                    INVALID_LITERAL,
                    self.range(id),
                    "bytes literals are not supported".into(),
                    "a bytes literal",
                    Some("write a string literal without the `b` prefix".into()),
                );
                Type::Dyn
            }
        }
    }

    fn ident(&mut self, id: u64, name: &str) -> Type {
        if let Some((_, ty)) = self.locals.iter().rev().find(|(n, _)| n == name) {
            return ty.clone();
        }
        if let Some((_, ty)) = self.scope.vars.iter().find(|(n, _)| n == name) {
            if name == "now" {
                self.uses_now = true;
                self.batch(self.range(id), "reads `now`".into());
            }
            return ty.clone();
        }
        let candidates: Vec<&str> = self
            .locals
            .iter()
            .chain(&self.scope.vars)
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.starts_with('@'))
            .collect();
        let help = match did_you_mean(name, candidates.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("in scope here: {}", quote_list(&candidates)),
        };
        self.error(
            UNKNOWN_CEL_FIELD,
            self.range(id),
            format!("unknown identifier `{name}`"),
            "not in scope",
            Some(help),
        );
        Type::Dyn
    }

    fn select(&mut self, id: u64, select: &SelectExpr) -> Type {
        let operand = self.expr(&select.operand);
        let range = self.range(id);
        let field = select.field.as_str();
        let result = |ty: Type| if select.test { Type::Bool } else { ty };
        match operand {
            Type::Entity(schema) => {
                let env: &'a CelEnv = self.env;
                let Some(entity) = env.entities.get(&schema) else {
                    return Type::Dyn;
                };
                let path = self
                    .snippet(id)
                    .trim_start_matches("has(")
                    .trim_end_matches(')')
                    .trim()
                    .to_string();
                if let Some(def) = entity.fields.get(field) {
                    self.read(&schema, field, range);
                    if let Some(values) = &def.values {
                        let path = format!("{}.{field}", self.snippet(select.operand.id));
                        self.domains.insert(id, Domain { path, values });
                    }
                    result(def.ty.clone())
                } else if let Some(target) = entity.to_many.get(field) {
                    self.collections.insert((schema.clone(), field.to_string()));
                    self.batch(range, format!("reads the collection `{path}`"));
                    result(Type::list(Type::Entity(target.clone())))
                } else if let Some(target) = entity.to_one.get(field) {
                    self.batch(range, format!("reads the linked entity `{path}`"));
                    result(Type::Entity(target.clone()))
                } else if let Some(target) = entity.read_from_target.get(field) {
                    self.error(
                        UNKNOWN_CEL_FIELD,
                        range,
                        format!("`{schema}.{field}` is a many-to-many link, which rules read from its target"),
                        "not a member of the record",
                        Some(format!("read the collection `{target}` in an audience of that entity")),
                    );
                    Type::Dyn
                } else {
                    let help = did_you_mean(field, entity.member_names())
                        .map(|best| format!("did you mean `{best}`?"));
                    self.error(
                        UNKNOWN_CEL_FIELD,
                        range,
                        format!("`{schema}` has no field `{field}`"),
                        "unknown field",
                        help,
                    );
                    Type::Dyn
                }
            }
            Type::Map(_, value) => result(*value),
            Type::Dyn => Type::Dyn,
            other => {
                self.error(
                    CEL_TYPE_MISMATCH,
                    range,
                    format!("`{other}` has no fields"),
                    format!("`.{field}` on a `{other}`"),
                    None,
                );
                Type::Dyn
            }
        }
    }

    fn call(&mut self, id: u64, call: &CallExpr) -> Type {
        let name = call.func_name.as_str();
        match (name, call.target.as_deref(), call.args.as_slice()) {
            ("_&&_" | "_||_", None, [l, r]) => {
                let symbol = operator_symbol(name);
                for operand in [l, r] {
                    let ty = self.expr(operand);
                    self.expect_bool(operand.id, &ty, &format!("`{symbol}` needs bool operands"));
                }
                Type::Bool
            }
            ("!_", None, [operand]) => {
                let ty = self.expr(operand);
                self.expect_bool(operand.id, &ty, "`!` needs a bool operand");
                Type::Bool
            }
            ("@not_strictly_false", None, [operand]) => {
                self.expr(operand);
                Type::Bool
            }
            ("-_", None, [operand]) => {
                let ty = self.expr(operand);
                match ty {
                    Type::Int | Type::Double | Type::Duration | Type::Dyn => ty,
                    other => {
                        self.error(
                            CEL_TYPE_MISMATCH,
                            self.range(id),
                            format!("cannot negate a `{other}`"),
                            format!("this is `{other}`"),
                            Some("`-` applies to int, double and duration".into()),
                        );
                        Type::Dyn
                    }
                }
            }
            ("_==_" | "_!=_", None, [l, r]) => {
                let (lt, rt) = (self.expr(l), self.expr(r));
                if !lt.is_comparable_with(&rt) {
                    self.mismatch(id, name, &lt, &rt, "compare values of the same type; convert with `int()`, `double()` or `string()`");
                } else {
                    self.check_domain(l, r);
                    self.check_domain(r, l);
                }
                Type::Bool
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [l, r]) => {
                let (lt, rt) = (self.expr(l), self.expr(r));
                if !lt.is_orderable_with(&rt) {
                    self.mismatch(id, name, &lt, &rt, "order numbers with numbers, strings with strings, timestamps with timestamps, durations with durations");
                }
                Type::Bool
            }
            ("_+_" | "_-_" | "_*_" | "_/_" | "_%_", None, [l, r]) => {
                let (lt, rt) = (self.expr(l), self.expr(r));
                if matches!(name, "_/_" | "_%_") {
                    self.literal_zero_divisor(name, r);
                }
                match arithmetic(name, &lt, &rt) {
                    Some(ty) => ty,
                    None => {
                        let help = if lt.is_numeric() && rt.is_numeric() {
                            "CEL does not mix int and double in arithmetic: convert one side with `double()` or `int()`"
                        } else {
                            "arithmetic applies to numbers of one type, strings and lists (`+`), timestamps and durations"
                        };
                        self.mismatch(id, name, &lt, &rt, help);
                        Type::Dyn
                    }
                }
            }
            ("_?_:_", None, [cond, then, otherwise]) => {
                let ct = self.expr(cond);
                self.expect_bool(cond.id, &ct, "the condition of `?:` must be bool");
                let (tt, ot) = (self.expr(then), self.expr(otherwise));
                match tt.unify(&ot) {
                    Some(ty) => ty,
                    None => {
                        self.error(
                            CEL_TYPE_MISMATCH,
                            self.range(id),
                            format!("the branches of `?:` have different types: `{tt}` and `{ot}`"),
                            format!("`{tt}` or `{ot}`"),
                            Some("both branches must have the same type".into()),
                        );
                        Type::Dyn
                    }
                }
            }
            ("@in", None, [elem, container]) => {
                let (et, ct) = (self.expr(elem), self.expr(container));
                let member = match &ct {
                    Type::List(t) | Type::Map(t, _) => Some(t.as_ref().clone()),
                    Type::Dyn => Some(Type::Dyn),
                    _ => None,
                };
                match member {
                    None => self.error(
                        CEL_TYPE_MISMATCH,
                        self.range(container.id),
                        format!("`in` needs a list or a map, found `{ct}`"),
                        format!("this is `{ct}`"),
                        Some("to look for a substring, use `x.contains(y)`".into()),
                    ),
                    Some(member) if !et.is_comparable_with(&member) => self.mismatch(
                        id,
                        name,
                        &et,
                        &ct,
                        "the value and the list elements must have the same type",
                    ),
                    Some(_) => {
                        if let Expr::List(list) = &container.expr {
                            for item in &list.elements {
                                self.check_domain(elem, item);
                            }
                        }
                    }
                }
                Type::Bool
            }
            ("_[_]", None, [container, index]) => {
                let (ct, it) = (self.expr(container), self.expr(index));
                match (&ct, &it) {
                    (Type::Dyn, _) => Type::Dyn,
                    (Type::List(elem), Type::Int | Type::Dyn) => elem.as_ref().clone(),
                    (Type::Map(key, value), _) if it.is_comparable_with(key) => {
                        value.as_ref().clone()
                    }
                    _ => {
                        self.mismatch(
                            id,
                            name,
                            &ct,
                            &it,
                            "index a list with an int, a map with its key type",
                        );
                        Type::Dyn
                    }
                }
            }
            _ => self.function(id, call),
        }
    }

    fn expect_bool(&mut self, id: u64, ty: &Type, what: &str) {
        if !ty.is_assignable_to(&Type::Bool) {
            self.error(
                CEL_TYPE_MISMATCH,
                self.range(id),
                format!("{what}, found `{ty}`"),
                format!("this is `{ty}`"),
                None,
            );
        }
    }

    /// An operator applied to operand types it is not defined for.
    fn mismatch(&mut self, id: u64, op: &str, l: &Type, r: &Type, help: &str) {
        let symbol = operator_symbol(op);
        let message = match op {
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => {
                format!("cannot compare `{l}` with `{r}`")
            }
            "@in" => format!("cannot look for a `{l}` in a `{r}`"),
            "_[_]" => format!("cannot index a `{l}` with a `{r}`"),
            _ => format!("cannot apply `{symbol}` to `{l}` and `{r}`"),
        };
        self.error(
            CEL_TYPE_MISMATCH,
            self.range(id),
            message,
            format!("`{l}` {symbol} `{r}`"),
            Some(help.into()),
        );
    }

    /// `field` reads a closed-domain field and `other` is a string literal
    /// outside the domain: an error at the literal.
    fn check_domain(&mut self, field: &IdedExpr, other: &IdedExpr) {
        let (Some(domain), Expr::Literal(LiteralValue::String(value))) =
            (self.domains.get(&field.id), &other.expr)
        else {
            return;
        };
        let value: &str = value.inner();
        if domain.values.iter().any(|v| v == value) {
            return;
        }
        let help = match did_you_mean(value, domain.values.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "the values of `{}` are {}",
                domain.path,
                quote_list(domain.values)
            ),
        };
        let message = format!("`{value}` is not a value of `{}`", domain.path);
        self.error(
            VALUE_OUTSIDE_DOMAIN,
            self.range(other.id),
            message,
            "outside the field's values",
            Some(help),
        );
    }

    fn function(&mut self, id: u64, call: &CallExpr) -> Type {
        let name = call.func_name.as_str();
        let args: Vec<&IdedExpr> = call
            .target
            .as_deref()
            .into_iter()
            .chain(&call.args)
            .collect();
        let types: Vec<Type> = args.iter().map(|arg| self.expr(arg)).collect();
        let Some(function) = functions::lookup(name) else {
            let help = did_you_mean(name, functions::names())
                .map(|best| format!("did you mean `{best}`?"));
            let help = help.or_else(|| {
                Some(format!(
                    "the functions are {}",
                    quote_list(&functions::names().collect::<Vec<_>>())
                ))
            });
            self.error(
                UNKNOWN_FUNCTION,
                self.range(id),
                format!("unknown function `{name}`"),
                "not a function",
                help,
            );
            return Type::Dyn;
        };
        let usage = function.usage();
        match (function.style, call.target.is_some()) {
            (Style::Global, true) => {
                let message = format!("`{name}` is a function, not a method");
                self.error(
                    UNKNOWN_FUNCTION,
                    self.range(id),
                    message,
                    "called as a method",
                    Some(format!("write `{usage}`")),
                );
                return Type::Dyn;
            }
            (Style::Receiver, false) => {
                let message = format!("`{name}` is a method, not a function");
                self.error(
                    UNKNOWN_FUNCTION,
                    self.range(id),
                    message,
                    "called as a function",
                    Some(format!("write `{usage}`")),
                );
                return Type::Dyn;
            }
            _ => {}
        }
        if args.len() != function.params.len() {
            let expected = function.params.len() - usize::from(call.target.is_some());
            let found = call.args.len();
            let plural = if expected == 1 { "" } else { "s" };
            let message = format!("`{name}` takes {expected} argument{plural}, found {found}");
            self.error(
                UNKNOWN_FUNCTION,
                self.range(id),
                message,
                "wrong number of arguments",
                Some(format!("write `{usage}`")),
            );
            return Type::Dyn;
        }
        let mut ok = true;
        for ((arg, ty), param) in args.iter().zip(&types).zip(function.params) {
            if !param.accepts(ty) {
                ok = false;
                self.error(
                    CEL_TYPE_MISMATCH,
                    self.range(arg.id),
                    format!("`{name}` expects a {} here, found `{ty}`", param.describe()),
                    format!("this is `{ty}`"),
                    Some(format!("write `{usage}`")),
                );
            }
        }
        if !ok {
            return Type::Dyn;
        }
        self.special_function(id, name, &args);
        match function.returns {
            Returns::Fixed(ty) => ty.to_type(),
            Returns::ElementOfFirst => match types.first() {
                Some(Type::List(elem)) => elem.as_ref().clone(),
                _ => Type::Dyn,
            },
        }
    }

    /// Checks that a signature cannot express: audience references and the
    /// literals that functions interpret.
    fn special_function(&mut self, id: u64, name: &str, args: &[&IdedExpr]) {
        let literal = |arg: Option<&&IdedExpr>| match arg.map(|a| &a.expr) {
            Some(Expr::Literal(LiteralValue::String(s))) => Some(s.inner().to_string()),
            _ => None,
        };
        let last = args.last().copied();
        match name {
            "in_audience" => {
                let Some(arg) = last else { return };
                let range = self.range(arg.id);
                match literal(args.last()) {
                    None => self.error(
                        CEL_TYPE_MISMATCH,
                        range,
                        "the argument of `in_audience` must be a string literal".into(),
                        "not a literal",
                        Some("write the audience name in quotes: `in_audience(\"NAME\")`".into()),
                    ),
                    Some(audience) if self.env.audiences.contains(&audience) => {
                        self.batch(
                            self.range(id),
                            format!("references the audience `{audience}`"),
                        );
                        self.audiences.push((audience, range));
                    }
                    Some(audience) => {
                        let help =
                            did_you_mean(&audience, self.env.audiences.iter().map(String::as_str))
                                .map(|best| format!("did you mean `{best}`?"));
                        self.error(
                            UNKNOWN_AUDIENCE_REF,
                            range,
                            format!("unknown audience `{audience}`"),
                            "no such audience",
                            help,
                        );
                    }
                }
            }
            "matches" | "timestamp" | "duration" => {
                let (Some(arg), Some(value)) = (last, literal(args.last())) else {
                    return;
                };
                let (program, what, help) = match name {
                    "matches" => (
                        "'' .matches(x)",
                        "regular expression",
                        "the pattern uses Rust `regex` syntax; escape `\\` as `\\\\` in CEL strings",
                    ),
                    "timestamp" => (
                        "timestamp(x)",
                        "timestamp",
                        "write an RFC 3339 timestamp, e.g. \"2026-01-31T00:00:00Z\"",
                    ),
                    _ => (
                        "duration(x)",
                        "duration",
                        "write a duration such as \"36h\", \"90m\" or \"1h30m\"",
                    ),
                };
                if let Some(reason) = cel_rejects(program, &value) {
                    self.error(
                        INVALID_LITERAL,
                        self.range(arg.id),
                        format!("invalid {what} `{value}`"),
                        reason,
                        Some(help.into()),
                    );
                } else {
                    self.literal_in_range(name, arg, &value);
                }
            }
            "days" | "hours" => {
                let Some(arg) = last else { return };
                if let Expr::Literal(LiteralValue::Int(n)) = &arg.expr {
                    let (n, per_day) = (*n.inner(), if name == "days" { 1 } else { 24 });
                    if n.unsigned_abs() > MAX_DURATION_DAYS * per_day {
                        self.error(
                            LITERAL_OUT_OF_RANGE,
                            self.range(arg.id),
                            format!("`{name}({n})` is a longer duration than any engine evaluates"),
                            format!("more than {MAX_DURATION_DAYS} days"),
                            Some(format!(
                                "a window is at most {} `{name}` long; to read every record, drop the condition",
                                MAX_DURATION_DAYS * per_day
                            )),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Literals that parse but that an engine cannot evaluate: durations
    /// and timestamps outside the range every dialect's timestamps cover,
    /// patterns that compile to more than the regex size limit. The run
    /// would fail on them (or the interpreter silently never match).
    fn literal_in_range(&mut self, name: &str, arg: &IdedExpr, value: &str) {
        let range = self.range(arg.id);
        match name {
            "duration" => {
                let too_long = crate::time::parse_cel_duration(value).is_none_or(|micros| {
                    micros.unsigned_abs() / MICROS_PER_DAY > MAX_DURATION_DAYS
                });
                if too_long {
                    self.error(
                        LITERAL_OUT_OF_RANGE,
                        range,
                        format!(
                            "`duration(\"{value}\")` is a longer duration than any engine evaluates"
                        ),
                        format!("more than {MAX_DURATION_DAYS} days"),
                        Some("to read every record, drop the condition".into()),
                    );
                }
            }
            "timestamp" => {
                let micros = crate::time::parse_timestamp(value);
                if micros.is_none_or(|t| !TIMESTAMP_RANGE.contains(&t)) {
                    self.error(
                        LITERAL_OUT_OF_RANGE,
                        range,
                        format!("the timestamp `{value}` is outside the range every engine evaluates"),
                        "before 1678 or after 2261",
                        Some("write a timestamp between 1678-01-01 and 2261-12-31 (the embedded engine computes timestamp literals in nanoseconds)".into()),
                    );
                }
            }
            // Only counted repetitions make a small pattern compile to a
            // large program, and compiling every pattern is slow: the
            // others are not compiled here.
            "matches" if value.contains('{') => {
                if let Err(regex::Error::CompiledTooBig(limit)) = regex::Regex::new(value) {
                    self.error(
                        REGEX_TOO_LARGE,
                        range,
                        format!("the regular expression `{value}` is too large to compile"),
                        format!("compiles to more than {limit} bytes"),
                        Some("repeat less: a counted repetition such as `{1000}` copies its group that many times".into()),
                    );
                }
            }
            _ => {}
        }
    }

    /// `x / 0` and `x % 0`: missing for every record, so a condition on
    /// them never holds; almost certainly not what the rule means.
    fn literal_zero_divisor(&mut self, name: &str, divisor: &IdedExpr) {
        let zero = match &divisor.expr {
            Expr::Literal(LiteralValue::Int(i)) => *i.inner() == 0,
            Expr::Literal(LiteralValue::UInt(u)) => *u.inner() == 0,
            Expr::Literal(LiteralValue::Double(d)) => *d.inner() == 0.0,
            _ => false,
        };
        if zero {
            let op = if name == "_/_" { "/" } else { "%" };
            self.error(
                DIVISION_BY_ZERO,
                self.range(divisor.id),
                format!("`{op} 0` divides by zero, so its result is missing for every record"),
                "a literal zero divisor",
                Some("division by zero is missing, so every comparison with the result is false: divide by a non-zero value".into()),
            );
        }
    }

    fn comprehension(&mut self, comp: &ComprehensionExpr) -> Type {
        let range_ty = self.expr(&comp.iter_range);
        let elem = match &range_ty {
            Type::List(elem) | Type::Map(elem, _) => elem.as_ref().clone(),
            Type::Dyn => Type::Dyn,
            other => {
                self.error(
                    CEL_TYPE_MISMATCH,
                    self.range(comp.iter_range.id),
                    format!("cannot iterate over a `{other}`"),
                    format!("this is `{other}`"),
                    Some(
                        "`exists`, `all`, `exists_one`, `filter` and `map` apply to lists and maps"
                            .into(),
                    ),
                );
                Type::Dyn
            }
        };
        let depth = self.locals.len();
        self.locals.push((comp.iter_var.clone(), elem.clone()));
        if let Some(var2) = &comp.iter_var2 {
            self.locals.push((var2.clone(), Type::Dyn));
        }
        let ty = match recognise(comp) {
            Some(Macro::Exists(pred)) => self.predicate(pred, "exists"),
            Some(Macro::All(pred)) => self.predicate(pred, "all"),
            Some(Macro::ExistsOne(pred)) => self.predicate(pred, "exists_one"),
            Some(Macro::Filter(pred)) => {
                self.predicate(pred, "filter");
                Type::list(elem)
            }
            Some(Macro::Map { transform, filter }) => {
                if let Some(filter) = filter {
                    self.predicate(filter, "map");
                }
                Type::list(self.expr(transform))
            }
            None => {
                // An expansion we do not know: check its parts generically.
                let accu = self.expr(&comp.accu_init);
                self.locals.push((comp.accu_var.clone(), accu));
                self.expr(&comp.loop_cond);
                self.expr(&comp.loop_step);
                self.expr(&comp.result)
            }
        };
        self.locals.truncate(depth);
        ty
    }

    /// The condition of a macro: must be bool; the macro itself is bool.
    fn predicate(&mut self, pred: &IdedExpr, macro_name: &str) -> Type {
        let ty = self.expr(pred);
        self.expect_bool(
            pred.id,
            &ty,
            &format!("the condition of `{macro_name}` must be bool"),
        );
        Type::Bool
    }
}

/// Recognises the standard macro expansions of the `cel` parser.
pub(crate) fn recognise(comp: &ComprehensionExpr) -> Option<Macro<'_>> {
    let Expr::Call(step) = &comp.loop_step.expr else {
        return None;
    };
    let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if *n == comp.accu_var);
    // `@result + [x]`: the step that appends `x`.
    fn appended<'e>(e: &'e IdedExpr, accu: &str) -> Option<&'e IdedExpr> {
        let Expr::Call(add) = &e.expr else {
            return None;
        };
        match (add.func_name.as_str(), add.args.as_slice()) {
            (
                "_+_",
                [
                    IdedExpr {
                        expr: Expr::Ident(n),
                        ..
                    },
                    IdedExpr {
                        expr: Expr::List(list),
                        ..
                    },
                ],
            ) if n == accu && list.elements.len() == 1 => list.elements.first(),
            _ => None,
        }
    }
    match (
        &comp.accu_init.expr,
        step.func_name.as_str(),
        step.args.as_slice(),
    ) {
        (Expr::Literal(LiteralValue::Boolean(b)), "_||_", [accu, pred])
            if *b == CelBool::from(false) && is_accu(accu) =>
        {
            Some(Macro::Exists(pred))
        }
        (Expr::Literal(LiteralValue::Boolean(b)), "_&&_", [accu, pred])
            if *b == CelBool::from(true) && is_accu(accu) =>
        {
            Some(Macro::All(pred))
        }
        (Expr::Literal(LiteralValue::Int(i)), "_?_:_", [pred, _, _]) if *i == CelInt::from(0) => {
            Some(Macro::ExistsOne(pred))
        }
        (Expr::List(init), "_+_", [_, _]) if init.elements.is_empty() => {
            appended(&comp.loop_step, &comp.accu_var).map(|transform| Macro::Map {
                transform,
                filter: None,
            })
        }
        (Expr::List(init), "_?_:_", [cond, add, otherwise])
            if init.elements.is_empty() && is_accu(otherwise) =>
        {
            let kept = appended(add, &comp.accu_var)?;
            if matches!(&kept.expr, Expr::Ident(n) if *n == comp.iter_var) {
                Some(Macro::Filter(cond))
            } else {
                Some(Macro::Map {
                    transform: kept,
                    filter: Some(cond),
                })
            }
        }
        _ => None,
    }
}

/// The longest duration literal: a century. The embedded engine computes
/// timestamps in nanoseconds (1677 to 2262), so `now` minus a longer
/// window would leave that range.
const MAX_DURATION_DAYS: u64 = 36_500;

const MICROS_PER_DAY: u64 = 86_400_000_000;

/// Timestamp literals every engine evaluates: 1678-01-01 to 2261-12-31,
/// inside the nanosecond range of the embedded engine, in microseconds.
const TIMESTAMP_RANGE: Range<i64> = -9_214_560_000_000_000..9_214_646_400_000_000;

/// The result type of an arithmetic operator, or `None` when undefined.
fn arithmetic(op: &str, l: &Type, r: &Type) -> Option<Type> {
    use Type::{Double, Duration, Dyn, Int, List, Timestamp};
    match (op, l, r) {
        (_, Dyn, t) | (_, t, Dyn) => Some(if t.is_numeric() { t.clone() } else { Dyn }),
        (_, Int, Int) => Some(Int),
        (_, Double, Double) if op != "_%_" => Some(Double),
        ("_+_", Type::String, Type::String) => Some(Type::String),
        ("_+_", List(a), List(b)) => a.unify(b).map(Type::list),
        ("_+_", Timestamp, Duration)
        | ("_+_", Duration, Timestamp)
        | ("_-_", Timestamp, Duration) => Some(Timestamp),
        ("_-_", Timestamp, Timestamp) => Some(Duration),
        ("_+_" | "_-_", Duration, Duration) => Some(Duration),
        _ => None,
    }
}

/// How the user wrote an operator: `_&&_` is `&&`, `@in` is `in`.
fn operator_symbol(op: &str) -> &str {
    match op {
        "_[_]" => "[]",
        "_?_:_" => "?:",
        _ => op.trim_matches(|c| c == '_' || c == '@'),
    }
}

fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evaluates `program` with `x` bound to `value` on the CEL interpreter, so
/// literals are validated exactly as they will be evaluated; the error text
/// when it fails.
fn cel_rejects(program: &str, value: &str) -> Option<String> {
    // Regular expressions are validated by parsing them with the regex
    // crate's own parser (the one the interpreter's `matches` compiles
    // with), without building an automaton: compiling every pattern of a
    // large project dominated check time.
    if program.contains(".matches(") {
        return regex_syntax::Parser::new()
            .parse(value)
            .err()
            .map(|e| short_reason(&e.to_string()));
    }
    let run = || {
        let program = cel::Program::compile(program).ok()?;
        let mut context = cel::Context::default();
        context.add_variable_from_value("x", value.to_string());
        program
            .execute(&context)
            .err()
            .map(|e| short_reason(&e.to_string()))
    };
    super::quiet::catch_unwind(AssertUnwindSafe(run))
        .unwrap_or_else(|_| Some("the value could not be interpreted".into()))
}

/// The interpreter's error without its framing: the regex crate's multi-line
/// report ends with the actual reason (`error: unclosed group`), and other
/// errors start with "Error executing function 'f': ".
fn short_reason(error: &str) -> String {
    let last = error
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(error);
    let last = last.strip_prefix("error: ").unwrap_or(last);
    let last = match last.split_once("': ") {
        Some((head, tail)) if head.starts_with("Error executing function") => tail,
        _ => last,
    };
    last.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{CelError, Checked, check};
    use crate::cel::env::{CelEnv, EntityDef, FieldDef, Scope};
    use crate::cel::types::Type;
    use crate::diag::codes::cel::*;

    fn fields(list: &[(&str, Type)]) -> BTreeMap<String, FieldDef> {
        list.iter()
            .map(|(n, t)| (n.to_string(), FieldDef::new(t.clone())))
            .collect()
    }

    /// The spec's example schemas: account, person (linked to account) and
    /// email_opened events (linked to person).
    fn env() -> CelEnv {
        let mut account = EntityDef {
            fields: fields(&[
                ("name", Type::String),
                ("domain", Type::String),
                ("employees", Type::Int),
                ("annualRevenue", Type::Double),
                ("intentTopics", Type::list(Type::String)),
                ("updatedAt", Type::Timestamp),
                ("engagementScore", Type::Int),
            ]),
            ..Default::default()
        };
        account.fields.insert(
            "industry".into(),
            FieldDef {
                ty: Type::String,
                values: Some(vec![
                    "Software".into(),
                    "Fintech".into(),
                    "Healthcare".into(),
                ]),
                computed: false,
            },
        );
        account
            .fields
            .get_mut("engagementScore")
            .expect("field")
            .computed = true;
        account.to_many.insert("people".into(), "person".into());
        account
            .to_many
            .insert("opportunities".into(), "opportunity".into());
        let mut person = EntityDef {
            fields: fields(&[
                ("email", Type::String),
                ("jobTitle", Type::String),
                ("accountId", Type::String),
            ]),
            ..Default::default()
        };
        person.fields.insert(
            "emailConsent".into(),
            FieldDef {
                ty: Type::String,
                values: Some(vec!["y".into(), "n".into()]),
                computed: false,
            },
        );
        person.to_one.insert("account".into(), "account".into());
        person
            .to_many
            .insert("emailOpens".into(), "email_opened".into());
        let opportunity = EntityDef {
            fields: fields(&[("amount", Type::Double), ("stage", Type::String)]),
            ..Default::default()
        };
        let opened = EntityDef {
            fields: fields(&[("occurredAt", Type::Timestamp), ("campaign", Type::String)]),
            ..Default::default()
        };
        CelEnv {
            entities: [
                ("account", account),
                ("person", person),
                ("opportunity", opportunity),
                ("email_opened", opened),
            ]
            .into_iter()
            .map(|(n, e)| (n.to_string(), e))
            .collect(),
            audiences: ["B2B_ICP", "B2B_Test.control"]
                .into_iter()
                .map(String::from)
                .collect(),
        }
    }

    fn rule(text: &str) -> (Option<Checked>, Vec<CelError>) {
        check(text, &env(), &Scope::person(), Some(&Type::Bool))
    }

    fn ok(text: &str) -> Checked {
        let (checked, errors) = rule(text);
        assert!(errors.is_empty(), "{text}: {errors:#?}");
        checked.expect("checked")
    }

    fn type_of(text: &str) -> Type {
        let (checked, errors) = check(text, &env(), &Scope::person(), None);
        assert!(errors.is_empty(), "{text}: {errors:#?}");
        checked.expect("checked").ty
    }

    /// The single error of a bad rule, with the text its range covers.
    fn one_error(text: &str) -> (CelError, &str) {
        let (_, errors) = rule(text);
        assert_eq!(errors.len(), 1, "{text}: {errors:#?}");
        let error = errors.into_iter().next().expect("one error");
        let covered = &text[error.range.clone()];
        (error, covered)
    }

    #[test]
    fn the_spec_examples_check() {
        ok(r#"account.industry in ["Software", "Fintech"]
  && account.employees >= 1000
  && account.people.exists(p, p.jobTitle.matches("(?i)\\b(VP|Chief|Head)\\b"))"#);
        assert_eq!(
            type_of(
                "size(account.people.filter(p, p.emailOpens.exists(e, e.occurredAt > now - days(30))))"
            ),
            Type::Int
        );
        assert_eq!(
            type_of(
                r#"account.engagementScore >= 5 ? "high" : account.engagementScore >= 2 ? "medium" : "low""#
            ),
            Type::String
        );
        ok(r#"person.emailConsent == "y""#);
        ok(r#"person.email != """#);
        assert_eq!(type_of("hash_email(person.email)"), Type::String);
    }

    #[test]
    fn operators_and_functions_type() {
        for (text, ty) in [
            ("1 + 2 * 3 % 2", Type::Int),
            ("1.5 / 2.0", Type::Double),
            ("account.name + \"x\"", Type::String),
            ("account.intentTopics + [\"a\"]", Type::list(Type::String)),
            ("now - days(1)", Type::Timestamp),
            ("now + hours(1)", Type::Timestamp),
            ("now - account.updatedAt", Type::Duration),
            ("days(1) + hours(2)", Type::Duration),
            ("-account.annualRevenue", Type::Double),
            ("account.intentTopics[0]", Type::String),
            ("{\"a\": 1}[\"a\"]", Type::Int),
            ("[1, 2.5]", Type::list(Type::Double)),
            ("size(account.name) + account.name.size()", Type::Int),
            ("sum(account.opportunities.map(o, o.amount))", Type::Double),
            ("max(account.people.map(p, size(p.emailOpens)))", Type::Int),
            ("min([account.updatedAt])", Type::Timestamp),
            (
                "lower(account.name).trim().upperAscii().lowerAscii()",
                Type::String,
            ),
            ("int(\"3\") + int(2.5)", Type::Int),
            ("double(account.employees)", Type::Double),
            ("string(account.employees)", Type::String),
            ("timestamp(\"2026-01-31T00:00:00Z\")", Type::Timestamp),
            ("duration(\"36h\")", Type::Duration),
            (
                "account.people.map(p, p.jobTitle)",
                Type::list(Type::String),
            ),
            (
                "account.people.filter(p, has(p.email))",
                Type::list(Type::Entity("person".into())),
            ),
            (
                "account.people.map(p, has(p.email), p.email)",
                Type::list(Type::String),
            ),
            ("person.account", Type::Entity("account".into())),
        ] {
            assert_eq!(type_of(text), ty, "{text}");
        }
        for text in [
            "account.employees > 1.5 && account.annualRevenue <= 10",
            "!(account.name == null) || account.name.contains(\"x\")",
            "account.name.startsWith(\"a\") && account.name.endsWith(\"b\") && matches(account.name, \"a+\")",
            "\"ai\" in account.intentTopics",
            "account.people.all(p, p.email != \"\") && account.people.exists_one(p, p.jobTitle == \"CEO\")",
            "account.people.exists(p, p.emailOpens.exists(e, e.campaign == \"q4\" && e.occurredAt > now - days(7)))",
            "in_audience(\"B2B_ICP\") || in_audience(\"B2B_Test.control\")",
            "has(account.name) && has(person.account.industry)",
            "account.updatedAt > timestamp(\"2026-01-01T00:00:00+02:00\")",
            "(account.employees > 10) == true",
        ] {
            ok(text);
        }
    }

    #[test]
    fn reads_collections_and_batch_reasons_are_recorded() {
        let checked = ok(
            "account.employees > 10 && account.people.exists(p, p.jobTitle == \"VP\" && p.account.name != \"\")",
        );
        let reads: Vec<(&str, &str)> = checked
            .reads
            .iter()
            .map(|r| (r.schema.as_str(), r.field.as_str()))
            .collect();
        assert_eq!(
            reads,
            [
                ("account", "employees"),
                ("account", "name"),
                ("person", "jobTitle")
            ]
        );
        assert_eq!(
            checked.collections,
            [("account".to_string(), "people".to_string())]
        );
        let (range, reason) = checked.needs_batch.expect("batch");
        assert_eq!(reason, "reads the collection `account.people`");
        assert_eq!(range, 26..40);
        assert!(!checked.uses_now);

        let checked = ok("account.employees > 10 && account.employees < 20");
        assert_eq!(checked.reads.len(), 1);
        assert_eq!(checked.reads[0].range, 0..17);
        assert_eq!(checked.needs_batch, None);

        let text = "account.updatedAt > now - days(1) || in_audience(\"B2B_ICP\")";
        let checked = ok(text);
        assert!(checked.uses_now);
        assert_eq!(
            checked.needs_batch.map(|b| b.1).as_deref(),
            Some("reads `now`")
        );
        assert_eq!(checked.audiences, [("B2B_ICP".to_string(), 49..58)]);

        let checked = ok("in_audience(\"B2B_ICP\") && person.account.employees > 1");
        assert_eq!(
            checked.needs_batch.map(|b| b.1).as_deref(),
            Some("references the audience `B2B_ICP`")
        );
        let checked = ok("person.account.employees > 1");
        assert_eq!(
            checked.needs_batch.map(|b| b.1).as_deref(),
            Some("reads the linked entity `person.account`")
        );
    }

    #[test]
    fn unknown_fields_point_at_the_select_with_a_suggestion() {
        let (error, covered) = one_error("account.employes >= 1000");
        assert_eq!(
            (error.code, covered),
            (UNKNOWN_CEL_FIELD, "account.employes")
        );
        assert_eq!(error.message, "`account` has no field `employes`");
        assert_eq!(error.help.as_deref(), Some("did you mean `employees`?"));

        let (error, covered) = one_error("account.people.exists(p, p.jobTitel == \"VP\")");
        assert_eq!((error.code, covered), (UNKNOWN_CEL_FIELD, "p.jobTitel"));
        assert_eq!(error.help.as_deref(), Some("did you mean `jobTitle`?"));

        let (error, covered) = one_error("size(account.peple) > 0");
        assert_eq!((error.code, covered), (UNKNOWN_CEL_FIELD, "account.peple"));
        assert_eq!(error.help.as_deref(), Some("did you mean `people`?"));

        let (error, covered) = one_error("acount.name == \"x\"");
        assert_eq!((error.code, covered), (UNKNOWN_CEL_FIELD, "acount"));
        assert_eq!(error.help.as_deref(), Some("did you mean `account`?"));

        let (error, _) = one_error("account.zzz == 1");
        assert_eq!(error.help, None);
    }

    #[test]
    fn type_mismatches_cover_the_offending_expression() {
        for (text, covered) in [
            ("account.employees >= \"x\"", "account.employees >= \"x\""),
            ("account.name && true", "account.name"),
            ("!account.employees", "account.employees"),
            ("account.employees + 1.5 > 0", "account.employees + 1.5"),
            ("account.employees ? true : false", "account.employees"),
            ("(true ? 1 : \"a\") == 1", "true ? 1 : \"a\""),
            ("1 in account.intentTopics", "1 in account.intentTopics"),
            ("\"a\" in account.name", "account.name"),
            ("account.name[0] == \"a\"", "account.name[0]"),
            ("size(account.employees) > 1", "account.employees"),
            ("account.name.size.x", "account.name.size"),
            ("account.people.exists(p, p.email)", "p.email"),
            ("account.employees.exists(e, e > 1)", "account.employees"),
            ("[1, \"a\"] == []", "\"a\""),
            ("in_audience(account.name)", "account.name"),
            ("-account.name == \"\"", "-account.name"),
        ] {
            let (error, got) = one_error(text);
            assert_eq!(
                (error.code, got),
                (CEL_TYPE_MISMATCH, covered),
                "{text}: {error:?}"
            );
        }
    }

    #[test]
    fn a_rule_must_be_bool() {
        let (error, covered) = one_error(" (account.employees + 1) ");
        assert_eq!(
            (error.code, covered),
            (CEL_TYPE_MISMATCH, "(account.employees + 1)")
        );
        assert_eq!(error.message, "the expression must be `bool`, found `int`");
        let (_, errors) = check(
            "account.employees",
            &env(),
            &Scope::account(),
            Some(&Type::Double),
        );
        assert!(errors.is_empty(), "int where double is expected");
        let (_, errors) = check("account.name", &env(), &Scope::account(), Some(&Type::Int));
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn one_mistake_gives_one_error() {
        one_error("lower(account.employes).size() + 1 > 2 && [1][0] in [1]");
        one_error("size(account.peple.filter(p, p.x.y == 1)) > 2");
        one_error("nope(account.name) == 3");
    }

    #[test]
    fn unknown_functions_and_arity() {
        let (error, covered) = one_error("account.updatedAt > now - day(30)");
        assert_eq!((error.code, covered), (UNKNOWN_FUNCTION, "day(30)"));
        assert_eq!(error.help.as_deref(), Some("did you mean `days`?"));
        let (error, covered) = one_error("days(1, 2) > duration(\"1h\")");
        assert_eq!((error.code, covered), (UNKNOWN_FUNCTION, "days(1, 2)"));
        assert_eq!(error.message, "`days` takes 1 argument, found 2");
        let (error, covered) = one_error("account.name.lower() == \"x\"");
        assert_eq!(
            (error.code, covered),
            (UNKNOWN_FUNCTION, "account.name.lower()")
        );
        assert_eq!(error.help.as_deref(), Some("write `lower(x)`"));
        let (error, _) = one_error("trim(account.name) == \"x\"");
        assert_eq!(error.code, UNKNOWN_FUNCTION);
        let (error, covered) = one_error("days(\"3\") > hours(1)");
        assert_eq!((error.code, covered), (CEL_TYPE_MISMATCH, "\"3\""));
    }

    #[test]
    fn closed_domains_are_checked_at_the_literal() {
        let (error, covered) = one_error("account.industry == \"Sofware\"");
        assert_eq!((error.code, covered), (VALUE_OUTSIDE_DOMAIN, "\"Sofware\""));
        assert_eq!(error.help.as_deref(), Some("did you mean `Software`?"));
        let (error, covered) = one_error("\"Fintek\" != account.industry");
        assert_eq!((error.code, covered), (VALUE_OUTSIDE_DOMAIN, "\"Fintek\""));
        let (error, covered) = one_error("account.industry in [\"Software\", \"Retail\"]");
        assert_eq!((error.code, covered), (VALUE_OUTSIDE_DOMAIN, "\"Retail\""));
        assert_eq!(
            error.help.as_deref(),
            Some("the values of `account.industry` are `Software`, `Fintech`, `Healthcare`")
        );
        let (error, _) = one_error("account.people.exists(p, p.emailConsent == \"yes\")");
        assert_eq!(error.message, "`yes` is not a value of `p.emailConsent`");
        ok("account.industry == \"Healthcare\" && account.name == \"Sofware\"");
    }

    #[test]
    fn audience_references_must_exist() {
        let (error, covered) = one_error("in_audience(\"B2B_IPC\")");
        assert_eq!((error.code, covered), (UNKNOWN_AUDIENCE_REF, "\"B2B_IPC\""));
        assert_eq!(error.help.as_deref(), Some("did you mean `B2B_ICP`?"));
    }

    #[test]
    fn interpreted_literals_are_validated() {
        for (text, covered) in [
            ("account.name.matches(\"(VP\")", "\"(VP\""),
            ("matches(account.name, \"[a-\")", "\"[a-\""),
            (
                "account.updatedAt > timestamp(\"2026-13-01\")",
                "\"2026-13-01\"",
            ),
            ("duration(\"3 days\") > days(1)", "\"3 days\""),
            ("b\"abc\" == b\"abc\"", "b\"abc\""),
        ] {
            let (_, errors) = rule(text);
            let first = errors.first().unwrap_or_else(|| panic!("{text}: no error"));
            assert_eq!(
                (first.code, &text[first.range.clone()]),
                (INVALID_LITERAL, covered),
                "{text}"
            );
        }
    }

    #[test]
    fn syntax_errors_are_positioned() {
        for (text, covered) in [
            ("account.employees >= ", " "),
            ("account.employees >=", "="),
            ("\"é\" + a.é(", "é"),
            ("a.exists(1, p)", "1"),
            ("has(account)", "a"),
            ("1 +\n  + ) ", "+"),
            ("", ""),
        ] {
            let (checked, errors) = rule(text);
            assert!(checked.is_none());
            assert_eq!(errors.len(), 1, "{text}");
            assert_eq!(errors[0].code, CEL_SYNTAX);
            assert_eq!(
                &text[errors[0].range.clone()],
                covered,
                "{text}: {:?}",
                errors[0]
            );
        }
    }

    #[test]
    fn every_code_is_exercised() {
        let codes: std::collections::BTreeSet<&str> = [
            "account.employees >=",
            "account.x",
            "1 + \"a\"",
            "f(1)",
            "account.industry == \"x\"",
            "in_audience(\"x\")",
            "account.name.matches(\"(\")",
            "now - days(9999999999999) < now",
            "account.name.matches(\"(a{1000}){1000}\")",
            "account.employees / 0 > 1",
            // A0215: deeper than the depth bound.
            "1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 > 0",
        ]
        .into_iter()
        .flat_map(|text| rule(text).1)
        .map(|e| e.code.as_str())
        .collect();
        let all: std::collections::BTreeSet<&str> = crate::diag::codes::cel::CODES
            .iter()
            .map(|c| c.code)
            .collect();
        assert_eq!(codes, all);
    }

    /// Mutations of valid expressions (truncations, deletions, insertions of
    /// awkward characters) never make `check` panic, and ranges stay inside
    /// the text on char boundaries.
    #[test]
    fn never_panics_on_mutated_input() {
        let seeds = [
            "account.industry in [\"Software\", \"Fintech\"] && account.employees >= 1000",
            "account.people.exists(p, p.jobTitle.matches(\"(?i)\\\\b(VP|Chief)\\\\b\"))",
            "size(account.people.filter(p, p.emailOpens.exists(e, e.occurredAt > now - days(30)))) > 2",
            "account.engagementScore >= 5 ? \"high\" : {\"a\": [1, 2.0]}[\"a\"][0] > 1 ? \"m\" : \"low\"",
            "in_audience(\"B2B_ICP\") && has(person.account.name) && -1 < int(\"2\") % 3",
        ];
        let inserts = [
            "(", ")", "[", "]", "{", "}", "\"", "'", ".", ",", "é", "\\", "?", ":", "!", "-", "`",
            "\n", "0x", "in ", "&&",
        ];
        let env = env();
        let scope = Scope::person();
        let mut runs = 0;
        let check_one = |text: &str| {
            for expected in [None, Some(&Type::Bool)] {
                let (_, errors) = check(text, &env, &scope, expected);
                for e in errors {
                    assert!(
                        e.range.start <= e.range.end && e.range.end <= text.len(),
                        "{text:?}: {e:?}"
                    );
                    assert!(
                        text.is_char_boundary(e.range.start) && text.is_char_boundary(e.range.end),
                        "{text:?}"
                    );
                }
            }
        };
        for seed in seeds {
            let boundaries: Vec<usize> = seed
                .char_indices()
                .map(|(i, _)| i)
                .chain([seed.len()])
                .collect();
            for (n, &at) in boundaries.iter().enumerate() {
                // Truncate, delete one char, and insert a troublesome token.
                check_one(&seed[..at]);
                if let Some(&next) = boundaries.get(n + 1) {
                    check_one(&format!("{}{}", &seed[..at], &seed[next..]));
                }
                let insert = inserts[n % inserts.len()];
                check_one(&format!("{}{insert}{}", &seed[..at], &seed[at..]));
                runs += 3;
            }
        }
        assert!(runs > 500);
    }
}
