//! `A` codes: the structure of spec files and references between them.

declare_codes! {
    TOML_SYNTAX = "A0001", Error, "the file is not valid TOML";
    UNKNOWN_KIND = "A0002", Error, "a top-level table is not a spec kind";
    UNKNOWN_KEY = "A0003", Warning, "a key is not part of the spec language";
    WRONG_TYPE = "A0004", Error, "a value has the wrong TOML type";
    MISSING_KEY = "A0005", Error, "a required key is missing";
    INVALID_VALUE = "A0006", Error, "a value is not one of the allowed choices or forms";
    DUPLICATE_NAME = "A0007", Error, "a name is defined twice";
    UNSUPPORTED_FORMAT = "A0008", Error, "the project format is not supported";
    MISPLACED_TABLE = "A0009", Error, "project settings outside accord.toml";
    INVALID_NAME = "A0010", Error, "a definition name is not allowed";
    PATH_LEAVES_PROJECT = "A0011", Warning, "a relative path climbs out of the project with `..`";
    REFERENCE_NOT_ALLOWED = "A0012", Error, "a setting that must be written out is a reference";
    UNREADABLE_LINK = "A0013", Error, "a symbolic link in the project points to nothing";
    LINK_LOOP = "A0014", Warning, "a symbolic link leads back into a folder it is in";
    UNKNOWN_SCHEMA = "A0101", Error, "a reference names no schema";
    UNKNOWN_FIELD = "A0102", Error, "a reference names no field of the schema";
    UNKNOWN_LABEL = "A0103", Error, "a reference names no label";
    UNKNOWN_ACTION = "A0104", Error, "a reference names no marketing action";
    UNKNOWN_AUDIENCE = "A0105", Error, "a reference names no audience";
    UNKNOWN_DESTINATION = "A0106", Error, "a reference names no destination";
    UNKNOWN_POLICY = "A0107", Error, "a reference names no policy";
    UNKNOWN_ACTIVATION = "A0108", Error, "a reference names no activation";
    UNKNOWN_DESTINATION_TYPE = "A0109", Error, "a destination type is not in the catalog";
    LITERAL_CREDENTIAL = "A0110", Error, "a credential is written as a literal";
    INVALID_LINK = "A0111", Error, "a schema link is inconsistent";
    INVALID_ENDPOINT = "A0112", Error, "a destination URL is not https (http only on loopback) or not a plain absolute URL";
    RATE_LIMIT_RAISED = "A0113", Error, "a destination's rate_limit is above its type's";
    UNUSED_LIST_PIN = "A0114", Warning, "a pinned list names an audience no activation sends to the destination";
    INVALID_AUDIENCE_FIELD = "A0125", Error, "a Salesforce audience field is not a valid custom field name";
    UNMAPPED_EXTERNAL_ID = "A0126", Error, "an activation to a Salesforce destination does not map its external_id";
    INVALID_BULK_THRESHOLD = "A0127", Error, "a Salesforce bulk_threshold is below 1";
    COMPUTED_CYCLE = "A0301", Error, "computed attributes depend on each other in a cycle";
    AUDIENCE_CYCLE = "A0302", Error, "audiences reference each other in a cycle";
    NESTED_COMPOSITION = "A0303", Error, "a composed audience feeds another composition";
    RULE_AND_COMPOSE = "A0304", Error, "an audience has both a rule and a composition";
    INVALID_COMPOSITION = "A0305", Error, "a composition block is inconsistent";
    NEEDS_BATCH = "A0306", Error, "streaming evaluation asked for a rule that needs batch";
    AUDIENCE_NAMING = "A0307", Warning, "an audience name breaks the project's naming convention";
}
