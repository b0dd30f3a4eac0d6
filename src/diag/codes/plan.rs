//! `P` codes: activation checks, plan and guardrails.

declare_codes! {
    TOO_MANY_AUDIENCES = "P0001", Error, "the project exceeds the audience guardrail";
    NESTING_TOO_DEEP = "P0002", Error, "audiences nest deeper than the guardrail";
    TOO_MANY_DEFINITIONS = "P0003", Error, "the project exceeds a destination, activation or field guardrail";
}
