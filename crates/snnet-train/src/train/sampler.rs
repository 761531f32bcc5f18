//! Which stitch each step trains ([`StitchSampler`]): uniform, or SN-Netv2's FLOPs-grouped
//! sampling; a function of the seed, the epoch and the step alone.

use rand::RngCore;
use snnet_core::StitchId;

use super::{Sampling, Trainable};
use crate::data::sample_rng;

/// The stitches a run samples from, and how.
#[derive(Debug, Clone)]
pub struct StitchSampler {
    groups: Vec<Vec<StitchId>>,
    /// Cumulative group probabilities (the last is 1), or `None` for uniform groups.
    cumulative: Option<Vec<f64>>,
}

impl StitchSampler {
    /// The sampler of `sampling` over the paths of `net` (an SN-Net's evaluated stitches).
    pub fn new(net: &impl Trainable, sampling: Sampling) -> Self {
        Self::of(net, sampling, false)
    }

    /// As [`StitchSampler::new`], leaving the anchors out when `stitched_only` (for training the
    /// stitching layers alone, where an anchor's path has nothing to train).
    pub fn of(net: &impl Trainable, sampling: Sampling, stitched_only: bool) -> Self {
        let mut ids: Vec<(u64, StitchId)> = net
            .paths()
            .into_iter()
            .filter(|p| !(stitched_only && p.anchor))
            .map(|p| (p.flops, p.id))
            .collect();
        let groups: Vec<Vec<StitchId>> = match sampling {
            Sampling::Uniform => vec![ids.into_iter().map(|(_, id)| id).collect()],
            Sampling::FlopsGrouped { gap_flops, .. } => {
                ids.sort();
                let mut groups: Vec<Vec<StitchId>> = Vec::new();
                let mut first = 0u64;
                for (flops, id) in ids {
                    match groups.last_mut() {
                        Some(group) if flops.saturating_sub(first) <= gap_flops => group.push(id),
                        _ => {
                            first = flops;
                            groups.push(vec![id]);
                        }
                    }
                }
                groups
            }
        };
        let cumulative = match sampling {
            Sampling::FlopsGrouped {
                flops_sampling_k: Some(k),
                ..
            } if !groups.is_empty() => {
                let n = groups.len() as f64;
                let weights: Vec<f64> = (0..groups.len()).map(|i| i as f64 / k + 1.0 / n).collect();
                let total: f64 = weights.iter().sum();
                let mut sum = 0.0;
                Some(
                    weights
                        .iter()
                        .map(|w| {
                            sum += w / total;
                            sum
                        })
                        .collect(),
                )
            }
            _ => None,
        };
        Self { groups, cumulative }
    }

    /// Each group's probability of being drawn (cheapest group first).
    pub fn group_probabilities(&self) -> Vec<f64> {
        match &self.cumulative {
            Some(c) => c
                .iter()
                .scan(0.0, |previous, &p| {
                    let q = p - *previous;
                    *previous = p;
                    Some(q)
                })
                .collect(),
            None => vec![1.0 / self.groups.len() as f64; self.groups.len()],
        }
    }

    /// The groups (one for uniform sampling).
    pub fn groups(&self) -> &[Vec<StitchId>] {
        &self.groups
    }

    /// The stitch of step `step` of `epoch` under `seed`: a function of these alone.
    pub fn sample(&self, seed: u64, epoch: usize, step: usize) -> StitchId {
        let mut rng = sample_rng(seed ^ 0x5717_c4e5_a3b1_0f27, epoch, step);
        let draw = rng.next_u64();
        let index = match &self.cumulative {
            // 53 random bits as a uniform number in [0, 1).
            Some(c) => {
                let u = (draw >> 11) as f64 / (1u64 << 53) as f64;
                c.iter().position(|&p| u < p).unwrap_or(c.len() - 1)
            }
            None => (draw % self.groups.len() as u64) as usize,
        };
        let group = &self.groups[index];
        group[(rng.next_u64() % group.len() as u64) as usize]
    }
}
