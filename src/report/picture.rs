//! One lineage picture: a set of lineage nodes laid out in layers
//! ([`super::layered`]) and turned into what the page's SVG template draws
//! (boxes, curves as SVG path data, column headings).
//!
//! Input: the [`Lineage`], the nodes to draw and the verdict of each edge.
//! Output: a [`Picture`], plain serialisable data. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::layered::{self, Point, Spacing};
use super::lineage::{EdgeVerdict, Kind, Lineage, Step};

/// Pixels per character of the node font (11px monospace) and the padding
/// inside a box.
const CHAR_WIDTH: f64 = 6.7;
const PADDING: f64 = 12.0;
/// Longer names are cut (with an ellipsis) in the box; the full name is in
/// the box's tooltip.
const MAX_CHARS: usize = 34;
/// Room above the boxes for the column headings.
const TOP: f64 = 26.0;
const MARGIN: f64 = 8.0;

/// A picture as the page's script draws it. The page carries every
/// picture as JSON (short keys: a 4,000-audience project has a thousand
/// pictures) and draws one when it is shown.
#[derive(Clone, Debug, Serialize)]
pub struct Picture {
    #[serde(rename = "w")]
    pub width: i64,
    #[serde(rename = "h")]
    pub height: i64,
    #[serde(rename = "x")]
    pub crossings: usize,
    #[serde(rename = "c")]
    pub columns: Vec<Column>,
    #[serde(rename = "n")]
    pub nodes: Vec<PictureNode>,
    #[serde(rename = "e")]
    pub edges: Vec<PictureEdge>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Column {
    pub x: i64,
    #[serde(rename = "l")]
    pub label: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct PictureNode {
    #[serde(rename = "k")]
    pub kind: &'static str,
    #[serde(rename = "n")]
    pub name: String,
    /// The name as shown in the box, when cut (long names).
    #[serde(rename = "s", skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    #[serde(rename = "l", skip_serializing_if = "String::is_empty")]
    pub labels: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PictureEdge {
    /// SVG path data.
    pub d: String,
    /// Indices of both ends in the picture's nodes.
    #[serde(rename = "f")]
    pub from: usize,
    #[serde(rename = "t")]
    pub to: usize,
    #[serde(rename = "s")]
    pub step: &'static str,
    #[serde(rename = "v", skip_serializing_if = "is_none")]
    pub verdict: &'static str,
    #[serde(rename = "p", skip_serializing_if = "String::is_empty")]
    pub parts: String,
}

fn is_none(verdict: &&str) -> bool {
    *verdict == EdgeVerdict::None.as_str()
}

/// Draws `nodes` of `lineage` (sorted node indices) with the edges between
/// them that `steps` admits; `verdicts` is per lineage edge.
pub fn draw(
    lineage: &Lineage,
    nodes: &[usize],
    steps: &dyn Fn(Step) -> bool,
    verdicts: &[EdgeVerdict],
) -> Picture {
    let local: BTreeMap<usize, usize> = nodes.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let shown: Vec<String> = nodes
        .iter()
        .map(|&n| shorten(&lineage.nodes[n].name))
        .collect();
    let layout_nodes: Vec<layered::Node> = nodes
        .iter()
        .zip(&shown)
        .map(|(&n, text)| layered::Node {
            band: lineage.nodes[n].kind as usize,
            width: text.chars().count() as f64 * CHAR_WIDTH + PADDING,
        })
        .collect();
    // The edges between drawn nodes, in the lineage's order.
    let mut edges: Vec<usize> = nodes
        .iter()
        .flat_map(|&n| &lineage.incoming[n])
        .copied()
        .filter(|&i| {
            let e = &lineage.edges[i];
            steps(e.step) && local.contains_key(&e.from)
        })
        .collect();
    edges.sort_unstable();
    let pairs: Vec<(usize, usize)> = edges
        .iter()
        .map(|&i| (local[&lineage.edges[i].from], local[&lineage.edges[i].to]))
        .collect();
    let spacing = Spacing::default();
    let layout = layered::layout(&layout_nodes, &pairs, &spacing);
    let shift = |p: Point| Point {
        x: p.x + MARGIN,
        y: p.y + TOP,
    };

    let mut columns: BTreeMap<Kind, i64> = BTreeMap::new();
    for (i, &n) in nodes.iter().enumerate() {
        let x = shift(layout.boxes[i]).x.round() as i64;
        let entry = columns.entry(lineage.nodes[n].kind).or_insert(x);
        *entry = (*entry).min(x);
    }
    Picture {
        width: (layout.width + 2.0 * MARGIN).ceil() as i64,
        height: (layout.height + TOP + MARGIN).ceil() as i64,
        crossings: layout.crossings,
        columns: columns
            .into_iter()
            .map(|(kind, x)| Column {
                x,
                label: plural(kind),
            })
            .collect(),
        nodes: nodes
            .iter()
            .zip(shown)
            .enumerate()
            .map(|(i, (&n, text))| {
                let at = shift(layout.boxes[i]);
                PictureNode {
                    kind: lineage.nodes[n].kind.as_str(),
                    name: lineage.nodes[n].name.clone(),
                    text: (text != lineage.nodes[n].name).then_some(text),
                    x: at.x.round() as i64,
                    y: at.y.round() as i64,
                    w: layout_nodes[i].width.round() as i64,
                    labels: lineage.nodes[n]
                        .labels
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" "),
                }
            })
            .collect(),
        edges: edges
            .iter()
            .zip(&layout.edges)
            .map(|(&i, points)| {
                let e = &lineage.edges[i];
                PictureEdge {
                    d: path(&points.iter().map(|&p| shift(p)).collect::<Vec<_>>()),
                    from: local[&e.from],
                    to: local[&e.to],
                    step: e.step.as_str(),
                    verdict: verdicts
                        .get(i)
                        .copied()
                        .unwrap_or(EdgeVerdict::None)
                        .as_str(),
                    parts: e.parts.join(" "),
                }
            })
            .collect(),
    }
}

fn plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Field => "fields",
        Kind::Computed => "computed attributes",
        Kind::Audience => "audiences",
        Kind::Activation => "activations",
        Kind::Destination => "destinations",
    }
}

fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_CHARS {
        return name.to_string();
    }
    let mut cut: String = name.chars().take(MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// SVG path data through `points`: points come in pairs across each gap
/// between columns (a curve with horizontal ends) and straight across a
/// column an edge passes through.
fn path(points: &[Point]) -> String {
    let mut d = String::new();
    let Some(first) = points.first() else {
        return d;
    };
    let _ = write!(d, "M{:.0} {:.0}", first.x, first.y);
    for (i, pair) in points.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        if i % 2 == 0 {
            let mid = (a.x + b.x) / 2.0;
            let _ = write!(
                d,
                "C{mid:.0} {:.0} {mid:.0} {:.0} {:.0} {:.0}",
                a.y, b.y, b.x, b.y
            );
        } else {
            let _ = write!(d, "L{:.0} {:.0}", b.x, b.y);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_curve_in_gaps_and_run_straight_through_columns() {
        let p = |x, y| Point { x, y };
        assert_eq!(
            path(&[p(0.0, 0.0), p(100.0, 40.0), p(150.0, 40.0), p(250.0, 10.0)]),
            "M0 0C50 0 50 40 100 40L150 40C200 40 200 10 250 10"
        );
        assert_eq!(path(&[]), "");
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis() {
        assert_eq!(shorten("account.name"), "account.name");
        let cut = shorten(&"x".repeat(50));
        assert_eq!(cut.chars().count(), MAX_CHARS);
        assert!(cut.ends_with('…'));
    }
}
