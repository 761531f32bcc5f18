//! Anchor specs: the shape of a pretrained model as far as stitching is concerned.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

pub mod builtin;

/// How an anchor's activations are laid out between blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Token sequences `[B, N, C]` (ViT, DeiT, Swin).
    Tokens,
    /// Feature maps `[B, C, H, W]` (ResNet and other CNNs).
    Map,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tokens => "tokens",
            Self::Map => "map",
        })
    }
}

/// One stage of an anchor: a run of blocks that keep the same width.
///
/// Plain models (ViT/DeiT) have a single stage holding all their blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageSpec {
    /// Number of blocks in the stage.
    pub depth: usize,
    /// Channels of every block output in the stage (the stitching layer's input or output width).
    pub width: usize,
}

/// The shape of one anchor (a pretrained model of the family) as the stitch space needs it.
///
/// Names are timm model names; the `label` is the short form used when a stitch is displayed.
///
/// ```
/// use snnet_space::{AnchorSpec, Layout};
///
/// let tiny = AnchorSpec::plain("deit_tiny_patch16_224", 12, 192).with_label("deit_tiny");
/// assert_eq!(tiny.depth(), 12);
/// assert!(!tiny.is_hierarchical());
///
/// let swin = AnchorSpec::hierarchical(
///     "swin_tiny_patch4_window7_224",
///     Layout::Tokens,
///     &[(2, 96), (2, 192), (6, 384), (2, 768)],
/// );
/// assert_eq!(swin.depth(), 12);
/// assert_eq!(swin.global_block(2, 1), 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnchorSpec {
    /// The model's name (a timm name for the built-in anchors).
    pub name: String,
    /// A short display name; the `name` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Token or feature-map activations.
    pub layout: Layout,
    /// The stages in execution order; one stage for plain (non-hierarchical) models.
    pub stages: Vec<StageSpec>,
}

impl AnchorSpec {
    /// A plain token model (ViT/DeiT): one stage of `depth` blocks of `width` channels.
    pub fn plain(name: impl Into<String>, depth: usize, width: usize) -> Self {
        Self {
            name: name.into(),
            label: None,
            layout: Layout::Tokens,
            stages: vec![StageSpec { depth, width }],
        }
    }

    /// A hierarchical model from `(depth, width)` per stage.
    pub fn hierarchical(
        name: impl Into<String>,
        layout: Layout,
        stages: &[(usize, usize)],
    ) -> Self {
        Self {
            name: name.into(),
            label: None,
            layout,
            stages: stages
                .iter()
                .map(|&(depth, width)| StageSpec { depth, width })
                .collect(),
        }
    }

    /// Sets the short display name.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The short display name (the `name` when no label is set).
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// Number of stages.
    pub fn num_stages(&self) -> usize {
        self.stages.len()
    }

    /// Whether the model has more than one stage (Swin, ResNet).
    pub fn is_hierarchical(&self) -> bool {
        self.stages.len() > 1
    }

    /// Total number of blocks over all stages.
    pub fn depth(&self) -> usize {
        self.stages.iter().map(|s| s.depth).sum()
    }

    /// Per-stage depths.
    pub fn depths(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.depth).collect()
    }

    /// Per-stage widths.
    pub fn widths(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.width).collect()
    }

    /// The global index (over all blocks of all stages, in order) of block `block` of `stage`.
    ///
    /// Stages past the end count as empty, so the result is only meaningful for valid positions.
    pub fn global_block(&self, stage: usize, block: usize) -> usize {
        self.stages
            .iter()
            .take(stage)
            .map(|s| s.depth)
            .sum::<usize>()
            + block
    }

    /// The `(stage, block)` of a global block index, or `None` past the last block.
    pub fn block_location(&self, global: usize) -> Option<(usize, usize)> {
        let mut rest = global;
        for (stage, spec) in self.stages.iter().enumerate() {
            if rest < spec.depth {
                return Some((stage, rest));
            }
            rest -= spec.depth;
        }
        None
    }

    /// Checks that the spec describes a network: a name, at least one stage, no empty stage and
    /// no zero width.
    ///
    /// # Errors
    /// [`Error::InvalidAnchor`] naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::InvalidAnchor {
                name: self.name.clone(),
                reason,
            })
        };
        if self.name.trim().is_empty() {
            return invalid("the name is empty".to_owned());
        }
        if self.stages.is_empty() {
            return invalid("it has no stages".to_owned());
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if stage.depth == 0 {
                return invalid(format!("stage {i} has no blocks"));
            }
            if stage.width == 0 {
                return invalid(format!("stage {i} has width 0"));
            }
        }
        Ok(())
    }
}

/// Names of the built-in anchors, in a stable order (that of [`builtin::ANCHORS`]).
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    builtin::ANCHORS.iter().map(|a| a.name)
}

/// The built-in spec for a timm model name, if there is one (derived from
/// [`builtin::ANCHORS`]).
///
/// ```
/// let small = snnet_space::builtin_anchor("deit_small_patch16_224").unwrap();
/// assert_eq!(small.widths(), vec![384]);
/// ```
pub fn builtin_anchor(name: &str) -> Option<AnchorSpec> {
    builtin::get(name).map(builtin::BuiltinAnchor::spec)
}

