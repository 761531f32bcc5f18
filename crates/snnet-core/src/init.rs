//! The least-squares initialisation of every stitching layer (SN-Net §3.2).

use std::collections::HashMap;
use std::time::Instant;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use snnet_space::LayerKey;
use snnet_stitch::lstsq::{Affine, Features, LstsqOptions, Precision, SourceSystem};
use snnet_zoo::{Activation, Anchor};

use crate::error::{Error, Result};
use crate::net::SnNet;
use crate::plan::LayerFitPlan;

/// An anchor and one of its block states (`(anchor, state)`), as the least-squares fits key them.
type State = (usize, usize);

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
        .map_err(Error::ReadBack)?;
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
    /// [`Error::NoImages`] for no images, [`Error::Zoo`] for images the anchors do not take,
    /// [`Error::Stitch`] for non-finite features or a solver failure.
    pub fn init_least_squares(
        self,
        images: Tensor<4>,
        options: &LsOptions,
        progress: &mut dyn FnMut(LsProgress),
    ) -> Result<(Self, LsReport)> {
        let dims = images.dims();
        let n = dims[0];
        if n == 0 {
            return Err(Error::NoImages);
        }
        let plan = self.plan().clone();
        // Which anchor states the fits read (the plan's handovers; state s enters block s).
        let needed = plan.fit_states();
        // The one check of the images, for every anchor that embeds them; what runs below
        // cannot fail on them.
        self.check_entry(dims, std::iter::empty())?;
        for &anchor in needed.keys() {
            self.anchors[anchor].check_images(dims)?;
        }

        let started = Instant::now();
        let chunk = if options.chunk == 0 { n } else { options.chunk };
        let chunks = n.div_ceil(chunk);
        let mut stored: HashMap<(usize, usize), Stored> = HashMap::new();
        for (&anchor, states) in &needed {
            let model = &self.anchors[anchor];
            let last = states.iter().next_back().copied().unwrap_or(0);
            for c in 0..chunks {
                let start = c * chunk;
                let batch = images.clone().narrow(0, start, chunk.min(n - start));
                let x = model.embed(batch);
                let mut kept = Vec::with_capacity(states.len());
                model.blocks_with_states(0..last, x, &mut |state, x| {
                    if states.contains(&state) {
                        kept.push((state, x.clone()));
                    }
                });
                for (state, x) in kept {
                    let (rows, cols) = rows_of(x)?;
                    stored
                        .entry((anchor, state))
                        .or_insert_with(|| Stored {
                            data: Vec::new(),
                            cols,
                        })
                        .data
                        .extend_from_slice(&rows);
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
        let total = plan.fits().len();
        let mut fits = Vec::with_capacity(total);
        let mut net = self;
        let missing = |(anchor, state)| Error::MissingFeature { anchor, state };
        let features_of = |states: &[State]| {
            states
                .iter()
                .map(|&state| stored.get(&state).ok_or_else(|| missing(state))?.features())
                .collect::<Result<Vec<_>>>()
        };
        // Fits of one group that read the same front state share its factorisation.
        let mut systems: HashMap<(usize, usize), SourceSystem<'_>> = HashMap::new();
        let mut group = None;
        let all_fits = plan.fits();
        for (done, fit) in all_fits.iter().enumerate() {
            let this_group = (fit.key.stage, fit.key.front, fit.key.end);
            if group != Some(this_group) {
                group = Some(this_group);
                // The group's sources in order of first use, factorised together (each
                // eigendecomposition beside the next source's `XᵀX`).
                let mut sources = Vec::new();
                let of_group =
                    |f: &&LayerFitPlan| (f.key.stage, f.key.front, f.key.end) == this_group;
                for f in all_fits[done..].iter().take_while(of_group) {
                    for junction in &f.junctions {
                        let source = (junction.front, junction.front_state());
                        if !sources.contains(&source) {
                            sources.push(source);
                        }
                    }
                }
                let factorised = SourceSystem::new_all(&features_of(&sources)?, &options.lstsq)?;
                systems = sources.into_iter().zip(factorised).collect();
            }
            // With `Precision::MixedF32` the fit's cuts are grouped by their front state, in order
            // of first appearance: the solution is linear in the target, so a group's cuts cost
            // one solve against the sum of their targets (`solve_sum`) and the layer takes the
            // mean over all its cuts. `Precision::F64` solves every cut on its own, the sum
            // of the solutions in cut order, bit for bit as the reference's loop.
            let share = options.lstsq.precision == Precision::MixedF32;
            // (front anchor, its state) → the (end anchor, its state) targets it serves.
            let mut groups: Vec<(State, Vec<State>)> = Vec::new();
            for junction in &fit.junctions {
                let source = (junction.front, junction.front_state());
                let target = (junction.end, junction.end_state());
                match groups.iter_mut().find(|(s, _)| share && *s == source) {
                    Some((_, targets)) => targets.push(target),
                    None => groups.push((source, vec![target])),
                }
            }
            let mut parts = Vec::with_capacity(groups.len());
            let mut ranks = Vec::with_capacity(fit.junctions.len());
            for (source, targets) in &groups {
                // Every source of the group was factorised above.
                let system = systems.get(source).ok_or_else(|| missing(*source))?;
                parts.push(system.solve_sum(&features_of(targets)?)?);
            }
            // Ranks in the order of the cuts, as before.
            for junction in &fit.junctions {
                let source = (junction.front, junction.front_state());
                ranks.extend(systems.get(&source).map(SourceSystem::rank));
            }
            let affine = Affine::mean_of_sums(&parts, fit.junctions.len())?;
            // `check_entry` made sure the network has every layer of its plan.
            let layer = net.stitch_layers[fit.layer].clone().with_affine(&affine)?;
            net.stitch_layers[fit.layer] = layer;
            fits.push(LayerFit {
                key: fit.key,
                cuts: fit.cuts.iter().map(|c| [c.front, c.end]).collect(),
                ranks,
            });
            progress(LsProgress::Solve {
                done: done + 1,
                total,
            });
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
