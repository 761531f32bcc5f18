//! Models by timm name: architecture configs, pretrained (preprocessing) configs, glob listing
//! and custom models from JSON.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use snnet_space::AnchorSpec;

use crate::anchor::{Activation, Anchor, FeatureInfo};
use crate::cost::ModelCost;
use crate::error::{Error, Result};
use crate::resnet::{ResNetAnchor, ResNetConfig};
use crate::swin::{SwinAnchor, SwinConfig};
use crate::vit::{VitAnchor, VitConfig};
use crate::weights::{LoadReport, load_weights};

/// The architecture of a model, by family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelConfig {
    /// ViT, DeiT, distilled DeiT, DeiT-3.
    Vit(VitConfig),
    /// ResNet-18/34/50/101 and custom ResNets.
    #[serde(rename = "resnet")]
    ResNet(ResNetConfig),
    /// Swin Transformers.
    Swin(SwinConfig),
}

impl ModelConfig {
    /// The family's name (`vit`).
    pub fn family(&self) -> &'static str {
        match self {
            Self::Vit(_) => "vit",
            Self::ResNet(_) => "resnet",
            Self::Swin(_) => "swin",
        }
    }

    /// Checks the config.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Vit(c) => c.validate(),
            Self::ResNet(c) => c.validate(),
            Self::Swin(c) => c.validate(),
        }
    }

    /// FLOPs and parameters per part for one image.
    pub fn cost(&self) -> ModelCost {
        match self {
            Self::Vit(c) => c.cost(),
            Self::ResNet(c) => c.cost(),
            Self::Swin(c) => c.cost(),
        }
    }

    /// Per-block output info (timm's `feature_info`, one entry per global block).
    pub fn feature_info(&self) -> Vec<FeatureInfo> {
        match self {
            Self::Vit(c) => c.feature_info(),
            Self::ResNet(c) => c.feature_info(),
            Self::Swin(c) => c.feature_info(),
        }
    }

    /// The anchor's shape for the stitch space.
    pub fn spec(&self, name: &str) -> AnchorSpec {
        match self {
            Self::Vit(c) => c.spec(name),
            Self::ResNet(c) => c.spec(name),
            Self::Swin(c) => c.spec(name),
        }
    }

    /// The number of classifier outputs (0: none).
    pub fn num_classes(&self) -> usize {
        match self {
            Self::Vit(c) => c.num_classes,
            Self::ResNet(c) => c.num_classes,
            Self::Swin(c) => c.num_classes,
        }
    }

    /// The input image size `[height, width]`.
    pub fn img_size(&self) -> [usize; 2] {
        match self {
            Self::Vit(c) => c.img_size,
            Self::ResNet(c) => c.img_size,
            Self::Swin(c) => c.img_size,
        }
    }

    /// Key renames from the family's other checkpoint layouts to timm's (regex, replacement),
    /// applied when loading weights: the original DeiT-3 checkpoints name LayerScale
    /// `gamma_1`/`gamma_2` where timm has `ls1.gamma`/`ls2.gamma`.
    pub fn weight_remap(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Vit(_) => &[(r"\.gamma_1$", ".ls1.gamma"), (r"\.gamma_2$", ".ls2.gamma")],
            Self::ResNet(_) => &[],
            // The original Microsoft checkpoints: `head.*` for timm's `head.fc.*` (the
            // `downsample` move is a layout retry, see `ModelEntry::load`).
            Self::Swin(_) => &[(r"^head\.(weight|bias)$", "head.fc.$1")],
        }
    }

    /// Builds the model with random weights.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn init(&self, name: &str, device: &Device) -> Result<Model> {
        match self {
            Self::Vit(config) => Ok(Model::Vit(VitAnchor {
                config: config.clone(),
                model: config.init(device)?,
                name: name.to_owned(),
            })),
            Self::ResNet(config) => Ok(Model::ResNet(ResNetAnchor {
                config: config.clone(),
                model: config.init(device)?,
                name: name.to_owned(),
            })),
            Self::Swin(config) => Ok(Model::Swin(SwinAnchor {
                config: config.clone(),
                model: config.init(device)?,
                name: name.to_owned(),
            })),
        }
    }

    /// Input channels.
    pub fn in_chans(&self) -> usize {
        match self {
            Self::Vit(c) => c.in_chans,
            Self::ResNet(c) => c.in_chans,
            Self::Swin(c) => c.in_chans,
        }
    }
}

