//! Multi-scale features of a stitch, for dense heads (segmentation, depth): timm's
//! `forward_intermediates` / `features_only` along a stitch's path.
//!
//! A stitched path runs a sequence of blocks — some of the front anchor's, then (through a
//! stitching layer) some of the next anchor's. [`Features::Stages`] takes the output of the
//! last block the path runs in each stage; [`Features::Blocks`] chosen positions in that
//! sequence. Every feature is a map `[B, C, H, W]`: a plain ViT's patch tokens (prefix tokens
//! dropped) and Swin's tokens reshaped to their grid, as timm's `forward_intermediates` does.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use snnet_space::StitchId;
use snnet_zoo::{Activation, FeatureInfo};

use crate::error::Result;
use crate::net::SnNet;
use crate::stitch_file::ExportError;
use crate::stitch_model::StitchModel;

/// Which features [`SnNet::forward_features`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Features {
    /// The output of the last block the path runs in each stage it reaches, by stage (a plain
    /// ViT has one stage: its last block).
    Stages,
    /// The outputs of these positions in the path's block sequence (0 = the first block the
    /// path runs); positions past the path's end are an error.
    Blocks(Vec<usize>),
}

/// What one feature of a stitch is: where on the path it is taken and its shape (timm's
/// `feature_info`, per stitch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathFeature {
    /// The name it is written under: `stage.{s}` or `block.{position}`.
    pub name: String,
    /// The position in the path's block sequence.
    pub position: usize,
    /// The segment of the path that runs the block.
    pub segment: usize,
    /// The anchor that runs it (its index in the SN-Net).
    pub anchor: usize,
    /// The anchor's per-block info of that block (global block index, stage, module path,
    /// channels, layout, grid, reduction).
    pub block: FeatureInfo,
}

impl StitchModel {
    /// The path's block sequence: per position, (segment, anchor index into
    /// [`StitchModel::anchors`], block info).
    fn block_sequence(&self) -> Vec<(usize, usize, FeatureInfo)> {
        self.segments()
            .iter()
            .enumerate()
            .flat_map(|(s, segment)| {
                let info = self.anchor_feature_info(segment.anchor);
                segment
                    .blocks()
                    .filter_map(move |b| Some((s, segment.anchor, info.get(b)?.clone())))
            })
            .collect()
    }

    /// The features `which` selects, in order: where each is taken, its channels and
    /// reduction.
    ///
    /// # Errors
    /// [`ExportError::NoSuchBlock`] for a position past the path's end.
    pub fn feature_info(&self, which: &Features) -> Result<Vec<PathFeature>> {
        let sequence = self.block_sequence();
        let feature = |position: usize, name: String| {
            let (segment, local, block) =
                sequence
                    .get(position)
                    .cloned()
                    .ok_or(ExportError::NoSuchBlock {
                        id: self.stitch_id(),
                        blocks: sequence.len(),
                        position,
                    })?;
            Ok(PathFeature {
                name,
                position,
                segment,
                anchor: self.anchor_ids().get(local).copied().unwrap_or(local),
                block,
            })
        };
        match which {
            Features::Blocks(positions) => positions
                .iter()
                .map(|&p| feature(p, format!("block.{p}")))
                .collect(),
            Features::Stages => {
                let mut last_of_stage: Vec<(usize, usize)> = Vec::new();
                for (position, (_, _, block)) in sequence.iter().enumerate() {
                    match last_of_stage.last_mut() {
                        Some((stage, last)) if *stage == block.stage => *last = position,
                        _ => last_of_stage.push((block.stage, position)),
                    }
                }
                last_of_stage
                    .into_iter()
                    .map(|(stage, p)| feature(p, format!("stage.{stage}")))
                    .collect()
            }
        }
    }

    /// Runs the stitch's blocks and returns the features `which` selects, as maps.
    ///
    /// # Shapes
    /// `[B, C, H, W]` images → per feature `[B, channels, grid[0], grid[1]]`.
    ///
    /// # Errors
    /// As [`StitchModel::forward`] and [`StitchModel::feature_info`].
    pub fn forward_features(
        &self,
        images: Tensor<4>,
        which: &Features,
    ) -> Result<Vec<(PathFeature, Tensor<4>)>> {
        let info = self.feature_info(which)?;
        self.check_entry(images.dims())?;
        let mut wanted: Vec<Option<Tensor<4>>> = vec![None; info.len()];
        let mut position = 0usize;
        if !info.is_empty() {
            self.run_segments(images, &mut |_, _, x| {
                for (slot, f) in wanted.iter_mut().zip(&info) {
                    if f.position == position {
                        *slot = Some(to_map(x, &f.block));
                    }
                }
                position += 1;
            });
        }
        Ok(info
            .into_iter()
            .zip(wanted)
            .filter_map(|(f, t)| Some((f, t?)))
            .collect())
    }
}

/// A block's output as a map: tokens without their prefix, reshaped to the block's grid.
fn to_map(x: &Activation, block: &FeatureInfo) -> Tensor<4> {
    match x {
        Activation::Map(m) => m.clone(),
        Activation::Tokens(t) => {
            let [_, n, _] = t.dims();
            let prefix = block.prefix_tokens.min(n);
            Activation::Tokens(t.clone().narrow(1, prefix, n - prefix)).into_map(block.grid)
        }
    }
}

impl SnNet {
    /// The features `which` selects on stitch `id`'s path: where each is taken, its channels
    /// and reduction (timm's `feature_info`, per stitch).
    ///
    /// # Errors
    /// [`Error::Space`](crate::Error::Space) for an id out of range, as
    /// [`StitchModel::feature_info`].
    pub fn feature_info(&self, id: StitchId, which: &Features) -> Result<Vec<PathFeature>> {
        self.export_stitch(id)?.feature_info(which)
    }

    /// Runs stitch `id` and returns the features `which` selects along its path, as maps
    /// (timm's `forward_intermediates` for a stitch); for an anchor, the anchor's own block
    /// outputs.
    ///
    /// # Shapes
    /// `[B, C, H, W]` images → per feature `[B, channels, grid[0], grid[1]]`.
    ///
    /// # Errors
    /// As [`SnNet::forward`] and [`StitchModel::feature_info`].
    pub fn forward_features(
        &self,
        images: Tensor<4>,
        id: StitchId,
        which: &Features,
    ) -> Result<Vec<(PathFeature, Tensor<4>)>> {
        self.export_stitch(id)?.forward_features(images, which)
    }
}
