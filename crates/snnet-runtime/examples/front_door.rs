//! The library front door: weights → SN-Net → select a stitch for a budget → infer.
//!
//! ```sh
//! cargo run --release -p snnet-runtime --example front_door -- \
//!     snnet.safetensors eval.jsonl cat.jpg 3e9
//! ```
//! (`snnet.safetensors` from `snnet init`/`snnet train`, `eval.jsonl` from `snnet eval` or
//! `snnet profile`, an image, a FLOPs budget.)

use std::sync::Arc;

use snnet_core::burn::tensor::Device;
use snnet_core::select::{Budget, StitchTable};
use snnet_core::{SnNet, zoo::load_image};
use snnet_runtime::{Choice, Runtime, top_k};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [snnet, table, image, flops] = args.as_slice() else {
        return Err("usage: front_door SNNET.safetensors TABLE.jsonl IMAGE MAX_FLOPS".into());
    };
    let device = Device::default();
    let (net, _) = SnNet::load(snnet.as_ref(), &device)?; // weights → SN-Net
    let input = load_image(image.as_ref(), net.plan().pretrained(), &device)?;
    let runtime = Runtime::new(Arc::new(net), StitchTable::read_jsonl(table)?, device)?;
    let stitch = runtime.select(Budget::flops(flops.parse::<f64>()? as u64))?; // budget → stitch
    let answer = runtime.infer(input, Choice::Stitch(stitch))?; // → logits
    let top5 = top_k(answer.logits, 5, &[])?;
    println!(
        "stitch {stitch} ({}) in {:?}:",
        runtime.describe(stitch),
        answer.latency
    );
    for p in &top5[0] {
        println!("  {:6.2} %  class {}", 100.0 * p.prob, p.index);
    }
    Ok(())
}