/// How images are prepared for a model: timm's `pretrained_cfg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainedConfig {
    /// `[channels, height, width]` of the model input.
    pub input_size: [usize; 3],
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// The shorter side is resized to `size / crop_pct` before the center crop.
    pub crop_pct: f32,
    /// The resize filter.
    pub interpolation: Interpolation,
    /// Classifier outputs of the pretrained weights.
    pub num_classes: usize,
}

/// A resize filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Bilinear.
    Bilinear,
    /// Bicubic (timm's default for ViT, DeiT, Swin and ResNet).
    Bicubic,
}

/// ImageNet mean (timm `IMAGENET_DEFAULT_MEAN`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation (timm `IMAGENET_DEFAULT_STD`).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Inception normalisation (timm `IMAGENET_INCEPTION_MEAN`/`STD`), used by Google's ViTs.
pub const INCEPTION_MEAN_STD: [f32; 3] = [0.5, 0.5, 0.5];

impl PretrainedConfig {
    /// The preprocessing of a model of `input_size` with ImageNet normalisation and timm's
    /// defaults (crop 0.9, bicubic).
    pub fn imagenet(input_size: [usize; 3], num_classes: usize) -> Self {
        Self {
            input_size,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            crop_pct: 0.9,
            interpolation: Interpolation::Bicubic,
            num_classes,
        }
    }

    fn inception(mut self) -> Self {
        self.mean = INCEPTION_MEAN_STD;
        self.std = INCEPTION_MEAN_STD;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        let ok = self.input_size.iter().all(|&d| d > 0)
            && self.std.iter().all(|&s| s > 0.0 && s.is_finite())
            && self.mean.iter().all(|m| m.is_finite())
            && self.crop_pct > 0.0
            && self.crop_pct <= 1.0;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                family: "pretrained",
                reason: format!(
                    "input_size must be positive, std positive and crop_pct in (0, 1]: {self:?}"
                ),
            })
        }
    }
}

/// One model of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The model's name (its timm name for the built-in models).
    pub name: String,
    /// The architecture.
    pub config: ModelConfig,
    /// The preprocessing; from the config's input size with ImageNet defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PretrainedConfig>,
}

impl ModelEntry {
    /// Checks the architecture and, when given, the preprocessing.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        self.config.validate()?;
        self.pretrained
            .as_ref()
            .map_or(Ok(()), PretrainedConfig::validate)
    }

    /// The preprocessing (the explicit one, or ImageNet defaults at the model's input size).
    pub fn pretrained(&self) -> PretrainedConfig {
        self.pretrained.clone().unwrap_or_else(|| {
            let [h, w] = self.config.img_size();
            PretrainedConfig::imagenet([self.config.in_chans(), h, w], self.config.num_classes())
        })
    }

    /// Builds the model with random weights.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn init(&self, device: &Device) -> Result<Model> {
        self.config.init(&self.name, device)
    }

    /// Builds the model and loads timm weights from `path` (safetensors or PyTorch), applying the
    /// family's remap table.
    ///
    /// # Errors
    /// As [`ModelConfig::init`] and [`load_weights`].
    pub fn load(&self, path: &Path, device: &Device) -> Result<(Model, LoadReport)> {
        self.load_prefixed(path, "", device)
    }

    /// As [`ModelEntry::load`], from the keys of `path` that start with `prefix` (e.g.
    /// `anchors.1.` in an SN-Net checkpoint); the file's other keys are reported as
    /// unexpected.
    ///
    /// # Errors
    /// As [`ModelEntry::load`].
    pub fn load_prefixed(
        &self,
        path: &Path,
        prefix: &str,
        device: &Device,
    ) -> Result<(Model, LoadReport)> {
        let strip = (!prefix.is_empty()).then(|| {
            let escaped: String = prefix
                .chars()
                .flat_map(|c| {
                    let escape = !c.is_ascii_alphanumeric() && c != '_';
                    escape.then_some('\\').into_iter().chain(std::iter::once(c))
                })
                .collect();
            format!("^{escaped}")
        });
        let remap: Vec<(&str, &str)> = strip
            .as_deref()
            .map(|s| (s, ""))
            .into_iter()
            .chain(self.config.weight_remap().iter().copied())
            .collect();
        let remap = remap.as_slice();
        let result = self.init(device)?.load_weights(path, remap);
        let ModelConfig::Swin(config) = &self.config else {
            return result;
        };
        // A Swin checkpoint in the original Microsoft layout stores patch merging at the end of
        // stage s (`layers.{s}.downsample`) where timm has it at the start of stage s + 1: the
        // timm-layout attempt then lacks or mis-shapes a `downsample` tensor. Retry moved.
        let original_layout = match &result {
            Err(Error::MissingTensors { keys, .. }) => {
                keys.iter().any(|k| k.contains(".downsample."))
            }
            Err(Error::ShapeMismatch { key, .. }) => key.contains(".downsample."),
            _ => false,
        };
        if !original_layout {
            return result;
        }
        // Shift the last stage first so that a renamed key is not renamed again.
        let moved: Vec<(String, String)> = (0..config.depths.len().saturating_sub(1))
            .rev()
            .map(|s| {
                (
                    format!(r"^layers\.{s}\.downsample\."),
                    format!("layers.{}.downsample.", s + 1),
                )
            })
            .collect();
        let all: Vec<(&str, &str)> = remap
            .iter()
            .copied()
            .chain(moved.iter().map(|(a, b)| (a.as_str(), b.as_str())))
            .collect();
        self.init(device)?.load_weights(path, &all)
    }
}

