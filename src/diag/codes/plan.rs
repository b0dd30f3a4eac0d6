//! `P` codes: guardrails (`P00xx`) and activation checks (`P01xx`);
//! render's codes are `P02xx`, in `render.rs`.

declare_codes! {
    TOO_MANY_AUDIENCES = "P0001", Error, "the project exceeds the audience guardrail";
    NESTING_TOO_DEEP = "P0002", Error, "audiences nest deeper than the guardrail";
    TOO_MANY_DEFINITIONS = "P0003", Error, "the project exceeds a destination, activation or field guardrail";
    SCHEDULE_NOT_ALLOWED = "P0101", Error, "the schedule is not valid or not allowed for the destination type";
    EXPORT_NOT_ALLOWED = "P0102", Error, "the export mode is not allowed for the destination type or schedule";
    ROWS_MISMATCH = "P0103", Error, "the activation's rows do not match the destination (account or person)";
    UNKNOWN_MAPPING_TARGET = "P0104", Error, "a mapping target does not exist on the destination";
    MISSING_COLUMN = "P0105", Error, "an identity or required column is not mapped";
    WRONG_HASHING = "P0106", Error, "an identity is mapped hashed where the type needs it raw, or raw where it needs a hash";
    MIXED_IDENTITIES = "P0107", Error, "two identities the type never takes together are mapped in one flow";
    DATAFLOW_LIMIT = "P0108", Error, "an activation exceeds a per-dataflow limit of its destination type";
    DESTINATION_LIMIT = "P0109", Error, "a destination receives more audiences than its type allows";
    AUDIENCE_FIELD_TWICE = "P0110", Error, "an audience is sent to one CRM destination by two activations";
    FIELD_OVERWRITTEN = "P0111", Warning, "two activations write one Marketo lead field with different mappings";
}
