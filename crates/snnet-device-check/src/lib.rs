//! One SN-Net code path on every device, checked: the same library calls run on the CPU (Burn's
//! Flex backend, the reference device) and on a device under test (`wgpu`, `tch:cpu`,
//! `tch:cuda:N`, `cuda:N`, …), and the results are compared with each other and with the
//! reference values committed in the repository (timm's and the ziplab reference's outputs).
//!
//! What is checked ([`parity`]):
//! - **family forwards**: the reduced timm fixtures of DeiT, Swin and ResNet-50
//!   (`crates/snnet-zoo/tests/fixtures`), logits;
//! - **least-squares init**: the reference's three-ViT SN-Net (`crates/snnet-core/tests/fixtures`)
//!   initialised on the device; every stitching layer's weight and bias;
//! - **three stitches** of that network (the first, middle and last stitched path), logits;
//! - **one training step** ([`training_step`]): the shipped Fashion-MNIST SN-Net, one AdamW step
//!   of the real trainer on a synthetic batch; the loss and every parameter afterwards; and the
//!   same step in two data-parallel shards on the device ([`sharded_training_step`], the CLI's
//!   `--devices wgpu,wgpu`) against two on the CPU.
//!
//! [`timings`] measures the forward time of every stitch of DeiT-Ti/S/B (random weights: time
//! does not depend on them) with the runtime's profiler, which synchronises the device after
//! each forward. The binary `snnet-device-check` runs both and writes a markdown report
//! (`scripts/gpu_check.sh` builds and runs it); the crate's test runs [`parity`] on the device
//! named by `SNNET_TEST_DEVICE` and is what CI runs on Mesa's lavapipe.
//!
//! ```no_run
//! use snnet_device_check::{Fixtures, parity};
//! use snnet_core::DeviceSpec;
//!
//! let fixtures = Fixtures::workspace()?;
//! let checks = parity(&fixtures, "cpu".parse::<DeviceSpec>()?)?;
//! assert!(checks.iter().all(|c| c.passed()));
//! # Ok::<(), snnet_device_check::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use snnet_core::burn::tensor::{Device, Tensor, TensorData};
use snnet_core::zoo::{ModelConfig, tensor_io};
use snnet_core::{
    Anchor, DeviceSpec, Init, LsOptions, ModelEntry, Registry, SnNet, SnNetConfig, SpaceConfig,
    StitchId,
};
use snnet_runtime::profile::{Profile, ProfilerConfig};
use snnet_train::data::{Augment, BatchConfig, Batcher, FashionMnist};
use snnet_train::fashion_mnist::{ANCHOR_NAMES, DataConfig, anchor_registry, install_pretrained};
use snnet_train::train::{Distill, TrainConfig, Trainer};

/// The tolerance of every check: max abs difference ≤ 1e-4, as the timm parity tests.
pub const TOLERANCE: f32 = 1e-4;

/// The learning rate of the checked training step. AdamW's first step moves every parameter by
/// ±lr (m̂/√v̂ = g/|g|), so a gradient near zero whose sign differs between devices moves a
/// parameter by up to 2·lr = 4e-5, below [`TOLERANCE`].
pub const TRAIN_LR: f64 = 2e-5;

/// The three DeiT anchors of [`timings`] (timm names).
pub const DEIT_TI_S_B: [&str; 3] = [
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
];

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A fixture file that is missing or unreadable.
    #[error("fixture {}: {reason}", .path.display())]
    Fixture {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two results that cannot be compared (different lengths: a bug, not a tolerance).
    #[error("{what}: {reason}")]
    Mismatch {
        /// What was compared.
        what: String,
        /// What differs.
        reason: String,
    },
    /// A scratch file or folder that could not be written.
    #[error("scratch files: {0}")]
    Io(#[from] std::io::Error),
    /// From the SN-Net (devices, forward, init, checkpoints).
    #[error(transparent)]
    Core(Box<snnet_core::Error>),
    /// From the stitch space (stitch ids).
    #[error(transparent)]
    Space(#[from] snnet_core::space::Error),
    /// From the zoo (models, weights).
    #[error(transparent)]
    Zoo(Box<snnet_core::zoo::Error>),
    /// From training.
    #[error(transparent)]
    Train(Box<snnet_train::Error>),
    /// From the profiler.
    #[error(transparent)]
    Runtime(Box<snnet_runtime::Error>),
}

macro_rules! boxed_from {
    ($($variant:ident: $ty:ty),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Self::$variant(Box::new(e))
            }
        }
    )*};
}

