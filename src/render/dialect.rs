//! SQL dialects: the few details in which the engines accord renders for
//! differ. The lowering (`lower`, `query`) is shared and asks a `Dialect`
//! only for these details, so a construct lowers the same way everywhere.
//!
//! Input: SQL fragments built by the lowering. Output: SQL fragments in the
//! dialect. Pure string building; every method returns an expression that is
//! valid where a value expression of its kind is.

/// Where `now` enters the SQL: the run replaces this text with the
/// evaluation time (UTC, `YYYY-MM-DD HH:MM:SS`) before executing a job.
pub const NOW_PLACEHOLDER: &str = "@ACCORD_NOW@";

/// A SQL dialect accord renders for.
pub trait Dialect {
    /// The name used on the command line and in output paths.
    fn name(&self) -> &'static str;

    /// A quoted identifier.
    fn ident(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// A string literal.
    fn string(&self, value: &str) -> String {
        format!("'{}'", value.replace('\'', "''"))
    }

    /// The evaluation time as a timestamp value.
    fn now(&self) -> String {
        format!("TIMESTAMP '{NOW_PLACEHOLDER}'")
    }

    /// A timestamp literal from `YYYY-MM-DD HH:MM:SS`.
    fn timestamp(&self, text: &str) -> String {
        format!("TIMESTAMP '{text}'")
    }

    /// An interval of `n` units (`DAY`, `HOUR`).
    fn interval(&self, n: i64, unit: &str) -> String {
        format!("INTERVAL '{n}' {unit}")
    }

    /// The SQL type names of `string`, `int`, `double`.
    fn type_name(&self, cel_type: &str) -> &'static str {
        match cel_type {
            "int" => "BIGINT",
            "double" => "DOUBLE",
            _ => "VARCHAR",
        }
    }

    /// SHA-256 of a string, as lowercase hex.
    fn sha256_hex(&self, value: &str) -> String;

    /// An 8-digit lowercase hex string as an integer.
    fn hex8_to_int(&self, hex: &str) -> String {
        // Digit by digit: portable to any engine with STRPOS and SUBSTR.
        let digits: Vec<String> = (0..8)
            .map(|i| {
                format!(
                    "(STRPOS('0123456789abcdef', SUBSTR({hex}, {}, 1)) - 1) * {}",
                    i + 1,
                    16u64.pow(7 - i)
                )
            })
            .collect();
        format!("({})", digits.join(" + "))
    }

    /// `a % b` for integers.
    fn modulo(&self, a: &str, b: &str) -> String {
        format!("({a} % {b})")
    }

    /// Integer division truncating toward zero, as CEL's `/` on ints.
    fn int_div(&self, a: &str, b: &str) -> String {
        format!("CAST(TRUNC({a} / {b}) AS BIGINT)")
    }

    /// The part of an email address after `@`.
    fn email_domain(&self, email: &str) -> String {
        format!("SPLIT_PART({email}, '@', 2)")
    }

    /// A derived table of `(__key, __elem)`: one row per element of the list
    /// column `list` of `table`, keyed by the column `key`.
    fn unnest(&self, table: &str, key: &str, list: &str) -> String;

    fn starts_with(&self, s: &str, prefix: &str) -> String {
        format!("STARTS_WITH({s}, {prefix})")
    }

    fn ends_with(&self, s: &str, suffix: &str) -> String {
        format!("ENDS_WITH({s}, {suffix})")
    }

    fn contains(&self, s: &str, part: &str) -> String {
        format!("(STRPOS({s}, {part}) > 0)")
    }

    /// An RE2-style partial match, as CEL's `matches`.
    fn regex_match(&self, s: &str, pattern: &str) -> String;

    /// The digits of a string only.
    fn digits_only(&self, s: &str) -> String {
        format!("REGEXP_REPLACE({s}, '[^0-9]', '')")
    }

    /// The length of a string in characters.
    fn length(&self, s: &str) -> String {
        format!("LENGTH({s})")
    }
}

pub struct DuckDb;
pub struct DataFusion;
pub struct Spark;
pub struct BigQuery;
pub struct Snowflake;

impl Dialect for DuckDb {
    fn name(&self) -> &'static str {
        "duckdb"
    }
    fn sha256_hex(&self, value: &str) -> String {
        format!("SHA256({value})")
    }
    fn hex8_to_int(&self, hex: &str) -> String {
        format!("CAST(('0x' || {hex}) AS UBIGINT)")
    }
    fn int_div(&self, a: &str, b: &str) -> String {
        format!("CAST(TRUNC({a} / {b}) AS BIGINT)")
    }
    fn unnest(&self, table: &str, key: &str, list: &str) -> String {
        format!("(SELECT {key} AS __key, UNNEST({list}) AS __elem FROM {table})")
    }
    fn regex_match(&self, s: &str, pattern: &str) -> String {
        format!("REGEXP_MATCHES({s}, {pattern})")
    }
    fn digits_only(&self, s: &str) -> String {
        format!("REGEXP_REPLACE({s}, '[^0-9]', '', 'g')")
    }
}

