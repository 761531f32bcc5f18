//! Limits on what the zoo reads from outside (image files and request bodies), checked before
//! anything is allocated for the input; going over one is an [`Error::Limit`](crate::Error::Limit)
//! naming the constant.
//!
//! Each limit sits far above what a real input needs and far below what would exhaust a
//! machine's memory.

/// Largest width or height of a decoded image, in pixels (16,384: a 268-megapixel image; camera
/// images are a few thousand pixels a side and models take 224–518).
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Most bytes the image decoder may allocate for one image (1 GiB: a 16,384² RGBA image).
pub const MAX_IMAGE_ALLOC_BYTES: u64 = 1 << 30;

/// Largest ratio of an image's long side to its short side (64). The eval transform resizes
/// the short side to the model's input, so a 1 × 65,535 strip would be resized to 224 ×
/// 14.7 million pixels (12 GB); a 64:1 strip at 224 is 14,336 pixels long (13 MB).
pub const MAX_IMAGE_ASPECT: u32 = 64;

/// Depth, stages and width: the stitch space's limits (a model the zoo builds must fit its space).
pub use snnet_space::limits::{MAX_DEPTH, MAX_STAGES, MAX_WIDTH};

/// Widest MLP hidden layer (32,768: four times [`MAX_WIDTH`]).
pub const MAX_HIDDEN: usize = 32_768;

/// Largest input side of a model, in pixels (4,096; timm's largest eval sizes are ~800).
pub const MAX_MODEL_IMAGE_SIDE: usize = 4_096;

/// Most tokens a ViT runs, or Swin's first stage holds (16,384; DeiT at 224/16 has 197).
pub const MAX_TOKENS: usize = 16_384;

/// Most input channels (64).
pub const MAX_IN_CHANS: usize = 64;

/// Most classes of a classifier head (100,000; ImageNet-22k has 21,841).
pub const MAX_CLASSES: usize = 100_000;

/// Most parameters of one model (4 × 10⁹: 16 GB of `f32` weights). With the field limits above,
/// every FLOPs and parameter count of a model fits `u64` exactly; this bounds what building a
/// model may allocate.
pub const MAX_PARAMS: u64 = 4_000_000_000;

/// Checks the fields every family shares: input channels, classes and input size.
pub(crate) fn check_io(
    family: &'static str,
    in_chans: usize,
    num_classes: usize,
    img_size: [usize; 2],
) -> crate::Result<()> {
    check(family, "in_chans", in_chans, MAX_IN_CHANS, "MAX_IN_CHANS")?;
    check(
        family,
        "num_classes",
        num_classes,
        MAX_CLASSES,
        "MAX_CLASSES",
    )?;
    for side in img_size {
        check(
            family,
            "img_size",
            side,
            MAX_MODEL_IMAGE_SIDE,
            "MAX_MODEL_IMAGE_SIDE",
        )?;
    }
    Ok(())
}

/// Checks one field of a `family` model config against a limit.
pub(crate) fn check(
    family: &'static str,
    what: &'static str,
    value: usize,
    limit: usize,
    constant: &'static str,
) -> crate::Result<()> {
    if value > limit {
        return Err(crate::Error::Limit {
            input: format!("{family} config"),
            what,
            value: value as u64,
            limit: limit as u64,
            constant,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Error, Family, ModelConfig, ResNetConfig, SwinConfig, VitConfig};

    fn limit_of(result: crate::Result<()>) -> &'static str {
        match result {
            Err(Error::Limit { constant, .. }) => constant,
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn huge_configs_are_refused_before_anything_is_allocated() {
        let mut vit = VitConfig::deit_tiny_patch16_224();
        vit.depth = 1_000_000_000;
        assert_eq!(limit_of(vit.validate()), "MAX_DEPTH");
        let mut vit = VitConfig::deit_tiny_patch16_224();
        vit.embed_dim = 3 << 40;
        assert_eq!(limit_of(vit.validate()), "MAX_WIDTH");
        let mut vit = VitConfig::deit_tiny_patch16_224();
        vit.img_size = [224 << 4, 224 << 4];
        assert_eq!(limit_of(vit.validate()), "MAX_TOKENS");
        // Within every field limit but too many parameters in all: the total is checked.
        let mut vit = VitConfig::deit_tiny_patch16_224();
        (vit.depth, vit.embed_dim, vit.num_heads, vit.mlp_hidden) = (256, 8192, 8, 32_768);
        assert_eq!(limit_of(ModelConfig::Vit(vit).validate()), "MAX_PARAMS");

        // 70 stages would shift the patch size out of range (a panic, or a wrap in release).
        let mut swin = SwinConfig::swin_tiny_patch4_window7_224();
        swin.depths = vec![1; 70];
        swin.num_heads = vec![1; 70];
        assert_eq!(limit_of(swin.validate()), "MAX_STAGES");
        let mut swin = SwinConfig::swin_tiny_patch4_window7_224();
        swin.embed_dim = 4096;
        assert_eq!(limit_of(swin.validate()), "MAX_WIDTH");

        let mut resnet = ResNetConfig::resnet50();
        resnet.layers = [usize::MAX, 1, 1, 1];
        assert_eq!(limit_of(resnet.validate()), "MAX_DEPTH");
    }

    #[test]
    fn an_mlp_ratio_that_leaves_no_hidden_units_is_an_error() {
        let mut swin = SwinConfig::swin_tiny_patch4_window7_224();
        swin.mlp_ratio = 1e-9;
        let err = swin.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("hidden width of 0"), "{err}");
        swin.mlp_ratio = f64::NAN;
        assert!(matches!(swin.validate(), Err(Error::InvalidConfig { .. })));
        // Real configs pass.
        SwinConfig::swin_base_patch4_window12_384()
            .validate()
            .unwrap();
        VitConfig::deit3_large_patch16_224().validate().unwrap();
        ResNetConfig::resnet50().validate().unwrap();
    }
}
