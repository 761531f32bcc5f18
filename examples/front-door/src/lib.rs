//! The library front door: weights → SN-Net → select a stitch for a budget → infer.
//!
//! ```sh
//! cargo run --release -p front-door -- snnet.safetensors eval.jsonl cat.jpg 3e9
//! ```
//! (`snnet.safetensors` from `snnet init`/`snnet train`, `eval.jsonl` from `snnet eval` or
//! `snnet profile`, an image, a FLOPs budget.)

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use snnet_core::burn::tensor::Device;
use snnet_core::select::{Budget, StitchTable};
use snnet_core::{SnNet, StitchId, zoo::load_image};
use snnet_runtime::{Choice, Prediction, Runtime, top_k};

/// What [`classify`] found.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The stitch that ran: the most accurate of the table within the budget.
    pub stitch: StitchId,
    /// Its path, e.g. `deit_tiny[..=5] →L5→ deit_small[6..]`.
    pub description: String,
    /// The forward's time.
    pub latency: Duration,
    /// The five most probable classes, most probable first.
    pub top5: Vec<Prediction>,
}

/// Loads the SN-Net saved at `snnet` and the table at `table`, selects the most accurate stitch
/// within `max_flops` FLOPs and classifies the image at `image` with it, on `device`.
///
/// # Errors
/// File, selection and forward errors.
pub fn classify(
    snnet: &Path,
    table: &Path,
    image: &Path,
    max_flops: u64,
    device: &Device,
) -> Result<Answer, Box<dyn std::error::Error>> {
    let (net, _) = SnNet::load(snnet, device)?; // weights → SN-Net
    let input = load_image(image, net.plan().pretrained(), device)?;
    let runtime = Runtime::new(
        Arc::new(net),
        StitchTable::read_jsonl(table)?,
        device.clone(),
    )?;
    let stitch = runtime.select(Budget::flops(max_flops))?; // budget → stitch
    let answer = runtime.infer(input, Choice::Stitch(stitch))?; // → logits
    let top5 = top_k(answer.logits, 5, &[])?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(Answer {
        stitch,
        description: runtime.describe(stitch),
        latency: answer.latency,
        top5,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_with_the_stitch_of_the_budget() -> Result<(), Box<dyn std::error::Error>> {
        let device = Device::default();
        let net = service_loop::tiny_net(&device)?;
        let table = service_loop::flops_table(&net)?;
        let dir = tempfile::tempdir()?;
        let (snnet, eval, png) = (
            dir.path().join("snnet.safetensors"),
            dir.path().join("eval.jsonl"),
            dir.path().join("image.png"),
        );
        net.save(&snnet)?;
        table.write_jsonl(&eval)?;
        image::RgbImage::from_fn(40, 36, |x, y| image::Rgb([x as u8 * 6, y as u8 * 7, 90]))
            .save(&png)?;
        // The budget of the middle stitch by FLOPs: the most accurate within it costs exactly
        // that (the table's accuracy rises with FLOPs).
        let mut by_flops: Vec<_> = table.records().iter().collect();
        by_flops.sort_by_key(|r| r.flops);
        let middle = by_flops[by_flops.len() / 2];
        let flops = middle.flops.ok_or("no FLOPs")?;

        let answer = classify(&snnet, &eval, &png, flops, &device)?;
        let chosen = table
            .get(answer.stitch)
            .ok_or("a stitch outside the table")?;
        assert_eq!(chosen.flops, Some(flops));
        assert_eq!(answer.top5.len(), 5);
        assert!(answer.top5.windows(2).all(|w| w[0].prob >= w[1].prob));
        assert!(classify(&snnet, &eval, &png, 1, &device).is_err());
        Ok(())
    }
}