// Boxed: the composed errors are large, and every `Result` here carries them.
boxed_from!(
    Core: snnet_core::Error,
    Zoo: snnet_core::zoo::Error,
    Train: snnet_train::Error,
    Runtime: snnet_runtime::Error
);

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One comparison: the device's result against the CPU's and, where the repository holds one,
/// against the reference value.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What ran (a fixture, a stitch).
    pub name: String,
    /// What was compared (logits, weights, loss).
    pub what: String,
    /// Max abs difference between the device and the CPU.
    pub vs_cpu: f32,
    /// Max abs difference between the device and the reference (timm, the ziplab reference);
    /// `None` where the repository holds no reference value.
    pub vs_reference: Option<f32>,
    /// The device's wall time for the step checked, in seconds (compilation of its kernels
    /// included on a GPU).
    pub seconds: f64,
}

impl Check {
    /// Whether both differences are within [`TOLERANCE`] (and finite).
    pub fn passed(&self) -> bool {
        let ok = |d: f32| d.is_finite() && d <= TOLERANCE;
        ok(self.vs_cpu) && self.vs_reference.is_none_or(ok)
    }
}

/// Where the committed fixtures are: the workspace root.
#[derive(Debug, Clone)]
pub struct Fixtures {
    root: PathBuf,
}

impl Fixtures {
    /// The fixtures under workspace root `root` (checked to exist).
    ///
    /// # Errors
    /// [`Error::Fixture`] when `root` holds no fixtures.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let fixtures = Self { root: root.into() };
        for dir in [fixtures.zoo(""), fixtures.core("")] {
            if !dir.is_dir() {
                return Err(Error::Fixture {
                    path: dir,
                    reason: "not a folder: run from the repository root or pass its path".into(),
                });
            }
        }
        Ok(fixtures)
    }

    /// The workspace this crate was built in.
    ///
    /// # Errors
    /// As [`Fixtures::new`] (a binary moved to another machine: pass the root there).
    pub fn workspace() -> Result<Self> {
        Self::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
    }

    fn zoo(&self, file: &str) -> PathBuf {
        self.root.join("crates/snnet-zoo/tests/fixtures").join(file)
    }

    fn core(&self, file: &str) -> PathBuf {
        self.root
            .join("crates/snnet-core/tests/fixtures")
            .join(file)
    }

    fn read_json(&self, path: &Path) -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Fixture {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Fixture {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    fn tensors(&self, path: &Path) -> Result<BTreeMap<String, TensorData>> {
        Ok(tensor_io::read_tensors(path)?)
    }
}

fn tensor_of(io: &BTreeMap<String, TensorData>, key: &str, path: &Path) -> Result<TensorData> {
    io.get(key).cloned().ok_or_else(|| Error::Fixture {
        path: path.to_owned(),
        reason: format!("no tensor `{key}`"),
    })
}

fn values(data: TensorData, what: &str) -> Result<Vec<f32>> {
    data.convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Mismatch {
            what: what.to_owned(),
            reason: format!("{e:?}"),
        })
}

/// Max abs difference of two equally long results (NaN where either holds a NaN).
///
/// # Errors
/// [`Error::Mismatch`] when the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32], what: &str) -> Result<f32> {
    if a.len() != b.len() {
        return Err(Error::Mismatch {
            what: what.to_owned(),
            reason: format!("{} values against {}", a.len(), b.len()),
        });
    }
    Ok(a.iter().zip(b).fold(0.0f32, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(d)
        }
    }))
}

/// The reduced timm fixtures checked by [`parity`]: DeiT, Swin, ResNet-50 (bottleneck).
pub const FAMILY_FIXTURES: [&str; 3] = ["deit_reduced", "swin_reduced", "resnet50_reduced"];