/// Reads the items of a JSON document in the shapes every registry of the workspace accepts:
/// one item, a list of items, or an object whose `key` holds the list (`{"anchors": [...]}`
/// for anchor specs, `{"models": [...]}` for the zoo's model entries).
///
/// Items are deserialised one by one, so an error names what is wrong with the item (an unknown
/// or missing field) rather than that the document matched no shape.
///
/// ```
/// use snnet_space::{AnchorSpec, json_items};
///
/// let one = r#"{"name": "a", "layout": "tokens", "stages": [{"depth": 2, "width": 8}]}"#;
/// let wrapped = format!(r#"{{"anchors": [{one}, {one}]}}"#);
/// assert_eq!(json_items::<AnchorSpec>(one, "anchors")?.len(), 1);
/// assert_eq!(json_items::<AnchorSpec>(&wrapped, "anchors")?.len(), 2);
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// # Errors
/// The [`serde_json::Error`] of malformed JSON or of the first item that does not deserialise.
pub fn json_items<T: DeserializeOwned>(json: &str, key: &str) -> serde_json::Result<Vec<T>> {
    match serde_json::from_str(json)? {
        Value::Array(items) => items.into_iter().map(serde_json::from_value).collect(),
        Value::Object(mut object) if object.get(key).is_some_and(Value::is_array) => {
            serde_json::from_value(object.remove(key).unwrap_or_default())
        }
        one => Ok(vec![serde_json::from_value(one)?]),
    }
}

/// A set of known anchor specs: the built-in ones plus any loaded from JSON, looked up by name
/// (or label).
///
/// ```
/// use snnet_space::AnchorRegistry;
///
/// let mut registry = AnchorRegistry::builtin();
/// registry.add_json_str(r#"[{"name": "my_vit_s", "layout": "tokens",
///                            "stages": [{"depth": 6, "width": 128}]}]"#).unwrap();
/// let anchors = registry.resolve(&["deit_tiny_patch16_224", "my_vit_s"]).unwrap();
/// assert_eq!(anchors[1].depth(), 6);
/// let err = registry.get("deit_tiny_patch16").unwrap_err();
/// assert!(err.to_string().contains("did you mean deit_tiny_patch16_224"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnchorRegistry {
    specs: BTreeMap<String, AnchorSpec>,
}

