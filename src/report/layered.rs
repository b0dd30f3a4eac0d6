//! A layered drawing of a directed graph (Sugiyama's method), for the
//! report's lineage pictures.
//!
//! Input: nodes, each with a band (the column group it belongs to: fields,
//! computed attributes, audiences, ...) and a width, and edges. Output: a
//! [`Layout`]: a column (layer) and a vertical position per node, a polyline
//! per edge, and the number of edge crossings of the drawing. Pure and
//! deterministic: the same graph gives the same coordinates.
//!
//! The steps, each a function below:
//! 1. [`assign_layers`]: longest path within each band, the bands side by
//!    side, so every edge points right and each kind of node has its own
//!    columns;
//! 2. [`split_long_edges`]: an edge over several layers becomes a chain
//!    through one dummy node per layer it crosses;
//! 3. [`order_layers`]: sweeps down and up the layers sorting each by the
//!    weighted median of its neighbours' positions (barycenter when a node
//!    has two), then adjacent swaps while they remove crossings
//!    (`transpose`), keeping the best order seen;
//! 4. [`place`]: columns as wide as their widest node; vertical positions
//!    pulled towards the neighbours' (an isotonic regression per layer
//!    that keeps the order and the spacing), so edges run straight where
//!    they can.
//!
//! Edges leave a node at the right side of its column and enter at the left
//! side of the next, and every curve between two columns spans the same x
//! range: two edges between the same pair of columns cross exactly when
//! their ends are in opposite orders, so [`Layout::crossings`] is the number
//! of crossings a reader sees.

use std::collections::BTreeMap;

/// A node to draw: its band (columns are grouped by band, in band order)
/// and its width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node {
    pub band: usize,
    pub width: f64,
}

/// Spacing of the drawing, in pixels.
#[derive(Clone, Copy, Debug)]
pub struct Spacing {
    /// Height of a node's box.
    pub node_height: f64,
    /// Vertical gap between two boxes, and between two edges passing a column.
    pub row_gap: f64,
    /// Horizontal gap between two columns, where edges bend.
    pub column_gap: f64,
    /// Ordering stops after this many sweeps (one down and one up each)
    /// in a row without fewer crossings.
    pub sweeps: usize,
}

