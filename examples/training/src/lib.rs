//! Train an SN-Net on Fashion-MNIST, in small: the three shipped pretrained ViT anchors
//! (`fmnist_vit_s/m/l`) → their SN-Net (35 stitches) → least-squares init of its stitching layers
//! → joint training of every stitch → top-1 of every stitch on the test images → the
//! accuracy/FLOPs Pareto frontier → the most accurate stitch within a FLOPs budget. It is the main
//! job (`./run.sh`, `snnet run`) as one library call, [`snnet_train::pipeline::run`], on a
//! fraction of the data: a minute on two cores instead of several.
//!
//! ```sh
//! cargo run --release -p training -- [--out runs/training] [--epochs 1] [--train-samples 6000] \
//!     [--test-samples 1000] [--data DIR]
//! ```
//!
//! Needs Fashion-MNIST: Debian's `dataset-fashion-mnist` (`scripts/apt_install.sh
//! dataset-fashion-mnist`), or the four IDX files in `--data DIR`. Everything lands in `--out`
//! (`snnet.safetensors`, `eval.jsonl`, `pareto.svg`, `summary.json`, …); a folder that holds a
//! finished step skips it, so a second run with the same settings resumes (or only re-reads).

use std::path::PathBuf;

use snnet_train::pipeline::{Event, Preset, RunConfig};
use snnet_train::train::TrainEvent;

/// The example's settings, from its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The run folder.
    pub out: PathBuf,
    /// Joint training epochs.
    pub epochs: usize,
    /// Training images (the first N of the 60,000).
    pub train_samples: usize,
    /// Test images evaluated (the first N of the 10,000).
    pub test_samples: usize,
    /// Fashion-MNIST's folder (`None`: Debian's package).
    pub data: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            out: PathBuf::from("runs/training"),
            epochs: 1,
            train_samples: 6_000,
            test_samples: 1_000,
            data: None,
        }
    }
}

impl Options {
    /// Reads `--out`, `--epochs`, `--train-samples`, `--test-samples` and `--data` from `args`
    /// (without the program name); the others keep their [`Default`].
    ///
    /// # Errors
    /// An unknown flag, a flag without its value, a count that is not a positive integer.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let value = args.next().ok_or(format!("{arg} needs a value"))?;
            let count = || match value.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{arg} takes a positive integer, not {value:?}")),
            };
            match arg.as_str() {
                "--out" => options.out = PathBuf::from(&value),
                "--epochs" => options.epochs = count()?,
                "--train-samples" => options.train_samples = count()?,
                "--test-samples" => options.test_samples = count()?,
                "--data" => options.data = Some(PathBuf::from(&value)),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(options)
    }

    /// The quick preset (shipped pretrained anchors, its recipe) on these data and epochs.
    pub fn config(&self) -> RunConfig {
        let mut config = RunConfig::preset(Preset::Quick).with_data_dir(self.data.clone());
        config.joint.epochs = self.epochs;
        for data in [&mut config.joint_data, &mut config.eval_data] {
            data.train_samples = self.train_samples;
            data.test_samples = self.test_samples;
        }
        config
    }
}

/// A line of progress for the pipeline's `event`, or `None` for the events not worth a line
/// (training steps, single evaluations but every tenth and the last).
pub fn progress(event: &Event<'_>) -> Option<String> {
    match event {
        Event::AnchorShipped { name, .. } => Some(format!("anchor {name}: shipped weights")),
        Event::LeastSquares(report) => Some(format!(
            "least squares: {} stitching layers fitted on {} images in {:.1} s",
            report.layers.len(),
            report.images,
            report.features_seconds + report.solve_seconds
        )),
        Event::Train {
            what,
            epochs,
            event: TrainEvent::Epoch(log),
        } => Some(format!(
            "{what} epoch {}/{epochs}: loss {:.4}, {:.0} images/s, {:.1} s",
            log.epoch + 1,
            log.loss,
            log.images_per_second,
            log.seconds
        )),
        Event::EvalStarted { total } => Some(format!("evaluating {total} stitches")),
        Event::Evaluated {
            record,
            done,
            total,
        } if done % 10 == 0 || done == total => Some(format!(
            "  {done}/{total}: stitch {} top-1 {:.2} %",
            record.id, record.acc1
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_flags_and_refuses_bad_ones() {
        assert_eq!(Options::parse(args(&[])), Ok(Options::default()));
        let options = Options::parse(args(&["--epochs", "2", "--data", "/d", "--out", "o"]));
        assert_eq!(
            options,
            Ok(Options {
                out: "o".into(),
                epochs: 2,
                data: Some("/d".into()),
                ..Options::default()
            })
        );
        assert!(Options::parse(args(&["--epochs"])).is_err());
        assert!(Options::parse(args(&["--epochs", "0"])).is_err());
        assert!(Options::parse(args(&["--test-samples", "-1"])).is_err());
        assert!(Options::parse(args(&["--preset", "full"])).is_err());
    }

    #[test]
    fn the_config_is_the_quick_preset_on_a_subset() {
        let options = Options {
            epochs: 3,
            train_samples: 500,
            test_samples: 200,
            ..Options::default()
        };
        let config = options.config();
        let quick = RunConfig::preset(Preset::Quick);
        assert!(config.pretrained);
        assert_eq!(
            config.joint,
            snnet_train::train::TrainConfig {
                epochs: 3,
                ..quick.joint.clone()
            }
        );
        assert_eq!(config.joint_data.train_samples, 500);
        assert_eq!(config.eval_data.test_samples, 200);
        assert_eq!(config.anchors, quick.anchors);
    }

    #[test]
    fn progress_reports_the_milestones_only() {
        assert_eq!(
            progress(&Event::EvalStarted { total: 35 }).as_deref(),
            Some("evaluating 35 stitches")
        );
        assert_eq!(progress(&Event::EvalEnded), None);
    }
}