/// Logits of a reduced timm fixture on `device`, and the fixture's input and timm logits.
fn family_logits(fx: &Fixtures, name: &str, device: &Device) -> Result<(Vec<f32>, Vec<f32>)> {
    let meta_path = fx.zoo(&format!("{name}.json"));
    let meta = fx.read_json(&meta_path)?;
    let config: ModelConfig =
        serde_json::from_value(meta["config"].clone()).map_err(|e| Error::Fixture {
            path: meta_path.clone(),
            reason: format!("config: {e}"),
        })?;
    let timm_name = meta["timm_name"].as_str().unwrap_or(name);
    let model = config.init(timm_name, device)?;
    let (model, _) = model.load_weights(
        &fx.zoo(&format!("{name}.weights.safetensors")),
        config.weight_remap(),
        snnet_core::zoo::LoadOptions::default(),
    )?;
    let io_path = fx.zoo(&format!("{name}.io.safetensors"));
    let io = fx.tensors(&io_path)?;
    let input = Tensor::<4>::from_data(tensor_of(&io, "input", &io_path)?, device);
    let logits = values(model.forward(input)?.into_data(), name)?;
    let timm = values(tensor_of(&io, "logits", &io_path)?, name)?;
    Ok((logits, timm))
}

/// The reference SN-Net fixture's config (three small timm ViTs, reference-compatible space).
fn snnet_config(fx: &Fixtures) -> Result<SnNetConfig> {
    let path = fx.core("snnet_vit.json");
    let json = fx.read_json(&path)?;
    let anchors: Vec<ModelEntry> =
        serde_json::from_value(json["anchors"].clone()).map_err(|e| Error::Fixture {
            path,
            reason: format!("anchors: {e}"),
        })?;
    Ok(SnNetConfig::new(anchors, SpaceConfig::default()).with_reference_compat(true))
}

/// The reference SN-Net, least-squares initialised on `device` from the fixture's images.
fn snnet_least_squares(fx: &Fixtures, device: &Device) -> Result<SnNet> {
    let config = snnet_config(fx)?;
    let weights: Vec<PathBuf> = (0..config.anchors.len())
        .map(|a| fx.core(&format!("vit{a}.safetensors")))
        .collect();
    let (net, _) = SnNet::from_pretrained(config, &weights, device)?;
    let io_path = fx.core("snnet_vit.io.safetensors");
    let io = fx.tensors(&io_path)?;
    let images = Tensor::<4>::from_data(tensor_of(&io, "images", &io_path)?, device);
    let (net, _) = net.init_least_squares(images, &LsOptions::default(), &mut |_| {})?;
    Ok(net)
}

/// Every stitching layer's weight and bias, flattened in layer order.
fn stitch_parameters(net: &SnNet) -> Result<Vec<f32>> {
    let mut all = Vec::new();
    for layer in &net.stitch_layers {
        all.extend(values(layer.transform.weight.val().into_data(), "weight")?);
        all.extend(values(layer.transform.bias.val().into_data(), "bias")?);
    }
    Ok(all)
}

/// The first, middle and last stitched path of `net`.
fn three_stitches(net: &SnNet) -> Vec<StitchId> {
    let stitched: Vec<StitchId> = net.space().stitched_ids().collect();
    let picks = [0, stitched.len() / 2, stitched.len().saturating_sub(1)];
    let mut ids: Vec<StitchId> = picks
        .iter()
        .filter_map(|&i| stitched.get(i).copied())
        .collect();
    ids.dedup();
    ids
}

