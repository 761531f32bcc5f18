//! Evaluation tables (`snnet select|pareto --table FILE.jsonl`, `snnet serve --table`):
//! `StitchTable::from_jsonl_str` (what `read_jsonl` reads), then every Pareto frontier and
//! budget selection the CLI and the runtime make on it, and the write/read round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_core::select::{Budget, CostKind, StitchTable};

fuzz_target!(init: snnet_fuzz::init("stitch_table"), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(table) = snnet_fuzz::parsed("from_jsonl_str", StitchTable::from_jsonl_str(text)) else {
        return;
    };
    for cost in CostKind::ALL {
        let _ = table.pareto(cost);
        if let Ok(frontier) = table.frontier(cost) {
            let _ = (frontier.cheapest(), frontier.most_accurate());
            for point in frontier.points() {
                let _ = frontier.select(point.cost);
                let _ = frontier.select(point.cost * 0.5);
            }
            for max in [0.0, 1.0, 1e9, f64::MAX, f64::INFINITY, f64::NAN, -1.0] {
                let _ = frontier.select(max);
                let _ = frontier.select_budget(Budget::new(cost, max));
            }
        }
        for max in [0.0, 1e6, 1e12, f64::INFINITY, f64::NAN, -0.0] {
            let _ = table.select(Budget::new(cost, max));
        }
    }
    for record in table.iter() {
        assert!(record.validate().is_ok(), "a parsed record is valid");
        assert!(table.get(record.id).is_some(), "a parsed record is found by id");
    }
    // What a table writes, it reads back unchanged.
    let written = table.to_jsonl_string().expect("a parsed table serialises");
    let back = StitchTable::from_jsonl_str(&written).expect("a written table reads back");
    assert_eq!(back, table, "table round trip");
});
