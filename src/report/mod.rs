//! `accord report`: the plan as one self-contained HTML page.
//!
//! Input: the compiled [`Plan`], the governance [`Verdicts`] it was built
//! from (the labels each violated or waived policy blames), the project's
//! waivers, the audience sizes of the last run (when there is one) and the
//! date waivers were judged on. Output: the page, a string. Pure: the CLI
//! reads the run log and writes the file.
//!
//! The page is made of the tera template and the CSS and JavaScript under
//! `templates/report/`, built into the binary; it loads nothing (no
//! network, no fonts, no scripts from elsewhere). Every value a user wrote
//! is escaped by the template (tera escapes `.html` templates). The lineage
//! pictures and the rows of the tables travel as JSON in data blocks
//! (escaped by [`script_json`]); the script draws the picture shown as
//! inline SVG and renders the rows a page at a time (more on scroll), the
//! filters and the search acting on the data. It writes names only through
//! the DOM (`textContent`, `setAttribute`), never as markup: a thousand
//! pictures of SVG markup would take seconds to parse, and 4,000 audience
//! rows as markup most of a second.
//!
//! - [`lineage`]: the graph field -> computed attribute -> audience ->
//!   activation -> destination, with the verdicts its edges carry;
//! - [`layered`]: the layered layout of a picture and its crossing count;
//! - [`picture`]: one laid-out picture as the template draws it;
//! - [`page`]: everything else on the page, as rows.

pub mod layered;
pub mod lineage;
pub mod page;
pub mod picture;

use crate::govern::Verdicts;
use crate::plan::Plan;
use crate::resolve::Model;
use crate::run::history::LastSizes;

const TEMPLATE: &str = include_str!("../../templates/report/report.html.tera");
const STYLE: &str = include_str!("../../templates/report/report.css");
const SCRIPT: &str = include_str!("../../templates/report/report.js");

pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub verdicts: &'a Verdicts,
    pub waivers: Vec<WaiverInfo>,
    /// The date waivers were judged on.
    pub today: Option<toml::value::Date>,
    pub last_run: Option<LastSizes>,
    /// `accord VERSION`, for the page's footer.
    pub generator: &'a str,
}

/// A waiver as the page lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct WaiverInfo {
    pub name: String,
    pub policy: String,
    pub activation: String,
    pub owner: String,
    pub reason: String,
    pub expires: Option<String>,
    /// Days from the judging date to the expiry date.
    pub days_left: Option<i64>,
}

/// The rendered page and what the CLI says about it.
#[derive(Clone, Debug)]
pub struct Report {
    pub html: String,
    /// `whole` or `per-activation`.
    pub lineage_mode: &'static str,
    pub pictures: usize,
    /// Crossings of the pictures, summed.
    pub crossings: usize,
}

pub fn render(inputs: &Inputs<'_>) -> Result<Report, String> {
    let lineage = lineage::build(inputs.plan, inputs.verdicts);
    let page = page::build(inputs, &lineage);
    let mut tera = tera::Tera::default();
    // `.html` templates are escaped by default: every `{{ value }}`.
    tera.add_raw_template("report.html", TEMPLATE)
        .map_err(|e| format!("the report template does not parse: {e:?}"))?;
    let mut context = tera::Context::from_serialize(&page)
        .map_err(|e| format!("the report data does not serialise: {e}"))?;
    let crossings: usize = page.pictures.iter().map(|p| p.picture.crossings).sum();
    context.insert("crossings", &crossings);
    context.insert("has_run", &page.last_run.is_some());
    context.insert("pictures_json", &script_json(&page.pictures)?);
    context.insert("rows_json", &script_json(&page.rows())?);
    context.insert("waiver_count", &page.waivers.len());
    context.insert("style", STYLE);
    context.insert("script", SCRIPT);
    context.insert("script_hash", &script_hash());
    let html = tera
        .render("report.html", &context)
        .map_err(|e| format!("the report does not render: {e:?}"))?;
    Ok(Report {
        html,
        lineage_mode: page.lineage_mode,
        pictures: page.pictures.len(),
        crossings,
    })
}

/// `value` as JSON that can sit inside a `<script>` element: `<`, `>` and
/// `&` are written as `\u` escapes, so no text a user wrote can close the
/// element or open a comment.
fn script_json(value: &impl serde::Serialize) -> Result<String, String> {
    let json = serde_json::to_string(value)
        .map_err(|e| format!("the report's data does not serialise: {e}"))?;
    Ok(json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

/// The Content-Security-Policy source of the page's one script: only that
/// script runs, so markup that escaped escaping still could not run one.
fn script_hash() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(SCRIPT.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The project's waivers, with days left before each expires on `today`.
pub fn waivers(model: &Model, today: Option<toml::value::Date>) -> Vec<WaiverInfo> {
    let value = |v: &Option<crate::syntax::Sp<String>>| {
        v.as_ref().map(|s| s.value.clone()).unwrap_or_default()
    };
    let civil = |d: toml::value::Date| {
        chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
    };
    let mut out: Vec<WaiverInfo> = model
        .syntax
        .waivers
        .iter()
        .map(|w| {
            let expires = w.expires.as_ref().map(|e| e.value);
            WaiverInfo {
                name: w.name.value.clone(),
                policy: value(&w.policy),
                activation: value(&w.activation),
                owner: value(&w.owner),
                reason: value(&w.reason),
                expires: expires.map(|e| e.to_string()),
                days_left: expires
                    .and_then(civil)
                    .zip(today.and_then(civil))
                    .map(|(e, t)| (e - t).num_days()),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
