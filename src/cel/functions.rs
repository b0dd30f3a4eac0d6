//! The functions a CEL expression may call: the part of the CEL standard
//! library accord supports, plus accord's own (`days`, `sum`, `in_audience`,
//! `hash_email`, ...).
//!
//! Input: a function name and call style. Output: its signature. The checker
//! owns the special cases that a signature cannot say (`in_audience` needs a
//! literal naming an audience; `matches`, `timestamp` and `duration` validate
//! literal arguments).

use super::types::Type;

/// How a function is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// `f(x, y)`.
    Global,
    /// `x.f(y)`: the receiver is the first parameter.
    Receiver,
    /// Either `f(x, y)` or `x.f(y)`.
    Both,
}

/// What an argument may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Int,
    String,
    /// A string, list or map: what `size` measures.
    Sized,
    /// A list of int or double.
    NumberList,
    /// A list of values with an order (numbers, strings, timestamps, durations).
    OrderedList,
    /// Anything `int()` converts: int, double, string, timestamp.
    ToInt,
    /// Anything `double()` converts: int, double, string.
    ToDouble,
    /// Any scalar that `string()` prints.
    Scalar,
    /// A string or a timestamp.
    ToTimestamp,
    /// A string or a duration.
    ToDuration,
}

impl Param {
    pub(crate) fn accepts(self, ty: &Type) -> bool {
        let elem_ok = |ok: fn(&Type) -> bool| match ty {
            Type::List(elem) => elem.is_dyn() || ok(elem),
            _ => false,
        };
        ty.is_dyn()
            || match self {
                Param::Int => *ty == Type::Int,
                Param::String => *ty == Type::String,
                Param::Sized => matches!(ty, Type::String | Type::List(_) | Type::Map(..)),
                Param::NumberList => elem_ok(Type::is_numeric),
                Param::OrderedList => elem_ok(|t| {
                    matches!(
                        t,
                        Type::Int | Type::Double | Type::String | Type::Timestamp | Type::Duration
                    )
                }),
                Param::ToInt => matches!(
                    ty,
                    Type::Int | Type::Double | Type::String | Type::Timestamp
                ),
                Param::ToDouble => matches!(ty, Type::Int | Type::Double | Type::String),
                Param::Scalar => {
                    matches!(
                        ty,
                        Type::Bool
                            | Type::Int
                            | Type::Double
                            | Type::String
                            | Type::Timestamp
                            | Type::Duration
                    )
                }
                Param::ToTimestamp => matches!(ty, Type::String | Type::Timestamp),
                Param::ToDuration => matches!(ty, Type::String | Type::Duration),
            }
    }

    /// What the parameter accepts, for messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Param::Int => "int",
            Param::String => "string",
            Param::Sized => "string, list or map",
            Param::NumberList => "list<int> or list<double>",
            Param::OrderedList => "list of numbers, strings, timestamps or durations",
            Param::ToInt => "int, double, string or timestamp",
            Param::ToDouble => "int, double or string",
            Param::Scalar => "bool, int, double, string, timestamp or duration",
            Param::ToTimestamp => "string or timestamp",
            Param::ToDuration => "string or duration",
        }
    }
}

/// The result type of a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Returns {
    Fixed(FixedType),
    /// The element type of the first argument (`max(list<int>)` is `int`).
    ElementOfFirst,
}

/// `Type` is not `Copy`; the scalar results a table can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FixedType {
    Bool,
    Int,
    Double,
    String,
    Timestamp,
    Duration,
}

impl FixedType {
    pub(crate) fn to_type(self) -> Type {
        match self {
            FixedType::Bool => Type::Bool,
            FixedType::Int => Type::Int,
            FixedType::Double => Type::Double,
            FixedType::String => Type::String,
            FixedType::Timestamp => Type::Timestamp,
            FixedType::Duration => Type::Duration,
        }
    }
}

/// One function: its name, call style, parameters (receiver first) and result.
#[derive(Debug)]
pub(crate) struct Function {
    pub(crate) name: &'static str,
    pub(crate) style: Style,
    pub(crate) params: &'static [Param],
    pub(crate) returns: Returns,
}