/// A model of any family, as an [`Anchor`].
///
/// As a Burn module its tensors are keyed `{Vit|ResNet|Swin}.model.<timm key>`
/// (`model.<timm key>` with burn-store's `skip_enum_variants`).
#[derive(Module, Debug)]
pub enum Model {
    /// A ViT-family model.
    Vit(VitAnchor),
    /// A ResNet.
    ResNet(ResNetAnchor),
    /// A Swin Transformer.
    Swin(SwinAnchor),
}

impl Model {
    /// Saves the weights in timm's layout (see [`save_weights`](crate::weights::save_weights)).
    ///
    /// # Errors
    /// As [`save_weights`](crate::weights::save_weights).
    pub fn save_weights(&self, path: &Path) -> Result<()> {
        match self {
            Self::Vit(a) => crate::weights::save_weights(&a.model, path),
            Self::ResNet(a) => crate::weights::save_weights(&a.model, path),
            Self::Swin(a) => crate::weights::save_weights(&a.model, path),
        }
    }

    /// Loads timm weights (see [`load_weights`]).
    ///
    /// # Errors
    /// As [`load_weights`].
    pub fn load_weights(self, path: &Path, remap: &[(&str, &str)]) -> Result<(Self, LoadReport)> {
        match self {
            Self::Vit(anchor) => {
                let (model, report) = load_weights(anchor.model, path, remap)?;
                Ok((Self::Vit(VitAnchor { model, ..anchor }), report))
            }
            Self::ResNet(anchor) => {
                let (model, report) = load_weights(anchor.model, path, remap)?;
                Ok((Self::ResNet(ResNetAnchor { model, ..anchor }), report))
            }
            Self::Swin(anchor) => {
                let (model, report) = load_weights(anchor.model, path, remap)?;
                Ok((Self::Swin(SwinAnchor { model, ..anchor }), report))
            }
        }
    }

    fn anchor(&self) -> &dyn Anchor {
        match self {
            Self::Vit(a) => a,
            Self::ResNet(a) => a,
            Self::Swin(a) => a,
        }
    }
}

impl Anchor for Model {
    fn spec(&self) -> AnchorSpec {
        self.anchor().spec()
    }
    fn feature_info(&self) -> Vec<FeatureInfo> {
        self.anchor().feature_info()
    }
    fn num_blocks(&self) -> usize {
        self.anchor().num_blocks()
    }
    fn embed(&self, images: Tensor<4>) -> Result<Activation> {
        self.anchor().embed(images)
    }
    fn block(&self, index: usize, x: Activation) -> Result<Activation> {
        self.anchor().block(index, x)
    }
    fn head(&self, x: Activation, norm: bool) -> Result<Tensor<2>> {
        self.anchor().head(x, norm)
    }
    fn cost(&self) -> ModelCost {
        self.anchor().cost()
    }
}

/// The models of the zoo by name: the built-in timm models plus custom ones from JSON.
///
/// ```
/// use snnet_zoo::Registry;
///
/// let registry = Registry::builtin();
/// assert!(registry.list("deit3_*").contains(&"deit3_large_patch16_224"));
/// let entry = registry.get("deit_tiny_patch16_224")?;
/// assert_eq!(entry.config.cost().total().params, 5_717_416);
/// # Ok::<(), snnet_zoo::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    entries: BTreeMap<String, ModelEntry>,
}

/// The accepted shapes of a custom model file: one entry, a list, or `{"models": [...]}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum EntryFile {
    One(ModelEntry),
    Many(Vec<ModelEntry>),
    Wrapped { models: Vec<ModelEntry> },
}