impl Default for Spacing {
    fn default() -> Spacing {
        Spacing {
            node_height: 20.0,
            row_gap: 8.0,
            column_gap: 64.0,
            sweeps: 6,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Per node: its layer (column).
    pub layers: Vec<usize>,
    /// Per node: the top-left corner of its box.
    pub boxes: Vec<Point>,
    /// Per edge: the points it passes, from the right side of its source's
    /// column to the left side of its target's (straight across the columns
    /// it passes, curved in the gaps between). Empty for an edge that cannot
    /// be drawn left to right (a cycle, or one against the band order: a
    /// checked plan has none).
    pub edges: Vec<Vec<Point>>,
    /// Edge crossings of the drawing.
    pub crossings: usize,
    pub width: f64,
    pub height: f64,
}

/// Lays out `nodes` and `edges` (pairs of node indices).
pub fn layout(nodes: &[Node], edges: &[(usize, usize)], spacing: &Spacing) -> Layout {
    let layer_of = assign_layers(nodes, edges);
    let proper = split_long_edges(&layer_of, edges);
    let order = order_layers(&proper, spacing.sweeps);
    let crossings = total_crossings(&proper, &order);
    place(nodes, &proper, &order, crossings, spacing)
}

/// Banded longest-path layering. Within a band, a node's depth is the
/// longest chain of same-band edges reaching it; each band takes as many
/// columns as its deepest node needs, after the previous band's. A node on
/// a cycle (which a checked plan never has) keeps depth 0.
pub fn assign_layers(nodes: &[Node], edges: &[(usize, usize)]) -> Vec<usize> {
    let n = nodes.len();
    let mut depth = vec![0usize; n];
    let mut indegree = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(u, v) in edges {
        if u < n && v < n && u != v && nodes[u].band == nodes[v].band {
            out[u].push(v);
            indegree[v] += 1;
        }
    }
    // Kahn's algorithm: a node's depth is final when its last same-band
    // predecessor is done.
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    while let Some(u) = ready.pop() {
        for &v in &out[u] {
            depth[v] = depth[v].max(depth[u] + 1);
            indegree[v] -= 1;
            if indegree[v] == 0 {
                ready.push(v);
            }
        }
    }
    let mut columns: BTreeMap<usize, usize> = BTreeMap::new();
    for (v, node) in nodes.iter().enumerate() {
        let c = columns.entry(node.band).or_default();
        *c = (*c).max(depth[v] + 1);
    }
    let mut first = BTreeMap::new();
    let mut next = 0;
    for (band, count) in columns {
        first.insert(band, next);
        next += count;
    }
    nodes
        .iter()
        .enumerate()
        .map(|(v, node)| first[&node.band] + depth[v])
        .collect()
}

/// The graph with every edge between adjacent layers: vertices are the
/// nodes, then one dummy per layer a long edge passes.
#[derive(Clone, Debug, Default)]
pub struct Proper {
    /// Per vertex: its layer.
    pub layer: Vec<usize>,
    /// Per vertex: the vertices it links to in the next layer.
    pub down: Vec<Vec<usize>>,
    /// Per vertex: the vertices linking to it from the previous layer.
    pub up: Vec<Vec<usize>>,
    /// Per input edge: its chain of vertices, source first; empty when the
    /// edge does not point to a later layer.
    pub chains: Vec<Vec<usize>>,
    pub layers: usize,
}

pub fn split_long_edges(layer_of: &[usize], edges: &[(usize, usize)]) -> Proper {
    let mut p = Proper {
        layer: layer_of.to_vec(),
        down: vec![Vec::new(); layer_of.len()],
        up: vec![Vec::new(); layer_of.len()],
        chains: Vec::with_capacity(edges.len()),
        layers: layer_of.iter().max().map_or(0, |l| l + 1),
    };
    for &(u, v) in edges {
        let (Some(&lu), Some(&lv)) = (layer_of.get(u), layer_of.get(v)) else {
            p.chains.push(Vec::new());
            continue;
        };
        if lv <= lu {
            p.chains.push(Vec::new());
            continue;
        }
        let mut chain = vec![u];
        for layer in lu + 1..lv {
            let dummy = p.layer.len();
            p.layer.push(layer);
            p.down.push(Vec::new());
            p.up.push(Vec::new());
            chain.push(dummy);
        }
        chain.push(v);
        for pair in chain.windows(2) {
            p.down[pair[0]].push(pair[1]);
            p.up[pair[1]].push(pair[0]);
        }
        p.chains.push(chain);
    }
    p
}

/// Where a vertex wants to be, from its neighbours' positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// The weighted median: robust to one far neighbour.
    Median,
    /// The mean: smoother where many edges fan in.
    Barycenter,
}

/// Orders the vertices of each layer to few crossings. Two first orders
/// (the input order, and a depth-first one where vertices met together
/// stay together) and both keys are tried; each run sweeps until `sweeps`
/// sweeps in a row bring no improvement. The best order seen is returned,
/// so the result is never worse than either first order.
pub fn order_layers(p: &Proper, sweeps: usize) -> Vec<Vec<usize>> {
    let mut best: Option<(usize, Vec<Vec<usize>>)> = None;
    for first in [input_order(p), depth_first_order(p)] {
        for key in [Key::Median, Key::Barycenter] {
            let found = sweep(p, first.clone(), key, sweeps);
            if best.as_ref().is_none_or(|(count, _)| found.0 < *count) {
                best = Some(found);
            }
        }
    }
    best.map(|(_, order)| order).unwrap_or_default()
}

fn input_order(p: &Proper) -> Vec<Vec<usize>> {
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); p.layers];
    for (v, &l) in p.layer.iter().enumerate() {
        order[l].push(v);
    }
    order
}

/// Vertices in the order a depth-first walk along the edges (both ways)
/// first meets them, starting from the input order.
fn depth_first_order(p: &Proper) -> Vec<Vec<usize>> {
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); p.layers];
    let mut seen = vec![false; p.layer.len()];
    for start in 0..p.layer.len() {
        let mut stack = vec![start];
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v], true) {
                continue;
            }
            order[p.layer[v]].push(v);
            stack.extend(p.up[v].iter().chain(&p.down[v]).rev());
        }
    }
    order
}

