//! HTTP request bodies of `snnet serve`, without the network: the `POST /v1/classify` body
//! decoder `snnet_runtime::input::decode` (PNG/JPEG, or safetensors holding `input`) for the
//! tiny SN-Net's input size, and the `PUT /v1/budget` body as the handler reads it (axum's
//! `Json` extractor is `serde_json::from_slice`), `Objective::try_from` and
//! `Runtime::set_objective` on a runtime of the tiny SN-Net.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use snnet_core::StitchId;
use snnet_core::select::{StitchRecord, StitchTable};
use snnet_runtime::input::decode;
use snnet_runtime::{Objective, ObjectiveJson, Runtime};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let device = snnet_fuzz::device();
        let net = snnet_fuzz::tiny_snnet(&device);
        let records = (0..net.num_stitches())
            .map(|id| {
                let cost = net.cost(StitchId(id)).expect("a stitch's cost");
                StitchRecord::new(id, 50.0 + id as f64)
                    .with_flops(cost.flops)
                    .with_params(cost.params)
            })
            .collect();
        let table = StitchTable::from_records(records).expect("the tiny table");
        Runtime::new(Arc::new(net), table, device).expect("the tiny runtime")
    })
}

fuzz_target!(init: snnet_fuzz::init("http_request"), |data: &[u8]| {
    let runtime = runtime();
    let decoded = decode(data, &snnet_fuzz::tiny_pretrained(), runtime.device());
    if let Some(images) = snnet_fuzz::parsed("decode", decoded) {
        let [b, c, h, w] = images.dims();
        assert!(b >= 1 && [c, h, w] == [3, 4, 4], "decoded to the model's input size");
    }
    if let Ok(body) = serde_json::from_slice::<ObjectiveJson>(data)
        && let Ok(objective) = Objective::try_from(body)
    {
        snnet_fuzz::debug("set_objective", &runtime.set_objective(objective));
    }
});
