//! `R0xxx` codes: problems found while running (`accord run`), in the data,
//! the run state or a delivery. They appear in the run report, each naming
//! its subject (source, activation, destination), with a location when one
//! is known (a data file and row, a spec file and line).
//!
//! `R00xx`: reading and typing the data, and alerts (`R0025`-`R0029`).
//! `R01xx`: state, locks and delivery.

declare_codes! {
    UNTERMINATED_QUOTE = "R0001", Error, "a quoted CSV field is never closed and swallows the lines after it";
    DANGLING_DATA_LINK = "R0002", Error, "a symbolic link among a source's files points to nothing";
    DATA_LINK_LOOP = "R0003", Error, "a symbolic link among a source's folders leads back into itself";
    FIELD_WITHOUT_DATA = "R0004", Warning, "a field the plan reads is in no source's data";
    UNKNOWN_COLUMN = "R0005", Warning, "a data file has a column or key that no field of its schema declares";
    SCHEMA_WITHOUT_SOURCE = "R0006", Error, "a schema the plan reads has no source";
    EMPTY_DATA_FILE = "R0007", Warning, "a data file holds no rows";
    DUPLICATE_HEADER = "R0008", Error, "a CSV header names a column twice";
    DUPLICATE_JSON_KEY = "R0009", Warning, "a JSON line holds a key twice";
    BAD_ROWS = "R0010", Warning, "rows of a source could not be read or typed and were left out";
    SOURCE_UNREACHABLE = "R0011", Error, "a source's bucket, database or API could not be reached or refused the credentials";
    SOURCE_STALE = "R0012", Error, "a stale source blocks the activations that read its schema";
    SOURCE_COLUMNS_MISMATCH = "R0013", Error, "a database source lacks a column of its schema, or holds it in a type that does not convert";
    UNKNOWN_ACTIVITY_TYPE = "R0014", Error, "a Marketo activity source names an activity type the instance does not have";
    APPEND_ONLY_CHANGED = "R0015", Warning, "a file an append-only source read before is gone, shrank, grew or was rewritten, or a new file comes before it";
    FUTURE_TIMESTAMPS = "R0020", Warning, "a source holds times later than the run's time in the fields its freshness reads";
    ALERT_NOT_SENT = "R0025", Warning, "a fired alert could not be sent to its webhook or Slack channel";
    ALERT_NOT_EVALUATED = "R0026", Warning, "an alert could not be evaluated: its target has no figure in this run";
    PATH_OUTSIDE_ROOT = "R0101", Error, "a path built from a name would leave its folder";
    PROJECT_LOCKED = "R0102", Error, "another run holds the project's lock";
    REMOVALS_HELD = "R0103", Error, "a delivery would remove more members than the activation allows";
    FOREIGN_STATE = "R0104", Error, "a state file belongs to another activation or format";
    LOG_PARTIAL_LINE = "R0105", Warning, "the run log ended in a partial line";
    DELIVERY_FAILED = "R0106", Error, "a delivery could not be written";
    RUN_FAILED = "R0107", Error, "the run stopped before its activations";
    ENGINE_FAILED = "R0108", Error, "the engine failed on an audience's or an activation's query";
    API_DELIVERY_FAILED = "R0109", Error, "a delivery to an API destination could not start";
    FILE_STORE_FAILED = "R0110", Error, "a bucket or SFTP server could not be reached or refused a file";
}
