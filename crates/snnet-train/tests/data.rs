//! The data pipeline: IDX files and their errors, Fashion-MNIST (synthetic and Debian's real
//! files), the batcher's determinism, coverage and resumability, augmentation, image folders.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use snnet_train::Error;
use snnet_train::data::idx::{read_idx, write_idx};
use snnet_train::data::{
    Augment, Batch, BatchConfig, Batcher, CLASSES, DEFAULT_DIR, Dataset, FashionMnist, ImageFolder,
    MEAN, STD, Split, Transform,
};
use snnet_zoo::PretrainedConfig;

/// `n` synthetic 28×28 images: image `i` is filled with `i % 256` except a bright pixel at
/// (i % 28, 3) that makes flips and crops visible; label `i % 10`.
fn synthetic(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut images = vec![0u8; n * 784];
    for (i, img) in images.chunks_exact_mut(784).enumerate() {
        img.fill((i % 256) as u8);
        img[(i % 28) * 28 + 3] = 255;
    }
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    (images, labels)
}

/// Writes a split's two IDX files into `dir`, gzipped or not.
fn write_split(dir: &Path, split: Split, n: usize, gz: bool) {
    let (images, labels) = synthetic(n);
    let ext = if gz { ".gz" } else { "" };
    let [img, lab] = split.stems();
    write_idx(&dir.join(format!("{img}{ext}")), &[n, 28, 28], &images).unwrap();
    write_idx(&dir.join(format!("{lab}{ext}")), &[n], &labels).unwrap();
}

fn synthetic_dataset(n: usize) -> FashionMnist {
    let (images, labels) = synthetic(n);
    FashionMnist::from_parts(images, labels).unwrap()
}

fn floats(batch: &Batch) -> Vec<f32> {
    batch.images.to_data().try_into_vec_as().unwrap()
}

fn labels(batch: &Batch) -> Vec<i64> {
    batch.labels.to_data().try_into_vec_as().unwrap()
}

/// What a batch holds, comparable.
fn content(batch: &Batch) -> (Vec<usize>, Vec<f32>, Vec<i64>, usize, usize) {
    (
        batch.indices.clone(),
        floats(batch),
        labels(batch),
        batch.epoch,
        batch.index,
    )
}

fn dataset_error(result: snnet_train::Result<FashionMnist>) -> (String, Error) {
    let e = result.expect_err("loading should fail");
    assert!(matches!(e, Error::Dataset { .. }), "{e:?}");
    (e.to_string(), e)
}

#[test]
fn idx_round_trips_gzipped_and_raw() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..24).collect();
    for name in ["a.gz", "a"] {
        let path = dir.path().join(name);
        write_idx(&path, &[2, 3, 4], &data).unwrap();
        let array = read_idx(&path).unwrap();
        assert_eq!(array.dims, [2, 3, 4]);
        assert_eq!(array.data, data);
    }
    // Gzip is recognised by content, not by name.
    std::fs::rename(dir.path().join("a.gz"), dir.path().join("b")).unwrap();
    assert_eq!(read_idx(&dir.path().join("b")).unwrap().data, data);
}

#[test]
fn loads_synthetic_splits_gzipped_or_not() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), Split::Train, 30, true);
    write_split(dir.path(), Split::Test, 12, false);
    let train = FashionMnist::load(dir.path(), Split::Train).unwrap();
    let test = FashionMnist::load(dir.path(), Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (30, 12));
    assert_eq!(train.label(13), Some(3));
    assert_eq!(train.pixels(13).unwrap()[(13 * 28) + 3], 255);
    assert_eq!(train.pixels(13).unwrap()[0], 13);
    assert_eq!(train.subset(7).len(), 7);
    assert_eq!(Dataset::num_classes(&train), CLASSES.len());
}

