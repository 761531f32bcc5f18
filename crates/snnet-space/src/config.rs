//! How a stitch space is enumerated.

use std::fmt;
use std::str::FromStr;

use derive_setters::Setters;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `Display` and `FromStr` of a config enum written as words, from one table: each variant's
/// name (what `Display` writes), then the other spellings it is read from. Reading trims and
/// ignores case; with `dashes` it also reads `_` as `-`. An unknown word is an
/// [`Error::Parse`] that lists the names.
macro_rules! words {
    (
        $ty:ident, $what:literal, $underscores:ident,
        $first:ident => $first_name:literal $(| $first_alias:literal)*,
        $($variant:ident => $name:literal $(| $alias:literal)*,)*
    ) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    Self::$first => $first_name,
                    $(Self::$variant => $name,)*
                })
            }
        }

        impl FromStr for $ty {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                let word = s.trim().to_ascii_lowercase();
                match words!(@$underscores word).as_str() {
                    $first_name $(| $first_alias)* => Ok(Self::$first),
                    $($name $(| $alias)* => Ok(Self::$variant),)*
                    _ => Err(Error::Parse {
                        what: $what,
                        value: s.to_owned(),
                        expected: concat!($first_name $(, ", ", $name)*),
                    }),
                }
            }
        }
    };
    (@dashes $word:ident) => {
        $word.replace('_', "-")
    };
    (@as_is $word:ident) => {
        $word
    };
}

/// Which way activations flow between anchors of different size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// The smaller anchor runs first and a larger one finishes (the paper's default: "more
    /// stable and better").
    #[default]
    FastToSlow,
    /// The larger anchor runs first and a smaller one finishes (the paper's ablation).
    SlowToFast,
    /// SN-Netv2's two-way stitching: small→large, large→small, large→small→large and
    /// small→large→small, for plain anchors.
    TwoWay,
}

words! {
    Direction, "a direction", dashes,
    FastToSlow => "fast-to-slow" | "f2s",
    SlowToFast => "slow-to-fast" | "s2f",
    TwoWay => "two-way" | "twoway" | "bidirectional",
}

/// Which anchor pairs are stitched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pairing {
    /// Only neighbours in the anchor list (the reference's `nearest_stitching`, default).
    #[default]
    Nearest,
    /// Every pair of anchors; for plain one-way spaces also paths through three or more anchors
    /// (the reference's `nearest_stitching=False`: 732 stitches for DeiT-Ti/S/B).
    All,
}

words! {
    Pairing, "a pairing", as_is,
    Nearest => "nearest",
    All => "all" | "all-pairs",
}

/// How the cuts of an anchor pair map onto stitching layers.
///
/// ```
/// use snnet_space::StitchLayers;
///
/// assert_eq!("per-cut".parse::<StitchLayers>().unwrap(), StitchLayers::PerCut);
/// assert_eq!(StitchLayers::default().to_string(), "shared");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StitchLayers {
    /// The reference's: the cuts of one sliding window (equal depths) or of one nearest-map
    /// entry (unequal depths) share one layer, least-squares initialised with the average of
    /// their solutions — DeiT-Ti→S: 34 cuts on 11 layers.
    #[default]
    Shared,
    /// One layer per cut, initialised with that cut's own least-squares solution and trained
    /// only by the stitches through it (more parameters; no layer serves two feature depths).
    PerCut,
}

words! {
    StitchLayers, "a stitching-layer sharing", dashes,
    Shared => "shared",
    PerCut => "per-cut" | "percut",
}

impl StitchLayers {
    fn is_shared(&self) -> bool {
        *self == Self::Shared
    }
}

/// The settings that, with the anchors, determine a stitch space.
///
/// The defaults are the reference's: a sliding window of 2 blocks with stride 1, nearest pairing,
/// Fast-to-Slow, and the family's default stages (0, 1, 2 for Swin; 1, 2 when a CNN is among the
/// anchors).
///
/// ```
/// use snnet_space::{Direction, SpaceConfig};
///
/// let config = SpaceConfig::default().with_kernel_size(3).with_direction(Direction::SlowToFast);
/// assert_eq!((config.kernel_size, config.stride), (3, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Setters)]
#[serde(default)]
#[setters(prefix = "with_")]
pub struct SpaceConfig {
    /// Blocks per sliding window (equal-depth pairs only).
    pub kernel_size: usize,
    /// Blocks the window moves each step (equal-depth pairs only).
    pub stride: usize,
    /// Which anchor pairs are stitched.
    pub pairing: Pairing,
    /// Which way the stitches run.
    pub direction: Direction,
    /// The stages to stitch, for hierarchical anchors; `None` for the family default.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[setters(into, strip_option)]
    pub stages: Option<Vec<usize>>,
    /// How cuts map onto stitching layers (the reference's sharing by default; not written
    /// when it is the default, so configs saved before the option existed read the same).
    #[serde(skip_serializing_if = "StitchLayers::is_shared")]
    pub layers: StitchLayers,
}

impl Default for SpaceConfig {
    fn default() -> Self {
        Self {
            kernel_size: 2,
            stride: 1,
            pairing: Pairing::Nearest,
            direction: Direction::FastToSlow,
            stages: None,
            layers: StitchLayers::Shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for d in [
            Direction::FastToSlow,
            Direction::SlowToFast,
            Direction::TwoWay,
        ] {
            assert_eq!(d.to_string().parse::<Direction>().unwrap(), d);
        }
        for p in [Pairing::Nearest, Pairing::All] {
            assert_eq!(p.to_string().parse::<Pairing>().unwrap(), p);
        }
        for l in [StitchLayers::Shared, StitchLayers::PerCut] {
            assert_eq!(l.to_string().parse::<StitchLayers>().unwrap(), l);
        }
        assert!(matches!(
            "some".parse::<StitchLayers>(),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            "sideways".parse::<Direction>(),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            "some".parse::<Pairing>(),
            Err(Error::Parse { .. })
        ));
    }

    #[test]
    fn config_serde_defaults() {
        let config: SpaceConfig = serde_json::from_str(r#"{"direction": "two-way"}"#).unwrap();
        assert_eq!(
            config,
            SpaceConfig::default().with_direction(Direction::TwoWay)
        );
        let json = serde_json::to_string(&SpaceConfig::default()).unwrap();
        assert_eq!(
            json,
            r#"{"kernel_size":2,"stride":1,"pairing":"nearest","direction":"fast-to-slow"}"#
        );
        let per_cut = SpaceConfig::default().with_layers(StitchLayers::PerCut);
        let json = serde_json::to_string(&per_cut).unwrap();
        assert!(json.ends_with(r#""layers":"per-cut"}"#), "{json}");
        assert_eq!(serde_json::from_str::<SpaceConfig>(&json).unwrap(), per_cut);
    }
}
