//! `accord report` without a browser: what the page holds, that it loads
//! nothing from elsewhere, that user text is escaped, where audience sizes
//! come from, and what bad input gives. `tests/report_browser.rs` loads the
//! page in headless Chromium.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/project.rs"]
mod project;

use std::path::Path;
use std::process::Output;

use accord::run::report::{RunReport, RunStatus};

const TODAY: &str = "2026-11-30";

/// `accord report DIR --today TODAY --out DIR/report.html ARGS`, and the page.
fn report(dir: &Path, extra: &[&str]) -> (Output, Option<String>) {
    let out = dir.join("report.html");
    let _ = std::fs::remove_file(&out);
    let mut args = vec!["report", ".", "--today", TODAY, "--out", "report.html"];
    args.extend_from_slice(extra);
    let output = cli::accord_in(dir, &args);
    (output, std::fs::read_to_string(out).ok())
}

#[test]
fn the_page_loads_nothing_from_elsewhere_and_is_the_same_every_time() {
    let dir = project::scratch("report-self-contained");
    let (output, page) = report(dir.path(), &[]);
    assert!(output.status.success(), "{}", cli::printed(&output));
    let page = page.expect("the page is written");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("crossings") && said.contains("report.html"),
        "{said}"
    );
    // The SVG namespace is a name the script creates elements in, never fetched.
    let without_namespace = page.replace("\"http://www.w3.org/2000/svg\"", "");
    for outside in [
        "src=", "<link", "@import", "http://", "https://", "url(/", "url(h",
    ] {
        assert!(
            !without_namespace.contains(outside),
            "the page names `{outside}`"
        );
    }
    // Links stay on the page (filters in the fragment).
    assert!(
        page.match_indices("href=\"")
            .all(|(at, _)| page[at + 6..].starts_with('#'))
    );
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    let (_, again) = report(dir.path(), &[]);
    assert_eq!(again.as_deref(), Some(page.as_str()), "the same bytes");
}

#[test]
fn user_text_is_escaped_everywhere() {
    let dir = project::scratch("report-escaping");
    let edit = |file: &str, from: &str, to: &str| {
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).expect("spec file");
        assert!(text.contains(from), "{file} holds {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    };
    edit(
        "accord.toml",
        "name   = \"northwind\"",
        "name = \"<script>alert('project')</script>\"",
    );
    edit(
        "governance/waivers.toml",
        "owner      = \"privacy@northwind.example\"",
        "owner      = \"<img src=x onerror=alert('owner')>\"",
    );
    edit(
        "governance/waivers.toml",
        "reason     = \"",
        "reason     = \"</td><script>alert('reason')</script> ",
    );
    let (output, page) = report(dir.path(), &[]);
    assert!(output.status.success(), "{}", cli::printed(&output));
    let page = page.expect("the page is written");
    assert!(
        !page.contains("<script>alert"),
        "a user's script tag is markup"
    );
    assert!(!page.contains("<img"));
    assert!(page.contains("&lt;script&gt;alert(&#x27;project&#x27;)&lt;&#x2F;script&gt;"));
    // The waiver's owner and reason are in the rows' data, `<` and `>`
    // written as `\u` escapes, and read back whole.
    assert!(page.contains("\\u003cimg src=x onerror=alert('owner')\\u003e"));
    assert!(page.contains("\\u003c/td\\u003e\\u003cscript\\u003ealert('reason')"));
    let waiver = &row_data(&page)["waivers"][0];
    assert_eq!(waiver["owner"], "<img src=x onerror=alert('owner')>");
    assert!(
        waiver["reason"]
            .as_str()
            .expect("a reason")
            .starts_with("</td><script>alert('reason')</script> ")
    );
    // The page's own script is the only one, beside the pictures' and the
    // rows' data.
    assert_eq!(page.matches("<script>").count(), 1);
    assert_eq!(page.matches("<script").count(), 3);
}

/// Names cannot hold `<` in a spec (A0010), but a page is only as safe as
/// its template: the same plan with hostile names in every slot.
#[test]
fn hostile_names_in_the_plan_are_escaped_in_every_slot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = accord::compile::Options {
        environment: None,
        today: accord::compile::parse_date(TODAY),
        evaluate_drafts: false,
    };
    let compiled = accord::compile::check(&root, &options).expect("specs load");
    let mut plan = accord::compile::plan(&compiled).expect("specs have a plan");
    let mut verdicts = compiled.verdicts.clone().expect("verdicts");
    let hostile = |what: &str| format!("<script>alert('{what}')</script>");
    rename(
        &mut plan.activations,
        "partner_contoso_s3",
        hostile("activation"),
    );
    rename(
        &mut verdicts.activations,
        "partner_contoso_s3",
        hostile("activation"),
    );
    rename(
        &mut plan.audiences,
        "B2B_Intent_Surging",
        hostile("audience"),
    );
    for a in plan.activations.values_mut() {
        if a.destination == "marketo" {
            a.destination = hostile("destination");
        }
    }
    rename(&mut plan.destinations, "marketo", hostile("destination"));
    let field = plan
        .schemas
        .get_mut("account")
        .and_then(|s| s.fields.remove("techStack"))
        .expect("account.techStack");
    plan.schemas
        .get_mut("account")
        .expect("account")
        .fields
        .insert(hostile("field"), field);
    let report = accord::report::render(&accord::report::Inputs {
        plan: &plan,
        verdicts: &verdicts,
        waivers: accord::report::waivers(compiled.model.as_ref().expect("model"), None),
        today: None,
        last_run: None,
        generator: "accord test",
    })
    .expect("the page renders");
    assert!(!report.html.contains("<script>alert"), "escaped");
    // In the rows' data (JSON escaped by `\u`), which the script writes
    // only as text.
    for what in ["activation", "audience", "destination"] {
        let escaped = format!("\\u003cscript\\u003ealert('{what}')\\u003c/script\\u003e");
        assert!(
            report.html.contains(&escaped),
            "{what} is in the data, escaped"
        );
    }
}