#[test]
fn missing_files_in_a_users_folder_name_the_files_not_the_package() {
    // A folder of the user's own: reinstalling Debian's package would not help, so the message
    // names the files the folder must hold (the package folder's hint is tested in the crate).
    let dir = tempfile::tempdir().unwrap();
    for missing in [dir.path().to_owned(), dir.path().join("nowhere")] {
        let (message, _) = dataset_error(FashionMnist::load(&missing, Split::Train));
        assert!(!message.contains("apt-get"), "{message}");
        assert!(message.contains("train-images-idx3-ubyte"), "{message}");
        assert!(message.contains("t10k-labels-idx1-ubyte"), "{message}");
    }
    // Images present, labels missing: the labels file is named.
    write_split(dir.path(), Split::Test, 3, true);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let (message, _) = dataset_error(FashionMnist::load(dir.path(), Split::Test));
    assert!(message.contains("t10k-labels-idx1-ubyte"), "{message}");
    assert!(!message.contains("apt-get"), "{message}");
}

#[test]
fn corrupt_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("train-images-idx3-ubyte.gz");
    let labels = dir.path().join("train-labels-idx1-ubyte.gz");
    let reason_of = |dir: &Path| match dataset_error(FashionMnist::load(dir, Split::Train)).1 {
        Error::Dataset { path, reason, hint } => {
            let hint = hint.unwrap();
            assert!(hint.contains("intact copy"), "{hint}");
            assert!(!hint.contains("apt-get"), "{hint}");
            (path, reason)
        }
        _ => unreachable!(),
    };

    // Bad magic number.
    write_split(dir.path(), Split::Train, 5, true);
    let mut bytes = vec![0x12, 0x34, 0x56, 0x78];
    bytes.extend_from_slice(&[0; 16]);
    std::fs::write(&images, &bytes).unwrap();
    let (path, reason) = reason_of(dir.path());
    assert_eq!(path, images);
    assert!(reason.contains("not an IDX file"), "{reason}");

    // Truncated gzip stream.
    write_split(dir.path(), Split::Train, 5, true);
    let full = std::fs::read(&images).unwrap();
    std::fs::write(&images, &full[..full.len() / 2]).unwrap();
    let (path, reason) = reason_of(dir.path());
    assert_eq!(path, images);
    assert!(!reason.is_empty());

    // Truncated data in an uncompressed file.
    std::fs::remove_file(&images).unwrap();
    let raw = dir.path().join("train-images-idx3-ubyte");
    let (data, _) = synthetic(5);
    write_idx(&raw, &[5, 28, 28], &data).unwrap();
    let full = std::fs::read(&raw).unwrap();
    std::fs::write(&raw, &full[..full.len() - 100]).unwrap();
    let (path, reason) = reason_of(dir.path());
    assert_eq!(path, raw);
    assert!(reason.contains("truncated"), "{reason}");

    // Wrong image size, label count, label range.
    write_idx(&raw, &[5, 27, 27], &vec![0; 5 * 27 * 27]).unwrap();
    assert!(reason_of(dir.path()).1.contains("[5, 27, 27]"));
    write_idx(&raw, &[5, 28, 28], &data).unwrap();
    write_idx(&labels, &[4], &[0, 1, 2, 3]).unwrap();
    assert_eq!(reason_of(dir.path()).0, labels);
    write_idx(&labels, &[5], &[0, 1, 2, 3, 10]).unwrap();
    assert!(reason_of(dir.path()).1.contains("label 10"));
}

#[test]
fn batches_are_deterministic_and_seeded() {
    let device = Device::default();
    let config = BatchConfig::train(8, 3);
    let a = Batcher::new(synthetic_dataset(40), config, device.clone()).unwrap();
    let b = Batcher::new(synthetic_dataset(40), config, device.clone()).unwrap();
    let c = Batcher::new(
        synthetic_dataset(40),
        BatchConfig { seed: 4, ..config },
        device,
    )
    .unwrap();
    let first = content(&a.batch(0, 0).unwrap());
    assert_eq!(first, content(&b.batch(0, 0).unwrap()));
    assert_ne!(first.0, content(&c.batch(0, 0).unwrap()).0);
    assert_ne!(first.0, content(&a.batch(1, 0).unwrap()).0);
    // Labels follow the items.
    assert!(
        first
            .0
            .iter()
            .zip(&first.2)
            .all(|(i, l)| (i % 10) as i64 == *l)
    );
}