impl Registry {
    /// The built-in models (timm names).
    pub fn builtin() -> Self {
        let vit = |name: &str, config: VitConfig, inception: bool| {
            let [h, w] = config.img_size;
            let pretrained = PretrainedConfig::imagenet([3, h, w], config.num_classes);
            ModelEntry {
                name: name.to_owned(),
                config: ModelConfig::Vit(config),
                pretrained: Some(if inception {
                    pretrained.inception()
                } else {
                    pretrained
                }),
            }
        };
        // timm's Swin configs: crop 0.9, bicubic, ImageNet mean/std (1.0 crop at 384).
        let swin = |name: &str, config: SwinConfig| {
            let [h, w] = config.img_size;
            let mut pretrained = PretrainedConfig::imagenet([3, h, w], config.num_classes);
            if h >= 384 {
                pretrained.crop_pct = 1.0;
            }
            ModelEntry {
                name: name.to_owned(),
                config: ModelConfig::Swin(config),
                pretrained: Some(pretrained),
            }
        };
        // timm's default tags (`a1_in1k`): crop 0.95, bicubic.
        let resnet = |name: &str, config: ResNetConfig| {
            let [h, w] = config.img_size;
            let mut pretrained = PretrainedConfig::imagenet([3, h, w], config.num_classes);
            pretrained.crop_pct = 0.95;
            ModelEntry {
                name: name.to_owned(),
                config: ModelConfig::ResNet(config),
                pretrained: Some(pretrained),
            }
        };
        let entries = [
            vit(
                "deit_tiny_patch16_224",
                VitConfig::deit_tiny_patch16_224(),
                false,
            ),
            vit(
                "deit_small_patch16_224",
                VitConfig::deit_small_patch16_224(),
                false,
            ),
            vit(
                "deit_base_patch16_224",
                VitConfig::deit_base_patch16_224(),
                false,
            ),
            vit(
                "deit_tiny_distilled_patch16_224",
                VitConfig::deit_tiny_distilled_patch16_224(),
                false,
            ),
            vit(
                "deit_small_distilled_patch16_224",
                VitConfig::deit_small_distilled_patch16_224(),
                false,
            ),
            vit(
                "deit_base_distilled_patch16_224",
                VitConfig::deit_base_distilled_patch16_224(),
                false,
            ),
            vit(
                "deit3_small_patch16_224",
                VitConfig::deit3_small_patch16_224(),
                false,
            ),
            vit(
                "deit3_base_patch16_224",
                VitConfig::deit3_base_patch16_224(),
                false,
            ),
            vit(
                "deit3_large_patch16_224",
                VitConfig::deit3_large_patch16_224(),
                false,
            ),
            vit(
                "vit_tiny_patch16_224",
                VitConfig::vit_tiny_patch16_224(),
                true,
            ),
            vit(
                "vit_small_patch16_224",
                VitConfig::vit_small_patch16_224(),
                true,
            ),
            vit(
                "vit_base_patch16_224",
                VitConfig::vit_base_patch16_224(),
                true,
            ),
            resnet("resnet18", ResNetConfig::resnet18()),
            resnet("resnet34", ResNetConfig::resnet34()),
            resnet("resnet50", ResNetConfig::resnet50()),
            resnet("resnet101", ResNetConfig::resnet101()),
            swin(
                "swin_tiny_patch4_window7_224",
                SwinConfig::swin_tiny_patch4_window7_224(),
            ),
            swin(
                "swin_small_patch4_window7_224",
                SwinConfig::swin_small_patch4_window7_224(),
            ),
            swin(
                "swin_base_patch4_window7_224",
                SwinConfig::swin_base_patch4_window7_224(),
            ),
            swin(
                "swin_base_patch4_window12_384",
                SwinConfig::swin_base_patch4_window12_384(),
            ),
        ];
        Self {
            entries: entries.into_iter().map(|e| (e.name.clone(), e)).collect(),
        }
    }

