//! Inputs from untrusted files (anchor spec files, the space a checkpoint embeds): sizes over
//! the documented limits, arithmetic that would overflow, names that would drive a terminal,
//! spec files that would redefine known anchors. Each is a typed error, found before anything
//! large is allocated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use snnet_space::limits::{
    MAX_ANCHOR_PATHS, MAX_ANCHORS, MAX_DEPTH, MAX_NAME_LEN, MAX_SPEC_BYTES, MAX_STAGES,
    MAX_STITCHES, MAX_WIDTH,
};
use snnet_space::{
    AnchorRegistry, AnchorSpec, Cut, Direction, Error, Layout, Pairing, SpaceConfig, Stitch,
    StitchId, StitchSpace, display_safe,
};

/// The constant a limit error names, and its value; panics on any other result.
fn limit_of<T: std::fmt::Debug>(result: Result<T, Error>) -> (&'static str, u128) {
    match result {
        Err(Error::LimitExceeded {
            constant, value, ..
        }) => (constant, value),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

fn plain(name: &str, depth: usize, width: usize) -> AnchorSpec {
    AnchorSpec::plain(name, depth, width)
}

#[test]
fn huge_depths_are_refused_before_anything_is_allocated() {
    // depth² booleans would be 10^18 bytes; the rules are never called.
    for depth in [1_000_000_000, 1_000_000_000_000_000_000, usize::MAX] {
        let anchors = vec![plain("small", depth, 8), plain("large", depth, 16)];
        let (constant, value) = limit_of(StitchSpace::new(anchors, SpaceConfig::default()));
        assert_eq!((constant, value), ("MAX_DEPTH", depth as u128));
    }
    // At the limit the space builds.
    let anchors = vec![plain("small", MAX_DEPTH, 8), plain("large", MAX_DEPTH, 16)];
    let space = StitchSpace::new(anchors, SpaceConfig::default()).unwrap();
    assert_eq!(space.len(), 2 + 3 * (MAX_DEPTH - 1) + 1);
    let err = StitchSpace::new(
        vec![plain("small", MAX_DEPTH + 1, 8), plain("large", 4, 16)],
        SpaceConfig::default(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("MAX_DEPTH") && message.contains("`small`"),
        "{message}"
    );
}

#[test]
fn a_checkpoint_space_with_a_huge_depth_is_an_error() {
    // The space a checkpoint embeds, as JSON: deserialising re-enumerates, so it is checked.
    let json = r#"{"anchors": [
        {"name": "a", "layout": "tokens", "stages": [{"depth": 1000000000, "width": 8}]},
        {"name": "b", "layout": "tokens", "stages": [{"depth": 1000000000, "width": 16}]}
    ], "config": {"kernel_size": 2, "stride": 1, "pairing": "all", "direction": "fast-to-slow"}}"#;
    let err = serde_json::from_str::<StitchSpace>(json).unwrap_err();
    assert!(err.to_string().contains("MAX_DEPTH"), "{err}");
}

#[test]
fn sizes_that_would_overflow_are_limit_errors() {
    // The total depth overflows usize: counted exactly, and refused.
    let half = usize::MAX / 2 + 1;
    let spec = AnchorSpec::hierarchical("wrap", Layout::Tokens, &[(half, 8), (half, 16)]);
    assert_eq!(
        spec.depth(),
        usize::MAX,
        "saturates rather than wrapping to 0"
    );
    assert_eq!(spec.global_block(2, 5), usize::MAX);
    let (constant, value) = limit_of(spec.validate());
    assert_eq!(constant, "MAX_DEPTH");
    assert_eq!(value, 2 * half as u128);

    let (constant, _) = limit_of(plain("w", 4, usize::MAX).validate());
    assert_eq!(constant, "MAX_WIDTH");
    let (constant, _) = limit_of(plain("w", 4, MAX_WIDTH + 1).validate());
    assert_eq!(constant, "MAX_WIDTH");
    plain("w", 4, MAX_WIDTH).validate().unwrap();

    let stages = vec![(1, 8); MAX_STAGES + 1];
    let (constant, value) =
        limit_of(AnchorSpec::hierarchical("s", Layout::Map, &stages).validate());
    assert_eq!((constant, value), ("MAX_STAGES", MAX_STAGES as u128 + 1));

    // A window and stride of usize::MAX neither wrap nor panic.
    let anchors = vec![plain("a", 6, 8), plain("b", 6, 16)];
    let huge = SpaceConfig::default()
        .with_kernel_size(usize::MAX)
        .with_stride(usize::MAX);
    let whole = SpaceConfig::default().with_kernel_size(6).with_stride(6);
    let a = StitchSpace::new(anchors.clone(), huge).unwrap();
    let b = StitchSpace::new(anchors, whole).unwrap();
    assert_eq!(a.stitches(), b.stitches());
    assert_eq!(a.len(), 2 + 36);
}

#[test]
fn too_many_anchors_or_paths_are_refused() {
    let anchors: Vec<AnchorSpec> = (0..=MAX_ANCHORS)
        .map(|i| plain(&format!("a{i}"), 2, 8 + i))
        .collect();
    let (constant, value) = limit_of(StitchSpace::new(anchors, SpaceConfig::default()));
    assert_eq!((constant, value), ("MAX_ANCHORS", MAX_ANCHORS as u128 + 1));

    // All pairing over plain anchors stitches every combination: 2^13 − 14 paths.
    let anchors: Vec<AnchorSpec> = (0..13).map(|i| plain(&format!("a{i}"), 2, 8 + i)).collect();
    let all = SpaceConfig::default().with_pairing(Pairing::All);
    let (constant, value) = limit_of(StitchSpace::new(anchors.clone(), all.clone()));
    assert_eq!((constant, value), ("MAX_ANCHOR_PATHS", (1 << 13) - 14));
    assert!(value > MAX_ANCHOR_PATHS as u128);
    // Nearest pairing and two-way (pairs only) over the same anchors are fine.
    StitchSpace::new(anchors.clone(), SpaceConfig::default()).unwrap();
    StitchSpace::new(anchors, all.with_direction(Direction::TwoWay)).unwrap();
}

#[test]
fn all_pairs_over_many_anchors_is_refused_before_it_is_built() {
    // Twelve DeiT-like anchors with all pairing: the reference's rules give 4,083 anchor paths
    // and gigabytes of stitches; they are counted, and refused, before any is built.
    let anchors: Vec<AnchorSpec> = (0..12)
        .map(|i| plain(&format!("deit{i}"), 12, 192 + 64 * i))
        .collect();
    let all = SpaceConfig::default().with_pairing(Pairing::All);
    let started = std::time::Instant::now();
    let (constant, value) = limit_of(StitchSpace::new(anchors, all.clone()));
    assert_eq!(constant, "MAX_STITCHES");
    assert!(value > MAX_STITCHES as u128);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());

    // The reference's all-pairs DeiT space is far below the limit.
    let deit = StitchSpace::builtin(
        &[
            "deit_tiny_patch16_224",
            "deit_small_patch16_224",
            "deit_base_patch16_224",
        ],
        all,
    )
    .unwrap();
    assert_eq!(deit.len(), 732);
}

