//! `A02xx` codes: CEL expressions in rules, computed attributes, mappings,
//! people filters and consent conditions.

declare_codes! {
    CEL_SYNTAX = "A0201", Error, "a CEL expression does not parse";
    UNKNOWN_CEL_FIELD = "A0202", Error, "a CEL expression names no field, collection or variable";
    CEL_TYPE_MISMATCH = "A0203", Error, "a CEL expression has the wrong type";
    UNKNOWN_FUNCTION = "A0204", Error, "a CEL expression calls an unknown function or passes the wrong number of arguments";
    VALUE_OUTSIDE_DOMAIN = "A0205", Error, "a CEL expression compares a closed-domain field with a value outside its domain";
    UNKNOWN_AUDIENCE_REF = "A0206", Error, "in_audience names no audience";
    INVALID_LITERAL = "A0207", Error, "a CEL literal is not a valid regex, timestamp or duration";
    LITERAL_OUT_OF_RANGE = "A0208", Error, "a CEL duration or timestamp literal is outside the range every engine evaluates";
    REGEX_TOO_LARGE = "A0209", Error, "a CEL regular expression compiles to more than the engines' size limit";
    DIVISION_BY_ZERO = "A0210", Warning, "a CEL expression divides by a literal zero";
    CEL_TOO_DEEP = "A0215", Error, "a CEL expression nests too deep to check safely";
}
