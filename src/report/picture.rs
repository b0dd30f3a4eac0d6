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

#[derive(Clone, Debug, Serialize)]
pub struct Picture {
    pub width: i64,
    pub height: i64,
    pub crossings: usize,
    pub columns: Vec<Column>,
    pub nodes: Vec<PictureNode>,
    pub edges: Vec<PictureEdge>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Column {
    pub x: i64,
    pub label: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct PictureNode {
    pub kind: &'static str,
    pub name: String,
    /// The name as shown in the box (cut when long).
    pub text: String,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub labels: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PictureEdge {
    /// SVG path data.
    pub d: String,
    /// `kind:name` of both ends.
    pub from: String,
    pub to: String,
    pub step: &'static str,
    pub verdict: &'static str,
    pub parts: String,
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
    let edges: Vec<usize> = (0..lineage.edges.len())
        .filter(|&i| {
            let e = &lineage.edges[i];
            steps(e.step) && local.contains_key(&e.from) && local.contains_key(&e.to)
        })
        .collect();
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
    let key = |n: usize| {
        format!(
            "{}:{}",
            lineage.nodes[n].kind.as_str(),
            lineage.nodes[n].name
        )
    };
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
                    text,
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
                    from: key(e.from),
                    to: key(e.to),
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