fn sweep(
    p: &Proper,
    mut order: Vec<Vec<usize>>,
    key: Key,
    patience: usize,
) -> (usize, Vec<Vec<usize>>) {
    let mut best_count = total_crossings(p, &order);
    let mut best = order.clone();
    let mut idle = 0;
    // A bound on the rounds, whatever the graph.
    for _ in 0..64 {
        if best_count == 0 || idle >= patience {
            break;
        }
        for l in 1..p.layers {
            sort_layer(&mut order, l, l - 1, &p.up, key);
        }
        transpose(p, &mut order);
        for l in (0..p.layers.saturating_sub(1)).rev() {
            sort_layer(&mut order, l, l + 1, &p.down, key);
        }
        transpose(p, &mut order);
        let count = total_crossings(p, &order);
        if count < best_count {
            best_count = count;
            best = order.clone();
            idle = 0;
        } else {
            idle += 1;
        }
    }
    (best_count, best)
}

/// Sorts layer `l` by the `key` of each vertex's neighbours' positions in
/// layer `fixed`; a vertex without any keeps its place.
fn sort_layer(
    order: &mut [Vec<usize>],
    l: usize,
    fixed: usize,
    neighbours: &[Vec<usize>],
    key: Key,
) {
    let position = positions(&order[fixed]);
    let keys: Vec<Option<f64>> = order[l]
        .iter()
        .map(|&v| {
            let mut at: Vec<usize> = neighbours[v]
                .iter()
                .filter_map(|w| position.get(w).copied())
                .collect();
            at.sort_unstable();
            match key {
                Key::Median => median(&at),
                Key::Barycenter => {
                    (!at.is_empty()).then(|| at.iter().sum::<usize>() as f64 / at.len() as f64)
                }
            }
        })
        .collect();
    let mut movable: Vec<(f64, usize)> = order[l]
        .iter()
        .zip(&keys)
        .filter_map(|(&v, k)| k.map(|k| (k, v)))
        .collect();
    // Stable: equal keys keep their current order.
    movable.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut moved = movable.into_iter().map(|(_, v)| v);
    for (slot, key) in order[l].iter_mut().zip(keys) {
        if key.is_some()
            && let Some(v) = moved.next()
        {
            *slot = v;
        }
    }
}

/// The weighted median of sorted positions (Gansner et al.): the middle
/// one, the mean of two, and for an even count the middle pair weighted
/// towards the side whose positions are packed closer.
fn median(at: &[usize]) -> Option<f64> {
    let n = at.len();
    let m = n / 2;
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(at[m] as f64),
        2 => Some((at[0] + at[1]) as f64 / 2.0),
        _ => {
            let left = (at[m - 1] - at[0]) as f64;
            let right = (at[n - 1] - at[m]) as f64;
            if left + right == 0.0 {
                Some((at[m - 1] + at[m]) as f64 / 2.0)
            } else {
                Some((at[m - 1] as f64 * right + at[m] as f64 * left) / (left + right))
            }
        }
    }
}

