//! One stitch on its own: `snnet export` writes it, `snnet forward --snnet STITCH_FILE` runs it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use snnet_core::burn::tensor::Device;
use snnet_core::quantize::{PackedConfig, is_quantized, read_packed_config};
use snnet_core::{
    ExportError, Features, LoadedModel, ModelFile, SnNet, StitchId, StitchModel, load_model_file,
    sniff_model_file,
};

use crate::cmd::snnet::Forward;
use crate::common::CliError;
use crate::common::args::{DeviceArgs, ForwardArgs, LoadArgs};
use crate::common::format::human;

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The SN-Net checkpoint (from `snnet init` or `snnet train`).
    #[arg(long, value_name = "FILE.safetensors")]
    snnet: PathBuf,
    /// The stitch to export, by id (see `snnet cost --anchors ...`); an anchor's id writes the
    /// anchor alone, with its timm keys.
    #[arg(long)]
    stitch: usize,
    /// Where to write the stitch (safetensors; its configuration in the metadata).
    #[arg(long, value_name = "FILE.safetensors")]
    output: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    load: LoadArgs,
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// `snnet export --snnet FILE --stitch ID --output STITCH_FILE`.
pub(crate) fn export(args: &ExportArgs, out: &mut impl Write) -> Result<(), CliError> {
    let device = args.device.device()?;
    let net = refuse_quantized(
        args.load.snnet(&args.snnet, &device)?,
        &args.snnet,
        "export (a safetensors file; export first, then quantize the stitch)",
    )?;
    let stitch = net.export_stitch(StitchId(args.stitch))?;
    stitch.save(&args.output)?;
    writeln!(
        out,
        "stitch {} ({}, {}): wrote {}",
        stitch.stitch_id(),
        stitch.description(),
        human(stitch.cost().params as f64, "params"),
        written(&args.output, &args.snnet, "SN-Net")
    )?;
    Ok(())
}

/// `snnet forward --snnet STITCH_FILE`: runs the file's one stitch.
pub(crate) fn forward_stitch(
    path: &Path,
    stitch: Option<usize>,
    args: &ForwardArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    if stitch.is_some() {
        return Err(CliError::Usage(format!(
            "{} is one exported stitch: it runs that stitch; drop --stitch",
            path.display()
        )));
    }
    if args.load.allow_nonfinite {
        return Err(CliError::Usage(
            "--allow-nonfinite applies to SN-Net checkpoints, not to an exported stitch".to_owned(),
        ));
    }
    let device = args.device.device()?;
    let model = match sniff_model_file(path)? {
        ModelFile::Burnpack => StitchModel::load_burnpack(path, &device)?,
        _ => StitchModel::load(path, &device)?,
    };
    let run = Forward {
        label: format!(
            "stitch {} ({}) from {}",
            model.stitch_id(),
            model.description(),
            path.display()
        ),
        pretrained: model.pretrained(),
        cost: model.cost(),
        device: &device,
    };
    run.run(
        args,
        |images| Ok(model.forward(images)?),
        |images| Ok(model.forward_features(images, &Features::Stages)?),
        out,
    )
}

/// A burnpack SN-Net (`snnet quantize`) at `path`, or `None` for another kind of file (loaded
/// as a safetensors checkpoint by the caller).
pub(crate) fn load_packed_snnet(
    path: &Path,
    load: LoadArgs,
    device: &Device,
) -> Result<Option<SnNet>, CliError> {
    if !path.is_file() || sniff_model_file(path).ok() != Some(ModelFile::Burnpack) {
        return Ok(None);
    }
    if load.allow_nonfinite {
        return Err(CliError::Usage(
            "--allow-nonfinite applies to safetensors checkpoints, not to burnpack files"
                .to_owned(),
        ));
    }
    Ok(Some(SnNet::load_burnpack(path, device)?))
}

/// `net`, unless its weights are quantized: `what` needs f32 weights.
pub(crate) fn refuse_quantized(
    net: SnNet,
    path: &Path,
    what: &'static str,
) -> Result<SnNet, CliError> {
    if is_quantized(&net) {
        return Err(snnet_core::Error::from(ExportError::Quantized {
            path: path.to_owned(),
            what,
        })
        .into());
    }
    Ok(net)
}

#[derive(Debug, Args)]
pub(crate) struct QuantizeArgs {
    /// An SN-Net checkpoint (`snnet init`, `snnet train`) or one exported stitch (`snnet
    /// export`), told apart by content.
    #[arg(long, value_name = "FILE")]
    snnet: PathBuf,
    /// Where to write the int8 network or stitch (burnpack, whatever the extension; `eval`,
    /// `forward`, `profile` and `serve` take it as --snnet).
    #[arg(long, value_name = "OUT.bpk")]
    output: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// `snnet quantize --snnet FILE --output OUT.bpk`: int8 weights with Burn's `Quantizer`.
pub(crate) fn quantize(args: &QuantizeArgs, out: &mut impl Write) -> Result<(), CliError> {
    let device = args.device.device()?;
    if sniff_model_file(&args.snnet)? == ModelFile::Burnpack
        && let Ok(PackedConfig::SnNet(_) | PackedConfig::Stitch(_)) =
            read_packed_config(&args.snnet)
    {
        return Err(CliError::Usage(format!(
            "{} is a burnpack file already (quantized): quantize its f32 safetensors source",
            args.snnet.display()
        )));
    }
    let what = match load_model_file(&args.snnet, &device)? {
        LoadedModel::SnNet(net) => {
            let n = net.num_stitches();
            net.quantized().save_burnpack(&args.output)?;
            format!("SN-Net ({n} stitches)")
        }
        LoadedModel::Stitch(stitch) => {
            let what = format!("stitch {} ({})", stitch.stitch_id(), stitch.description());
            stitch.quantized().save_burnpack(&args.output)?;
            what
        }
    };
    writeln!(
        out,
        "{what}: int8 weights (Q8S, per-block scales) written to {}",
        written(&args.output, &args.snnet, "f32 file")
    )?;
    Ok(())
}

/// `OUTPUT (SIZE; the SOURCE_NAME SIZE: PERCENT %)`: a written file's size beside its source's.
fn written(output: &Path, source: &Path, source_name: &str) -> String {
    let (size, whole) = (file_size(output), file_size(source));
    format!(
        "{} ({}; the {source_name} {}: {:.1} %)",
        output.display(),
        human(size as f64, "B"),
        human(whole as f64, "B"),
        100.0 * size as f64 / whole.max(1) as f64
    )
}