#[test]
fn a_window_as_deep_as_the_anchors_builds_in_time() {
    // One layer shared by 65,536 cuts: placing them must not be quadratic.
    let anchors = vec![plain("a", MAX_DEPTH, 8), plain("b", MAX_DEPTH, 16)];
    let config = SpaceConfig::default().with_kernel_size(MAX_DEPTH);
    let started = std::time::Instant::now();
    let space = StitchSpace::new(anchors, config).unwrap();
    assert_eq!(space.len(), 2 + MAX_DEPTH * MAX_DEPTH);
    assert_eq!(
        space.layer_groups()[0].positions[0].len(),
        MAX_DEPTH * MAX_DEPTH
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn spec_files_cannot_redefine_known_names() {
    let mut registry = AnchorRegistry::builtin();
    let spec = |name: &str, label: Option<&str>| {
        let label = label
            .map(|l| format!(r#""label": "{l}", "#))
            .unwrap_or_default();
        format!(
            r#"{{"name": "{name}", {label}"layout": "tokens", "stages": [{{"depth": 2, "width": 8}}]}}"#
        )
    };
    // A built-in name, a built-in label used as a name, a built-in label used as a label.
    for (doc, clash, existing) in [
        (
            spec("deit_tiny_patch16_224", None),
            "deit_tiny_patch16_224",
            "deit_tiny_patch16_224",
        ),
        (
            spec("deit_tiny", None),
            "deit_tiny",
            "deit_tiny_patch16_224",
        ),
        (
            spec("mine", Some("deit_small")),
            "deit_small",
            "deit_small_patch16_224",
        ),
    ] {
        match registry.add_json_str(&doc) {
            Err(Error::Redefinition {
                name,
                existing: e,
                builtin: true,
            }) => {
                assert_eq!((name.as_str(), e.as_str()), (clash, existing));
            }
            other => panic!("expected a redefinition error, got {other:?}"),
        }
    }
    let before = AnchorRegistry::builtin();
    assert_eq!(registry, before, "nothing is added when a spec fails");
    let err = registry
        .add_json_str(&spec("deit_tiny_patch16_224", None))
        .unwrap_err();
    assert!(
        err.to_string().contains("redefine the built-in anchor"),
        "{err}"
    );

    // A second file cannot redefine what a first one added either.
    registry.add_json_str(&spec("mine", Some("my"))).unwrap();
    assert!(matches!(
        registry.add_json_str(&spec("mine", None)),
        Err(Error::Redefinition { builtin: false, .. })
    ));
    assert!(matches!(
        registry.add_json_str(&spec("other", Some("mine"))),
        Err(Error::Redefinition { builtin: false, .. })
    ));
    // Within one file, a label may not repeat another spec's name.
    let doc = format!("[{}, {}]", spec("x1", None), spec("x2", Some("x1")));
    assert!(matches!(
        registry.add_json_str(&doc),
        Err(Error::DuplicateAnchor { name }) if name == "x1"
    ));

    // The explicit override stays explicit.
    registry.add(plain("deit_tiny_patch16_224", 2, 8)).unwrap();
    assert_eq!(registry.get("deit_tiny_patch16_224").unwrap().depth(), 2);
}

#[test]
fn spec_errors_name_the_field_line_and_column() {
    let mut registry = AnchorRegistry::new();
    let json_error = |result: Result<Vec<String>, Error>| match result {
        Err(Error::Json { source, .. }) => source,
        other => panic!("expected a JSON error, got {other:?}"),
    };
    // A value of the wrong type, on line 4.
    let doc = "{\"anchors\": [\n  {\"name\": \"a\", \"layout\": \"tokens\",\n   \"stages\": [{\"depth\": 2, \"width\": 8},\n              {\"depth\": \"12\", \"width\": 8}]}\n]}";
    let source = json_error(registry.add_json_str(doc));
    assert_eq!(source.line(), 4, "{source}");
    let message = source.to_string();
    assert!(
        message.contains("field `stages`: field `depth`: invalid type: string \"12\""),
        "{message}"
    );
    assert!(message.contains("at line 4 column "), "{message}");
    // An unknown field (a typo) is named, not ignored.
    let doc = "[\n {\"name\": \"a\", \"lable\": \"x\", \"layout\": \"tokens\", \"stages\": []}]";
    let source = json_error(registry.add_json_str(doc));
    assert_eq!(source.line(), 2);
    assert!(
        source.to_string().contains("unknown field `lable`"),
        "{source}"
    );
    // A missing field, an unknown layout, a negative width.
    let doc = r#"{"name": "a", "layout": "tokens"}"#;
    assert!(
        json_error(registry.add_json_str(doc))
            .to_string()
            .contains("missing field `stages`")
    );
    let doc = r#"{"name": "a", "layout": "grid", "stages": [{"depth": 1, "width": 8}]}"#;
    let message = json_error(registry.add_json_str(doc)).to_string();
    assert!(
        message.contains("field `layout`: unknown variant `grid`"),
        "{message}"
    );
    let doc = r#"{"name": "a", "layout": "map", "stages": [{"depth": 1, "width": -8}]}"#;
    let message = json_error(registry.add_json_str(doc)).to_string();
    assert!(
        message.contains("field `width`: invalid value: integer `-8`"),
        "{message}"
    );
    // The top-level error says which file.
    let err = registry.add_json_str("[1]").unwrap_err().to_string();
    assert!(
        err.starts_with("invalid anchor spec file (string): "),
        "{err}"
    );
}

#[test]
fn names_that_would_drive_a_terminal_are_refused() {
    let mut registry = AnchorRegistry::new();
    for (name, label) in [
        ("evil\u{1b}[2J", None),
        ("new\nline", None),
        ("rtl\u{202e}gnp.exe", None),
        ("tab\t", None),
        ("has space", None),
        ("fine", Some("bell\u{7}")),
    ] {
        let mut spec = plain(name, 2, 8);
        spec.label = label.map(str::to_owned);
        let doc = serde_json::to_string(&spec).unwrap();
        let err = registry.add_json_str(&doc).unwrap_err();
        let expected = if label.is_some() { "label" } else { "name" };
        assert!(
            matches!(&err, Error::InvalidName { what, .. } if *what == expected),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
        assert!(!message.contains('\u{202e}'), "{message:?}");
        // Built from Rust, too: the space refuses them.
        assert!(matches!(
            StitchSpace::new(vec![spec, plain("ok", 2, 16)], SpaceConfig::default()),
            Err(Error::InvalidName { .. })
        ));
    }
    let long = "n".repeat(MAX_NAME_LEN + 1);
    let (constant, _) = limit_of(plain(&long, 2, 8).validate());
    assert_eq!(constant, "MAX_NAME_LEN");
    // An unknown field whose name holds an escape sequence is echoed escaped.
    let doc = r#"{"name": "a", "\u001b[31mx": 1, "layout": "tokens", "stages": []}"#;
    let message = registry.add_json_str(doc).unwrap_err().to_string();
    assert!(
        !message.contains('\u{1b}') && message.contains("\\u{1b}[31mx"),
        "{message}"
    );
    // Names asked for (from the command line or a checkpoint) are echoed escaped as well.
    let message = registry
        .get("x\u{1b}]0;pwned\u{7}")
        .unwrap_err()
        .to_string();
    assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
    assert_eq!(display_safe("a\u{1b}b"), "a\\u{1b}b");
}

#[test]
fn oversized_spec_documents_are_refused() {
    let mut registry = AnchorRegistry::new();
    let padded = format!("{}[]", " ".repeat(MAX_SPEC_BYTES));
    let (constant, value) = limit_of(registry.add_json_str(&padded));
    assert_eq!(
        (constant, value),
        ("MAX_SPEC_BYTES", MAX_SPEC_BYTES as u128 + 2)
    );
    // From a file, at most one byte past the limit is read.
    let path =
        std::env::temp_dir().join(format!("snnet-space-big-spec-{}.json", std::process::id()));
    std::fs::write(&path, padded.repeat(3)).unwrap();
    let result = registry.add_json_file(&path);
    std::fs::remove_file(&path).unwrap();
    let (constant, value) = limit_of(result);
    assert_eq!(
        (constant, value),
        ("MAX_SPEC_BYTES", MAX_SPEC_BYTES as u128 + 1)
    );
}

#[test]
fn malformed_stitches_display_without_panicking() {
    let space = StitchSpace::new(
        vec![plain("a", 2, 8), plain("b", 2, 16)],
        SpaceConfig::default(),
    )
    .unwrap();
    let broken = Stitch {
        id: StitchId(99),
        anchors: vec![0, 7, 1],
        cuts: vec![Cut::new(0, 1)],
        layers: vec![0, 1, 2, 3],
        stage: None,
        evaluated: true,
    };
    assert_eq!(space.describe(&broken), "a[..=0] →L0→ ?[1..=?] →L1→ b[?..]");
    assert_eq!(broken.layer_keys().count(), 2);
    assert!(space.segments_of(&broken).is_err());
}
