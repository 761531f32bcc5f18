//! The least-squares initialisation of every stitching layer (SN-Net §3.2).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use snnet_space::LayerKey;
use snnet_stitch::lstsq::{Affine, Features, LstsqOptions, SourceSystem};
use snnet_zoo::{Activation, Anchor};

use crate::error::{Error, Result};
use crate::net::SnNet;

/// Options of [`SnNet::init_least_squares`].
#[derive(Debug, Clone, Default)]
pub struct LsOptions {
    /// Images per anchor forward pass while collecting features (`0`: all at once). Rows are
    /// the same either way; smaller chunks bound the activations' peak memory.
    pub chunk: usize,
    /// The solver.
    pub lstsq: LstsqOptions,
}

/// What the least-squares init is doing, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsProgress {
    /// Anchor `anchor` ran `done` of `total` image chunks.
    Features {
        /// The anchor.
        anchor: usize,
        /// Chunks done.
        done: usize,
        /// Chunks in all.
        total: usize,
    },
    /// `done` of `total` stitching layers are solved.
    Solve {
        /// Layers done.
        done: usize,
        /// Layers in all.
        total: usize,
    },
}

/// One stitching layer's fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFit {
    /// The layer.
    pub key: LayerKey,
    /// The cuts solved and averaged (`[front block, end block]` within the stage).
    pub cuts: Vec<[usize; 2]>,
    /// The numerical rank of each cut's `[A | 1]`.
    pub ranks: Vec<usize>,
}

/// What the least-squares init did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LsReport {
    /// Images used.
    pub images: usize,
    /// The fitted layers (layers no stitch uses keep their initial weights and are not listed).
    pub layers: Vec<LayerFit>,
    /// Seconds spent running the anchors.
    pub features_seconds: f64,
    /// Seconds spent solving.
    pub solve_seconds: f64,
}

/// Rows × channels features of one anchor state, row-major.
struct Stored {
    data: Vec<f32>,
    cols: usize,
}

impl Stored {
    fn features(&self) -> Result<Features<'_>> {
        let rows = self.data.len().checked_div(self.cols).unwrap_or(0);
        Ok(Features::new(&self.data, rows, self.cols)?)
    }
}

/// An activation as rows of channels: tokens `(b, n)`, map pixels `(b, h, w)`.
fn rows_of(x: Activation) -> Result<(Vec<f32>, usize)> {
    let (data, cols) = match x {
        Activation::Tokens(t) => {
            let [_, _, c] = t.dims();
            (t.into_data(), c)
        }
        Activation::Map(m) => {
            let [_, c, _, _] = m.dims();
            (m.permute([0, 2, 3, 1]).into_data(), c)
        }
    };
    let data = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::InitInput(format!("cannot read features back: {e:?}")))?;
    Ok((data, cols))
}

