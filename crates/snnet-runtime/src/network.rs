//! What a [`Runtime`](crate::Runtime) serves and a [`Profiler`](crate::Profiler) measures: a
//! whole SN-Net (every stitch) or one exported stitch ([`StitchModel`], only its own id).
//!
//! Both implement [`Network`], so the runtime, the profiler and the server work unchanged on
//! either; [`load_network`] loads any model file snnet-rs writes (safetensors or burnpack, told
//! apart by content) as one.

use std::path::Path;
use std::sync::Arc;

use snnet_core::burn::tensor::{Device, Tensor};
use snnet_core::zoo::{Cost, PretrainedConfig};
use snnet_core::{LoadedModel, SnNet, SnNetConfig, StitchId, StitchModel, load_model_file};

use crate::error::{Error, Result};

/// A network the runtime can serve: the stitches it runs, their costs and descriptions, and a
/// forward of one of them. Implemented by [`SnNet`] (stitches `0..n`) and by [`StitchModel`]
/// (its one stitch, under the id it had in the SN-Net it was exported from).
///
/// ```no_run
/// use std::sync::Arc;
/// use snnet_core::burn::tensor::Device;
/// use snnet_runtime::{Network, load_network};
///
/// let device = Device::default();
/// let net: Arc<dyn Network> = load_network("stitch24.safetensors".as_ref(), &device)?;
/// assert_eq!(net.stitch_ids().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Network: std::fmt::Debug + Send + Sync {
    /// The configuration of the SN-Net (of the SN-Net a stitch was exported from): anchors,
    /// space rules.
    fn config(&self) -> &SnNetConfig;

    /// How images are prepared (input size, normalisation, number of classes).
    fn pretrained(&self) -> &PretrainedConfig;

    /// The ids of the stitches this network runs, ascending.
    fn stitch_ids(&self) -> Vec<StitchId>;

    /// Whether this network runs stitch `id`.
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] for an id the SN-Net does not have, [`Error::StitchNotServed`]
    /// for another stitch than an exported stitch's own.
    fn check_stitch(&self, id: StitchId) -> Result<()>;

    /// FLOPs and parameters of stitch `id`.
    ///
    /// # Errors
    /// As [`check_stitch`](Network::check_stitch).
    fn cost(&self, id: StitchId) -> Result<Cost>;

    /// Stitch `id` in words, such as `deit_tiny[..=7] →L6→ deit_small[7..]`.
    ///
    /// # Errors
    /// As [`check_stitch`](Network::check_stitch).
    fn describe(&self, id: StitchId) -> Result<String>;

    /// Runs stitch `id` on `images`.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, num_classes]`.
    ///
    /// # Errors
    /// As [`check_stitch`](Network::check_stitch), and [`Error::Core`] when the forward fails
    /// (wrong image shape).
    fn forward(&self, images: Tensor<4>, id: StitchId) -> Result<Tensor<2>>;
}

impl Network for SnNet {
    fn config(&self) -> &SnNetConfig {
        SnNet::config(self)
    }

    fn pretrained(&self) -> &PretrainedConfig {
        self.plan().pretrained()
    }

    fn stitch_ids(&self) -> Vec<StitchId> {
        (0..self.num_stitches()).map(StitchId).collect()
    }

    fn check_stitch(&self, id: StitchId) -> Result<()> {
        if id.index() < self.num_stitches() {
            Ok(())
        } else {
            Err(Error::UnknownStitch {
                id: id.index(),
                reason: format!("the network has {} stitches", self.num_stitches()),
            })
        }
    }

    fn cost(&self, id: StitchId) -> Result<Cost> {
        self.check_stitch(id)?;
        Ok(SnNet::cost(self, id)?)
    }

    fn describe(&self, id: StitchId) -> Result<String> {
        self.check_stitch(id)?;
        Ok(self.space().display(id)?.to_string())
    }

    fn forward(&self, images: Tensor<4>, id: StitchId) -> Result<Tensor<2>> {
        self.check_stitch(id)?;
        Ok(SnNet::forward(self, images, id)?)
    }
}

