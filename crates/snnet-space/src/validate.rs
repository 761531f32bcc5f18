//! The checks a space's anchors and settings pass before anything is enumerated.

use crate::anchor::{AnchorSpec, Layout};
use crate::config::{Direction, SpaceConfig};
use crate::error::{Error, Result, Unsupported};
use crate::limits::MAX_ANCHORS;

/// Checks the anchors and settings; returns the stages to stitch.
pub(crate) fn validate(anchors: &[AnchorSpec], config: &SpaceConfig) -> Result<Vec<usize>> {
    let first = anchors.first().ok_or(Error::NoAnchors)?;
    if anchors.len() > MAX_ANCHORS {
        return Err(limit(
            "anchors",
            anchors.len() as u128,
            MAX_ANCHORS,
            "MAX_ANCHORS",
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for anchor in anchors {
        anchor.validate()?;
        if !names.insert(anchor.name.as_str()) {
            return Err(Error::DuplicateAnchor {
                name: anchor.name.clone(),
            });
        }
        if anchor.num_stages() != first.num_stages() {
            return Err(Error::StageCountMismatch {
                first: first.name.clone(),
                first_stages: first.num_stages(),
                other: anchor.name.clone(),
                other_stages: anchor.num_stages(),
            });
        }
    }
    if config.kernel_size == 0 {
        return Err(Error::InvalidWindow {
            what: "kernel size",
            value: 0,
        });
    }
    if config.stride == 0 {
        return Err(Error::InvalidWindow {
            what: "stride",
            value: 0,
        });
    }
    let num_stages = first.num_stages();
    let stages = match &config.stages {
        Some(stages) => {
            if stages.is_empty() {
                return Err(Error::NoStages);
            }
            if let Some(&stage) = stages.iter().find(|&&s| s >= num_stages) {
                return Err(Error::StageOutOfRange { stage, num_stages });
            }
            let mut stages = stages.clone();
            stages.sort_unstable();
            stages.dedup();
            stages
        }
        None if num_stages == 1 => vec![0],
        // The reference stitches every stage but the last; with a CNN among the anchors it also
        // skips stage 0 (`stitching_resnet_swin`).
        None if anchors.iter().any(|a| a.layout == Layout::Map) => {
            (1..num_stages.saturating_sub(1)).collect()
        }
        None => (0..num_stages.saturating_sub(1)).collect(),
    };
    if stages.is_empty() {
        return Err(Error::NoStages);
    }
    for (front_anchor, end_anchor) in anchors.iter().zip(anchors.iter().skip(1)) {
        for &stage in &stages {
            let (Some(front), Some(end)) =
                (front_anchor.stages.get(stage), end_anchor.stages.get(stage))
            else {
                return Err(Error::StageOutOfRange { stage, num_stages });
            };
            if front.width > end.width {
                return Err(Error::AnchorOrder {
                    front: front_anchor.name.clone(),
                    end: end_anchor.name.clone(),
                    stage,
                    front_width: front.width,
                    end_width: end.width,
                });
            }
        }
    }
    if config.direction == Direction::TwoWay {
        if num_stages > 1 {
            return Err(Error::Unsupported(Unsupported::TwoWayHierarchical));
        }
        if let Some((small, large)) = anchors
            .iter()
            .zip(anchors.iter().skip(1))
            .find(|(small, large)| small.depth() > large.depth())
        {
            return Err(Error::Unsupported(Unsupported::TwoWayDeeperSmall {
                small: small.name.clone(),
                small_depth: small.depth(),
                large: large.name.clone(),
                large_depth: large.depth(),
            }));
        }
    }
    Ok(stages)
}

/// A [`Error::LimitExceeded`] of the space (no anchor in particular).
pub(crate) fn limit(
    what: &'static str,
    value: u128,
    limit: usize,
    constant: &'static str,
) -> Error {
    Error::LimitExceeded {
        what,
        value,
        limit: limit as u64,
        constant,
        anchor: None,
    }
}
