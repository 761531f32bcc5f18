//! `front-door SNNET.safetensors TABLE.jsonl IMAGE MAX_FLOPS`: prints [`front_door::classify`]'s
//! stitch and top-5.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [snnet, table, image, flops] = args.as_slice() else {
        return Err("usage: front-door SNNET.safetensors TABLE.jsonl IMAGE MAX_FLOPS".into());
    };
    let device = snnet_core::burn::tensor::Device::default();
    let flops = flops.parse::<f64>()? as u64;
    let answer = front_door::classify(
        snnet.as_ref(),
        table.as_ref(),
        image.as_ref(),
        flops,
        &device,
    )?;
    println!(
        "stitch {} ({}) in {:?}:",
        answer.stitch, answer.description, answer.latency
    );
    for p in &answer.top5 {
        println!("  {:6.2} %  class {}", 100.0 * p.prob, p.index);
    }
    Ok(())
}