/// The rows the page's script renders, from the page's `row-data` block.
fn row_data(page: &str) -> serde_json::Value {
    let start = "<script type=\"application/json\" id=\"row-data\">";
    let at = page.find(start).expect("the row data") + start.len();
    serde_json::from_str(&page[at..at + page[at..].find("</script>").expect("its end")])
        .expect("the row data is JSON")
}

fn rename<T>(map: &mut std::collections::BTreeMap<String, T>, from: &str, to: String) {
    let value = map.remove(from).expect("the name exists");
    map.insert(to, value);
}

fn run_line(id: &str, now: &str, sizes: &[(&str, u64)], status: RunStatus) -> String {
    let report = RunReport {
        run_id: id.into(),
        status,
        project: "northwind".into(),
        now: now.into(),
        audiences: sizes.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
        ..RunReport::default()
    };
    serde_json::to_string(&report).expect("a run report serialises")
}

#[test]
fn sizes_come_from_the_last_run_that_recorded_them() {
    let dir = project::scratch("report-sizes");
    let (_, page) = report(dir.path(), &[]);
    let page = page.expect("the page is written");
    assert!(page.contains("<b id=\"last-run\">no run yet</b>"));
    let data = row_data(&page);
    assert_eq!(data["has_run"], false, "audience rows say `no run yet`");
    assert!(data["audiences"][0]["size"].is_null());

    std::fs::create_dir_all(dir.path().join(".accord")).expect(".accord");
    let log = [
        run_line(
            "20261128T120000Z-old",
            "2026-11-28T12:00:00Z",
            &[("B2B_ABM_Top", 7)],
            RunStatus::Completed,
        ),
        run_line(
            "20261129T120000Z-good",
            "2026-11-29T12:00:00Z",
            &[
                ("B2B_ABM_Top", 4242),
                ("B2B_Engagement_Tiers", 300),
                ("B2B_Engagement_Tiers.high", 31),
            ],
            RunStatus::Completed,
        ),
        // A run that failed before evaluating records no sizes.
        run_line(
            "20261130T120000Z-failed",
            "2026-11-30T12:00:00Z",
            &[],
            RunStatus::Failed,
        ),
        "{a line a crash cut short".to_string(),
    ]
    .join("\n");
    std::fs::write(dir.path().join(".accord/runs.jsonl"), log + "\n").expect("log");
    let (output, page) = report(dir.path(), &[]);
    assert!(output.status.success(), "{}", cli::printed(&output));
    let page = page.expect("the page is written");
    assert!(
        page.contains("run 20261129T120000Z-good at 2026-11-29T12:00:00Z"),
        "the last run with sizes"
    );
    // The rows are data the page's script renders (`tests/report_browser.rs`
    // loads them in a browser): a size, or `null` for `–`.
    let data = row_data(&page);
    assert_eq!(data["has_run"], true);
    let audience = |name: &str| {
        data["audiences"]
            .as_array()
            .expect("audience rows")
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("a row for {name}"))
            .clone()
    };
    assert_eq!(audience("B2B_ABM_Top")["size"], 4242);
    let parts = audience("B2B_Engagement_Tiers")["parts"].clone();
    assert!(
        parts
            .as_array()
            .expect("parts")
            .contains(&serde_json::json!({"name": "high", "size": 31})),
        "{parts}"
    );
    assert!(
        audience("B2B_Exec_Related")["size"].is_null(),
        "not in the last run: no number"
    );
}

#[test]
fn a_project_with_errors_has_no_report() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/A0103_unknown_field_label");
    let temp = project::copy_of("tests/fixtures/A0103_unknown_field_label", "report-errors");
    assert!(fixture.is_dir());
    let (output, page) = report(temp.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", cli::printed(&output));
    assert!(page.is_none(), "nothing written");
    let said = cli::printed(&output);
    assert!(
        said.contains("A0103") && said.contains("has errors"),
        "{said}"
    );
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let dir = project::scratch("report-usage");
    let (output, _) = report(dir.path(), &["--env", "staging"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(cli::printed(&output).contains("unknown environment `staging`"));

    let output = cli::accord_in(
        dir.path(),
        &[
            "report",
            ".",
            "--today",
            TODAY,
            "--out",
            "missing/folder/report.html",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(cli::printed(&output).contains("cannot write missing/folder/report.html"));

    let output = cli::accord_in(
        dir.path(),
        &["report", ".", "--today", "soon", "--out", "r.html"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(cli::printed(&output).contains("`--today soon` is not a date"));

    let output = cli::accord_in(dir.path(), &["report", "."]);
    assert_eq!(output.status.code(), Some(2), "--out is required");
}
