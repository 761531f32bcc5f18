//! Anchor specs: the shape of a pretrained model as far as stitching is concerned.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{AnchorProblem, Error, Result};
use crate::limits::{MAX_DEPTH, MAX_SPEC_BYTES, MAX_STAGES, MAX_WIDTH};
use crate::untrusted::check_name;

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
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Number of blocks in the stage.
    #[serde(deserialize_with = "field_depth")]
    pub depth: usize,
    /// Channels of every block output in the stage (the stitching layer's input or output width).
    #[serde(deserialize_with = "field_width")]
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
///
/// Read from JSON, unknown fields are refused and every error names its field, with the line and
/// column: for instance, field `depth`: invalid type: string "12", expected usize at line 3
/// column 40.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSpec {
    /// The model's name (a timm name for the built-in anchors).
    #[serde(deserialize_with = "field_name")]
    pub name: String,
    /// A short display name; the `name` when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "field_label"
    )]
    pub label: Option<String>,
    /// Token or feature-map activations.
    #[serde(deserialize_with = "field_layout")]
    pub layout: Layout,
    /// The stages in execution order; one stage for plain (non-hierarchical) models.
    #[serde(deserialize_with = "field_stages")]
    pub stages: Vec<StageSpec>,
}

/// Deserialises one field, naming it in the error (serde_json then adds the line and column).
fn named_field<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
    field: &str,
) -> std::result::Result<T, D::Error> {
    T::deserialize(deserializer).map_err(|e| {
        de::Error::custom(format_args!(
            "field `{field}`: {}",
            crate::untrusted::strip_json_position(&e.to_string())
        ))
    })
}

fn field_name<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    named_field(d, "name")
}

fn field_label<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    named_field(d, "label")
}

fn field_layout<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Layout, D::Error> {
    named_field(d, "layout")
}

fn field_stages<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<StageSpec>, D::Error> {
    named_field(d, "stages")
}

fn field_depth<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    named_field(d, "depth")
}

