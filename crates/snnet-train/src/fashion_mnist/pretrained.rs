//! The family's shipped pretrained weights (`configs/` in this crate), checked against their
//! recorded SHA-256 before use.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::ANCHOR_NAMES;
use crate::error::{Error, Result};

/// The shipped pretrained weights of [`ANCHOR_NAMES`], in order (timm layout, safetensors;
/// `configs/fmnist_vit_{s,m,l}.safetensors` in this crate), trained by
/// `scripts/pretrain_anchors.sh`. Recipe, seed, data, accuracy and costs:
/// `configs/MODEL_CARD.md`.
const PRETRAINED: [&[u8]; 3] = [
    include_bytes!("../../configs/fmnist_vit_s.safetensors"),
    include_bytes!("../../configs/fmnist_vit_m.safetensors"),
    include_bytes!("../../configs/fmnist_vit_l.safetensors"),
];

/// The recorded SHA-256 of the shipped weights, as `sha256sum` prints them
/// (`configs/SHA256SUMS`).
pub const PRETRAINED_SHA256SUMS: &str = include_str!("../../configs/SHA256SUMS");

/// The recorded SHA-256 (lower-case hex) of anchor `name`'s shipped weights.
///
/// # Errors
/// [`Error::NoPretrained`] for a name without shipped weights.
pub fn pretrained_sha256(name: &str) -> Result<&'static str> {
    PRETRAINED_SHA256SUMS
        .lines()
        .filter_map(|line| line.split_once("  "))
        .find(|(_, file)| file.trim() == format!("{name}.safetensors"))
        .map(|(sum, _)| sum.trim())
        .ok_or_else(|| Error::NoPretrained(name.to_owned()))
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks `bytes` against the recorded SHA-256 of anchor `name`'s shipped weights.
///
/// # Errors
/// [`Error::NoPretrained`], and [`Error::Checksum`] when the bytes differ (a damaged file).
pub fn verify_pretrained(name: &str, what: &Path, bytes: &[u8]) -> Result<()> {
    let expected = pretrained_sha256(name)?;
    let actual = sha256_hex(bytes);
    if actual != expected {
        return Err(Error::Checksum {
            path: what.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Anchor `name`'s shipped weights, checked against their recorded SHA-256.
///
/// # Errors
/// As [`verify_pretrained`].
pub fn pretrained_weights(name: &str) -> Result<&'static [u8]> {
    let index = ANCHOR_NAMES
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| Error::NoPretrained(name.to_owned()))?;
    let bytes = PRETRAINED[index];
    verify_pretrained(
        name,
        Path::new(&format!("configs/{name}.safetensors")),
        bytes,
    )?;
    Ok(bytes)
}

/// Writes anchor `name`'s shipped weights to `path` (atomically), after checking them; a file
/// already at `path` is checked instead and kept when it matches.
///
/// # Errors
/// As [`verify_pretrained`]; [`Error::Checksum`] for a damaged file at `path`; write errors.
pub fn install_pretrained(name: &str, path: &Path) -> Result<()> {
    if path.exists() {
        let bytes = std::fs::read(path).map_err(|e| Error::Checkpoint {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        return verify_pretrained(name, path, &bytes);
    }
    let bytes = pretrained_weights(name)?;
    snnet_fs::write_atomic(path, bytes).map_err(|e| Error::Checkpoint {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_weights_match_their_recorded_sha256() -> Result<()> {
        for name in ANCHOR_NAMES {
            let bytes = pretrained_weights(name)?;
            assert_eq!(sha256_hex(bytes), pretrained_sha256(name)?);
        }
        Ok(())
    }

    #[test]
    fn a_damaged_anchor_file_is_refused() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Checkpoint {
            path: "tmp".into(),
            reason: e.to_string(),
        })?;
        let path = dir.path().join("fmnist_vit_m.safetensors");
        install_pretrained("fmnist_vit_m", &path)?;
        install_pretrained("fmnist_vit_m", &path)?; // an intact file is kept
        let mut bytes = std::fs::read(&path).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let err = install_pretrained("fmnist_vit_m", &path).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("damaged"), "{err}");
        assert!(matches!(
            pretrained_weights("deit_tiny_patch16_224"),
            Err(Error::NoPretrained(_))
        ));
        Ok(())
    }
}