/// Runs every parity check on `spec` against the CPU and the references: the family forwards,
/// the least-squares init, three stitches and one training step.
///
/// # Errors
/// [`Error::Core`] when the device's backend is not compiled in; fixture, forward and training
/// errors. Differences above the tolerance are not errors: see [`Check::passed`].
pub fn parity(fx: &Fixtures, spec: DeviceSpec) -> Result<Vec<Check>> {
    let device = spec.device()?;
    let cpu = DeviceSpec::Cpu.device()?;
    let mut checks = Vec::new();

    for name in FAMILY_FIXTURES {
        let started = Instant::now();
        let (ours, timm) = family_logits(fx, name, &device)?;
        let seconds = started.elapsed().as_secs_f64();
        let (on_cpu, _) = family_logits(fx, name, &cpu)?;
        checks.push(Check {
            name: name.to_owned(),
            what: "logits".to_owned(),
            vs_cpu: max_abs_diff(&ours, &on_cpu, name)?,
            vs_reference: Some(max_abs_diff(&ours, &timm, name)?),
            seconds,
        });
    }

    let started = Instant::now();
    let net = snnet_least_squares(fx, &device)?;
    let seconds = started.elapsed().as_secs_f64();
    let on_cpu = snnet_least_squares(fx, &cpu)?;
    let (reference, _) = SnNet::load_with_config(
        &fx.core("snnet_vit.reference.pth"),
        &snnet_config(fx)?,
        &cpu,
    )?;
    let ours = stitch_parameters(&net)?;
    checks.push(Check {
        name: format!("snnet_vit ({} layers)", net.stitch_layers.len()),
        what: "least-squares init: weights and biases".to_owned(),
        vs_cpu: max_abs_diff(&ours, &stitch_parameters(&on_cpu)?, "init")?,
        vs_reference: Some(max_abs_diff(
            &ours,
            &stitch_parameters(&reference)?,
            "init",
        )?),
        seconds,
    });

    let io_path = fx.core("snnet_vit.io.safetensors");
    let io = fx.tensors(&io_path)?;
    let input = tensor_of(&io, "input", &io_path)?;
    for id in three_stitches(&net) {
        let run = |net: &SnNet, device: &Device| -> Result<Vec<f32>> {
            let x = Tensor::<4>::from_data(input.clone(), device);
            values(net.forward(x, id)?.into_data(), "stitch")
        };
        let started = Instant::now();
        let ours = run(&net, &device)?;
        let seconds = started.elapsed().as_secs_f64();
        let reference = values(tensor_of(&io, &format!("logits.{id}"), &io_path)?, "stitch")?;
        checks.push(Check {
            name: format!("snnet_vit stitch {id}: {}", net.space().display(id)?),
            what: "logits".to_owned(),
            vs_cpu: max_abs_diff(&ours, &run(&on_cpu, &cpu)?, "stitch")?,
            vs_reference: Some(max_abs_diff(&ours, &reference, "stitch")?),
            seconds,
        });
    }

    checks.extend(training_step(spec)?);
    checks.extend(sharded_training_step(spec)?);
    Ok(checks)
}

