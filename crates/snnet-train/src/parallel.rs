//! Data parallelism: one training step's forward and backward split into shards of the batch
//! that run concurrently, one thread per shard, each on its own device (or all on one).
//!
//! Burn's CPU backends run large matrix products on all cores but the many small element-wise
//! operations of a transformer step (norms, softmax, GELU, residual adds, their gradients) on the
//! calling thread alone, so on a CPU a step leaves most cores idle most of the time. Splitting the
//! batch into shards that run on parallel threads keeps every core busy; on several GPUs the same
//! code is multi-device data parallelism.
//!
//! With several shards, each runs on a rayon thread pool of its own holding its share of the
//! cores (`cores / shards` threads, at least one), so the parallel CPU kernels a shard calls
//! (matrix products, row-parallel norms and activations) split their work among that shard's
//! threads only. On one shared pool every product of every shard was split across all cores:
//! each shard's thread handed work to the pool and slept until it was done, the pool's threads
//! spun between the shards' small jobs, and a two-shard step on two cores kept about 1.3 of them
//! busy (docs/PERFORMANCE.md, "One pool per shard").
//!
//! The shards' gradients are added in shard order on the first shard's device and applied with
//! [`ModuleOptimizer::step_multi`](burn::optim::ModuleOptimizer::step_multi).
//!
//! Each shard runs on a *replica* of the network whose parameters are fresh autodiff leaves
//! with the original [`ParamId`](burn::module::ParamId)s: the shards' graphs share no node, so
//! Burn keeps them apart and their backward passes do not serialise on one graph lock, while
//! the gradients still land on the right parameters.
//!
//! The loss of every shard must be a mean over its samples; [`DataParallel::gradients`] weights
//! shard `k` by `n_k / n`, so the combined gradient equals the whole batch's up to float
//! rounding (BatchNorm layers, as in PyTorch's DDP without SyncBatchNorm, normalise each shard
//! with its own statistics). A given number of shards gives the same result, bit for bit, on
//! every run: the gradients are summed in shard order, not in an order left to the parameters'
//! random ids.

use std::sync::Arc;

use crate::train::Trainable;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::{Device, Int, Tensor};

use crate::error::{Error, Result};

/// Where the shards of every batch run.
///
/// ```
/// use snnet_train::burn::tensor::Device;
/// use snnet_train::parallel::DataParallel;
///
/// // Two shards on parallel threads of the default (CPU) device.
/// let dp = DataParallel::threads(Device::default().autodiff(), 2)?;
/// assert_eq!(dp.shards(), 2);
/// # Ok::<(), snnet_train::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DataParallel {
    devices: Vec<Device>,
    /// With several shards, one thread pool per shard: the shard runs on it, and the parallel
    /// CPU kernels it calls share out only its threads.
    pools: Arc<Vec<rayon::ThreadPool>>,
}

/// A step's loss and gradients, ready for [`ModuleOptimizer::step_multi`](burn::optim::ModuleOptimizer::step_multi).
pub struct StepGradients {
    /// The batch's loss (the shards' losses weighted by their share of the batch).
    pub loss: f64,
    /// Gradients of the stitching layers' parameters (none for a network without them).
    pub stitch_layers: MultiGradientsParams,
    /// Gradients of the anchors' parameters.
    pub anchors: MultiGradientsParams,
}

impl DataParallel {
    /// One shard per device; a device may appear several times (shards on parallel threads).
    /// Every device needs autodiff (`Device::default().autodiff()`).
    ///
    /// With several shards, each runs on a thread pool of its own with an equal share of the
    /// machine's cores (at least one thread).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `devices` is empty, [`Error::ThreadPool`] when a shard's
    /// threads cannot be started.
    pub fn new(devices: Vec<Device>) -> Result<Self> {
        if devices.is_empty() {
            return Err(Error::InvalidConfig {
                what: "data parallelism",
                reason: "at least one device is needed".into(),
            });
        }
        let pools = if devices.len() > 1 {
            share_cores(devices.len(), "shard")?
        } else {
            Vec::new()
        };
        Ok(Self {
            devices,
            pools: Arc::new(pools),
        })
    }