use FixedType as F;
use Param as P;
use Returns::{ElementOfFirst, Fixed};

const fn f(
    name: &'static str,
    style: Style,
    params: &'static [Param],
    returns: Returns,
) -> Function {
    Function {
        name,
        style,
        params,
        returns,
    }
}

/// Every function, sorted by name.
pub(crate) static FUNCTIONS: &[Function] = &[
    f(
        "contains",
        Style::Receiver,
        &[P::String, P::String],
        Fixed(F::Bool),
    ),
    f("days", Style::Global, &[P::Int], Fixed(F::Duration)),
    f("double", Style::Global, &[P::ToDouble], Fixed(F::Double)),
    f(
        "duration",
        Style::Global,
        &[P::ToDuration],
        Fixed(F::Duration),
    ),
    f(
        "endsWith",
        Style::Receiver,
        &[P::String, P::String],
        Fixed(F::Bool),
    ),
    f("hash_email", Style::Global, &[P::String], Fixed(F::String)),
    f("hash_phone", Style::Global, &[P::String], Fixed(F::String)),
    f("hours", Style::Global, &[P::Int], Fixed(F::Duration)),
    f("in_audience", Style::Global, &[P::String], Fixed(F::Bool)),
    f("int", Style::Global, &[P::ToInt], Fixed(F::Int)),
    f("lower", Style::Global, &[P::String], Fixed(F::String)),
    f(
        "lowerAscii",
        Style::Receiver,
        &[P::String],
        Fixed(F::String),
    ),
    f(
        "matches",
        Style::Both,
        &[P::String, P::String],
        Fixed(F::Bool),
    ),
    f("max", Style::Global, &[P::OrderedList], ElementOfFirst),
    f("min", Style::Global, &[P::OrderedList], ElementOfFirst),
    f("size", Style::Both, &[P::Sized], Fixed(F::Int)),
    f(
        "startsWith",
        Style::Receiver,
        &[P::String, P::String],
        Fixed(F::Bool),
    ),
    f("string", Style::Global, &[P::Scalar], Fixed(F::String)),
    f("sum", Style::Global, &[P::NumberList], ElementOfFirst),
    f(
        "timestamp",
        Style::Global,
        &[P::ToTimestamp],
        Fixed(F::Timestamp),
    ),
    f("trim", Style::Receiver, &[P::String], Fixed(F::String)),
    f(
        "upperAscii",
        Style::Receiver,
        &[P::String],
        Fixed(F::String),
    ),
];

pub(crate) fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Every function name, for suggestions.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

impl Function {
    /// How the function is written, for help texts: `size(x)` or `x.trim()`.
    pub(crate) fn usage(&self) -> String {
        let args = ["x", "y", "z"];
        let n = self.params.len().min(args.len());
        match self.style {
            Style::Receiver => format!("{}.{}({})", args[0], self.name, args[1..n].join(", ")),
            Style::Global | Style::Both => format!("{}({})", self.name, args[..n].join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FUNCTIONS, Param, lookup};
    use crate::cel::types::Type;

    #[test]
    fn the_table_is_sorted_and_unique() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(lookup("size").is_some() && lookup("sizee").is_none());
    }

    #[test]
    fn params_accept_what_they_describe() {
        assert!(Param::NumberList.accepts(&Type::list(Type::Double)));
        assert!(!Param::NumberList.accepts(&Type::list(Type::String)));
        assert!(Param::Sized.accepts(&Type::String));
        assert!(Param::Int.accepts(&Type::Dyn));
        assert!(!Param::Int.accepts(&Type::Double));
    }

    #[test]
    fn usage_shows_the_call_style() {
        assert_eq!(
            lookup("trim").map(|f| f.usage()).as_deref(),
            Some("x.trim()")
        );
        assert_eq!(
            lookup("days").map(|f| f.usage()).as_deref(),
            Some("days(x)")
        );
    }
}
