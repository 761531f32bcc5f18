//! The reference's depth-mapping rules: which cuts `(j, k)` join a front anchor of depth `d_f`
//! to an end anchor of depth `d_e`, and which shared stitching layer each cut uses.
//!
//! Every rule returns a [`PairRule`]: the cuts in the reference's order, each with its layer
//! index, and the number of stitching layers the reference allocates for the pair. The space
//! (see [`crate::StitchSpace`]) composes them; nothing else enumerates cuts.
//!
//! The rules take any sizes without overflowing or panicking, and allocate in proportion to
//! their output (and the nearest map they are built on): [`paired`] keeps no `depth²` table.
//! What they return still grows with the depths, so the space checks its anchors against
//! [`MAX_DEPTH`](crate::limits::MAX_DEPTH) before calling them.

use serde::{Deserialize, Serialize};

use crate::stitch::Cut;

/// The cuts of one (front, end) anchor pair with their stitching-layer indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRule {
    /// `(cut, layer index)` in the reference's order.
    pub cuts: Vec<(Cut, usize)>,
    /// How many stitching layers the pair owns (indices `0..num_layers`); a layer may be used by
    /// several cuts, whose least-squares solutions are then averaged.
    pub num_layers: usize,
}

impl PairRule {
    /// The same cuts, in the same order, each on a layer of its own (`num_layers` = the
    /// number of cuts): [`StitchLayers::PerCut`](crate::StitchLayers::PerCut).
    #[must_use]
    pub fn per_cut(self) -> Self {
        let num_layers = self.cuts.len();
        let cuts = self
            .cuts
            .into_iter()
            .enumerate()
            .map(|(layer, (cut, _))| (cut, layer))
            .collect();
        Self { cuts, num_layers }
    }
}

/// PyTorch's `F.interpolate(arange(n_in), size=n_out, mode="nearest")`: for every output
/// position `i < n_out`, the input index it copies.
///
/// This follows PyTorch's kernel exactly (`nearest_idx` in `UpSample.h`): identity when the sizes
/// are equal, `i >> 1` when `n_out == 2 n_in`, and otherwise `min(floorf(i * scale), n_in - 1)`
/// with a *single-precision* `scale = n_in / n_out`. Single precision matters: for some sizes it
/// differs from the exact `floor(i * n_in / n_out)` (e.g. `n_in = 2, n_out = 82, i = 41` gives 0).
pub fn nearest_map(n_in: usize, n_out: usize) -> Vec<usize> {
    if n_in == 0 {
        return Vec::new();
    }
    (0..n_out)
        .map(|i| {
            if n_out == n_in {
                i
            } else if n_in.checked_mul(2) == Some(n_out) {
                i >> 1
            } else {
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                #[allow(clippy::cast_sign_loss)]
                let src = ((i as f32) * (n_in as f32 / n_out as f32)).floor() as usize;
                // `n_in > 0` (checked above), so this never saturates.
                src.min(n_in.saturating_sub(1))
            }
        })
        .collect()
}

/// Equal depths: a window of `kernel` consecutive blocks slides over `0..depth` with `stride`;
/// every ordered pair `(j, k)` inside a window that no earlier window produced becomes a cut, and
/// every window that produces at least one new cut gets the next stitching layer.
///
/// With `allow_backward` (the DeiT rule) pairs with `j ≥ k` are kept, so a path may repeat
/// blocks; without it (the Swin/ResNet rule) only `j < k` is kept.
///
/// DeiT's default (`depth 12, kernel 2, stride 1`) gives 34 cuts on 11 layers: layer 0 holds
/// `(0,0) (0,1) (1,0) (1,1)` and layer `n` holds `(n,n+1) (n+1,n) (n+1,n+1)`.
pub fn paired(depth: usize, kernel: usize, stride: usize, allow_backward: bool) -> PairRule {
    let mut cuts = Vec::new();
    let mut layer = 0_usize;
    let mut start = 0;
    while start < depth && stride > 0 {
        let end = start.saturating_add(kernel).min(depth);
        let mut new = false;
        for j in start..end {
            for k in start..end {
                if (!allow_backward && j >= k) || in_earlier_window(j, k, start, kernel, stride) {
                    continue;
                }
                cuts.push((Cut::new(j, k), layer));
                new = true;
            }
        }
        if new {
            layer = layer.saturating_add(1);
        }
        match start.checked_add(stride) {
            Some(next) => start = next,
            None => break,
        }
    }
    PairRule {
        cuts,
        num_layers: layer,
    }
}