    /// `shards` shards on parallel threads of `device`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `shards` is 0, [`Error::ThreadPool`] when a shard's
    /// threads cannot be started.
    pub fn threads(device: Device, shards: usize) -> Result<Self> {
        Self::new(vec![device; shards])
    }

    /// No parallelism: the whole batch on `device`, on the calling thread.
    pub fn single(device: Device) -> Self {
        Self {
            devices: vec![device],
            pools: Arc::new(Vec::new()),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.devices.len()
    }

    /// The devices, one per shard.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The half-open sample ranges of the shards of a batch of `n` (near-equal, empty shards
    /// left out).
    pub fn split(&self, n: usize) -> Vec<std::ops::Range<usize>> {
        let k = self.shards();
        let mut start = 0;
        (0..k)
            .map(|i| {
                let len = n / k + usize::from(i < n % k);
                let range = start..start + len;
                start += len;
                range
            })
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// Runs `loss(replica, images, labels, shard)` for every shard of the batch — one thread
    /// per shard, the shard's replica of `net` and its slice of the batch on its device; with a
    /// single shard, `net` and the batch as given, on the calling thread — then backward, and
    /// returns the weighted loss and the gradients of `net`'s parameters.
    ///
    /// `loss` must return the mean loss over the samples it is given (a `[1]` tensor); `shard`
    /// is the shard's index into [`DataParallel::devices`] (e.g. to pick a teacher replica).
    ///
    /// # Errors
    /// The first error a shard's `loss` returns; [`Error::Worker`] when a shard's thread panics
    /// (e.g. a backend out of memory). A non-finite loss is returned, not checked.
    ///
    /// # Shapes
    /// `images` `[N, C, H, W]`, `labels` `[N]`.
    pub fn gradients<N, F>(
        &self,
        net: &N,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        loss: F,
    ) -> Result<StepGradients>
    where
        N: Trainable,
        F: Fn(&N, Tensor<4>, Tensor<1, Int>, usize) -> Result<Tensor<1>> + Sync,
    {
        let [n, ..] = images.dims();
        let ranges = self.split(n);
        if ranges.len() <= 1 {
            let device = self.devices[0].clone();
            let (value, stitch, anchors) = shard_gradients(net, images, labels, 1.0, 0, &loss)?;
            return Ok(StepGradients {
                loss: value,
                stitch_layers: multi(vec![(stitch, device.clone())]),
                anchors: multi(vec![(anchors, device)]),
            });
        }
        let results: Vec<Result<(f64, GradientsParams, GradientsParams)>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = ranges
                    .iter()
                    .enumerate()
                    .map(|(shard, range)| {
                        let device = &self.devices[shard];
                        let replica = replica(net, device);
                        let x = images
                            .clone()
                            .narrow(0, range.start, range.len())
                            .to_device(device);
                        let y = labels
                            .clone()
                            .narrow(0, range.start, range.len())
                            .to_device(device);
                        let weight = range.len() as f32 / n as f32;
                        let loss = &loss;
                        let pool = self.pools.get(shard);
                        scope.spawn(move || {
                            let run = move || shard_gradients(&replica, x, y, weight, shard, loss);
                            match pool {
                                Some(pool) => pool.install(run),
                                None => run(),
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|panic| Err(panicked(panic))))
                    .collect()
            });
        let mut value = 0.0;
        let (mut stitch, mut anchors) = (Vec::new(), Vec::new());
        for result in results {
            let (v, s, a) = result?;
            value += v;
            stitch.push(s);
            anchors.push(a);
        }
        // Burn's `MultiGradientsParams` would add the shards' gradients starting from a shard
        // chosen by the parameter's (random) id, so the float sum — and the trained weights —
        // would change from run to run. Summing here, shard 0 first, makes a step bit-for-bit
        // reproducible for a given number of shards.
        let device = self.devices[0].clone();
        Ok(StepGradients {
            loss: value,
            stitch_layers: multi(vec![(
                net.stitch_layers()
                    .map(|layers| sum_in_order(layers, stitch, &device))
                    .unwrap_or_default(),
                device.clone(),
            )]),
            anchors: multi(vec![(
                sum_in_order(net.anchors(), anchors, &device),
                device,
            )]),
        })
    }
}

/// `n` rayon thread pools that share the machine's cores: `cores / n` threads each (at least
/// one), named `snnet-{what}{k}-{i}`.
///
/// # Errors
/// [`Error::ThreadPool`] when a pool's threads cannot be started.
fn share_cores(n: usize, what: &'static str) -> Result<Vec<rayon::ThreadPool>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.checked_div(n).unwrap_or(1).max(1);
    (0..n)
        .map(|k| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(move |i| format!("snnet-{what}{k}-{i}"))
                .build()
                .map_err(Error::ThreadPool)
        })
        .collect()
}

/// The error of a worker thread that panicked (e.g. a backend out of memory), with its message.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> Error {
    let reason = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    Error::Worker { reason }
}

/// The shards' gradients of `module`'s parameters added in shard order (`((g0 + g1) + g2) + …`)
/// on `device`.
fn sum_in_order<M: Module>(
    module: &M,
    shards: Vec<GradientsParams>,
    device: &Device,
) -> GradientsParams {
    struct InOrder<'a> {
        shards: Vec<GradientsParams>,
        device: &'a Device,
        sum: GradientsParams,
    }
    impl ModuleVisitor for InOrder<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let id = param.id;
            let total = self
                .shards
                .iter_mut()
                .filter_map(|grads| grads.remove::<D>(id))
                .map(|g| g.to_device(self.device))
                .reduce(|acc, g| acc + g);
            if let Some(total) = total {
                self.sum.register(id, total);
            }
        }
    }
    let mut visitor = InOrder {
        shards,
        device,
        sum: GradientsParams::new(),
    };
    module.visit(&mut visitor);
    visitor.sum
}