impl Network for StitchModel {
    fn config(&self) -> &SnNetConfig {
        &StitchModel::config(self).snnet
    }

    fn pretrained(&self) -> &PretrainedConfig {
        StitchModel::pretrained(self)
    }

    fn stitch_ids(&self) -> Vec<StitchId> {
        vec![self.stitch_id()]
    }

    fn check_stitch(&self, id: StitchId) -> Result<()> {
        if id == self.stitch_id() {
            Ok(())
        } else {
            Err(Error::StitchNotServed {
                id: id.index(),
                served: self.stitch_id(),
            })
        }
    }

    fn cost(&self, id: StitchId) -> Result<Cost> {
        self.check_stitch(id)?;
        Ok(StitchModel::cost(self))
    }

    fn describe(&self, id: StitchId) -> Result<String> {
        self.check_stitch(id)?;
        Ok(self.description().to_owned())
    }

    fn forward(&self, images: Tensor<4>, id: StitchId) -> Result<Tensor<2>> {
        self.check_stitch(id)?;
        Ok(StitchModel::forward(self, images)?)
    }
}

/// A loaded model file ([`load_model_file`]) as the network it is.
pub fn into_network(model: LoadedModel) -> Arc<dyn Network> {
    match model {
        LoadedModel::SnNet(net) => Arc::new(*net),
        LoadedModel::Stitch(stitch) => Arc::new(*stitch),
    }
}

/// Loads any model file snnet-rs writes as a [`Network`]: an SN-Net checkpoint or an exported
/// stitch, safetensors or burnpack (int8, `snnet quantize`), told apart by content
/// ([`load_model_file`]). Non-finite weights are refused.
///
/// # Errors
/// [`Error::Core`]: the errors of [`load_model_file`].
pub fn load_network(path: &Path, device: &Device) -> Result<Arc<dyn Network>> {
    Ok(into_network(load_model_file(path, device)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use snnet_core::{ModelEntry, SpaceConfig};

    fn vit(name: &str, dim: usize) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "config": {
                "family": "vit", "img_size": [16, 16], "patch_size": [8, 8], "in_chans": 3,
                "num_classes": 5, "embed_dim": dim, "depth": 2, "num_heads": 2,
                "mlp_hidden": dim * 2, "qkv_bias": true, "class_token": true, "distilled": false,
                "no_embed_class": false, "layer_scale": false, "eps": 1e-6
            }
        })
    }

    fn net(device: &Device) -> SnNet {
        let anchors: Vec<ModelEntry> =
            serde_json::from_value(serde_json::json!([vit("a", 8), vit("b", 16)])).unwrap();
        SnNetConfig::new(anchors, SpaceConfig::default())
            .init(device)
            .unwrap()
    }

    #[test]
    fn an_exported_stitch_runs_only_its_own_id() {
        let device = Device::default();
        let net = net(&device);
        let last = StitchId(net.num_stitches() - 1);
        let stitch = net.export_stitch(last).unwrap();
        assert_eq!(Network::stitch_ids(&stitch), [last]);
        assert_eq!(
            Network::cost(&stitch, last).unwrap(),
            net.cost(last).unwrap()
        );
        assert_eq!(
            Network::describe(&stitch, last).unwrap(),
            Network::describe(&net, last).unwrap()
        );
        let images = Tensor::<4>::ones([1, 3, 16, 16], &device);
        let got = Network::forward(&stitch, images.clone(), last).unwrap();
        let want = Network::forward(&net, images.clone(), last).unwrap();
        assert_eq!(
            got.into_data().try_to_vec::<f32>().unwrap(),
            want.into_data().try_to_vec::<f32>().unwrap()
        );
        assert!(matches!(
            Network::forward(&stitch, images.clone(), StitchId(0)),
            Err(Error::StitchNotServed { id: 0, served }) if served == last
        ));
        assert!(matches!(
            Network::check_stitch(&net, StitchId(net.num_stitches())),
            Err(Error::UnknownStitch { .. })
        ));
        assert_eq!(Network::stitch_ids(&net).len(), net.num_stitches());
    }
}
