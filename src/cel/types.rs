//! The types of CEL values as accord's checker sees them.
//!
//! Input: schema field type names (`Type::parse`). Output: `Type`, displayed
//! the way users write types (`list<string>`). `Dyn` is both "any type" and
//! the type of an expression that already has an error: it unifies with
//! everything, so one mistake gives one diagnostic.

use std::fmt;

/// The type of a CEL expression.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Type {
    Bool,
    Int,
    Double,
    String,
    Timestamp,
    Duration,
    Null,
    List(Box<Type>),
    Map(Box<Type>, Box<Type>),
    /// A row of the named schema: `account`, `person`, `email_opened`.
    Entity(String),
    /// Unknown, or already wrong: accepted everywhere without a diagnostic.
    Dyn,
}

impl Type {
    /// The type of a schema field, as the spec writes it: `string`, `int`,
    /// `double`, `bool`, `timestamp` and `list<...>` of the scalar types.
    pub fn parse(text: &str) -> Option<Type> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix("list<").and_then(|t| t.strip_suffix('>')) {
            return match Type::parse(inner)? {
                elem @ (Type::String | Type::Int | Type::Double) => {
                    Some(Type::List(Box::new(elem)))
                }
                _ => None,
            };
        }
        match text {
            "string" => Some(Type::String),
            "int" => Some(Type::Int),
            "double" => Some(Type::Double),
            "bool" => Some(Type::Bool),
            "timestamp" => Some(Type::Timestamp),
            _ => None,
        }
    }

    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }

    pub fn is_dyn(&self) -> bool {
        matches!(self, Type::Dyn)
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Double)
    }

    /// Whether a value of this type can stand where `expected` is required.
    /// An int is accepted where a double is expected (the value converts
    /// losslessly for the magnitudes audiences deal with); `Dyn` on either
    /// side is accepted; null is accepted anywhere but a scalar number or bool.
    pub fn is_assignable_to(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Dyn, _) | (_, Type::Dyn) => true,
            (Type::Int, Type::Double) => true,
            (
                Type::Null,
                Type::String
                | Type::Timestamp
                | Type::Duration
                | Type::List(_)
                | Type::Map(..)
                | Type::Entity(_),
            ) => true,
            (Type::List(a), Type::List(b)) => a.is_assignable_to(b),
            (Type::Map(ka, va), Type::Map(kb, vb)) => {
                ka.is_assignable_to(kb) && va.is_assignable_to(vb)
            }
            (a, b) => a == b,
        }
    }

    /// The common type of two values that meet (list elements, the branches
    /// of `?:`), or `None` when they have nothing in common.
    pub fn unify(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Dyn, t) | (t, Type::Dyn) => Some(t.clone()),
            (Type::Null, t) | (t, Type::Null) => Some(t.clone()),
            (Type::Int, Type::Double) | (Type::Double, Type::Int) => Some(Type::Double),
            (Type::List(a), Type::List(b)) => Some(Type::list(a.unify(b)?)),
            (Type::Map(ka, va), Type::Map(kb, vb)) => {
                Some(Type::Map(Box::new(ka.unify(kb)?), Box::new(va.unify(vb)?)))
            }
            (a, b) if a == b => Some(a.clone()),
            _ => None,
        }
    }

    /// Whether `==` between the two types can ever be true: the same type,
    /// numbers of either kind, or null against anything.
    pub fn is_comparable_with(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Dyn, _) | (_, Type::Dyn) | (Type::Null, _) | (_, Type::Null) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (Type::List(a), Type::List(b)) => a.is_comparable_with(b),
            (Type::Map(ka, va), Type::Map(kb, vb)) => {
                ka.is_comparable_with(kb) && va.is_comparable_with(vb)
            }
            (a, b) => a == b,
        }
    }

    /// Whether `<`, `<=`, `>`, `>=` are defined between the two types.
    pub fn is_orderable_with(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Dyn, _) | (_, Type::Dyn) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (a, b) => {
                a == b
                    && matches!(
                        a,
                        Type::String | Type::Timestamp | Type::Duration | Type::Bool
                    )
            }
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Duration => f.write_str("duration"),
            Type::Null => f.write_str("null"),
            Type::List(elem) => write!(f, "list<{elem}>"),
            Type::Map(key, value) => write!(f, "map<{key}, {value}>"),
            Type::Entity(schema) => f.write_str(schema),
            Type::Dyn => f.write_str("dyn"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Type;

    #[test]
    fn parses_the_spec_field_types_only() {
        for text in [
            "string",
            "int",
            "double",
            "bool",
            "timestamp",
            "list<string>",
            "list<int>",
            "list<double>",
        ] {
            let ty = Type::parse(text).expect(text);
            assert_eq!(ty.to_string(), text);
        }
        for text in [
            "",
            "list<bool>",
            "list<list<int>>",
            "duration",
            "map<string, int>",
            "String",
            "list<int",
        ] {
            assert_eq!(Type::parse(text), None, "{text}");
        }
    }

    #[test]
    fn displays_entities_and_maps() {
        assert_eq!(
            Type::list(Type::Entity("person".into())).to_string(),
            "list<person>"
        );
        assert_eq!(
            Type::Map(Box::new(Type::String), Box::new(Type::Int)).to_string(),
            "map<string, int>"
        );
    }

    #[test]
    fn int_goes_where_double_is_expected_but_not_back() {
        assert!(Type::Int.is_assignable_to(&Type::Double));
        assert!(!Type::Double.is_assignable_to(&Type::Int));
        assert!(Type::list(Type::Int).is_assignable_to(&Type::list(Type::Double)));
        assert!(Type::Dyn.is_assignable_to(&Type::Bool));
        assert!(!Type::String.is_assignable_to(&Type::Bool));
    }

    #[test]
    fn unifies_numbers_null_and_dyn() {
        assert_eq!(Type::Int.unify(&Type::Double), Some(Type::Double));
        assert_eq!(Type::Null.unify(&Type::String), Some(Type::String));
        assert_eq!(Type::Dyn.unify(&Type::Bool), Some(Type::Bool));
        assert_eq!(Type::String.unify(&Type::Int), None);
    }

    #[test]
    fn orders_like_types_only() {
        assert!(Type::Int.is_orderable_with(&Type::Double));
        assert!(Type::Timestamp.is_orderable_with(&Type::Timestamp));
        assert!(!Type::Timestamp.is_orderable_with(&Type::Duration));
        assert!(!Type::list(Type::Int).is_orderable_with(&Type::list(Type::Int)));
    }
}
