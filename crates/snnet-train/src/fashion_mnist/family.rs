//! The demo's anchor family: three ViTs for 1×28×28 images ([`ANCHOR_NAMES`], configs in
//! [`ANCHORS_JSON`]), and the registry that knows them ([`anchor_registry`]).

use snnet_core::Registry;

use crate::error::Result;

/// The anchor family's model configs (the zoo's JSON format: `{"models": [...]}`).
pub const ANCHORS_JSON: &str = include_str!("../../configs/fashion_mnist_vit.json");

/// Names of the family's anchors, small to large.
pub const ANCHOR_NAMES: [&str; 3] = ["fmnist_vit_s", "fmnist_vit_m", "fmnist_vit_l"];

/// Adds the family to `registry`, unless it already has a model of the first anchor's name
/// (e.g. from a custom model config).
///
/// # Errors
/// [`Error::Zoo`](crate::Error::Zoo) if the configs do not parse (they are tested to).
pub fn add_anchors(registry: &mut Registry) -> Result<()> {
    if registry.get(ANCHOR_NAMES[0]).is_err() {
        registry.add_json_str(ANCHORS_JSON)?;
    }
    Ok(())
}

/// The zoo's built-in models and the Fashion-MNIST anchors.
///
/// # Errors
/// As [`add_anchors`].
pub fn anchor_registry() -> Result<Registry> {
    let mut registry = Registry::builtin();
    add_anchors(&mut registry)?;
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_parses_small_to_large() -> Result<()> {
        let registry = anchor_registry()?;
        let params: Vec<u64> = ANCHOR_NAMES
            .iter()
            .map(|name| registry.get(name).map(|e| e.config.cost().total().params))
            .collect::<std::result::Result<_, _>>()?;
        assert!(params.windows(2).all(|w| w[0] < w[1]), "{params:?}");
        // Adding twice keeps one copy.
        let mut again = registry.clone();
        add_anchors(&mut again)?;
        assert_eq!(again.list("fmnist_*").len(), 3);
        Ok(())
    }
}
