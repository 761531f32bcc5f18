//! Enumerating a space: the stitches and layer groups in the reference's id order.

use std::collections::{BTreeMap, HashSet};

use crate::anchor::{AnchorSpec, StageSpec};
use crate::config::{Direction, Pairing, SpaceConfig, StitchLayers};
use crate::count::{chain_count, count_stitches, two_way_count};
use crate::error::{Error, Result, Unsupported};
use crate::layers::LayerGroup;
use crate::limits::MAX_ANCHOR_PATHS;
use crate::rules::{self, PairRule};
use crate::stitch::{Cut, Stitch, StitchId};
use crate::validate::limit;

/// `(stage, front, end)` → group position.
pub(crate) fn index_groups(
    groups: &[LayerGroup],
) -> BTreeMap<(Option<usize>, usize, usize), usize> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| ((g.stage, g.front, g.end), i))
        .collect()
}

/// All combinations of `k` items of `0..n`, in lexicographic order (Python's
/// `itertools.combinations`).
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let Some(spare) = n.checked_sub(k) else {
        return out;
    };
    if k == 0 {
        return out;
    }
    // Every value below stays at most `n`, so the saturating operations never saturate.
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        out.push(idx.clone());
        // The rightmost position `i` that has not reached its last value, `i + n - k`.
        let Some(i) = idx
            .iter()
            .enumerate()
            .rev()
            .find(|&(i, &v)| v != i.saturating_add(spare))
            .map(|(i, _)| i)
        else {
            return out;
        };
        // Advance it and reset every later position to follow it consecutively.
        let mut next = idx.get(i).map_or(0, |v| v.saturating_add(1));
        for slot in idx.iter_mut().skip(i) {
            *slot = next;
            next = next.saturating_add(1);
        }
    }
}