/// Swaps adjacent vertices while a swap lowers the crossings with both
/// neighbouring layers.
fn transpose(p: &Proper, order: &mut [Vec<usize>]) {
    // Every vertex's position in its layer, kept up to date by the swaps.
    let mut at = vec![0usize; p.layer.len()];
    for layer in order.iter() {
        for (i, &v) in layer.iter().enumerate() {
            at[v] = i;
        }
    }
    // Each pass strictly lowers the count, so this ends; the bound keeps a
    // large picture's cost predictable.
    for _ in 0..8 {
        let mut improved = false;
        for layer in order.iter_mut() {
            for i in 1..layer.len() {
                let (v, w) = (layer[i - 1], layer[i]);
                let (before, after) = pair_crossings(p, &at, v, w);
                if after < before {
                    layer.swap(i - 1, i);
                    at[v] = i;
                    at[w] = i - 1;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// Crossings among the edges of `v` and `w` (v left of w) with both
/// adjacent layers: as they are, and with the two swapped.
fn pair_crossings(p: &Proper, at: &[usize], v: usize, w: usize) -> (usize, usize) {
    let mut as_is = 0;
    let mut swapped = 0;
    for neighbours in [&p.up, &p.down] {
        for &a in &neighbours[v] {
            for &b in &neighbours[w] {
                as_is += usize::from(at[a] > at[b]);
                swapped += usize::from(at[b] > at[a]);
            }
        }
    }
    (as_is, swapped)
}

fn positions(layer: &[usize]) -> BTreeMap<usize, usize> {
    layer.iter().enumerate().map(|(i, &v)| (v, i)).collect()
}

/// Crossings between every pair of adjacent layers.
pub fn total_crossings(p: &Proper, order: &[Vec<usize>]) -> usize {
    (1..order.len())
        .map(|l| bilayer_crossings(&order[l - 1], &order[l], &p.down))
        .sum()
}

/// Crossings between two adjacent layers, counted in O(E log V) (Barth,
/// Jünger and Mutzel): edges sorted by their upper end, then by their lower
/// one; every pair out of order in the lower ends is one crossing, counted
/// with a Fenwick tree.
pub fn bilayer_crossings(upper: &[usize], lower: &[usize], down: &[Vec<usize>]) -> usize {
    let lower_at = positions(lower);
    let mut ends: Vec<(usize, usize)> = Vec::new();
    for (i, v) in upper.iter().enumerate() {
        for w in &down[*v] {
            if let Some(&j) = lower_at.get(w) {
                ends.push((i, j));
            }
        }
    }
    ends.sort_unstable();
    let mut tree = vec![0usize; lower.len() + 1];
    let mut crossings = 0;
    for (seen, &(_, j)) in ends.iter().enumerate() {
        // Edges seen so far whose lower end is at or left of j.
        let mut at_or_left = 0;
        let mut k = j + 1;
        while k > 0 {
            at_or_left += tree[k];
            k &= k - 1;
        }
        crossings += seen - at_or_left;
        let mut k = j + 1;
        while k < tree.len() {
            tree[k] += 1;
            k += k & k.wrapping_neg();
        }
    }
    crossings
}

/// Coordinates: columns left to right, each as wide as its widest node;
/// vertical centres pulled towards the neighbours' in a few sweeps.
fn place(
    nodes: &[Node],
    p: &Proper,
    order: &[Vec<usize>],
    crossings: usize,
    s: &Spacing,
) -> Layout {
    let is_node = |v: usize| v < nodes.len();
    let height = |v: usize| if is_node(v) { s.node_height } else { 0.0 };
    let mut column_width = vec![0.0f64; p.layers];
    for (v, node) in nodes.iter().enumerate() {
        column_width[p.layer[v]] = column_width[p.layer[v]].max(node.width);
    }
    let mut column_x = Vec::with_capacity(p.layers);
    let mut x = 0.0;
    for w in &column_width {
        column_x.push(x);
        x += w + s.column_gap;
    }
    let width = (x - s.column_gap).max(0.0);

    // The minimum distance between the centres of two neighbours in a
    // layer: half of each box, and a gap.
    let separation = |a: usize, b: usize| (height(a) + height(b)) / 2.0 + s.row_gap;
    let mut centre = vec![0.0f64; p.layer.len()];
    for layer in order {
        let mut y = 0.0;
        for (i, &v) in layer.iter().enumerate() {
            if i > 0 {
                y += separation(layer[i - 1], v);
            }
            centre[v] = y;
        }
    }
    for round in 0..4 {
        let downward = round % 2 == 0;
        let layers: Vec<usize> = if downward {
            (1..p.layers).collect()
        } else {
            (0..p.layers.saturating_sub(1)).rev().collect()
        };
        for l in layers {
            let neighbours = if downward { &p.up } else { &p.down };
            let wanted: Vec<f64> = order[l]
                .iter()
                .map(|&v| {
                    let n = &neighbours[v];
                    if n.is_empty() {
                        centre[v]
                    } else {
                        n.iter().map(|&w| centre[w]).sum::<f64>() / n.len() as f64
                    }
                })
                .collect();
            let placed = spaced_closest(&wanted, &order[l], separation);
            for (&v, y) in order[l].iter().zip(placed) {
                centre[v] = y;
            }
        }
    }
    let top = centre
        .iter()
        .enumerate()
        .map(|(v, &y)| y - height(v) / 2.0)
        .fold(f64::INFINITY, f64::min);
    let top = if top.is_finite() { top } else { 0.0 };
    for y in &mut centre {
        *y -= top;
    }
    let bottom = centre
        .iter()
        .enumerate()
        .map(|(v, &y)| y + height(v) / 2.0)
        .fold(0.0, f64::max);

    let boxes = (0..nodes.len())
        .map(|v| Point {
            x: column_x[p.layer[v]],
            y: centre[v] - s.node_height / 2.0,
        })
        .collect();
    let right = |v: usize| column_x[p.layer[v]] + column_width[p.layer[v]];
    let edges = p
        .chains
        .iter()
        .map(|chain| {
            let mut points = Vec::new();
            for (i, &v) in chain.iter().enumerate() {
                let y = centre[v];
                if i > 0 {
                    points.push(Point {
                        x: column_x[p.layer[v]],
                        y,
                    });
                }
                if i + 1 < chain.len() {
                    points.push(Point { x: right(v), y });
                }
            }
            points
        })
        .collect();
    Layout {
        layers: p.layer[..nodes.len()].to_vec(),
        boxes,
        edges,
        crossings,
        width,
        height: bottom,
    }
}

/// The positions closest (least squares) to `wanted` that keep the order
/// and at least `separation` between neighbours: with offsets `o` (the
/// tightest packing), `y - o` must not decrease, an isotonic regression
/// solved by pooling adjacent violators.
fn spaced_closest(
    wanted: &[f64],
    layer: &[usize],
    separation: impl Fn(usize, usize) -> f64,
) -> Vec<f64> {
    let mut offset = Vec::with_capacity(layer.len());
    let mut o = 0.0;
    for (i, &v) in layer.iter().enumerate() {
        if i > 0 {
            o += separation(layer[i - 1], v);
        }
        offset.push(o);
    }
    // Blocks of (mean, count) whose means do not decrease.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for (w, o) in wanted.iter().zip(&offset) {
        let mut block = (w - o, 1usize);
        while let Some(&(mean, count)) = blocks.last() {
            if mean <= block.0 {
                break;
            }
            blocks.pop();
            let total = count + block.1;
            block = (
                (mean * count as f64 + block.0 * block.1 as f64) / total as f64,
                total,
            );
        }
        blocks.push(block);
    }
    let mut out = Vec::with_capacity(layer.len());
    for (mean, count) in blocks {
        for _ in 0..count {
            out.push(mean + offset[out.len()]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nodes(bands: &[usize]) -> Vec<Node> {
        bands
            .iter()
            .map(|&band| Node { band, width: 50.0 })
            .collect()
    }

    /// Every pair of edges between adjacent layers whose ends are in
    /// opposite orders: the definition the fast count must agree with.
    fn brute_crossings(p: &Proper, order: &[Vec<usize>]) -> usize {
        let mut count = 0;
        for l in 1..order.len() {
            let at_upper = positions(&order[l - 1]);
            let at_lower = positions(&order[l]);
            let mut edges = Vec::new();
            for v in &order[l - 1] {
                for w in &p.down[*v] {
                    edges.push((at_upper[v], at_lower[w]));
                }
            }
            for (i, a) in edges.iter().enumerate() {
                for b in &edges[i + 1..] {
                    if (a.0 < b.0 && a.1 > b.1) || (a.0 > b.0 && a.1 < b.1) {
                        count += 1;
                    }
                }
            }
        }
        count
    }

    #[test]
    fn bands_take_their_own_columns_and_chains_deepen_within_a_band() {
        // Two fields, a computed attribute reading another, an audience.
        let n = nodes(&[0, 0, 1, 1, 2]);
        let edges = [(0, 2), (2, 3), (1, 3), (3, 4), (0, 4)];
        assert_eq!(assign_layers(&n, &edges), [0, 0, 1, 2, 3]);
        // A band with no node takes no column.
        let n = nodes(&[0, 2]);
        assert_eq!(assign_layers(&n, &[(0, 1)]), [0, 1]);
    }

    #[test]
    fn long_edges_pass_through_one_dummy_per_layer() {
        let n = nodes(&[0, 1, 2, 3]);
        let edges = [(0, 1), (1, 2), (2, 3), (0, 3)];
        let p = split_long_edges(&assign_layers(&n, &edges), &edges);
        assert_eq!(p.chains[3].len(), 4, "{:?}", p.chains);
        assert_eq!(p.layer.len(), 6, "two dummies");
        assert!(p.chains[3][1..3].iter().all(|&d| d >= 4));
    }

    #[test]
    fn the_sweeps_untangle_a_crossed_pair() {
        // a->d and b->c, with c above d: one crossing until b and a swap.
        let n = nodes(&[0, 0, 1, 1]);
        let edges = [(0, 3), (1, 2)];
        let out = layout(&n, &edges, &Spacing::default());
        assert_eq!(out.crossings, 0);
        // The coordinates agree: a and b are in the order of d and c.
        let b = &out.boxes;
        assert_eq!(b[0].y < b[1].y, b[3].y < b[2].y, "{b:?}");
    }

    #[test]
    fn a_complete_bipartite_k33_keeps_its_unavoidable_crossings() {
        let n = nodes(&[0, 0, 0, 1, 1, 1]);
        let edges: Vec<(usize, usize)> = (0..3).flat_map(|a| (3..6).map(move |b| (a, b))).collect();
        // K(3,3) drawn in two layers has exactly 9 crossings in any order.
        assert_eq!(layout(&n, &edges, &Spacing::default()).crossings, 9);
    }

    #[test]
    fn edges_are_drawn_left_to_right_through_the_columns_they_pass() {
        let n = nodes(&[0, 1, 2]);
        let edges = [(0, 1), (1, 2), (0, 2)];
        let out = layout(&n, &edges, &Spacing::default());
        let long = &out.edges[2];
        assert_eq!(long.len(), 4, "start, both sides of the middle column, end");
        assert!(long.windows(2).all(|w| w[0].x <= w[1].x), "{long:?}");
        assert_eq!(long[0].x, 50.0, "leaves at the right side of its column");
        assert_eq!(long[3].x, out.boxes[2].x, "enters at the left side");
    }

    #[test]
    fn a_cycle_or_a_backward_edge_is_left_undrawn_not_a_panic() {
        let n = nodes(&[0, 0, 1]);
        let edges = [(0, 1), (1, 0), (2, 0), (7, 1)];
        let out = layout(&n, &edges, &Spacing::default());
        assert!(out.edges[1].is_empty() || out.edges[0].is_empty());
        assert!(out.edges[2].is_empty(), "against the band order");
        assert!(out.edges[3].is_empty(), "an unknown node");
    }

    #[test]
    fn spacing_keeps_order_and_distance() {
        let layer = [0, 1, 2];
        let placed = spaced_closest(&[10.0, 10.0, 10.0], &layer, |_, _| 4.0);
        assert_eq!(placed, [6.0, 10.0, 14.0]);
        let placed = spaced_closest(&[0.0, 100.0, 50.0], &layer, |_, _| 4.0);
        assert_eq!(placed, [0.0, 73.0, 77.0]);
    }

    #[test]
    fn the_weighted_median_leans_to_the_packed_side() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3]), Some(3.0));
        assert_eq!(median(&[1, 5]), Some(3.0));
        // 0,1 packed on the left, 2,10 spread on the right.
        let m = median(&[0, 1, 2, 10]).unwrap();
        assert!(m > 1.0 && m < 1.5, "{m}");
    }

    /// A random graph in three bands: edges go to a later band, or within
    /// a band from a lower index to a higher one (so it has no cycle).
    fn graph() -> impl Strategy<Value = (Vec<Node>, Vec<(usize, usize)>)> {
        (2usize..24).prop_flat_map(|n| {
            (
                proptest::collection::vec(0usize..3, n),
                proptest::collection::vec((0..n, 0..n), 0..n * 2),
            )
                .prop_map(|(bands, pairs)| {
                    let nodes = nodes(&bands);
                    let edges = pairs
                        .into_iter()
                        .filter(|&(u, v)| {
                            nodes[u].band < nodes[v].band
                                || (nodes[u].band == nodes[v].band && u < v)
                        })
                        .collect();
                    (nodes, edges)
                })
        })
    }

    proptest! {
        #[test]
        fn layouts_hold_their_invariants((nodes, edges) in graph()) {
            let layers = assign_layers(&nodes, &edges);
            for &(u, v) in &edges {
                prop_assert!(layers[u] < layers[v], "edge {u}->{v} on layers {layers:?}");
            }
            let p = split_long_edges(&layers, &edges);
            let first = input_order(&p);
            let order = order_layers(&p, 8);
            // A permutation of every layer's vertices.
            for (a, b) in first.iter().zip(&order) {
                let (mut a, mut b) = (a.clone(), b.clone());
                a.sort_unstable();
                b.sort_unstable();
                prop_assert_eq!(a, b);
            }
            let fast = total_crossings(&p, &order);
            prop_assert_eq!(fast, brute_crossings(&p, &order));
            prop_assert!(fast <= total_crossings(&p, &first), "the sweeps never make it worse");

            let out = layout(&nodes, &edges, &Spacing::default());
            prop_assert_eq!(out.crossings, fast);
            for (i, chain) in out.edges.iter().enumerate() {
                prop_assert!(!chain.is_empty(), "edge {i} drawn");
                prop_assert!(chain.windows(2).all(|w| w[0].x <= w[1].x));
            }
            // Boxes in one column never overlap.
            for a in 0..nodes.len() {
                for b in a + 1..nodes.len() {
                    if out.layers[a] == out.layers[b] {
                        prop_assert!((out.boxes[a].y - out.boxes[b].y).abs() >= 20.0 - 1e-6);
                    }
                }
            }
        }
    }
}
