//! The parity checks on the device under test: `SNNET_TEST_DEVICE` (e.g. `wgpu`, `tch:cpu`),
//! or, when it is unset, wgpu in a build with the `wgpu` feature and the CPU otherwise (then only
//! the comparison with the committed references is informative). CI runs this on Mesa's lavapipe:
//! `SNNET_TEST_DEVICE=wgpu cargo test -p snnet-device-check --features wgpu`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use snnet_core::DeviceSpec;
use snnet_device_check::{Fixtures, TOLERANCE, markdown, parity};

fn device_under_test() -> DeviceSpec {
    match std::env::var("SNNET_TEST_DEVICE") {
        Ok(name) => name.parse().expect("SNNET_TEST_DEVICE names a device"),
        Err(_) if cfg!(feature = "wgpu") => DeviceSpec::Wgpu(None),
        Err(_) => DeviceSpec::Cpu,
    }
}

#[test]
fn every_check_matches_the_cpu_and_the_reference() {
    let spec = device_under_test();
    let fixtures = Fixtures::workspace().unwrap();
    let checks = parity(&fixtures, spec).unwrap();
    eprintln!("{}", markdown(&spec.to_string(), &checks, &[]));
    // 3 families, the least-squares init, 3 stitches, the training step's loss and parameters,
    // on one device and in two shards on two (the device twice: `--devices wgpu,wgpu`).
    assert_eq!(checks.len(), 11);
    for check in &checks {
        assert!(
            check.passed(),
            "{spec}: {} ({}): {:e} from the CPU, {:?} from the reference (tolerance {TOLERANCE:e})",
            check.name,
            check.what,
            check.vs_cpu,
            check.vs_reference
        );
    }
}
