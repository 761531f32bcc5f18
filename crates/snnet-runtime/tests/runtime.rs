//! The profiler and the runtime on a tiny SN-Net: profiles, budgets, live objective changes
//! across threads, and adaptive mode under a simulated load change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use snnet_core::StitchId;
use snnet_core::burn::tensor::Device;
use snnet_core::select::{Budget, CostKind, StitchRecord, StitchTable};
use snnet_runtime::{
    AdaptiveConfig, Choice, Error, Objective, ProfileMeta, ProfilerConfig, Runtime, Setup,
    SimulatedLoad,
};

use common::{eval_table, images, profiled, tiny_net};

#[test]
fn profiles_every_stitch_and_records_the_setup() {
    let device = Device::default();
    let net = tiny_net(&device);
    let mut seen = Vec::new();
    let profile = ProfilerConfig::new()
        .with_warmup(1)
        .with_iters(4)
        .with_batch(2)
        .with_threads(Some(1))
        .init(&device)
        .unwrap()
        .run(&net, |p| seen.push((p.done, p.total, p.stitch.id)))
        .unwrap();
    assert_eq!(profile.stitches.len(), 23);
    assert_eq!(seen.len(), 23);
    assert_eq!(seen[22], (23, 23, StitchId(22)));
    for s in &profile.stitches {
        let l = s.latency;
        assert_eq!(l.samples, 4);
        assert!(l.min_ms > 0.0 && l.min_ms <= l.median_ms && l.median_ms <= l.p90_ms);
        assert!(l.p90_ms <= l.max_ms);
        assert_eq!(s.flops, net.cost(s.id).unwrap().flops);
    }
    let meta = &profile.meta;
    assert_eq!(meta.batch, 2);
    assert_eq!(meta.threads, 1);
    assert_eq!(meta.iters, 4);
    assert_eq!(meta.input_size, [3, 32, 32]);
    assert_eq!(meta.setup(), Setup::here(&device, 2, 1));
    if cfg!(target_os = "linux") {
        assert_eq!(meta.memory, "peak-rss-growth");
        assert!(profile.stitches.iter().all(|s| s.memory_bytes.is_some()));
    }

    // Merged into the eval table: the reference's keys kept, the latencies added.
    let eval = eval_table(&net);
    let table = profile.to_table(Some(&eval)).unwrap();
    assert_eq!(table.len(), 23);
    for (row, eval_row) in table.iter().zip(eval.iter()) {
        assert_eq!(row.id, eval_row.id);
        assert_eq!(row.acc1, eval_row.acc1);
        assert_eq!(row.flops, eval_row.flops);
        assert!(row.latency_ms.is_some());
        assert!(row.extra.contains_key("latency_p90_ms"));
    }
    let text = table.to_jsonl_string().unwrap();
    let back: StitchTable = text.parse().unwrap();
    assert_eq!(ProfileMeta::of_table(&back).unwrap().as_ref(), Some(meta));

    // Only some ids.
    let some = ProfilerConfig::new()
        .with_warmup(0)
        .with_iters(1)
        .with_ids(Some(vec![StitchId(3), StitchId(0)]))
        .init(&device)
        .unwrap()
        .run(&net, |_| {})
        .unwrap();
    let ids: Vec<_> = some.stitches.iter().map(|s| s.id).collect();
    assert_eq!(ids, [StitchId(3), StitchId(0)]);
    let bad = ProfilerConfig::new()
        .with_ids(Some(vec![StitchId(99)]))
        .init(&device)
        .unwrap()
        .run(&net, |_| {});
    assert!(matches!(bad, Err(Error::UnknownStitch { id: 99, .. })));
}

/// The threads the quick profile of `table` ran on.
fn profile_threads(table: &StitchTable) -> usize {
    table.iter().next().unwrap().extra["profile"]["threads"]
        .as_u64()
        .unwrap() as usize
}

