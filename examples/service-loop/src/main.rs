//! `service-loop [SNNET.safetensors EVAL.jsonl]`: [`service_loop::run`] on a saved SN-Net and
//! its evaluation, or on [`service_loop::tiny_net`] with [`service_loop::flops_table`].

use snnet_core::SnNet;
use snnet_core::burn::tensor::Device;
use snnet_core::select::StitchTable;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (net, eval) = match args.as_slice() {
        [snnet, table] => {
            let (net, _) = SnNet::load(snnet.as_ref(), &device)?;
            (net, StitchTable::read_jsonl(table)?)
        }
        [] => {
            let net = service_loop::tiny_net(&device)?;
            let eval = service_loop::flops_table(&net)?;
            (net, eval)
        }
        _ => return Err("usage: service-loop [SNNET.safetensors EVAL.jsonl]".into()),
    };
    service_loop::run(net, &eval, &device)
}