/// Whether a window that starts before `start` (windows start at multiples of `stride` and hold
/// `kernel` blocks) holds both blocks `j` and `k`. The earliest window that could hold them starts
/// at the first multiple of `stride` from `max(j, k) + 1 − kernel`; it must start no later than
/// `min(j, k)` and before `start`.
fn in_earlier_window(j: usize, k: usize, start: usize, kernel: usize, stride: usize) -> bool {
    let lowest = j.max(k).saturating_add(1).saturating_sub(kernel);
    lowest
        .div_ceil(stride)
        .checked_mul(stride)
        .is_some_and(|first| first <= j.min(k) && first < start)
}

/// Front shallower than end (`d_f < d_e`): the reference's `unpaired_stitching`.
///
/// Each end block `m` maps to front block `emap[m]` by [`nearest_map`]`(d_f, d_e)`; the cuts are
/// all `(j, m)` with `emap[m] == j` and `j < m`, ordered by `j` then `m`. The pair owns `d_f`
/// layers, and (a quirk of the reference, kept for checkpoint compatibility) the `n`-th cut uses
/// layer `emap[n]` — not `j`: in Swin-T→S stage 2, cut `(1, 3)` uses layer 0.
pub fn unpaired(d_f: usize, d_e: usize) -> PairRule {
    let emap = nearest_map(d_f, d_e);
    let mut cuts = Vec::new();
    for j in 0..d_f {
        for (m, &e) in emap.iter().enumerate() {
            if e == j && j < m {
                cuts.push(Cut::new(j, m));
            }
        }
    }
    let cuts = cuts.into_iter().zip(emap.iter().copied()).collect();
    PairRule {
        cuts,
        num_layers: d_f,
    }
}

/// Front deeper than end (`d_f > d_e`, or equal): SN-Netv2's large→small rule, generalised.
///
/// Each front block `i` maps to end block `emap[i]` by [`nearest_map`]`(d_e, d_f)`. A cut leaves
/// the front after the *last* front block of each group that maps to one end block, and enters
/// the end at the next end block: `(i, emap[i] + 1)`, using layer `emap[i]`; cuts whose end
/// would run no block are dropped. This is the reference's `(i, emap[i] + 1)` for odd `i`, layer
/// `i // (d_f // d_e)`, whenever `d_f = 2 d_e` (the only unequal case it supports), and
/// `(i, i + 1)`, layer `i`, for `i < d - 1` when the depths are equal.
pub fn deep_to_shallow(d_f: usize, d_e: usize) -> PairRule {
    let emap = nearest_map(d_e, d_f);
    // `emap` has `d_f` entries; pair each with the next one (`None` after the last).
    let nexts = emap.iter().skip(1).map(Some).chain([None]);
    let cuts: Vec<(Cut, usize)> = emap
        .iter()
        .zip(nexts)
        .enumerate()
        .filter(|&(_, (&e, next))| next.is_none_or(|&n| n != e))
        .filter_map(|(i, (&e, _))| {
            let enter = e.checked_add(1).filter(|&enter| enter < d_e)?;
            Some((Cut::new(i, enter), e))
        })
        .collect();
    // Every layer `l` is below `d_e - 1`, so `l + 1` never saturates.
    let num_layers = cuts
        .iter()
        .map(|&(_, l)| l.saturating_add(1))
        .max()
        .unwrap_or(0);
    PairRule { cuts, num_layers }
}

/// SN-Netv2's small→large rule (`d_s ≤ d_l`): one cut per front block `i`, entering the end
/// after the group of end blocks that [`nearest_map`]`(d_s, d_l)` maps to blocks `≤ i`, i.e. at
/// the first end block mapped to `i + 1` (`d_l` when there is none), using layer `i`.
///
/// For an integer ratio this is the reference's `(i, (i + 1) · (d_l // d_s))`. The last cut
/// enters the end at `d_l`, so the end anchor runs no block: the reference generates it (and
/// initialises its layer) but never trains or evaluates it.
pub fn small_to_large(d_s: usize, d_l: usize) -> PairRule {
    let emap = nearest_map(d_s, d_l);
    // The first end block mapped to each front block (the map is non-decreasing).
    let mut first = vec![d_l; d_s];
    for (m, &e) in emap.iter().enumerate().rev() {
        if let Some(slot) = first.get_mut(e) {
            *slot = m;
        }
    }
    let cuts = (0..d_s)
        .map(|i| {
            let enter = i
                .checked_add(1)
                .and_then(|next| first.get(next))
                .copied()
                .unwrap_or(d_l);
            (Cut::new(i, enter), i)
        })
        .collect();
    PairRule {
        cuts,
        num_layers: d_s,
    }
}

