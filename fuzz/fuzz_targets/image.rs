//! Images (`snnet classify|forward --image`, `init --images`, image-folder datasets):
//! `snnet_zoo::decode_image` (JPEG/PNG within the image limits), then `preprocess` to a model
//! input — a square bicubic one and a non-square bilinear greyscale one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_core::zoo::{Interpolation, PretrainedConfig, decode_image, preprocess};

fuzz_target!(init: snnet_fuzz::init("image"), |data: &[u8]| {
    let Some(image) = snnet_fuzz::parsed("decode_image", decode_image(data, "fuzz input")) else {
        return;
    };
    let device = snnet_fuzz::device();
    let square = PretrainedConfig::imagenet([3, 8, 8], 2);
    if let Ok(t) = preprocess(&image, &square, &device) {
        assert_eq!(t.dims(), [1, 3, 8, 8]);
    }
    let mut grey = PretrainedConfig::imagenet([1, 6, 10], 2);
    grey.interpolation = Interpolation::Bilinear;
    grey.crop_pct = 0.875;
    if let Ok(t) = preprocess(&image, &grey, &device) {
        assert_eq!(t.dims(), [1, 1, 6, 10]);
    }
});