fn field_width<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    named_field(d, "width")
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

    /// Total number of blocks over all stages (saturating at `usize::MAX`; a
    /// [validated](AnchorSpec::validate) spec has at most [`MAX_DEPTH`]).
    pub fn depth(&self) -> usize {
        self.stages
            .iter()
            .fold(0usize, |sum, s| sum.saturating_add(s.depth))
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
    /// Stages past the end count as empty, so the result is only meaningful for valid positions
    /// (it saturates at `usize::MAX` rather than overflow).
    pub fn global_block(&self, stage: usize, block: usize) -> usize {
        self.stages
            .iter()
            .take(stage)
            .fold(0usize, |sum, s| sum.saturating_add(s.depth))
            .saturating_add(block)
    }

    /// The `(stage, block)` of a global block index, or `None` past the last block.
    pub fn block_location(&self, global: usize) -> Option<(usize, usize)> {
        let mut rest = global;
        for (stage, spec) in self.stages.iter().enumerate() {
            if rest < spec.depth {
                return Some((stage, rest));
            }
            // `rest >= spec.depth` here, so this never saturates.
            rest = rest.saturating_sub(spec.depth);
        }
        None
    }

    /// Checks that the spec describes a network within the [limits](crate::limits): a printable
    /// name (and label) of at most [`MAX_NAME_LEN`](crate::limits::MAX_NAME_LEN) bytes, 1 to
    /// [`MAX_STAGES`] stages, no empty stage, at most [`MAX_DEPTH`] blocks in all and widths of 1
    /// to [`MAX_WIDTH`].
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a name or label that is empty or holds whitespace, control or
    /// formatting characters; [`Error::LimitExceeded`] naming the limit a size is over;
    /// [`Error::InvalidAnchor`] naming what else is wrong.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: AnchorProblem| {
            Err(Error::InvalidAnchor {
                name: self.name.clone(),
                reason,
            })
        };
        let limit = |what: &'static str, value: usize, limit: usize, constant: &'static str| {
            Err(Error::LimitExceeded {
                what,
                value: value as u128,
                limit: limit as u64,
                constant,
                anchor: Some(self.name.clone()),
            })
        };
        check_name("name", &self.name)?;
        if let Some(label) = &self.label {
            check_name("label", label)?;
        }
        if self.stages.is_empty() {
            return invalid(AnchorProblem::NoStages);
        }
        if self.stages.len() > MAX_STAGES {
            return limit(
                "number of stages",
                self.stages.len(),
                MAX_STAGES,
                "MAX_STAGES",
            );
        }
        let mut total: u128 = 0;
        for (i, stage) in self.stages.iter().enumerate() {
            if stage.depth == 0 {
                return invalid(AnchorProblem::EmptyStage { stage: i });
            }
            if stage.width == 0 {
                return invalid(AnchorProblem::ZeroWidth { stage: i });
            }
            if stage.width > MAX_WIDTH {
                return limit("stage width", stage.width, MAX_WIDTH, "MAX_WIDTH");
            }
            total = total.saturating_add(stage.depth as u128);
        }
        if total > MAX_DEPTH as u128 {
            return Err(Error::LimitExceeded {
                what: "depth (blocks over all stages)",
                value: total,
                limit: MAX_DEPTH as u64,
                constant: "MAX_DEPTH",
                anchor: Some(self.name.clone()),
            });
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
/// The document's shape is found first; the items are then deserialised straight from the text,
/// so an error names what is wrong with the item (an unknown or missing field, a value of the
/// wrong type) with its line and column, rather than that the document matched no shape.
///
/// ```
/// use snnet_space::{AnchorSpec, json_items};
///
/// let one = r#"{"name": "a", "layout": "tokens", "stages": [{"depth": 2, "width": 8}]}"#;
/// let wrapped = format!(r#"{{"anchors": [{one}, {one}]}}"#);
/// assert_eq!(json_items::<AnchorSpec>(one, "anchors")?.len(), 1);
/// assert_eq!(json_items::<AnchorSpec>(&wrapped, "anchors")?.len(), 2);
///
/// let typo = "{\"anchors\": [\n  {\"name\": \"a\", \"layout\": \"tokens\",\n   \"stages\": [{\"depth\": \"2\", \"width\": 8}]}]}";
/// let err = json_items::<AnchorSpec>(typo, "anchors").unwrap_err();
/// assert_eq!(err.line(), 3);
/// assert!(err.to_string().contains("field `depth`"), "{err}");
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// # Errors
/// The [`serde_json::Error`] of malformed JSON or of the first item that does not deserialise,
/// with its line and column.
pub fn json_items<T: DeserializeOwned>(json: &str, key: &str) -> serde_json::Result<Vec<T>> {
    let shape = ShapeSeed { key }.deserialize(&mut serde_json::Deserializer::from_str(json))?;
    match shape {
        Shape::List => serde_json::from_str(json),
        Shape::Wrapped(occurrence) => {
            let mut deserializer = serde_json::Deserializer::from_str(json);
            let items = WrappedSeed::<T> {
                key,
                occurrence,
                items: std::marker::PhantomData,
            }
            .deserialize(&mut deserializer)?;
            deserializer.end()?;
            Ok(items)
        }
        Shape::One => Ok(vec![serde_json::from_str(json)?]),
    }
}

/// The shape of a JSON document of items.
enum Shape {
    /// A list of items.
    List,
    /// An object whose `key` holds the list; the list is the value of the key's `n`-th
    /// occurrence (the last one, as for a JSON object read into a map).
    Wrapped(usize),
    /// One item.
    One,
}

/// Finds a document's [`Shape`] without building its items.
struct ShapeSeed<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_> {
    type Value = Shape;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::List)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Shape, A::Error> {
        let (mut occurrence, mut wrapped) = (0_usize, None);
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key {
                let is_list = map.next_value_seed(IsList)?;
                wrapped = is_list.then_some(occurrence);
                occurrence = occurrence.saturating_add(1);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(wrapped.map_or(Shape::One, Shape::Wrapped))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Shape, E> {
        Ok(Shape::One)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Shape, E> {
        Ok(Shape::One)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Shape, E> {
        Ok(Shape::One)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Shape, E> {
        Ok(Shape::One)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Shape, E> {
        Ok(Shape::One)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Shape, E> {
        Ok(Shape::One)
    }
}

/// Whether a JSON value is a list, skipping it.
struct IsList;

impl<'de> DeserializeSeed<'de> for IsList {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IsList {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<bool, E> {
        Ok(false)
    }
}

/// Reads the items of a `{key: [...]}` document: the list at the key's `occurrence`-th
/// occurrence; every other value is skipped.
struct WrappedSeed<'k, T> {
    key: &'k str,
    occurrence: usize,
    items: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for WrappedSeed<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for WrappedSeed<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with a list under `{}`", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<T>, A::Error> {
        let (mut occurrence, mut items) = (0_usize, None);
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key {
                if occurrence == self.occurrence {
                    items = Some(map.next_value::<Vec<T>>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
                occurrence = occurrence.saturating_add(1);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        items.ok_or_else(|| de::Error::missing_field("the list of items"))
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

    /// Adds one spec after validating it, replacing any spec of the same name — built-in ones
    /// included. This is the explicit way to override a known anchor; spec files
    /// ([`AnchorRegistry::add_json_str`], [`AnchorRegistry::add_json_file`]) never do.
    ///
    /// # Errors
    /// As [`AnchorSpec::validate`].
    pub fn add(&mut self, spec: AnchorSpec) -> Result<()> {
        spec.validate()?;
        self.specs.insert(spec.name.clone(), spec);
        Ok(())
    }

    /// Adds the specs of a JSON document: one spec object, a list of them, or
    /// `{"anchors": [...]}`. A spec file only adds anchors: a name or label that is already
    /// known (built in, or added before) is an error, so a file cannot silently redefine
    /// `deit_small_patch16_224`; use [`AnchorRegistry::add`] to replace a spec on purpose.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for a document over [`MAX_SPEC_BYTES`] or a spec over a size
    /// limit; [`Error::Json`] for malformed JSON, naming the field, line and column;
    /// [`Error::InvalidName`] and [`Error::InvalidAnchor`] for a spec that does not describe a
    /// network; [`Error::DuplicateAnchor`] for a name or label used twice in the document and
    /// [`Error::Redefinition`] for one that is already known. Nothing is added when any spec
    /// fails.
    pub fn add_json_str(&mut self, json: &str) -> Result<Vec<String>> {
        self.add_json(json, Path::new(""))
    }

    /// Like [`AnchorRegistry::add_json_str`], reading the document from a file (at most
    /// [`MAX_SPEC_BYTES`] of it are read).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, otherwise as
    /// [`AnchorRegistry::add_json_str`].
    pub fn add_json_file(&mut self, path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        file.take((MAX_SPEC_BYTES as u64).saturating_add(1))
            .read_to_string(&mut text)
            .map_err(io)?;
        self.add_json(&text, path)
    }

    fn add_json(&mut self, json: &str, path: &Path) -> Result<Vec<String>> {
        if json.len() > MAX_SPEC_BYTES {
            return Err(Error::LimitExceeded {
                what: "anchor spec document size in bytes",
                value: json.len() as u128,
                limit: MAX_SPEC_BYTES as u64,
                constant: "MAX_SPEC_BYTES",
                anchor: None,
            });
        }
        let specs: Vec<AnchorSpec> = json_items(json, "anchors").map_err(|source| Error::Json {
            path: path.to_owned(),
            source,
        })?;
        // Every name and label already in use, with the spec using it.
        let known: BTreeMap<&str, &AnchorSpec> = self
            .specs
            .values()
            .filter_map(|s| s.label.as_deref().map(|l| (l, s)))
            .chain(self.specs.iter().map(|(n, s)| (n.as_str(), s)))
            .collect();
        let mut seen = BTreeSet::new();
        for spec in &specs {
            spec.validate()?;
            let label = spec.label.as_deref().filter(|l| *l != spec.name);
            for name in std::iter::once(spec.name.as_str()).chain(label) {
                if !seen.insert(name) {
                    return Err(Error::DuplicateAnchor {
                        name: name.to_owned(),
                    });
                }
                if let Some(existing) = known.get(name) {
                    return Err(Error::Redefinition {
                        name: name.to_owned(),
                        existing: existing.name.clone(),
                        builtin: builtin::get(&existing.name)
                            .is_some_and(|b| b.spec() == **existing),
                    });
                }
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
    fn json_items_of_any_type_keep_positions() {
        // The zoo reads its model entries (internally tagged configs) through the same function.
        #[derive(Debug, PartialEq, Deserialize)]
        #[serde(tag = "family", rename_all = "lowercase")]
        enum Config {
            Vit { depth: usize },
        }
        #[derive(Debug, PartialEq, Deserialize)]
        struct Entry {
            name: String,
            config: Config,
        }
        let one = r#"{"name": "a", "config": {"family": "vit", "depth": 2}}"#;
        let expected = Entry {
            name: "a".to_owned(),
            config: Config::Vit { depth: 2 },
        };
        for doc in [
            one.to_owned(),
            format!("[{one}]"),
            format!(r#"{{"models": [{one}], "comment": {{"models": 1}}}}"#),
            // Of a repeated key, the last value counts (as in a JSON object read into a map).
            format!(r#"{{"models": [], "models": [{one}]}}"#),
        ] {
            assert_eq!(
                json_items::<Entry>(&doc, "models").unwrap(),
                std::slice::from_ref(&expected),
                "{doc}"
            );
        }
        // Not a list under the key: the document is one item.
        let err = json_items::<Entry>(r#"{"models": 3}"#, "models").unwrap_err();
        assert!(err.to_string().contains("missing field `name`"), "{err}");
        let bad = "{\"models\": [\n{\"name\": \"a\",\n \"config\": {\"family\": \"cnn\"}}]}";
        let err = json_items::<Entry>(bad, "models").unwrap_err();
        assert_eq!(err.line(), 3, "{err}");
        assert!(err.to_string().contains("cnn"), "{err}");
        for broken in ["", "{", "[1,", "{\"models\": [] } x", "[] x"] {
            assert!(json_items::<Entry>(broken, "models").is_err(), "{broken}");
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
            Err(Error::InvalidAnchor {
                reason: AnchorProblem::EmptyStage { stage: 0 },
                ..
            })
        ));
        let no_stages = r#"{"name": "a", "layout": "map", "stages": []}"#;
        assert!(matches!(
            registry.add_json_str(no_stages),
            Err(Error::InvalidAnchor {
                reason: AnchorProblem::NoStages,
                ..
            })
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