impl SnNet {
    /// Initialises every stitching layer by least squares, as the reference does: each anchor
    /// runs `images` once; for every cut `(j, k)` that a layer serves, the front anchor's output
    /// of block `j` (all tokens, class token included, or all pixels) is fitted to the end
    /// anchor's input of block `k` by the minimum-norm solution of `[A | 1] M ≈ B`
    /// (`torch.linalg.pinv`'s, cutoff included), and the layer takes the mean of its cuts'
    /// weights and biases. Deterministic: the same images give the same weights.
    ///
    /// Run it on a device without autodiff (BatchNorm then uses its running statistics, as in
    /// eval mode).
    ///
    /// # Shapes
    /// `images`: `[N, C, H, W]`, normalised; the reference uses `N = 100`.
    ///
    /// # Errors
    /// [`Error::InitInput`] for no images, [`Error::Zoo`] for images the anchors do not take,
    /// [`Error::Stitch`] for non-finite features or a solver failure.
    pub fn init_least_squares(
        self,
        images: Tensor<4>,
        options: &LsOptions,
        progress: &mut dyn FnMut(LsProgress),
    ) -> Result<(Self, LsReport)> {
        let [n, ..] = images.dims();
        if n == 0 {
            return Err(Error::InitInput("no images".to_owned()));
        }
        let plan = self.plan().clone();
        let space = plan.space();

        // Which anchor states each fit reads: state 0 is the embedded input, state g + 1 the
        // output of global block g.
        let state = |anchor: usize, stage: Option<usize>, block: usize| {
            space.anchors()[anchor].global_block(stage.unwrap_or(0), block)
        };
        let mut needed: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for group in space.layer_groups() {
            for cut in group.positions.iter().flatten() {
                needed
                    .entry(group.front)
                    .or_default()
                    .insert(state(group.front, group.stage, cut.front) + 1);
                needed
                    .entry(group.end)
                    .or_default()
                    .insert(state(group.end, group.stage, cut.end));
            }
        }

        let started = Instant::now();
        let chunk = if options.chunk == 0 { n } else { options.chunk };
        let chunks = n.div_ceil(chunk);
        let mut stored: HashMap<(usize, usize), Stored> = HashMap::new();
        for (&anchor, states) in &needed {
            let model = self
                .anchors
                .get(anchor)
                .ok_or_else(|| Error::Incompatible(format!("the space names anchor {anchor}")))?;
            let last = states.iter().next_back().copied().unwrap_or(0);
            for c in 0..chunks {
                let batch = images
                    .clone()
                    .narrow(0, c * chunk, chunk.min(n - c * chunk));
                let mut x = model.embed(batch)?;
                for s in 0..=last {
                    if s > 0 {
                        x = model.block(s - 1, x)?;
                    }
                    if states.contains(&s) {
                        let (rows, cols) = rows_of(x.clone())?;
                        let entry = stored.entry((anchor, s)).or_insert_with(|| Stored {
                            data: Vec::new(),
                            cols,
                        });
                        entry.data.extend_from_slice(&rows);
                    }
                }
                progress(LsProgress::Features {
                    anchor,
                    done: c + 1,
                    total: chunks,
                });
            }
        }
        let features_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let total: usize = space
            .layer_groups()
            .iter()
            .map(|g| g.positions.iter().filter(|p| !p.is_empty()).count())
            .sum();
        let mut done = 0;
        let mut fits = Vec::new();
        let mut net = self;
        let groups: Vec<_> = plan.groups().map(|(g, o)| (g.clone(), o)).collect();
        for (group, offset) in groups {
            let mut systems: HashMap<usize, SourceSystem<'_>> = HashMap::new();
            for (index, cuts) in group.positions.iter().enumerate() {
                if cuts.is_empty() {
                    continue;
                }
                let mut parts = Vec::with_capacity(cuts.len());
                let mut ranks = Vec::with_capacity(cuts.len());
                for cut in cuts {
                    let source = state(group.front, group.stage, cut.front) + 1;
                    let target = state(group.end, group.stage, cut.end);
                    let missing = || Error::InitInput("a feature was not collected".to_owned());
                    let system = match systems.entry(source) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            let a = stored.get(&(group.front, source)).ok_or_else(missing)?;
                            e.insert(SourceSystem::new(&a.features()?, &options.lstsq)?)
                        }
                    };
                    let b = stored.get(&(group.end, target)).ok_or_else(missing)?;
                    parts.push(system.solve(&b.features()?)?);
                    ranks.push(system.rank());
                }
                let affine = Affine::mean(&parts)?;
                let flat = offset + index;
                let layer = net
                    .stitch_layers
                    .get(flat)
                    .cloned()
                    .ok_or_else(|| Error::Incompatible(format!("no stitching layer {flat}")))?;
                net.stitch_layers[flat] = layer.with_affine(&affine)?;
                fits.push(LayerFit {
                    key: group.key(index),
                    cuts: cuts.iter().map(|c| [c.front, c.end]).collect(),
                    ranks,
                });
                done += 1;
                progress(LsProgress::Solve { done, total });
            }
        }
        let report = LsReport {
            images: n,
            layers: fits,
            features_seconds,
            solve_seconds: started.elapsed().as_secs_f64(),
        };
        Ok((net, report))
    }
}