/// The shipped Fashion-MNIST SN-Net after one step of the real trainer, with the step's loss:
/// on `specs[0]`, or with several, one data-parallel shard per entry (as `--devices`).
fn one_step(specs: &[DeviceSpec], dir: &Path) -> Result<(SnNet, f64)> {
    let spec = specs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let first = specs.first().copied().unwrap_or_default();
    let device = first.device()?;
    let registry = anchor_registry()?;
    let config = SnNetConfig::from_registry(&registry, &ANCHOR_NAMES, SpaceConfig::default())?;
    let mut weights = Vec::new();
    for name in ANCHOR_NAMES {
        let path = dir.join(format!("{name}.safetensors"));
        install_pretrained(name, &path)?;
        weights.push(path);
    }
    let (net, _) = SnNet::from_pretrained_with(
        config,
        &weights,
        Init::Kaiming { seed: 0 },
        snnet_core::zoo::LoadOptions::default(),
        &device,
    )?;
    let before = parameters(&net, dir, &format!("before-{spec}.safetensors"))?;
    let data = Batcher::new(
        FashionMnist::bars(32),
        BatchConfig::train(32, 0).with_augment(Augment::NONE),
        device.clone().autodiff(),
    )?;
    let recipe = TrainConfig {
        epochs: 1,
        lr: TRAIN_LR,
        min_lr: TRAIN_LR,
        warmup_epochs: 0.0,
        distill: Distill::None,
        seed: 1,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(recipe, data)?;
    let trainer = if specs.len() > 1 {
        let sharding = DataConfig {
            batch_size: 32,
            devices: specs.to_vec(),
            ..DataConfig::default()
        };
        trainer.with_data_parallel(sharding.parallel(&device)?)
    } else {
        trainer
    };
    let (net, logs) = trainer.fit(net, &mut |_| {})?;
    let loss = logs.first().map_or(f64::NAN, |l| l.loss);
    // A step that moved nothing would compare equal on every device.
    let after = parameters(&net, dir, &format!("after-{spec}.safetensors"))?;
    let mut moved = 0.0f32;
    for (key, data) in &after {
        if let Some(old) = before.get(key) {
            let d = max_abs_diff(&values(data.clone(), key)?, &values(old.clone(), key)?, key)?;
            moved = moved.max(d);
        }
    }
    if moved <= 0.0 {
        return Err(Error::Mismatch {
            what: format!("training step on {spec}"),
            reason: "no parameter changed".to_owned(),
        });
    }
    Ok((net, loss))
}

/// Every parameter of `net`, by checkpoint key.
fn parameters(net: &SnNet, dir: &Path, file: &str) -> Result<BTreeMap<String, TensorData>> {
    let path = dir.join(file);
    net.save(&path)?;
    Ok(tensor_io::read_tensors(&path)?)
}

/// One training step of the shipped Fashion-MNIST SN-Net on `spec` and on the CPU: the loss, and
/// every parameter after the step (see [`TRAIN_LR`] for the tolerance's justification).
///
/// # Errors
/// As [`parity`].
pub fn training_step(spec: DeviceSpec) -> Result<Vec<Check>> {
    compare_steps(&[spec], &[DeviceSpec::Cpu], "")
}

/// [`training_step`] in two data-parallel shards on `spec` (`--devices wgpu,wgpu`: one thread
/// per shard, the gradients summed in shard order) against two on the CPU.
///
/// # Errors
/// As [`parity`].
pub fn sharded_training_step(spec: DeviceSpec) -> Result<Vec<Check>> {
    compare_steps(
        &[spec, spec],
        &[DeviceSpec::Cpu, DeviceSpec::Cpu],
        &format!(" in 2 shards (--devices {spec},{spec})"),
    )
}

/// One training step on `specs` against one on `cpus`: the loss and every parameter.
fn compare_steps(specs: &[DeviceSpec], cpus: &[DeviceSpec], how: &str) -> Result<Vec<Check>> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let (net, loss) = one_step(specs, dir.path())?;
    let seconds = started.elapsed().as_secs_f64();
    let (on_cpu, cpu_loss) = one_step(cpus, dir.path())?;
    let ours = parameters(&net, dir.path(), "device.safetensors")?;
    let theirs = parameters(&on_cpu, dir.path(), "cpu.safetensors")?;
    if ours.len() != theirs.len() {
        return Err(Error::Mismatch {
            what: "training step".to_owned(),
            reason: format!("{} parameters against {}", ours.len(), theirs.len()),
        });
    }
    let mut worst = 0.0f32;
    for (key, data) in &ours {
        let other = theirs.get(key).ok_or_else(|| Error::Mismatch {
            what: "training step".to_owned(),
            reason: format!("parameter `{key}` missing on the CPU"),
        })?;
        let d = max_abs_diff(
            &values(data.clone(), key)?,
            &values(other.clone(), key)?,
            key,
        )?;
        worst = if d.is_nan() { f32::NAN } else { worst.max(d) };
    }
    let name = format!(
        "{} one AdamW step (lr {TRAIN_LR:e}, batch 32){how}",
        ANCHOR_NAMES.join("+")
    );
    #[allow(clippy::cast_possible_truncation)]
    let loss_diff = (loss - cpu_loss).abs() as f32;
    Ok(vec![
        Check {
            name: name.clone(),
            what: format!("loss ({loss:.7} here, {cpu_loss:.7} on the CPU)"),
            vs_cpu: loss_diff,
            vs_reference: None,
            seconds,
        },
        Check {
            name,
            what: format!("{} parameters after the step", ours.len()),
            vs_cpu: worst,
            vs_reference: None,
            seconds,
        },
    ])
}

/// Forward times of DeiT-Ti/S/B stitches at one batch size.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The batch size.
    pub batch: usize,
    /// The profiler's result (per stitch: id, description, FLOPs, latency statistics).
    pub profile: Profile,
}

/// The DeiT-Ti/S/B SN-Net (71 stitches) with random weights on `device`.
///
/// # Errors
/// As [`parity`].
pub fn deit_snnet(device: &Device) -> Result<SnNet> {
    let config =
        SnNetConfig::from_registry(&Registry::builtin(), &DEIT_TI_S_B, SpaceConfig::default())?;
    device.seed(0);
    Ok(config.init_with(Init::Kaiming { seed: 0 }, device)?)
}

