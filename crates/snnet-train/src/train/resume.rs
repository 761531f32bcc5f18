//! Checkpoints and resumption: the state saved with the weights and optimisers every epoch,
//! written into a fresh folder and swapped in whole, and why a checkpoint cannot resume a run.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{Deserialize, Serialize};

use super::{EpochLog, TrainConfig};
use crate::error::{Error, Result};

/// The state saved with a checkpoint besides the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CheckpointState {
    pub(super) next_epoch: usize,
    pub(super) config: TrainConfig,
    pub(super) logs: Vec<EpochLog>,
    /// [`Trainable::fingerprint`](super::Trainable::fingerprint) of the network the run
    /// started from.
    #[serde(default)]
    pub(super) network: String,
}

impl CheckpointState {
    /// Why this state cannot resume a run of `config` from the network fingerprinted `network`.
    pub(super) fn mismatch(&self, config: &TrainConfig, network: &str) -> Option<String> {
        if self.network != network {
            return Some(
                "the checkpoint was trained from another network (another SN-Net file or \
                 initialisation)"
                    .to_owned(),
            );
        }
        if &self.config != config {
            return Some("the checkpoint was trained with another recipe".to_owned());
        }
        if self.next_epoch == 0
            || self.next_epoch > config.epochs
            || self.logs.len() != self.next_epoch
        {
            return Some(format!(
                "its state says epoch {} with {} epoch logs, for a run of {} epochs",
                self.next_epoch,
                self.logs.len(),
                config.epochs
            ));
        }
        None
    }
}

/// The folder of the latest complete checkpoint inside a checkpoint directory.
fn latest(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

fn checkpoint_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

pub(super) fn read_state(dir: &Path) -> Result<Option<CheckpointState>> {
    let path = latest(dir).join("state.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| checkpoint_error(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(checkpoint_error(&path, e)),
    }
}

/// Writes the checkpoint into a fresh folder, then swaps it in: an interrupted save leaves the
/// previous checkpoint intact.
pub(super) fn save_checkpoint(
    dir: &Path,
    net: &impl Module,
    optim_anchors: &ModuleOptimizer,
    optim_stitch: &ModuleOptimizer,
    state: &CheckpointState,
) -> Result<()> {
    let tmp = dir.join("checkpoint.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| checkpoint_error(&tmp, e))?;
    let mut store = BurnpackStore::from_file(tmp.join("model.bpk"))
        .auto_extension(false)
        .overwrite(true);
    net.save_into(&mut store)
        .map_err(|e| checkpoint_error(&tmp, e))?;
    optim_anchors
        .save(tmp.join("optim_anchors.bpk"))
        .map_err(|e| checkpoint_error(&tmp, e))?;
    optim_stitch
        .save(tmp.join("optim_stitch.bpk"))
        .map_err(|e| checkpoint_error(&tmp, e))?;
    let json = serde_json::to_string_pretty(state).map_err(|e| checkpoint_error(&tmp, e))?;
    snnet_fs::write_atomic(&tmp.join("state.json"), json.as_bytes())
        .map_err(|e| checkpoint_error(&tmp, e))?;
    let current = latest(dir);
    let old = dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if current.exists() {
        std::fs::rename(&current, &old).map_err(|e| checkpoint_error(&current, e))?;
    }
    std::fs::rename(&tmp, &current).map_err(|e| checkpoint_error(&current, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

pub(super) fn load_checkpoint<N: Module>(
    dir: &Path,
    net: N,
    optim_anchors: ModuleOptimizer,
    optim_stitch: ModuleOptimizer,
) -> Result<(N, ModuleOptimizer, ModuleOptimizer)> {
    let current = latest(dir);
    let mut net = net;
    let mut store = BurnpackStore::from_file(current.join("model.bpk")).auto_extension(false);
    let result = net
        .load_from(&mut store)
        .map_err(|e| checkpoint_error(&current, e))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(checkpoint_error(
            &current,
            format!(
                "the checkpoint does not fit the network ({} errors, {} missing tensors)",
                result.errors.len(),
                result.missing.len()
            ),
        ));
    }
    let optim_anchors = optim_anchors
        .load(current.join("optim_anchors.bpk"))
        .map_err(|e| checkpoint_error(&current, e))?;
    let optim_stitch = optim_stitch
        .load(current.join("optim_stitch.bpk"))
        .map_err(|e| checkpoint_error(&current, e))?;
    Ok((net, optim_anchors, optim_stitch))
}