impl AnchorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding every built-in anchor ([`builtin::ANCHORS`]).
    pub fn builtin() -> Self {
        Self {
            specs: builtin::ANCHORS
                .iter()
                .map(|a| (a.name.to_owned(), a.spec()))
                .collect(),
        }
    }

    /// Adds (or replaces, by name) one spec after validating it.
    ///
    /// # Errors
    /// [`Error::InvalidAnchor`] when the spec does not describe a network.
    pub fn add(&mut self, spec: AnchorSpec) -> Result<()> {
        spec.validate()?;
        self.specs.insert(spec.name.clone(), spec);
        Ok(())
    }

    /// Adds the specs of a JSON document: one spec object, a list of them, or
    /// `{"anchors": [...]}`. Specs replace built-in ones of the same name.
    ///
    /// # Errors
    /// [`Error::Json`] for malformed JSON, [`Error::InvalidAnchor`] for a spec that does not
    /// describe a network and [`Error::DuplicateAnchor`] for a name listed twice in the document.
    /// Nothing is added when any spec fails.
    pub fn add_json_str(&mut self, json: &str) -> Result<Vec<String>> {
        self.add_json(json, Path::new(""))
    }

    /// Like [`AnchorRegistry::add_json_str`], reading the document from a file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, otherwise as
    /// [`AnchorRegistry::add_json_str`].
    pub fn add_json_file(&mut self, path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        self.add_json(&text, path)
    }

    fn add_json(&mut self, json: &str, path: &Path) -> Result<Vec<String>> {
        let specs: Vec<AnchorSpec> = json_items(json, "anchors").map_err(|source| Error::Json {
            path: path.to_owned(),
            source,
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for spec in &specs {
            spec.validate()?;
            if !seen.insert(spec.name.as_str()) {
                return Err(Error::DuplicateAnchor {
                    name: spec.name.clone(),
                });
            }
        }
        let names = specs.iter().map(|s| s.name.clone()).collect();
        for spec in specs {
            self.specs.insert(spec.name.clone(), spec);
        }
        Ok(names)
    }

    /// Every known spec, sorted by name.
    pub fn specs(&self) -> impl Iterator<Item = &AnchorSpec> {
        self.specs.values()
    }

    /// Every known name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }

    /// The spec called `name` (a full name, or a label such as `deit_tiny`).
    ///
    /// # Errors
    /// [`Error::UnknownAnchor`] with the closest known names.
    pub fn get(&self, name: &str) -> Result<&AnchorSpec> {
        if let Some(spec) = self.specs.get(name) {
            return Ok(spec);
        }
        let mut by_label = self
            .specs
            .values()
            .filter(|s| s.label.as_deref() == Some(name));
        if let (Some(spec), None) = (by_label.next(), by_label.next()) {
            return Ok(spec);
        }
        Err(Error::UnknownAnchor {
            name: name.to_owned(),
            suggestions: self.suggest(name),
        })
    }

    /// The specs for a list of names, in the given order.
    ///
    /// # Errors
    /// [`Error::UnknownAnchor`] for the first unknown name.
    pub fn resolve<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<AnchorSpec>> {
        names
            .iter()
            .map(|n| self.get(n.as_ref()).cloned())
            .collect()
    }

    /// Known names close to `name`, best first (at most five).
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let query = name.to_ascii_lowercase();
        let mut scored: Vec<(f64, &str)> = self
            .specs
            .values()
            .filter_map(|spec| {
                let full = spec.name.to_ascii_lowercase();
                let label = spec.label().to_ascii_lowercase();
                let score =
                    strsim::jaro_winkler(&query, &full).max(strsim::jaro_winkler(&query, &label));
                let contains =
                    !query.is_empty() && (full.contains(&query) || query.contains(label.as_str()));
                (score >= 0.85 || contains).then_some((score, spec.name.as_str()))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(5)
            .map(|(_, n)| n.to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_unique() {
        let names: Vec<_> = builtin_names().collect();
        let registry = AnchorRegistry::builtin();
        assert_eq!(registry.names().count(), names.len());
        for spec in registry.specs() {
            spec.validate().unwrap();
        }
    }

    #[test]
    fn builtin_shapes_match_timm() {
        let swin_b = builtin_anchor("swin_base_patch4_window7_224").unwrap();
        assert_eq!(swin_b.depths(), vec![2, 2, 18, 2]);
        assert_eq!(swin_b.widths(), vec![128, 256, 512, 1024]);
        let r50 = builtin_anchor("resnet50").unwrap();
        assert_eq!(r50.layout, Layout::Map);
        assert_eq!(r50.depths(), vec![3, 4, 6, 3]);
        assert_eq!(r50.widths(), vec![256, 512, 1024, 2048]);
        let large = builtin_anchor("deit3_large_patch16_224").unwrap();
        assert_eq!((large.depth(), large.widths()), (24, vec![1024]));
    }

    #[test]
    fn lookup_by_label_and_suggestions() {
        let registry = AnchorRegistry::builtin();
        assert_eq!(
            registry.get("deit_small").unwrap().name,
            "deit_small_patch16_224"
        );
        match registry.get("deit_smal_patch16_224") {
            Err(Error::UnknownAnchor { suggestions, .. }) => {
                assert_eq!(suggestions[0], "deit_small_patch16_224");
            }
            other => panic!("expected UnknownAnchor, got {other:?}"),
        }
        match registry.get("zzzz") {
            Err(Error::UnknownAnchor { suggestions, .. }) => assert!(suggestions.is_empty()),
            other => panic!("expected UnknownAnchor, got {other:?}"),
        }
    }

    #[test]
    fn block_locations_round_trip() {
        let swin = builtin_anchor("swin_small_patch4_window7_224").unwrap();
        for global in 0..swin.depth() {
            let (stage, block) = swin.block_location(global).unwrap();
            assert_eq!(swin.global_block(stage, block), global);
        }
        assert_eq!(swin.block_location(swin.depth()), None);
        assert_eq!(swin.block_location(4), Some((2, 0)));
    }

    #[test]
    fn json_specs_in_every_shape() {
        let one = r#"{"name": "a", "layout": "tokens", "stages": [{"depth": 2, "width": 8}]}"#;
        let many = format!("[{one}]");
        let wrapped = format!(r#"{{"anchors": [{one}]}}"#);
        for doc in [one.to_owned(), many, wrapped] {
            let mut registry = AnchorRegistry::new();
            assert_eq!(registry.add_json_str(&doc).unwrap(), vec!["a".to_owned()]);
            assert_eq!(registry.get("a").unwrap().depth(), 2);
        }
    }

    #[test]
    fn bad_json_specs_are_typed_errors() {
        let mut registry = AnchorRegistry::new();
        assert!(matches!(
            registry.add_json_str("{"),
            Err(Error::Json { .. })
        ));
        let zero = r#"{"name": "a", "layout": "tokens", "stages": [{"depth": 0, "width": 8}]}"#;
        assert!(matches!(
            registry.add_json_str(zero),
            Err(Error::InvalidAnchor { reason, .. }) if reason.contains("no blocks")
        ));
        let no_stages = r#"{"name": "a", "layout": "map", "stages": []}"#;
        assert!(matches!(
            registry.add_json_str(no_stages),
            Err(Error::InvalidAnchor { .. })
        ));
        let one = r#"{"name": "a", "layout": "tokens", "stages": [{"depth": 1, "width": 8}]}"#;
        assert!(matches!(
            registry.add_json_str(&format!("[{one}, {one}]")),
            Err(Error::DuplicateAnchor { .. })
        ));
        assert_eq!(
            registry.names().count(),
            0,
            "nothing is added when a spec fails"
        );
        let missing = registry.add_json_file("/nonexistent/specs.json");
        assert!(matches!(missing, Err(Error::Io { .. })));
    }
}
