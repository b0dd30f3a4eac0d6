//! SQL dialects: the few details in which the engines accord renders for
//! differ. The lowering (`lower`, `query`) is shared and asks a `Dialect`
//! only for these details, so a construct lowers the same way everywhere.
//!
//! Input: SQL fragments built by the lowering. Output: SQL fragments in the
//! dialect. Pure string building; every method returns an expression that is
//! valid where a value expression of its kind is.

/// Where `now` enters the SQL: the run replaces this text with the
/// evaluation time (UTC, `YYYY-MM-DD HH:MM:SS`) before executing a job.
/// The text around it says UTC in every dialect (`Dialect::timestamp`).
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
        self.timestamp(NOW_PLACEHOLDER)
    }

    /// The instant `text` (`YYYY-MM-DD HH:MM:SS[.f]`, UTC) as a timestamp.
    /// It says UTC itself: a bare `TIMESTAMP '...'` is read in the session
    /// time zone by Spark (and as a zone-less value by Snowflake), so a
    /// machine elsewhere would evaluate other windows. DuckDB and
    /// DataFusion read the `Z` and give the UTC wall-clock time, the
    /// zone-less timestamps their tables hold.
    fn timestamp(&self, text: &str) -> String {
        format!("TIMESTAMP '{text}Z'")
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

    /// `s` without leading and trailing ASCII whitespace (space, tab, line
    /// feed, form feed, carriage return: Rust's `trim_ascii`, the
    /// interpreter's). A bare `TRIM` takes spaces only in some engines and
    /// Unicode spaces in others; an email read from a CRLF file keeps its
    /// `\r` there and is hashed with it.
    fn trim(&self, s: &str) -> String {
        format!("TRIM({s}, {})", self.ascii_whitespace())
    }

    /// The characters `trim` removes, as a string expression.
    fn ascii_whitespace(&self) -> String {
        "(' ' || CHR(9) || CHR(10) || CHR(12) || CHR(13))".into()
    }

    /// `value` as `type_name`, NULL when it does not convert.
    fn try_cast(&self, value: &str, type_name: &str) -> String {
        format!("TRY_CAST({value} AS {type_name})")
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

    /// Integer division truncating toward zero, as CEL's `/` on ints;
    /// exact (no detour through a double, which loses digits above 2^53).
    fn int_div(&self, a: &str, b: &str) -> String {
        format!("CAST(TRUNC({a} / {b}) AS BIGINT)")
    }

    /// An int as an exact decimal wide enough for the product of two ints
    /// (38 digits), so integer arithmetic can detect overflow.
    fn wide_int(&self, v: &str) -> String {
        format!("CAST({v} AS DECIMAL(38, 0))")
    }

    /// The `n`th (1-based) part of `s` split at the literal `sep`; empty
    /// when there is no such part.
    fn split_part(&self, s: &str, sep: &str, n: u32) -> String {
        format!("SPLIT_PART({s}, {}, {n})", self.string(sep))
    }

    /// The part of an email address after `@`.
    fn email_domain(&self, email: &str) -> String {
        self.split_part(email, "@", 2)
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

    /// A literal `matches` pattern for this dialect's regex engine: as
    /// written where `\d`, `\w`, `\s` and `\b` are ASCII already (RE2,
    /// Java).
    fn regex_pattern(&self, pattern: &str) -> String {
        pattern.to_string()
    }

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
        // `/` divides as doubles in DuckDB; `//` truncates toward zero.
        format!("({a} // {b})")
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
    fn trim(&self, s: &str) -> String {
        format!("BTRIM({s}, {})", self.ascii_whitespace())
    }
    fn regex_pattern(&self, pattern: &str) -> String {
        // DataFusion's regexes are the Rust crate's, with Unicode classes.
        crate::semantics::eval::ascii_classes(pattern)
    }
    fn regex_match(&self, s: &str, pattern: &str) -> String {
        // DataFusion rewrites `REGEXP_LIKE` with a literal pattern into
        // `LIKE`, where a backslash of the literal becomes LIKE's escape
        // character (`k\\s` then matched "ks"). `REGEXP_INSTR` is not
        // rewritten; patterns without a backslash keep the fast path.
        if pattern.contains('\\') {
            format!("(REGEXP_INSTR({s}, {pattern}) > 0)")
        } else {
            format!("REGEXP_LIKE({s}, {pattern})")
        }
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
        // `/` divides as doubles in Spark; `DIV` truncates toward zero.
        format!("({a} DIV {b})")
    }
    fn unnest(&self, table: &str, key: &str, list: &str) -> String {
        format!("(SELECT {key} AS __key, EXPLODE({list}) AS __elem FROM {table})")
    }
    fn trim(&self, s: &str) -> String {
        format!("TRIM(BOTH {} FROM {s})", self.ascii_whitespace())
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
    fn timestamp(&self, text: &str) -> String {
        // BigQuery's literal takes a numeric offset (`Z` is not in its
        // canonical format).
        format!("TIMESTAMP '{text}+00:00'")
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
    fn try_cast(&self, value: &str, type_name: &str) -> String {
        format!("SAFE_CAST({value} AS {type_name})")
    }
    fn ascii_whitespace(&self) -> String {
        "CODE_POINTS_TO_STRING([32, 9, 10, 12, 13])".into()
    }
    fn wide_int(&self, v: &str) -> String {
        // NUMERIC keeps 9 of its 38 digits for the fraction.
        format!("CAST({v} AS BIGNUMERIC)")
    }
    fn split_part(&self, s: &str, sep: &str, n: u32) -> String {
        format!(
            "COALESCE(SPLIT({s}, {})[SAFE_OFFSET({})], '')",
            self.string(sep),
            n.saturating_sub(1)
        )
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
    fn string(&self, value: &str) -> String {
        // Snowflake string constants treat backslash as an escape.
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    }
    fn timestamp(&self, text: &str) -> String {
        // `TIMESTAMP '...'` is TIMESTAMP_NTZ under the default type mapping,
        // which drops an offset (a trailing `Z` included) and compares in
        // the session time zone: a TIMESTAMP_TZ with an explicit format is
        // the instant itself.
        let fraction = if text.contains('.') { ".FF" } else { "" };
        format!("TO_TIMESTAMP_TZ('{text} +00:00', 'YYYY-MM-DD HH24:MI:SS{fraction} TZH:TZM')")
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
