//! Number parsing and printing, and progress bars, for the command line.

use indicatif::{ProgressBar, ProgressStyle};
use snnet_train::pipeline::{Event, Observer};
use snnet_train::train::TrainEvent;

/// A progress bar of `len` steps labelled `message`; its prefix (set by the caller) carries live
/// figures such as loss or accuracy.
pub(crate) fn progress_bar(len: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:<24} [{bar:28}] {pos}/{len} {elapsed_precise}<{eta_precise} {prefix}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// Draws the library's training and evaluation progress as bars on stderr, and prints its
/// milestones (epochs, skipped or trained anchors, least squares) as lines there.
#[derive(Default)]
pub(crate) struct Progress {
    train: Option<ProgressBar>,
    eval: Option<ProgressBar>,
}

impl Progress {
    fn train_event(&mut self, what: &str, epochs: usize, event: TrainEvent) {
        match event {
            TrainEvent::Step {
                epoch,
                step,
                steps,
                loss,
                lr,
                stitch,
                images_per_second,
            } => {
                let b = self.train.get_or_insert_with(|| {
                    progress_bar(steps as u64, &format!("{what} {}/{epochs}", epoch + 1))
                });
                b.set_position(step as u64 + 1);
                b.set_prefix(format!(
                    "loss {loss:.3} lr {lr:.1e} stitch {stitch} {images_per_second:.0} img/s"
                ));
            }
            TrainEvent::Epoch(log) => {
                if let Some(b) = self.train.take() {
                    b.finish_and_clear();
                }
                eprintln!(
                    "{what} epoch {}/{epochs}: loss {:.4}, {:.0} s, {:.0} img/s",
                    log.epoch + 1,
                    log.loss,
                    log.seconds,
                    log.images_per_second
                );
            }
            TrainEvent::Resumed { epoch } => {
                eprintln!("{what}: resuming at epoch {}/{epochs}", epoch + 1);
            }
            TrainEvent::TeacherTargets { images, seconds } => {
                eprintln!(
                    "{what}: the teacher's outputs on {images} training images, {seconds:.0} s"
                );
            }
        }
    }
}

impl Observer for Progress {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Train {
                what,
                epochs,
                event,
            } => self.train_event(what, epochs, event),
            Event::TrainEnded { .. } => {
                if let Some(b) = self.train.take() {
                    b.finish_and_clear();
                }
            }
            Event::AnchorExists { name, path } => {
                eprintln!("anchor {name}: {} exists, skipping", path.display());
            }
            Event::AnchorShipped { name, path } => {
                eprintln!(
                    "anchor {name}: shipped pretrained weights, SHA-256 checked ({})",
                    path.display()
                );
            }
            Event::AnchorTrained { name, seconds } => {
                eprintln!("anchor {name}: trained in {seconds:.0} s");
            }
            Event::LeastSquares(report) => eprintln!(
                "least squares: {} layers from {} images in {:.2} s",
                report.layers.len(),
                report.images,
                report.features_seconds + report.solve_seconds
            ),
            Event::EvalStarted { total } => {
                self.eval = Some(progress_bar(total as u64, "evaluating"));
            }
            Event::Evaluated { record, done, .. } => {
                if let Some(b) = &self.eval {
                    b.set_position(done as u64);
                    b.set_prefix(format!("stitch {} acc1 {:.2} %", record.id, record.acc1));
                }
            }
            Event::EvalEnded => {
                if let Some(b) = self.eval.take() {
                    b.finish_and_clear();
                }
            }
            _ => {}
        }
    }
}

/// Formats a count with a decimal SI prefix and a unit: `2.759 GFLOPs`, `13.04 Mparams`,
/// `512 params`.
pub(crate) fn human(x: f64, unit: &str) -> String {
    let (value, prefix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(scale, _)| x.abs() >= *scale)
        .map_or((x, ""), |(scale, prefix)| (x / scale, prefix));
    if prefix.is_empty() {
        format!("{value} {unit}")
    } else {
        format!("{value:.3} {prefix}{unit}")
    }
}