/// The forward time of `ids` (all when `None`) of the DeiT-Ti/S/B SN-Net on `spec`, at each batch
/// size: `warmup` untimed runs, then `iters` timed ones, each synchronised with the device.
/// `progress` is called after each stitch with the batch, the stitch's index and the count.
///
/// # Errors
/// As [`parity`]; [`Error::Runtime`] for an unknown stitch.
pub fn timings(
    spec: DeviceSpec,
    batches: &[usize],
    ids: Option<Vec<StitchId>>,
    warmup: usize,
    iters: usize,
    progress: &mut (dyn FnMut(usize, usize, usize) + Send),
) -> Result<Vec<Timing>> {
    let device = spec.device()?;
    let net = deit_snnet(&device)?;
    let mut out = Vec::new();
    for &batch in batches {
        let profiler = ProfilerConfig::new()
            .with_batch(batch)
            .with_warmup(warmup)
            .with_iters(iters)
            .with_ids(ids.clone())
            .with_memory(false)
            .init(&device)?;
        let profile = profiler.run(&net, |p| progress(batch, p.done, p.total))?;
        out.push(Timing { batch, profile });
    }
    Ok(out)
}

/// The markdown report: the parity table, then one row per stitch with its median time at each
/// batch size.
pub fn markdown(device: &str, checks: &[Check], timings: &[Timing]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### `{device}`: parity (max abs difference; tolerance {TOLERANCE:e})\n"
    );
    let _ = writeln!(
        s,
        "| check | compared | vs CPU | vs reference | device s | passed |\n|---|---|---|---|---|---|"
    );
    for c in checks {
        let reference = c
            .vs_reference
            .map_or_else(|| "–".to_owned(), |d| format!("{d:.2e}"));
        let _ = writeln!(
            s,
            "| {} | {} | {:.2e} | {reference} | {:.2} | {} |",
            c.name,
            c.what,
            c.vs_cpu,
            c.seconds,
            if c.passed() { "yes" } else { "**NO**" }
        );
    }
    if let Some(first) = timings.first() {
        let _ = writeln!(
            s,
            "\n### `{device}`: DeiT-Ti/S/B forward, median ms ({} timed runs after {} warm-up)\n",
            first.profile.meta.iters, first.profile.meta.warmup
        );
        let batches: Vec<String> = timings
            .iter()
            .map(|t| format!("batch {}", t.batch))
            .collect();
        let _ = writeln!(
            s,
            "| id | stitch | GFLOPs | {} |\n|---|---|---|{}",
            batches.join(" | "),
            "---|".repeat(timings.len())
        );
        for (row, stitch) in first.profile.stitches.iter().enumerate() {
            let times: Vec<String> = timings
                .iter()
                .map(|t| {
                    t.profile
                        .stitches
                        .get(row)
                        .map_or_else(|| "–".to_owned(), |p| format!("{:.2}", p.latency.median_ms))
                })
                .collect();
            #[allow(clippy::cast_precision_loss)]
            let gflops = stitch.flops as f64 / 1e9;
            let _ = writeln!(
                s,
                "| {} | {} | {gflops:.2} | {} |",
                stitch.id,
                stitch.description,
                times.join(" | ")
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_and_verdicts() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.0, 2.5], "x").ok(), Some(0.5));
        assert!(max_abs_diff(&[1.0], &[1.0, 2.0], "x").is_err());
        assert!(max_abs_diff(&[f32::NAN], &[1.0], "x").is_ok_and(f32::is_nan));
        let check = |vs_cpu, vs_reference| Check {
            name: String::new(),
            what: String::new(),
            vs_cpu,
            vs_reference,
            seconds: 0.0,
        };
        assert!(check(1e-5, None).passed());
        assert!(check(1e-5, Some(5e-5)).passed());
        assert!(!check(2e-4, None).passed());
        assert!(!check(1e-5, Some(2e-4)).passed());
        assert!(!check(f32::NAN, None).passed());
    }

    #[test]
    fn a_folder_without_fixtures_is_a_clear_error() {
        let err = Fixtures::new("/nonexistent").unwrap_err();
        assert!(err.to_string().contains("repository root"), "{err}");
    }
}