#[test]
fn every_item_once_per_epoch() {
    let device = Device::default();
    let data = synthetic_dataset(37);
    let train = Batcher::new(&data, BatchConfig::train(8, 1), device.clone()).unwrap();
    assert_eq!(train.batches_per_epoch(), 4);
    for epoch in 0..3 {
        let mut seen: Vec<usize> = train
            .epoch(epoch)
            .flat_map(|b| {
                let b = b.unwrap();
                assert_eq!(b.images.dims(), [8, 1, 28, 28]);
                b.indices
            })
            .collect();
        assert_eq!(seen.len(), 32);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 32);
        let mut all = train.order(epoch);
        all.sort_unstable();
        assert_eq!(all, (0..37).collect::<Vec<_>>());
    }
    let shuffled_all = Batcher::new(
        &data,
        BatchConfig {
            drop_last: false,
            ..BatchConfig::train(8, 1)
        },
        device.clone(),
    )
    .unwrap();
    let mut seen: Vec<usize> = shuffled_all
        .epoch(2)
        .flat_map(|b| b.unwrap().indices)
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..37).collect::<Vec<_>>());

    // Evaluation: in order, the last batch partial, not augmented.
    let eval = Batcher::new(&data, BatchConfig::eval(8), device).unwrap();
    let batches: Vec<Batch> = eval.epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 5);
    assert_eq!(batches[4].images.dims(), [5, 1, 28, 28]);
    assert_eq!(batches[4].indices, [32, 33, 34, 35, 36]);
    assert_eq!(floats(&batches[1])[..784], data.get(8).unwrap().image[..]);
}

#[test]
fn resuming_gives_the_uninterrupted_batches() {
    let device = Device::default();
    let data = synthetic_dataset(50);
    let config = BatchConfig::train(6, 11);
    let batcher = Batcher::new(&data, config, device.clone()).unwrap();
    // An uninterrupted run of three epochs.
    let run: Vec<_> = (0..3)
        .flat_map(|e| batcher.epoch(e).map(|b| content(&b.unwrap())))
        .collect();
    // A fresh batcher (as after a restart) resuming at epoch 1, batch 5, with more workers.
    let resumed = Batcher::new(&data, config.with_workers(3), device).unwrap();
    let per = resumed.batches_per_epoch();
    let rest: Vec<_> = resumed
        .iter_from(1, 5)
        .chain(resumed.epoch(2))
        .map(|b| content(&b.unwrap()))
        .collect();
    assert_eq!(rest, run[per + 5..]);
    assert_eq!(content(&resumed.batch(2, 3).unwrap()), run[2 * per + 3]);
    assert_eq!(resumed.iter_from(0, per).count(), 0);
    assert!(resumed.batch(0, per).is_err());
}

#[test]
fn augmentation_keeps_shapes_and_ranges_and_replicates_grey() {
    let device = Device::default();
    let lo = -MEAN / STD;
    let hi = (1.0 - MEAN) / STD;
    // Plain 28×28: values within the normalised pixel range; crops and flips happen.
    let data = synthetic_dataset(64);
    let batcher = Batcher::new(&data, BatchConfig::train(64, 5), device.clone()).unwrap();
    let batch = batcher.batch(0, 0).unwrap();
    let values = floats(&batch);
    assert!(values.iter().all(|v| (lo - 1e-5..=hi + 1e-5).contains(v)));
    let mut changed = 0;
    for (k, &i) in batch.indices.iter().enumerate() {
        changed += usize::from(values[k * 784..(k + 1) * 784] != data.get(i).unwrap().image[..]);
    }
    assert!(changed > 32, "{changed} of 64 images augmented");

    // Resized to 3×32×32 for an anchor: the three channels agree (same normalisation).
    let rgb = synthetic_dataset(16)
        .with_transform(Transform::fashion_mnist().with_input_size([3, 32, 32]))
        .unwrap();
    let batcher = Batcher::new(
        &rgb,
        BatchConfig::train(16, 5).with_augment(Augment::light_for(32)),
        device.clone(),
    )
    .unwrap();
    let batch = batcher.batch(0, 0).unwrap();
    assert_eq!(batch.images.dims(), [16, 3, 32, 32]);
    assert_eq!(batch.labels.dims(), [16]);
    let values = floats(&batch);
    assert!(values.iter().all(|v| (lo - 1e-5..=hi + 1e-5).contains(v)));
    for image in values.chunks_exact(3 * 1024) {
        assert_eq!(image[..1024], image[1024..2048]);
        assert_eq!(image[..1024], image[2048..]);
    }

    // ImageNet normalisation per channel for a pretrained anchor.
    let config = PretrainedConfig::imagenet([3, 32, 32], 1000);
    let imagenet = synthetic_dataset(4)
        .with_transform(Transform::for_pretrained(&config))
        .unwrap();
    let sample = imagenet.get(0).unwrap();
    assert_eq!(sample.image.len(), 3 * 32 * 32);
    assert!((sample.image[0] - (0.0 - 0.485) / 0.229).abs() < 1e-5);
    assert!((sample.image[2048] - (0.0 - 0.406) / 0.225).abs() < 1e-5);
}