fn multi(grads: Vec<(GradientsParams, Device)>) -> MultiGradientsParams {
    MultiGradientsParams { grads }
}

/// Forward, loss and backward of one shard; the loss is scaled by `weight` before backward.
fn shard_gradients<N, F>(
    net: &N,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    weight: f32,
    shard: usize,
    loss: &F,
) -> Result<(f64, GradientsParams, GradientsParams)>
where
    N: Trainable,
    F: Fn(&N, Tensor<4>, Tensor<1, Int>, usize) -> Result<Tensor<1>>,
{
    let loss = loss(net, images, labels, shard)?;
    let loss = if weight == 1.0 {
        loss
    } else {
        loss.mul_scalar(weight)
    };
    let value = f64::from(loss.clone().into_scalar::<f32>());
    let mut grads = loss.backward();
    let stitch = net
        .stitch_layers()
        .map(|layers| GradientsParams::from_module(&mut grads, layers))
        .unwrap_or_default();
    let anchors = GradientsParams::from_module(&mut grads, net.anchors());
    Ok((value, stitch, anchors))
}

/// `net` on `device` with every tracked parameter a fresh autodiff leaf (same ids).
fn replica<N: Module>(net: &N, device: &Device) -> N {
    net.clone().fork(device).map(&mut FreshLeaves)
}

/// Replaces each parameter's tensor by a detached copy that keeps its `require_grad`: a new
/// leaf of a new graph, under the same [`ParamId`](burn::module::ParamId).
struct FreshLeaves;

impl ModuleMapper for FreshLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let tracked = t.is_require_grad();
            let t = t.detach();
            if tracked { t.require_grad() } else { t }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn split_is_near_equal_and_skips_empty_shards() {
        let dp = DataParallel::threads(Device::default(), 3).unwrap();
        assert_eq!(dp.split(8), vec![0..3, 3..6, 6..8]);
        assert_eq!(dp.split(2), vec![0..1, 1..2]);
        assert!(DataParallel::new(vec![]).is_err());
        assert!(DataParallel::threads(Device::default(), 0).is_err());
    }
}