impl Dialect for DataFusion {
    fn name(&self) -> &'static str {
        "datafusion"
    }
    fn interval(&self, n: i64, unit: &str) -> String {
        format!("INTERVAL '{n} {unit}S'")
    }
    fn int_div(&self, a: &str, b: &str) -> String {
        // Integer division already truncates toward zero.
        format!("({a} / {b})")
    }
    fn sha256_hex(&self, value: &str) -> String {
        format!("ENCODE(SHA256({value}), 'hex')")
    }
    fn unnest(&self, table: &str, key: &str, list: &str) -> String {
        format!("(SELECT {key} AS __key, UNNEST({list}) AS __elem FROM {table})")
    }
    fn regex_match(&self, s: &str, pattern: &str) -> String {
        format!("REGEXP_LIKE({s}, {pattern})")
    }
    fn digits_only(&self, s: &str) -> String {
        format!("REGEXP_REPLACE({s}, '[^0-9]', '', 'g')")
    }
}

impl Dialect for Spark {
    fn name(&self) -> &'static str {
        "spark"
    }
    fn ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }
    fn string(&self, value: &str) -> String {
        // Spark string literals treat backslash as an escape.
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    fn type_name(&self, cel_type: &str) -> &'static str {
        match cel_type {
            "int" => "BIGINT",
            "double" => "DOUBLE",
            _ => "STRING",
        }
    }
    fn sha256_hex(&self, value: &str) -> String {
        format!("SHA2({value}, 256)")
    }
    fn hex8_to_int(&self, hex: &str) -> String {
        format!("CAST(CONV({hex}, 16, 10) AS BIGINT)")
    }
    fn int_div(&self, a: &str, b: &str) -> String {
        format!("CAST({a} / {b} AS BIGINT)")
    }
    fn unnest(&self, table: &str, key: &str, list: &str) -> String {
        format!("(SELECT {key} AS __key, EXPLODE({list}) AS __elem FROM {table})")
    }
    fn starts_with(&self, s: &str, prefix: &str) -> String {
        format!("STARTSWITH({s}, {prefix})")
    }
    fn ends_with(&self, s: &str, suffix: &str) -> String {
        format!("ENDSWITH({s}, {suffix})")
    }
    fn contains(&self, s: &str, part: &str) -> String {
        format!("(INSTR({s}, {part}) > 0)")
    }
    fn regex_match(&self, s: &str, pattern: &str) -> String {
        format!("({s} RLIKE {pattern})")
    }
}

impl Dialect for BigQuery {
    fn name(&self) -> &'static str {
        "bigquery"
    }
    fn ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "\\`"))
    }
    fn string(&self, value: &str) -> String {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    fn interval(&self, n: i64, unit: &str) -> String {
        format!("INTERVAL {n} {unit}")
    }
    fn type_name(&self, cel_type: &str) -> &'static str {
        match cel_type {
            "int" => "INT64",
            "double" => "FLOAT64",
            _ => "STRING",
        }
    }
    fn sha256_hex(&self, value: &str) -> String {
        format!("TO_HEX(SHA256({value}))")
    }
    fn hex8_to_int(&self, hex: &str) -> String {
        format!("CAST(CONCAT('0x', {hex}) AS INT64)")
    }
    fn modulo(&self, a: &str, b: &str) -> String {
        format!("MOD({a}, {b})")
    }
    fn int_div(&self, a: &str, b: &str) -> String {
        format!("DIV({a}, {b})")
    }
    fn email_domain(&self, email: &str) -> String {
        format!("SPLIT({email}, '@')[SAFE_OFFSET(1)]")
    }
    fn unnest(&self, table: &str, key: &str, list: &str) -> String {
        format!("(SELECT {key} AS __key, __elem FROM {table} CROSS JOIN UNNEST({list}) AS __elem)")
    }
    fn regex_match(&self, s: &str, pattern: &str) -> String {
        format!("REGEXP_CONTAINS({s}, {pattern})")
    }
}

impl Dialect for Snowflake {
    fn name(&self) -> &'static str {
        "snowflake"
    }
    fn sha256_hex(&self, value: &str) -> String {
        format!("SHA2({value}, 256)")
    }
    fn hex8_to_int(&self, hex: &str) -> String {
        format!("TO_NUMBER({hex}, 'XXXXXXXX')")
    }
    fn int_div(&self, a: &str, b: &str) -> String {
        format!("TRUNC({a} / {b})")
    }
    fn unnest(&self, table: &str, key: &str, list: &str) -> String {
        format!(
            "(SELECT {key} AS __key, __f.VALUE::VARCHAR AS __elem FROM {table}, LATERAL FLATTEN(INPUT => {list}) __f)"
        )
    }
    fn starts_with(&self, s: &str, prefix: &str) -> String {
        format!("STARTSWITH({s}, {prefix})")
    }
    fn ends_with(&self, s: &str, suffix: &str) -> String {
        format!("ENDSWITH({s}, {suffix})")
    }
    fn contains(&self, s: &str, part: &str) -> String {
        format!("CONTAINS({s}, {part})")
    }
    fn regex_match(&self, s: &str, pattern: &str) -> String {
        // REGEXP_LIKE anchors the whole string; CEL's `matches` searches.
        format!("(REGEXP_INSTR({s}, {pattern}) > 0)")
    }
}

/// Every dialect, in output order.
pub fn all() -> Vec<Box<dyn Dialect>> {
    vec![
        Box::new(BigQuery),
        Box::new(DataFusion),
        Box::new(DuckDb),
        Box::new(Snowflake),
        Box::new(Spark),
    ]
}

/// The dialect named `name` on the command line.
pub fn by_name(name: &str) -> Option<Box<dyn Dialect>> {
    all().into_iter().find(|d| d.name() == name)
}

/// Every dialect name, for messages.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|d| d.name()).collect()
}