/// The one-way rule for a (front, end) pair: [`paired`] for equal depths, [`unpaired`] when the
/// front is shallower and [`deep_to_shallow`] when it is deeper.
pub fn one_way(
    d_f: usize,
    d_e: usize,
    kernel: usize,
    stride: usize,
    allow_backward: bool,
) -> PairRule {
    match d_f.cmp(&d_e) {
        std::cmp::Ordering::Equal => paired(d_f, kernel, stride, allow_backward),
        std::cmp::Ordering::Less => unpaired(d_f, d_e),
        std::cmp::Ordering::Greater => deep_to_shallow(d_f, d_e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(rule: &PairRule) -> Vec<(usize, usize, usize)> {
        rule.cuts
            .iter()
            .map(|(c, l)| (c.front, c.end, *l))
            .collect()
    }

    #[test]
    fn nearest_map_matches_pytorch() {
        assert_eq!(
            nearest_map(6, 18),
            [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]
        );
        assert_eq!(nearest_map(2, 6), [0, 0, 0, 1, 1, 1]);
        assert_eq!(nearest_map(2, 4), [0, 0, 1, 1]);
        assert_eq!(nearest_map(12, 24)[..6], [0, 0, 1, 1, 2, 2]);
        assert_eq!(nearest_map(4, 3), [0, 1, 2]);
        // Single-precision scale, as PyTorch computes it (exact arithmetic would give 1).
        assert_eq!(nearest_map(2, 82)[41], 0);
        assert_eq!(nearest_map(3, 123)[82], 1);
        assert!(nearest_map(0, 5).is_empty());
    }

    #[test]
    fn per_cut_gives_every_cut_its_own_layer_in_order() {
        let shared = paired(12, 2, 1, true);
        let rule = shared.clone().per_cut();
        assert_eq!((rule.cuts.len(), rule.num_layers), (34, 34));
        for (i, ((cut, layer), (shared_cut, _))) in rule.cuts.iter().zip(&shared.cuts).enumerate() {
            assert_eq!((cut, *layer), (shared_cut, i));
        }
    }

    #[test]
    fn deit_paired_rule() {
        let rule = paired(12, 2, 1, true);
        assert_eq!(rule.num_layers, 11);
        assert_eq!(rule.cuts.len(), 34);
        let p = pairs(&rule);
        assert_eq!(p[..4], [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]);
        for n in 1..11 {
            let at = 4 + 3 * (n - 1);
            assert_eq!(
                p[at..at + 3],
                [(n, n + 1, n), (n + 1, n, n), (n + 1, n + 1, n)]
            );
        }
    }

    #[test]
    fn deit_paired_other_windows() {
        // Counts of the reference with 3 anchors: 3 + 2 * cuts = 51 and 111.
        let k2s2 = paired(12, 2, 2, true);
        assert_eq!((k2s2.cuts.len(), k2s2.num_layers), (24, 6));
        let k3s1 = paired(12, 3, 1, true);
        assert_eq!((k3s1.cuts.len(), k3s1.num_layers), (54, 10));
        // The trailing window [11] adds nothing new and gets no layer.
        assert_eq!(pairs(&k3s1).last(), Some(&(11, 11, 9)));
    }

    #[test]
    fn forward_only_paired_rule() {
        assert_eq!(pairs(&paired(2, 2, 1, false)), [(0, 1, 0)]);
        let p = pairs(&paired(18, 2, 1, false));
        assert_eq!(p.len(), 17);
        assert!(p.iter().enumerate().all(|(i, &c)| c == (i, i + 1, i)));
    }

    #[test]
    fn unpaired_rule_keeps_reference_layer_ids() {
        let rule = unpaired(6, 18);
        assert_eq!(rule.num_layers, 6);
        let p = pairs(&rule);
        assert_eq!(p.len(), 17);
        assert_eq!(
            p[..6],
            [
                (0, 1, 0),
                (0, 2, 0),
                (1, 3, 0),
                (1, 4, 1),
                (1, 5, 1),
                (2, 6, 1)
            ]
        );
        assert_eq!(p[16], (5, 17, 5));
        assert_eq!(pairs(&unpaired(2, 4)), [(0, 1, 0), (1, 2, 0), (1, 3, 1)]);
        assert_eq!(
            pairs(&unpaired(2, 6)),
            [(0, 1, 0), (0, 2, 0), (1, 3, 0), (1, 4, 1), (1, 5, 1)]
        );
    }

    #[test]
    fn deep_to_shallow_matches_snnetv2() {
        // Reference: odd i < 23, cut (i, floor(i / 2) + 1), layer i // 2.
        let expected: Vec<_> = (1..23).step_by(2).map(|i| (i, i / 2 + 1, i / 2)).collect();
        let rule = deep_to_shallow(24, 12);
        assert_eq!(pairs(&rule), expected);
        assert_eq!(rule.num_layers, 11);
        // Equal depths: every i < d - 1, cut (i, i + 1), layer i.
        let equal: Vec<_> = (0..11).map(|i| (i, i + 1, i)).collect();
        assert_eq!(pairs(&deep_to_shallow(12, 12)), equal);
        // Ratio 3: the last block of each group of three.
        assert_eq!(
            pairs(&deep_to_shallow(18, 6)),
            [(2, 1, 0), (5, 2, 1), (8, 3, 2), (11, 4, 3), (14, 5, 4)]
        );
    }

    #[test]
    fn small_to_large_matches_snnetv2() {
        let expected: Vec<_> = (0..12).map(|i| (i, (i + 1) * 2, i)).collect();
        assert_eq!(pairs(&small_to_large(12, 24)), expected);
        let equal: Vec<_> = (0..12).map(|i| (i, i + 1, i)).collect();
        assert_eq!(pairs(&small_to_large(12, 12)), equal);
        assert_eq!(small_to_large(12, 24).num_layers, 12);
    }

    /// The rule as first written: a `depth²` table of the pairs seen.
    fn paired_with_table(
        depth: usize,
        kernel: usize,
        stride: usize,
        allow_backward: bool,
    ) -> Vec<(usize, usize, usize)> {
        let mut seen = vec![false; depth * depth];
        let mut cuts = Vec::new();
        let (mut layer, mut start) = (0, 0);
        while start < depth {
            let window = start..(start + kernel).min(depth);
            let mut new = false;
            for j in window.clone() {
                for k in window.clone() {
                    if seen[j * depth + k] || (!allow_backward && j >= k) {
                        continue;
                    }
                    seen[j * depth + k] = true;
                    cuts.push((j, k, layer));
                    new = true;
                }
            }
            layer += usize::from(new);
            start += stride;
        }
        cuts
    }

    #[test]
    fn paired_rule_needs_no_table_of_seen_pairs() {
        for depth in 0..=14 {
            for kernel in 1..=7 {
                for stride in 1..=7 {
                    for backward in [true, false] {
                        assert_eq!(
                            pairs(&paired(depth, kernel, stride, backward)),
                            paired_with_table(depth, kernel, stride, backward),
                            "depth {depth}, kernel {kernel}, stride {stride}, {backward}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rules_do_not_overflow() {
        // A window or stride past usize::MAX neither wraps nor panics: one window of every block.
        let whole = paired(12, usize::MAX, usize::MAX, true);
        assert_eq!(whole, paired(12, 12, 12, true));
        assert_eq!((whole.cuts.len(), whole.num_layers), (144, 1));
        assert_eq!(paired(5, 2, usize::MAX, false).cuts.len(), 1);
        assert_eq!(paired(3, 0, 1, true).cuts.len(), 0);
        assert_eq!(paired(3, 2, 0, true).cuts.len(), 0);
        // 2 * n_in would overflow.
        assert!(nearest_map(usize::MAX / 2 + 1, 0).is_empty());
        assert_eq!(nearest_map(usize::MAX, 3).len(), 3);
        assert!(nearest_map(usize::MAX, 3).iter().all(|&i| i < usize::MAX));
        // Linear, not quadratic, in the depths.
        let rule = small_to_large(200_000, 400_000);
        assert_eq!(rule.cuts.len(), 200_000);
        assert_eq!(rule.cuts[199_999].0, Cut::new(199_999, 400_000));
    }

    #[test]
    fn one_way_picks_the_rule_by_depth() {
        assert_eq!(one_way(12, 12, 2, 1, true), paired(12, 2, 1, true));
        assert_eq!(one_way(6, 18, 2, 1, false), unpaired(6, 18));
        assert_eq!(one_way(18, 6, 2, 1, false), deep_to_shallow(18, 6));
    }
}