    /// Adds (or replaces, by name) one entry after validating it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn add(&mut self, entry: ModelEntry) -> Result<()> {
        entry.validate()?;
        self.entries.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Adds the models of a JSON document (one entry, a list, or `{"models": [...]}`, each
    /// `{"name": ..., "config": {"family": "vit", ...}, "pretrained": {...}}`); returns their
    /// names. Nothing is added when any entry is invalid.
    ///
    /// # Errors
    /// [`Error::Json`] and [`Error::InvalidConfig`].
    pub fn add_json_str(&mut self, json: &str) -> Result<Vec<String>> {
        self.add_json(json, Path::new(""))
    }

    /// Like [`Registry::add_json_str`], from a file.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`] and [`Error::InvalidConfig`].
    pub fn add_json_file(&mut self, path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        self.add_json(&text, path)
    }

    fn add_json(&mut self, json: &str, path: &Path) -> Result<Vec<String>> {
        let file: EntryFile = serde_json::from_str(json).map_err(|source| Error::Json {
            path: path.to_owned(),
            source,
        })?;
        let entries = match file {
            EntryFile::One(e) => vec![e],
            EntryFile::Many(v) | EntryFile::Wrapped { models: v } => v,
        };
        for entry in &entries {
            entry.validate()?;
        }
        let names = entries.iter().map(|e| e.name.clone()).collect();
        for entry in entries {
            self.entries.insert(entry.name.clone(), entry);
        }
        Ok(names)
    }

    /// The entry called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownModel`] with the closest names.
    pub fn get(&self, name: &str) -> Result<&ModelEntry> {
        self.entries.get(name).ok_or_else(|| Error::UnknownModel {
            name: name.to_owned(),
            suggestions: self.suggest(name),
        })
    }

    /// Every entry, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = &ModelEntry> {
        self.entries.values()
    }

    /// The names matching a glob (`*` any run, `?` one character; timm's `list_models`),
    /// sorted.
    pub fn list(&self, pattern: &str) -> Vec<&str> {
        self.entries
            .keys()
            .filter(|name| glob_match(pattern, name))
            .map(String::as_str)
            .collect()
    }

    fn suggest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &String)> = self
            .entries
            .keys()
            .map(|k| (strsim::jaro_winkler(name, k), k))
            .filter(|(score, k)| *score >= 0.85 || k.contains(name))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored.into_iter().take(5).map(|(_, k)| k.clone()).collect()
    }
}

/// `*` matches any run of characters, `?` any one; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("deit*", "deit_tiny_patch16_224"));
        assert!(glob_match("*tiny*", "deit_tiny_patch16_224"));
        assert!(glob_match("deit_?iny*", "deit_tiny_patch16_224"));
        assert!(!glob_match("deit3*", "deit_tiny_patch16_224"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn builtin_listing_and_lookup() {
        let registry = Registry::builtin();
        assert_eq!(registry.list("deit3*").len(), 3);
        assert_eq!(registry.list("*distilled*").len(), 3);
        match registry.get("deit_tiny_patch16") {
            Err(Error::UnknownModel { suggestions, .. }) => {
                assert_eq!(suggestions[0], "deit_tiny_patch16_224");
            }
            other => panic!("{other:?}"),
        }
        let vit = registry.get("vit_small_patch16_224").unwrap().pretrained();
        assert_eq!(vit.mean, INCEPTION_MEAN_STD);
        let deit = registry.get("deit_small_patch16_224").unwrap().pretrained();
        assert_eq!((deit.mean, deit.input_size), (IMAGENET_MEAN, [3, 224, 224]));
    }

    /// The zoo's anchors have the shapes the stitch space's built-in specs give them.
    #[test]
    fn specs_agree_with_the_stitch_space() {
        let registry = Registry::builtin();
        for entry in registry.entries() {
            let ours = entry.config.spec(&entry.name);
            let space = snnet_space::builtin_anchor(&entry.name).unwrap();
            assert_eq!(ours.stages, space.stages, "{}", entry.name);
            assert_eq!(ours.layout, space.layout, "{}", entry.name);
        }
    }

    #[test]
    fn custom_models_from_json() {
        let mut registry = Registry::default();
        let json = r#"{"models": [{"name": "vit_p4_w64", "config": {"family": "vit",
            "img_size": [28, 28], "patch_size": [4, 4], "in_chans": 1, "num_classes": 10,
            "embed_dim": 64, "depth": 6, "num_heads": 2, "mlp_hidden": 128}}]}"#;
        assert_eq!(registry.add_json_str(json).unwrap(), ["vit_p4_w64"]);
        let entry = registry.get("vit_p4_w64").unwrap();
        assert_eq!(entry.pretrained().input_size, [1, 28, 28]);
        assert_eq!(entry.config.cost().blocks.len(), 6);
        let bad = json.replace("\"num_heads\": 2", "\"num_heads\": 3");
        assert!(matches!(
            registry.add_json_str(&bad),
            Err(Error::InvalidConfig { .. })
        ));
        let typo = json.replace("embed_dim", "embed_dims");
        assert!(matches!(
            registry.add_json_str(&typo),
            Err(Error::Json { .. })
        ));
    }
}
