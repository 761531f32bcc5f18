//! Models by timm name: the built-in anchors (derived from the stitch space's table), glob
//! listing and custom models from JSON.

// Model configs and names come from users' files: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use snnet_space::builtin::{self, BuiltinAnchor};
use snnet_space::json_items;

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::pretrained::PretrainedConfig;
use crate::weights::{LoadOptions, LoadReport};

/// Longest model name a registry accepts, in bytes: the stitch space's limit for anchor names.
pub use snnet_space::limits::MAX_NAME_LEN;

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
    /// The entry of a built-in anchor: its config and timm's preprocessing, derived from the
    /// table of built-in anchors ([`snnet_space::builtin::ANCHORS`]).
    pub fn builtin(anchor: &BuiltinAnchor) -> Self {
        let config = ModelConfig::from(anchor.arch);
        let pretrained = config.family_config().builtin_pretrained(&anchor.arch);
        Self {
            name: anchor.name.to_owned(),
            config,
            pretrained: Some(pretrained),
        }
    }

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
        self.pretrained
            .clone()
            .unwrap_or_else(|| self.config.io().imagenet())
    }

    /// The same model run at `input_size` (`[channels, height, width]`), when its family runs
    /// at any input size ([`ModelConfig::at_img_size`]) and the channels match: its config and
    /// preprocessing say the new size (the mean, std, crop and interpolation stay its own).
    /// `None` otherwise.
    pub fn at_input_size(&self, input_size: [usize; 3]) -> Option<Self> {
        let [c, h, w] = input_size;
        if c != self.config.in_chans() {
            return None;
        }
        let config = self.config.at_img_size([h, w])?;
        let mut pretrained = self.pretrained();
        pretrained.input_size = input_size;
        Some(Self {
            name: self.name.clone(),
            config,
            pretrained: Some(pretrained),
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
    /// family's remap table (and, for Swin, retrying the original Microsoft layout).
    ///
    /// # Errors
    /// As [`ModelConfig::init`] and [`load_weights`](crate::load_weights).
    pub fn load(&self, path: &Path, device: &Device) -> Result<(Model, LoadReport)> {
        self.load_prefixed_with(path, "", LoadOptions::default(), device)
    }

    /// As [`ModelEntry::load`], with `options` (e.g. [`LoadOptions::allow_nonfinite`]).
    ///
    /// # Errors
    /// As [`ModelEntry::load`].
    pub fn load_with(
        &self,
        path: &Path,
        options: LoadOptions,
        device: &Device,
    ) -> Result<(Model, LoadReport)> {
        self.load_prefixed_with(path, "", options, device)
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
        self.load_prefixed_with(path, prefix, LoadOptions::default(), device)
    }

    /// As [`ModelEntry::load_prefixed`], with `options`.
    ///
    /// # Errors
    /// As [`ModelEntry::load`].
    pub fn load_prefixed_with(
        &self,
        path: &Path,
        prefix: &str,
        options: LoadOptions,
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
        let remap: Vec<(&str, &str)> = strip.as_deref().map(|s| (s, "")).into_iter().collect();
        self.config
            .load_with(&self.name, path, &remap, options, device)
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

impl Registry {
    /// The built-in models (timm names): one [`ModelEntry::builtin`] per entry of the table of
    /// built-in anchors ([`snnet_space::builtin::ANCHORS`]).
    pub fn builtin() -> Self {
        Self {
            entries: builtin::ANCHORS
                .iter()
                .map(|a| (a.name.to_owned(), ModelEntry::builtin(a)))
                .collect(),
        }
    }

    /// Adds (or replaces, by name) one entry after validating it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn add(&mut self, entry: ModelEntry) -> Result<()> {
        entry.validate()?;
        self.check_new_name(&entry.name, Path::new(""))?;
        self.entries.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// A name may be added once: redefining a model (a built-in one above all) would silently
    /// change what the name means; names must be printable and at most [`MAX_NAME_LEN`] bytes.
    fn check_new_name(&self, name: &str, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::InvalidConfig {
            family: "model",
            reason: format!(
                "{}name {:?}: {reason}",
                if path.as_os_str().is_empty() {
                    String::new()
                } else {
                    format!("{}: ", path.display())
                },
                name.chars().take(MAX_NAME_LEN).collect::<String>()
            ),
        };
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(bad(format!("names have 1 to {MAX_NAME_LEN} bytes")));
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(
                "names may not hold whitespace or control characters".into()
            ));
        }
        if self.entries.contains_key(name) {
            return Err(bad(
                "a model of this name is already defined (built in or from an earlier file); \
                 choose another name"
                    .into(),
            ));
        }
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
        let entries: Vec<ModelEntry> =
            json_items(json, "models").map_err(|source| Error::Json {
                path: path.to_owned(),
                source,
            })?;
        let mut seen = std::collections::BTreeSet::new();
        for entry in &entries {
            entry.validate()?;
            self.check_new_name(&entry.name, path)?;
            if !seen.insert(entry.name.as_str()) {
                return Err(Error::InvalidConfig {
                    family: "model",
                    reason: format!(
                        "{}: the name {:?} is defined twice",
                        path.display(),
                        entry.name
                    ),
                });
            }
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
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Indices stay below the lengths of the two vectors, so `+ 1` cannot overflow.
    let next = |i: usize| i.saturating_add(1);
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&tc) = t.get(ti) {
        match p.get(pi) {
            Some(&pc) if pc == '?' || pc == tc => {
                pi = next(pi);
                ti = next(ti);
            }
            Some('*') => {
                star = Some((pi, ti));
                pi = next(pi);
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = next(sp);
                    ti = next(st);
                    star = Some((sp, next(st)));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

    use super::*;
    use crate::pretrained::{IMAGENET_MEAN, INCEPTION_MEAN_STD};

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

    /// The two derivations of a built-in anchor's stitch shape agree: the stitch space's, from
    /// the table's architectural numbers, and the zoo's, from the model config derived from the
    /// same entry.
    #[test]
    fn builtin_configs_derive_the_space_specs() {
        let registry = Registry::builtin();
        assert_eq!(registry.entries().count(), builtin::ANCHORS.len());
        for anchor in builtin::ANCHORS {
            let entry = registry.get(anchor.name).unwrap();
            entry.validate().unwrap();
            let ours = entry.config.spec(anchor.name).with_label(anchor.label);
            assert_eq!(ours, anchor.spec(), "{}", anchor.name);
            assert_eq!(
                Some(ours),
                snnet_space::builtin_anchor(anchor.name),
                "{}",
                anchor.name
            );
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

    #[test]
    fn names_cannot_be_redefined_or_hold_control_characters() {
        let model = |name: &str| {
            format!(
                r#"{{"name": "{name}", "config": {{"family": "vit", "img_size": [28, 28],
                "patch_size": [4, 4], "in_chans": 1, "num_classes": 10, "embed_dim": 64,
                "depth": 2, "num_heads": 2, "mlp_hidden": 128}}}}"#
            )
        };
        let mut registry = Registry::builtin();
        let before = registry.get("deit_tiny_patch16_224").unwrap().clone();
        let err = registry
            .add_json_str(&model("deit_tiny_patch16_224"))
            .unwrap_err();
        assert!(err.to_string().contains("already defined"), "{err}");
        assert_eq!(registry.get("deit_tiny_patch16_224").unwrap(), &before);
        let twice = format!("[{}, {}]", model("mine"), model("mine"));
        assert!(
            registry
                .add_json_str(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(
            registry.get("mine").is_err(),
            "nothing is added from a bad document"
        );
        let escape = model("evil\\u001b[2J");
        let err = registry.add_json_str(&escape).unwrap_err();
        assert!(err.to_string().contains("control"), "{err}");
        assert!(
            !err.to_string().contains('\u{1b}'),
            "the name is printed escaped: {err}"
        );
        registry.add_json_str(&model("mine")).unwrap();
        assert!(registry.add_json_str(&model("mine")).is_err());
    }
}