/// Builds the stitches and layer groups in id order.
pub(crate) struct Builder<'a> {
    anchors: &'a [AnchorSpec],
    config: &'a SpaceConfig,
    stages: &'a [usize],
    hierarchical: bool,
    stitches: Vec<Stitch>,
    groups: Vec<LayerGroup>,
    /// The number of stitches counted before they were built (anchors included).
    counted: u128,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(
        anchors: &'a [AnchorSpec],
        config: &'a SpaceConfig,
        stages: &'a [usize],
    ) -> Self {
        let stitches = (0..anchors.len())
            .map(|a| Stitch {
                id: StitchId(a),
                anchors: vec![a],
                cuts: Vec::new(),
                layers: Vec::new(),
                stage: None,
                evaluated: true,
            })
            .collect();
        Self {
            anchors,
            config,
            stages,
            hierarchical: anchors.first().is_some_and(AnchorSpec::is_hierarchical),
            stitches,
            groups: Vec::new(),
            counted: 0,
        }
    }

    /// Anchor combinations to stitch, each in execution order: the neighbour pairs (nearest) or
    /// every combination of 2 (and, for plain one-way spaces, up to all) anchors, reversed for
    /// Slow-to-Fast.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when there would be more than [`MAX_ANCHOR_PATHS`], found
    /// before any is built.
    fn combinations(&self) -> Result<Vec<Vec<usize>>> {
        let n = self.anchors.len();
        let wide = n as u128;
        let only_pairs = self.hierarchical || self.config.direction == Direction::TwoWay;
        let count = match self.config.pairing {
            Pairing::Nearest => wide.saturating_sub(1),
            Pairing::All if only_pairs => wide.saturating_mul(wide.saturating_sub(1)) / 2,
            // Every subset of two or more anchors (n ≤ MAX_ANCHORS, so the shift fits).
            Pairing::All => (1u128 << n.min(120)).saturating_sub(wide.saturating_add(1)),
        };
        if count > MAX_ANCHOR_PATHS as u128 {
            return Err(limit(
                "anchor paths",
                count,
                MAX_ANCHOR_PATHS,
                "MAX_ANCHOR_PATHS",
            ));
        }
        let mut combos: Vec<Vec<usize>> = match self.config.pairing {
            Pairing::Nearest => (0..n).zip(1..n).map(|(a, b)| vec![a, b]).collect(),
            Pairing::All => {
                let longest = if only_pairs { 2 } else { n };
                (2..=longest).flat_map(|k| combinations(n, k)).collect()
            }
        };
        if self.config.direction == Direction::SlowToFast {
            for combo in &mut combos {
                combo.reverse();
            }
        }
        Ok(combos)
    }

    /// Anchor `anchor`'s spec and its stage `stage`; both were validated by [`validate`](crate::validate::validate), so
    /// the error is only a guard.
    fn stage(&self, anchor: usize, stage: usize) -> Result<(&'a AnchorSpec, &'a StageSpec)> {
        let spec = self
            .anchors
            .get(anchor)
            .ok_or_else(|| Error::UnknownAnchor {
                name: format!("#{anchor}"),
                suggestions: Vec::new(),
            })?;
        let stage_spec = spec.stages.get(stage).ok_or(Error::StageOutOfRange {
            stage,
            num_stages: spec.num_stages(),
        })?;
        Ok((spec, stage_spec))
    }

    fn depth(&self, anchor: usize, stage: usize) -> Result<usize> {
        Ok(self.stage(anchor, stage)?.1.depth)
    }

    /// `rule` with the configured layer sharing: as the reference allocates, or one layer per cut.
    fn sharing(&self, rule: PairRule) -> PairRule {
        match self.config.layers {
            StitchLayers::Shared => rule,
            StitchLayers::PerCut => rule.per_cut(),
        }
    }

    fn add_group(
        &mut self,
        stage: usize,
        front: usize,
        end: usize,
        num_layers: usize,
    ) -> Result<()> {
        let ((f, f_stage), (e, e_stage)) = (self.stage(front, stage)?, self.stage(end, stage)?);
        self.groups.push(LayerGroup {
            stage: self.hierarchical.then_some(stage),
            front,
            end,
            in_width: f_stage.width,
            out_width: e_stage.width,
            in_layout: f.layout,
            out_layout: e.layout,
            positions: vec![Vec::new(); num_layers],
        });
        Ok(())
    }

    fn push(&mut self, stage: usize, anchors: &[usize], cuts: &[(Cut, usize)], evaluated: bool) {
        self.stitches.push(Stitch {
            id: StitchId(self.stitches.len()),
            anchors: anchors.to_vec(),
            cuts: cuts.iter().map(|&(c, _)| c).collect(),
            layers: cuts.iter().map(|&(_, l)| l).collect(),
            stage: self.hierarchical.then_some(stage),
            evaluated,
        });
    }

    /// Enumerates the stitches. Before any stitch is built, their number is computed (exactly,
    /// stage by stage, from the pair rules) and checked against [`MAX_STITCHES`](crate::limits::MAX_STITCHES); each pair
    /// rule is checked as soon as it is computed, so the rules held stay within the limit too.
    pub(crate) fn enumerate(&mut self) -> Result<()> {
        let combos = self.combinations()?;
        let mut total = self.stitches.len() as u128;
        if self.config.direction == Direction::TwoWay {
            let mut rules = Vec::with_capacity(combos.len());
            for combo in &combos {
                let &[small, large] = combo.as_slice() else {
                    return Err(Error::Unsupported(Unsupported::TwoWayPathNotPair(
                        combo.clone(),
                    )));
                };
                let (d_s, d_l) = (self.depth(small, 0)?, self.depth(large, 0)?);
                let sl = self.sharing(rules::small_to_large(d_s, d_l));
                let ls = self.sharing(rules::deep_to_shallow(d_l, d_s));
                count_stitches(&mut total, two_way_count(&sl, &ls, d_l))?;
                rules.push((small, large, sl, ls));
            }
            for (small, large, sl, ls) in &rules {
                self.two_way(*small, *large, sl, ls)?;
            }
            self.counted = total;
            return Ok(());
        }
        let (kernel, stride) = (self.config.kernel_size, self.config.stride);
        let allow_backward = !self.hierarchical;
        for &stage in self.stages {
            // One rule (and one layer group) per anchor pair, in pair order; every rule's cuts
            // are stitches of the pair's own path.
            let mut pair_rules: Vec<((usize, usize), PairRule)> = Vec::new();
            let mut counted = total;
            for combo in &combos {
                let &[front, end] = combo.as_slice() else {
                    continue;
                };
                let (d_f, d_e) = (self.depth(front, stage)?, self.depth(end, stage)?);
                let rule = self.sharing(rules::one_way(d_f, d_e, kernel, stride, allow_backward));
                count_stitches(&mut counted, rule.cuts.len() as u128)?;
                pair_rules.push(((front, end), rule));
            }
            let mut chains: Vec<(&Vec<usize>, Vec<&PairRule>)> = Vec::with_capacity(combos.len());
            for combo in &combos {
                let chain: Vec<&PairRule> = combo
                    .iter()
                    .zip(combo.iter().skip(1))
                    .filter_map(|(&front, &end)| {
                        pair_rules
                            .iter()
                            .find(|(pair, _)| *pair == (front, end))
                            .map(|(_, rule)| rule)
                    })
                    .collect();
                if chain.len().checked_add(1) != Some(combo.len()) {
                    return Err(Error::Unsupported(Unsupported::UnstitchedPair(
                        combo.clone(),
                    )));
                }
                if combo.len() > 2 {
                    count_stitches(&mut counted, chain_count(&chain))?;
                }
                chains.push((combo, chain));
            }
            total = counted;
            for ((front, end), rule) in &pair_rules {
                self.add_group(stage, *front, *end, rule.num_layers)?;
            }
            for (combo, chain) in &chains {
                let mut prefix = Vec::with_capacity(chain.len());
                self.chains(stage, combo, chain, &mut prefix);
            }
        }
        self.counted = total;
        Ok(())
    }

    /// Pushes every path through `combo` whose cuts follow `chain`'s rules in order, each cut
    /// entering the middle anchor no later than the next one leaves it (`next.front ≥
    /// prev.end`), in the reference's nested-loop order.
    fn chains(
        &mut self,
        stage: usize,
        combo: &[usize],
        chain: &[&PairRule],
        prefix: &mut Vec<(Cut, usize)>,
    ) {
        let Some(rule) = chain.get(prefix.len()) else {
            self.push(stage, combo, prefix, true);
            return;
        };
        for &(cut, layer) in &rule.cuts {
            if prefix.last().is_none_or(|(prev, _)| cut.front >= prev.end) {
                prefix.push((cut, layer));
                self.chains(stage, combo, chain, prefix);
                prefix.pop();
            }
        }
    }

    /// SN-Netv2's two-way space for a (small, large) pair, in the reference's order:
    /// S→L, L→S, L→S→L, S→L→S; `sl` and `ls` are the pair's small→large and large→small rules.
    fn two_way(&mut self, small: usize, large: usize, sl: &PairRule, ls: &PairRule) -> Result<()> {
        let d_l = self.depth(large, 0)?;
        self.add_group(0, small, large, sl.num_layers)?;
        self.add_group(0, large, small, ls.num_layers)?;
        // The S→L cut entering the large anchor past its last block runs no large block.
        let runs_end = |cut: &Cut| cut.end < d_l;
        for &c in &sl.cuts {
            self.push(0, &[small, large], &[c], runs_end(&c.0));
        }
        for &c in &ls.cuts {
            self.push(0, &[large, small], &[c], true);
        }
        for &first in &ls.cuts {
            for &second in sl.cuts.iter().filter(|(c, _)| runs_end(c)) {
                if second.0.front >= first.0.end {
                    self.push(0, &[large, small, large], &[first, second], true);
                }
            }
        }
        for &first in &sl.cuts {
            for &second in &ls.cuts {
                if second.0.front >= first.0.end {
                    self.push(0, &[small, large, small], &[first, second], true);
                }
            }
        }
        Ok(())
    }

    /// Fills every group's positions from the stitches and returns the result.
    pub(crate) fn finish(mut self) -> (Vec<Stitch>, Vec<LayerGroup>) {
        let index = index_groups(&self.groups);
        // (group, layer, cut) already placed: a set, as one layer may share thousands of cuts.
        let mut placed = HashSet::new();
        for stitch in &self.stitches {
            for (key, cut) in stitch.layer_keys().zip(&stitch.cuts) {
                let Some(&g) = index.get(&(key.stage, key.front, key.end)) else {
                    continue;
                };
                if let Some(positions) = self
                    .groups
                    .get_mut(g)
                    .and_then(|group| group.positions.get_mut(key.index))
                    && placed.insert((g, key.index, *cut))
                {
                    positions.push(*cut);
                }
            }
        }
        (self.stitches, self.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anchor::AnchorRegistry;
    use crate::validate::validate;

    #[test]
    fn combinations_match_itertools() {
        assert_eq!(combinations(3, 2), [[0, 1], [0, 2], [1, 2]]);
        assert_eq!(combinations(4, 3).len(), 4);
        assert_eq!(combinations(3, 3), [[0, 1, 2]]);
        assert!(combinations(2, 3).is_empty());
    }

    /// The number of stitches counted before building, and the number built; `None` when the
    /// space is refused.
    fn counted_and_built(anchors: &[AnchorSpec], config: &SpaceConfig) -> Option<(u128, usize)> {
        let stages = validate(anchors, config).ok()?;
        let mut builder = Builder::new(anchors, config, &stages);
        builder.enumerate().ok()?;
        Some((builder.counted, builder.stitches.len()))
    }

    #[test]
    fn stitches_are_counted_exactly_before_they_are_built() {
        let mut checked = 0;
        let windows = [
            (1, 1),
            (2, 1),
            (2, 2),
            (3, 1),
            (5, 2),
            (usize::MAX, usize::MAX),
        ];
        let depth_sets: [&[usize]; 8] = [
            &[1, 1, 1, 1],
            &[2, 3, 4, 4],
            &[4, 4, 4, 4],
            &[3, 6, 12, 12],
            &[6, 6, 18, 24],
            &[12, 12, 12, 12],
            &[12, 12, 24, 24],
            &[5, 2, 7, 3],
        ];
        for depths in depth_sets {
            for n in 2..=depths.len() {
                let anchors: Vec<AnchorSpec> = (0..n)
                    .map(|i| AnchorSpec::plain(format!("a{i}"), depths[i], 8 * (i + 1)))
                    .collect();
                for pairing in [Pairing::Nearest, Pairing::All] {
                    for direction in [
                        Direction::FastToSlow,
                        Direction::SlowToFast,
                        Direction::TwoWay,
                    ] {
                        for (kernel, stride) in windows {
                            let config = SpaceConfig::default()
                                .with_pairing(pairing)
                                .with_direction(direction)
                                .with_kernel_size(kernel)
                                .with_stride(stride);
                            if let Some((counted, built)) = counted_and_built(&anchors, &config) {
                                assert_eq!(counted, built as u128, "{depths:?} {n} {config:?}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        let families: [&[&str]; 3] = [
            &[
                "swin_tiny_patch4_window7_224",
                "swin_small_patch4_window7_224",
                "swin_base_patch4_window7_224",
            ],
            &["resnet18", "resnet50"],
            &["resnet18", "swin_tiny_patch4_window7_224"],
        ];
        for names in families {
            let anchors = AnchorRegistry::builtin().resolve(names).unwrap();
            for pairing in [Pairing::Nearest, Pairing::All] {
                let config = SpaceConfig::default().with_pairing(pairing);
                let (counted, built) = counted_and_built(&anchors, &config).unwrap();
                assert_eq!(counted, built as u128, "{names:?} {pairing}");
                checked += 1;
            }
        }
        assert!(checked > 400, "{checked}");
    }
}