#[test]
fn invalid_configs_are_errors() {
    let device = Device::default();
    let data = synthetic_dataset(4);
    assert!(Batcher::new(&data, BatchConfig::train(0, 1), device.clone()).is_err());
    let bad = BatchConfig::train(2, 1).with_augment(Augment {
        crop_padding: 0,
        hflip: 2.0,
    });
    assert!(matches!(
        Batcher::new(&data, bad, device),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(
        synthetic_dataset(1)
            .with_transform(Transform::fashion_mnist().with_input_size([5, 28, 28]))
            .is_err()
    );
}

/// Debian's `dataset-fashion-mnist` (CI installs it); skipped where it is not installed.
#[test]
fn real_fashion_mnist() {
    let dir = Path::new(DEFAULT_DIR);
    if !dir.is_dir() {
        eprintln!("skipped: {DEFAULT_DIR} missing (apt-get install dataset-fashion-mnist)");
        return;
    }
    let start = Instant::now();
    let train = FashionMnist::load(dir, Split::Train).unwrap();
    let test = FashionMnist::load(dir, Split::Test).unwrap();
    eprintln!("loaded both splits in {:.2?}", start.elapsed());
    assert_eq!(train.len(), Split::Train.published_len());
    assert_eq!(test.len(), Split::Test.published_len());
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    assert!(train.labels().iter().chain(test.labels()).all(|&l| l < 10));
    assert_eq!(train.class_counts(), [6000; 10]);
    assert_eq!(test.class_counts(), [1000; 10]);
    // The published statistics of the training pixels.
    let mean = train.images().iter().map(|&p| f64::from(p)).sum::<f64>()
        / (train.images().len() as f64 * 255.0);
    assert!((mean - f64::from(MEAN)).abs() < 1e-3, "{mean}");
    let batcher =
        Batcher::new(test.subset(256), BatchConfig::eval(128), Device::default()).unwrap();
    let batch = batcher.batch(0, 1).unwrap();
    assert_eq!(batch.images.dims(), [128, 1, 28, 28]);
    assert_eq!(labels(&batch).len(), 128);
}

#[test]
fn image_folder_reads_classes_and_images() {
    let root = tempfile::tempdir().unwrap();
    let classes = ["cat", "ant", "bee"];
    for (k, class) in classes.iter().enumerate() {
        let dir = root.path().join(class);
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        for i in 0..2 {
            let shade = (k * 100 + i * 20) as u8;
            let img = image::RgbImage::from_fn(20, 12, |x, _| {
                if x < 10 {
                    image::Rgb([shade, 0, 0])
                } else {
                    image::Rgb([0, 0, 255])
                }
            });
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
        image::RgbImage::new(8, 8)
            .save(dir.join("nested").join("z.PNG"))
            .unwrap();
        std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
        std::fs::write(dir.join(".hidden.png"), "hidden").unwrap();
    }
    std::fs::write(root.path().join("README"), "ignored").unwrap();
    let config = PretrainedConfig::imagenet([3, 16, 16], 3);
    let folder = ImageFolder::open(root.path(), config.clone()).unwrap();
    assert_eq!(folder.classes(), ["ant", "bee", "cat"]);
    assert_eq!(folder.len(), 9);
    let labels_in_order: Vec<usize> = folder.items().iter().map(|(_, l)| *l).collect();
    assert_eq!(labels_in_order, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert!(folder.items()[2].0.ends_with("ant/nested/z.PNG"));

    let sample = folder.get(0).unwrap();
    assert_eq!(sample.label, 0);
    assert_eq!(sample.image.len(), 3 * 16 * 16);
    // Top-right pixel is blue (ImageNet normalisation), as snnet-zoo prepares it.
    assert!((sample.image[2 * 256 + 15] - (1.0 - 0.406) / 0.225).abs() < 1e-2);

    // Training with flips: shapes, labels, and a flipped image mirrors the plain one.
    let flip_all = BatchConfig::train(4, 9).with_augment(Augment {
        crop_padding: 0,
        hflip: 1.0,
    });
    let batcher = Batcher::new(&folder, flip_all, Device::default()).unwrap();
    assert_eq!(batcher.batches_per_epoch(), 2);
    let batch = batcher.batch(0, 0).unwrap();
    assert_eq!(batch.images.dims(), [4, 3, 16, 16]);
    let values = floats(&batch);
    let plain = folder.get(batch.indices[0]).unwrap().image;
    for y in 0..16 {
        for x in 0..16 {
            assert_eq!(values[y * 16 + x], plain[y * 16 + 15 - x]);
        }
    }
    let expected: Vec<i64> = batch
        .indices
        .iter()
        .map(|&i| folder.items()[i].1 as i64)
        .collect();
    assert_eq!(labels(&batch), expected);

    // An unreadable image names the file.
    let bad = root.path().join("bee").join("broken.jpg");
    std::fs::write(&bad, "not a jpeg").unwrap();
    let folder = ImageFolder::open(root.path(), config.clone()).unwrap();
    let index = folder.items().iter().position(|(p, _)| *p == bad).unwrap();
    match folder.get(index) {
        Err(Error::Dataset { path, .. }) => assert_eq!(path, bad),
        other => panic!("expected a dataset error, got {other:?}"),
    }

    // An empty class folder, or no class folders at all, names the folder.
    std::fs::create_dir(root.path().join("dog")).unwrap();
    let e = ImageFolder::open(root.path(), config.clone()).unwrap_err();
    assert!(e.to_string().contains("dog"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = ImageFolder::open(empty.path(), config.clone()).unwrap_err();
    assert!(e.to_string().contains("no class sub-folders"), "{e}");
    assert!(ImageFolder::open(&empty.path().join("missing"), config).is_err());
}

/// Timings on the real data: `cargo test --release -p snnet-train --test data -- --ignored
/// --nocapture`.
#[test]
#[ignore = "timing; needs dataset-fashion-mnist"]
fn timing_full_epoch() {
    let start = Instant::now();
    let train = FashionMnist::load_default(Split::Train).unwrap();
    let load = start.elapsed();
    for workers in [1, 2] {
        let config = BatchConfig::train(128, 0).with_workers(workers);
        let batcher = Batcher::new(&train, config, Device::default()).unwrap();
        let start = Instant::now();
        let mut items = 0;
        for batch in batcher.epoch(0) {
            items += batch.unwrap().indices.len();
        }
        let epoch = start.elapsed();
        eprintln!(
            "load train split: {load:.2?}; one augmented epoch of {items} items in batches of 128 \
             at 28×28 with {workers} worker(s): {epoch:.2?}"
        );
    }
    let batcher = Batcher::new(&train, BatchConfig::eval(128), Device::default()).unwrap();
    let start = Instant::now();
    let count = batcher.epoch(0).map(Result::unwrap).count();
    eprintln!(
        "one plain epoch ({count} batches of 128, no shuffle/augmentation): {:.2?}",
        start.elapsed()
    );
}

/// `FashionMnist::bars`: label `i % 10`, a 10×5 bar at the label's own place, black elsewhere.
#[test]
fn bars_paint_each_label_at_its_place() {
    let data = FashionMnist::bars(12);
    assert_eq!(data.labels(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    let image = &data.images()[7 * 784..8 * 784]; // label 7: rows 14..24, columns 10..15
    for (i, &p) in image.iter().enumerate() {
        let (y, x) = (i / 28, i % 28);
        let inside = (14..24).contains(&y) && (10..15).contains(&x);
        assert_eq!(p, if inside { 255 } else { 0 }, "({y}, {x})");
    }
    assert_eq!(data.images().iter().filter(|&&p| p == 255).count(), 12 * 50);
}