/// `table` with `key` of every record's `profile` set to `value`: the same latencies claimed
/// to come from another setup.
fn with_profile(table: &StitchTable, key: &str, value: serde_json::Value) -> StitchTable {
    StitchTable::from_records(
        table
            .iter()
            .cloned()
            .map(|mut r: StitchRecord| {
                if let Some(p) = r.extra.get_mut("profile") {
                    p[key] = value.clone();
                }
                r
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn budgets_select_from_the_frontier_and_latency_needs_a_matching_profile() {
    let device = Device::default();
    let (net, table) = profiled(&device);
    let runtime = Runtime::new(net.clone(), table.clone(), device.clone()).unwrap();
    assert!(runtime.profile_matches());
    // Default: the most accurate stitch.
    let top = runtime
        .frontier(CostKind::LatencyMs)
        .unwrap()
        .most_accurate()
        .unwrap();
    assert_eq!(runtime.current_stitch(), top.id);

    // A latency budget picks a stitch whose profiled latency fits.
    let lat = runtime.frontier(CostKind::LatencyMs).unwrap();
    let mid = lat.points()[lat.len() / 2];
    let id = runtime.select(Budget::latency_ms(mid.cost)).unwrap();
    assert!(table.get(id.index()).unwrap().latency_ms.unwrap() <= mid.cost);
    assert!(matches!(
        runtime.select(Budget::latency_ms(0.0)),
        Err(Error::Select(snnet_core::select::Error::NothingFits { .. }))
    ));

    // FLOPs budgets need no profile.
    let flops = runtime.frontier(CostKind::Flops).unwrap();
    let cheapest = flops.cheapest().unwrap();
    assert_eq!(
        runtime
            .select(Budget::new(CostKind::Flops, cheapest.cost))
            .unwrap(),
        cheapest.id
    );

    // The same table claimed to come from a GPU: latency budgets are a typed error ...
    let foreign = with_profile(&table, "device", "Device<Cube(Cuda(0))>".into());
    let runtime = Runtime::new(net.clone(), foreign.clone(), device.clone()).unwrap();
    assert!(!runtime.profile_matches());
    let err = runtime.select(Budget::latency_ms(1e9)).unwrap_err();
    assert!(matches!(err, Error::ForeignProfile { .. }), "{err}");
    assert!(err.to_string().contains("Cuda"));
    assert!(runtime.select(Budget::flops(u64::MAX)).is_ok());
    // ... and so are deadlines, saying which setup the profile is of ...
    assert!(runtime.latency_model().is_none());
    let err = runtime.plan(1e9, 1).unwrap_err();
    assert!(matches!(err, Error::ForeignProfile { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("a deadline uses a latency profile measured on Device<Cube(Cuda(0))>"),
        "{err}"
    );
    // ... unless overridden.
    let runtime = Runtime::builder(net.clone(), foreign, device.clone())
        .allow_foreign_profile(true)
        .build()
        .unwrap();
    assert!(runtime.select(Budget::latency_ms(1e9)).is_ok());
    assert!(runtime.plan(1e9, 1).is_ok());
    // Another batch size is another setup too.
    let batch8 = Runtime::builder(net.clone(), table.clone(), device.clone())
        .batch(8)
        .build()
        .unwrap();
    assert!(matches!(
        batch8.select(Budget::latency_ms(1e9)),
        Err(Error::ForeignProfile { .. })
    ));
    let err = batch8.plan(1e9, 1).unwrap_err();
    assert!(matches!(err, Error::ForeignProfile { .. }), "{err}");
    assert!(
        err.to_string().contains(", batch 1, ") && err.to_string().contains(", batch 8, "),
        "{err}"
    );
    // So is another number of forward threads: the runtime runs on the profile's by default.
    let threads = profile_threads(&table);
    let other = threads + 1;
    let runtime = Runtime::new(net.clone(), table.clone(), device.clone()).unwrap();
    assert_eq!(runtime.setup().threads, threads);
    let more = Runtime::builder(net.clone(), table.clone(), device.clone())
        .threads(other)
        .build()
        .unwrap();
    assert_eq!(more.setup().threads, other);
    assert!(!more.profile_matches());
    let err = more.plan(1e9, 1).unwrap_err();
    assert!(
        matches!(err, Error::ForeignProfile { .. })
            && err
                .to_string()
                .contains(&format!("batch 1, {other} threads;")),
        "{err}"
    );
    // A profile on one thread makes one-thread forwards the default on this machine ...
    let one = with_profile(&table, "threads", 1.into());
    let runtime = Runtime::new(net.clone(), one.clone(), device.clone()).unwrap();
    assert_eq!(runtime.setup().threads, 1);
    assert!(runtime.profile_matches() && runtime.plan(1e9, 1).is_ok());
    // ... but not on another machine, whose profile says nothing of this one's threads.
    let elsewhere = with_profile(&one, "cpu", "a CPU this is not".into());
    let runtime = Runtime::new(net.clone(), elsewhere, device.clone()).unwrap();
    assert_eq!(
        runtime.setup().threads,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    // A profile at batch 8 serves a runtime of batch 8: budgets and deadlines, the deadline
    // model scaling the profile to the batches it runs (a batch of 4 half of one of 8).
    let at8 = with_profile(&table, "batch", 8.into());
    let batch8 = Runtime::builder(net.clone(), at8, device.clone())
        .batch(8)
        .build()
        .unwrap();
    assert!(batch8.select(Budget::latency_ms(1e9)).is_ok());
    let model = batch8.latency_model().unwrap();
    assert_eq!(model.profile_batch(), 8);
    let cheapest = model.cheapest().unwrap();
    let (half, full) = (
        model.forward_ms(cheapest.id, 4).unwrap(),
        model.forward_ms(cheapest.id, 8).unwrap(),
    );
    assert!((full - cheapest.cost).abs() < 1e-12 && (2.0 * half - full).abs() < 1e-12);
    assert!(batch8.plan(1e9, 8).is_ok());

    // No profile at all.
    let runtime = Runtime::new(net.clone(), eval_table(&net), device).unwrap();
    assert!(matches!(
        runtime.select(Budget::latency_ms(5.0)),
        Err(Error::NoProfile { .. })
    ));
    assert!(matches!(runtime.plan(1e9, 1), Err(Error::NoProfile { .. })));
}

#[test]
fn infer_runs_the_chosen_stitch_and_checks_shapes() {
    let device = Device::default();
    let net = Arc::new(tiny_net(&device));
    let runtime = Runtime::new(net.clone(), eval_table(&net), device.clone()).unwrap();
    let x = images(3, &device);
    let answer = runtime
        .infer(x.clone(), Choice::Stitch(StitchId(5)))
        .unwrap();
    assert_eq!(answer.stitch, StitchId(5));
    assert_eq!(answer.logits.dims(), [3, 10]);
    assert!(answer.latency > Duration::ZERO);
    let direct = net.forward(x.clone(), StitchId(5)).unwrap();
    let (a, b) = (
        answer.logits.into_data().try_into_vec::<f32>().unwrap(),
        direct.into_data().try_into_vec::<f32>().unwrap(),
    );
    assert_eq!(a, b);
    assert!(matches!(
        runtime.infer(x.clone(), Choice::Stitch(StitchId(23))),
        Err(Error::UnknownStitch { id: 23, .. })
    ));
    let wrong = snnet_core::burn::tensor::Tensor::<4>::zeros([1, 3, 16, 16], &device);
    assert!(matches!(
        runtime.infer(wrong, Choice::Default),
        Err(Error::Input(_))
    ));
}

/// Budgets change from one thread while four others classify: no lock, no copy, every answer
/// from a stitch that one of the budgets in force allowed.
#[test]
fn objective_changes_live_across_threads() {
    let device = Device::default();
    let net = Arc::new(tiny_net(&device));
    let table = eval_table(&net);
    let runtime = Arc::new(Runtime::new(net.clone(), table.clone(), device.clone()).unwrap());
    let frontier = runtime.frontier(CostKind::Flops).unwrap().clone();
    let budgets: Vec<Budget> = frontier
        .points()
        .iter()
        .step_by(3)
        .map(|p| Budget::new(CostKind::Flops, p.cost))
        .collect();
    let allowed: BTreeSet<StitchId> = budgets
        .iter()
        .map(|&b| runtime.select(b).unwrap())
        .chain([runtime.current_stitch()])
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let runtime = runtime.clone();
            let stop = stop.clone();
            let device = device.clone();
            std::thread::spawn(move || {
                let mut seen = BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let a = runtime.infer(images(1, &device), Choice::Default).unwrap();
                    seen.insert(a.stitch);
                }
                seen
            })
        })
        .collect();
    for b in budgets.iter().cycle().take(12) {
        runtime.set_objective(Objective::Budget(*b)).unwrap();
        std::thread::sleep(Duration::from_millis(15));
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = BTreeSet::new();
    for w in workers {
        seen.extend(w.join().unwrap());
    }
    assert!(seen.is_subset(&allowed), "{seen:?} not within {allowed:?}");
    assert!(seen.len() >= 2, "only {seen:?}");
    // An infeasible budget is refused and the one in force stays.
    let before = runtime.objective();
    assert!(
        runtime
            .set_objective(Objective::Budget(Budget::flops(1)))
            .is_err()
    );
    assert_eq!(runtime.objective(), before);
}

/// Adaptive mode under a simulated load change: latencies come from the profile times a load
/// factor (deterministic, nothing sleeps). When the load triples the SLO is met again within a
/// bounded number of requests; when it falls, accuracy comes back.
#[test]
fn adaptive_mode_meets_the_slo_and_recovers_accuracy() {
    let device = Device::default();
    let net = Arc::new(tiny_net(&device));
    // Synthetic profile of this setup: latency 1 ms per 100 kFLOPs.
    let setup = Setup::here(&device, 1, 1);
    let meta = serde_json::json!({
        "device": setup.device, "cpu": setup.cpu, "batch": 1, "threads": 1, "warmup": 0,
        "iters": 1, "input_size": [3, 32, 32], "memory": "none", "snnet_version": "test"
    });
    let table = StitchTable::from_records(
        eval_table(&net)
            .into_iter()
            .map(|mut r| {
                r.latency_ms = Some(r.flops.unwrap() as f64 / 1e5);
                r.extra.insert("profile".into(), meta.clone());
                r
            })
            .collect(),
    )
    .unwrap();
    let ladder = table.frontier(CostKind::LatencyMs).unwrap();
    assert!(ladder.len() >= 4, "{ladder:?}");
    let load = Arc::new(SimulatedLoad::fixed(
        table.iter().map(|r| (r.id, r.latency_ms.unwrap())),
    ));
    // The objective sits between the frontier's top two latencies.
    let top = ladder.points()[ladder.len() - 1].cost;
    let slo = top / 0.7 * 1.01;
    let config = AdaptiveConfig {
        window: 16,
        min_samples: 8,
        ..AdaptiveConfig::default()
    };
    let runtime = Runtime::builder(net, table.clone(), device.clone())
        .objective(Objective::SloP95Ms(slo))
        .adaptive(config)
        .clock(load.clone())
        .build()
        .unwrap();
    let x = images(1, &device);
    let serve = |n: usize| -> Vec<(StitchId, f64)> {
        (0..n)
            .map(|_| {
                let a = runtime.infer(x.clone(), Choice::Default).unwrap();
                (a.stitch, a.latency.as_secs_f64() * 1e3)
            })
            .collect()
    };
    let acc = |id: StitchId| table.get(id.index()).unwrap().acc1;

    // Steady: the most accurate stitch meets the objective and stays.
    let calm = serve(40);
    let best = calm[0].0;
    assert_eq!(best, ladder.most_accurate().unwrap().id);
    assert!(calm.iter().all(|&(id, ms)| id == best && ms <= slo));

    // Load x3: over the objective at first, met again after at most one window of requests,
    // and it stays met.
    load.set_factor(3.0);
    let busy = serve(60);
    assert!(busy[0].1 > slo);
    let bound = config.min_samples;
    assert!(busy[bound..].iter().all(|&(_, ms)| ms <= slo), "{busy:?}");
    assert!(acc(busy[59].0) < acc(best));
    let moves_under_load = runtime.controller().unwrap().moves();
    assert!(
        moves_under_load <= 2,
        "{moves_under_load} moves: oscillating"
    );

    // Load gone: back up, one rung per window, to the most accurate stitch.
    load.set_factor(1.0);
    let after = serve(config.min_samples * (ladder.len() + 1));
    assert_eq!(after.last().unwrap().0, best);
    assert!(after.iter().all(|&(_, ms)| ms <= slo));
    // No oscillation once there.
    let moves = runtime.controller().unwrap().moves();
    let more = serve(40);
    assert!(more.iter().all(|&(id, _)| id == best));
    assert_eq!(runtime.controller().unwrap().moves(), moves);
}

/// An SN-Net that records, on every forward, the name of the thread it runs on and the size
/// of the rayon pool around it.
#[derive(Debug)]
struct Watched {
    net: snnet_core::SnNet,
    seen: std::sync::Mutex<Vec<Seen>>,
    /// The stitch of every forward, in order.
    ids: std::sync::Mutex<Vec<usize>>,
}

/// Per forward: its thread's name, its pool's size and (on Linux) the thread's nice value.
type Seen = (Option<String>, usize, Option<i32>);

/// The calling thread's nice value, from `/proc/thread-self/stat` (field 19).
fn thread_nice() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(16)?.parse().ok()
}

impl snnet_runtime::Network for Watched {
    fn config(&self) -> &snnet_core::SnNetConfig {
        snnet_runtime::Network::config(&self.net)
    }
    fn pretrained(&self) -> &snnet_core::zoo::PretrainedConfig {
        snnet_runtime::Network::pretrained(&self.net)
    }
    fn stitch_ids(&self) -> Vec<StitchId> {
        snnet_runtime::Network::stitch_ids(&self.net)
    }
    fn check_stitch(&self, id: StitchId) -> snnet_runtime::Result<()> {
        snnet_runtime::Network::check_stitch(&self.net, id)
    }
    fn cost(&self, id: StitchId) -> snnet_runtime::Result<snnet_core::zoo::Cost> {
        snnet_runtime::Network::cost(&self.net, id)
    }
    fn describe(&self, id: StitchId) -> snnet_runtime::Result<String> {
        snnet_runtime::Network::describe(&self.net, id)
    }
    fn forward(
        &self,
        images: snnet_core::burn::tensor::Tensor<4>,
        id: StitchId,
    ) -> snnet_runtime::Result<snnet_core::burn::tensor::Tensor<2>> {
        let thread = std::thread::current().name().map(str::to_owned);
        self.seen
            .lock()
            .unwrap()
            .push((thread, rayon::current_num_threads(), thread_nice()));
        self.ids.lock().unwrap().push(id.index());
        snnet_runtime::Network::forward(&self.net, images, id)
    }
}

/// The tiny SN-Net behind a [`Watched`] that has seen no forward yet, and its table.
fn watched(device: &Device) -> (Arc<Watched>, StitchTable) {
    let net = tiny_net(device);
    let table = eval_table(&net);
    let watched = Arc::new(Watched {
        net,
        seen: std::sync::Mutex::new(Vec::new()),
        ids: std::sync::Mutex::new(Vec::new()),
    });
    (watched, table)
}

/// Every forward (a request's, the warm-up's) runs on the runtime's own pool of `threads`,
/// whichever thread calls, so that the CPU kernels split their work among threads of one pool.
#[test]
fn forwards_run_on_the_runtime_s_own_threads() {
    let device = Device::default();
    let (watched, table) = watched(&device);
    let runtime = Runtime::builder(watched.clone(), table.clone(), device.clone())
        .threads(3)
        .build()
        .unwrap();
    runtime.run(images(2, &device), StitchId(4)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| runtime.infer(images(1, &device), Choice::Default).unwrap());
    });
    runtime.warm_up().unwrap();
    let seen = watched.seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    for (thread, pool, _) in &seen {
        assert!(
            thread
                .as_deref()
                .is_some_and(|t| t.starts_with("snnet-forward-")),
            "{thread:?}"
        );
        assert_eq!(*pool, 3);
    }

    let err = Runtime::builder(watched, table, device)
        .threads(0)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// The profiler warms every stitch up first, then times them in rounds, every stitch once a
/// round, so that the machine's moods fall on all of them alike; with memory measured, each
/// stitch gets at least one untimed forward even without warm-up.
#[test]
fn the_profiler_times_the_stitches_in_rounds() {
    let device = Device::default();
    for (warmup, memory, untimed) in [(2, false, 2), (0, false, 0), (0, true, 1)] {
        let (watched, _) = watched(&device);
        let profile = ProfilerConfig::new()
            .with_warmup(warmup)
            .with_iters(3)
            .with_ids(Some(vec![StitchId(5), StitchId(0), StitchId(9)]))
            .with_memory(memory)
            .init(&device)
            .unwrap()
            .run(watched.as_ref(), |_| {})
            .unwrap();
        let ids: Vec<usize> = profile.stitches.iter().map(|s| s.id.index()).collect();
        assert_eq!(ids, [5, 0, 9]);
        let mut expected = Vec::new();
        for id in [5, 0, 9] {
            expected.extend(std::iter::repeat_n(id, untimed));
        }
        for _ in 0..3 {
            expected.extend([5, 0, 9]);
        }
        assert_eq!(*watched.ids.lock().unwrap(), expected, "warmup {warmup}");
        assert!(profile.stitches.iter().all(|s| s.latency.median_ms > 0.0));
    }
}

/// `forward_nice` sets the nice value of every forward thread, and only theirs; values outside
/// −20..=19 are refused before any thread starts.
#[test]
fn forward_threads_take_their_nice_value() {
    let device = Device::default();
    let (watched, table) = watched(&device);
    for bad in [-21, 20] {
        let err = Runtime::builder(watched.clone(), table.clone(), device.clone())
            .forward_nice(bad)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, Error::Config(ref m) if m.contains("nice")),
            "{err}"
        );
    }
    // Raising the nice value needs no privilege.
    let built = Runtime::builder(watched.clone(), table, device.clone())
        .threads(2)
        .forward_nice(7)
        .build();
    if !cfg!(target_os = "linux") {
        assert!(matches!(built, Err(Error::ThreadPriority { nice: 7, .. })));
        return;
    }
    let runtime = built.unwrap();
    runtime.run(images(2, &device), StitchId(4)).unwrap();
    runtime.warm_up().unwrap();
    let seen = watched.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for (thread, _, nice) in &seen {
        assert_eq!(*nice, Some(7), "{thread:?}");
    }
    // The caller's thread keeps its own.
    assert_ne!(thread_nice(), Some(7));
}