/// Why a count flag (`--max-flops`, `--budget-flops`, ...) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CountError {
    /// Not a number with an optional k/M/G/T suffix.
    #[error("`{0}` is not a count (examples: 5000000000, 5e9, 5G, 25M)")]
    NotANumber(String),
    /// Below zero.
    #[error("`{0}` is negative: a count is 0 or more")]
    Negative(String),
    /// A fraction of one (a count is whole).
    #[error("`{0}` is not a whole number")]
    Fractional(String),
    /// Above the largest count, `u64::MAX` (it would have to be capped).
    #[error("`{0}` is above the largest count, {max} (2^64 - 1)", max = u64::MAX)]
    TooLarge(String),
}

/// The nearest representable f64 above `u64::MAX`: 2^64. Every f64 at or above it is too large.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// Parses a non-negative count: `4608338304`, `4_608_338_304`, `4.6e9`, `4.6G`, `25M`, `500k`.
/// A count above `u64::MAX`, a negative one or a fraction is refused, never capped or rounded
/// (the float rounding of `4.6G` aside).
pub(crate) fn parse_count(s: &str) -> Result<u64, CountError> {
    let text: String = s
        .trim()
        .chars()
        .filter(|c| *c != '_' && *c != ',')
        .collect();
    let (number, scale) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1e3),
        Some((i, 'm' | 'M')) => (&text[..i], 1e6),
        Some((i, 'g' | 'G')) => (&text[..i], 1e9),
        Some((i, 't' | 'T')) => (&text[..i], 1e12),
        _ => (text.as_str(), 1.0),
    };
    let digits = number.trim();
    if scale == 1.0 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // A plain integer: exact, and refused (not rounded to a float) above u64::MAX.
        return digits
            .parse::<u64>()
            .map_err(|_| CountError::TooLarge(s.to_owned()));
    }
    let value: f64 = digits
        .parse()
        .map_err(|_| CountError::NotANumber(s.to_owned()))?;
    let total = value * scale;
    if total.is_nan() {
        return Err(CountError::NotANumber(s.to_owned()));
    }
    if total < 0.0 {
        return Err(CountError::Negative(s.to_owned()));
    }
    if total >= TWO_POW_64 {
        return Err(CountError::TooLarge(s.to_owned()));
    }
    // `4.6G` is 4599999999.9999995 in floating point: whole up to rounding.
    if (total - total.round()).abs() > 1e-6 * total.max(1.0) {
        return Err(CountError::Fractional(s.to_owned()));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse() {
        assert_eq!(parse_count("4608338304"), Ok(4_608_338_304));
        assert_eq!(parse_count("4_608_338_304"), Ok(4_608_338_304));
        assert_eq!(parse_count("5e9"), Ok(5_000_000_000));
        assert_eq!(parse_count("4.6G"), Ok(4_600_000_000));
        assert_eq!(parse_count("25M"), Ok(25_000_000));
        assert_eq!(parse_count("500k"), Ok(500_000));
        assert_eq!(parse_count("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_count("0"), Ok(0));
        for bad in ["", "G", "five", "NaN", "1.2.3"] {
            assert_eq!(
                parse_count(bad),
                Err(CountError::NotANumber(bad.into())),
                "{bad}"
            );
        }
        for big in [
            "18446744073709551616",
            "99999999999999999999999",
            "1e400",
            "2e19",
            "1.9e7T",
            "inf",
        ] {
            assert_eq!(
                parse_count(big),
                Err(CountError::TooLarge(big.into())),
                "{big}"
            );
        }
        assert_eq!(parse_count("-5"), Err(CountError::Negative("-5".into())));
        assert_eq!(
            parse_count("2.5"),
            Err(CountError::Fractional("2.5".into()))
        );
        assert_eq!(parse_count("0.5k"), Ok(500));
    }

    #[test]
    fn humans_read() {
        assert_eq!(human(2_758_967_808.0, "FLOPs"), "2.759 GFLOPs");
        assert_eq!(human(13_038_760.0, "params"), "13.039 Mparams");
        assert_eq!(human(512.0, "B"), "512 B");
    }
}
