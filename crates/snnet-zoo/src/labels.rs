//! The ImageNet-1k class names, built in: what `snnet forward`, `snnet serve` and friends print
//! for a 1,000-class model when no `--labels` file is given.
//!
//! `imagenet_classes.txt` holds one line per class index, timm's `ImageNetInfo` descriptions
//! (`timm/data/_info/imagenet_synset_to_lemma.txt` in synset order: index 698 is `palace`).

/// The class names, one line per class, in class-index order.
const IMAGENET_CLASSES: &str = include_str!("imagenet_classes.txt");

/// Number of ImageNet-1k classes.
pub const IMAGENET_NUM_CLASSES: usize = 1000;

/// The 1,000 ImageNet-1k class names, by class index.
///
/// ```
/// let labels = snnet_zoo::imagenet_labels();
/// assert_eq!(labels.len(), 1000);
/// assert_eq!(labels[698], "palace");
/// ```
pub fn imagenet_labels() -> Vec<String> {
    IMAGENET_CLASSES.lines().map(str::to_owned).collect()
}

/// The built-in labels for a model of `num_classes` outputs: the ImageNet-1k names for 1,000,
/// none otherwise.
pub fn default_labels(num_classes: usize) -> Vec<String> {
    if num_classes == IMAGENET_NUM_CLASSES {
        imagenet_labels()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_name_per_class() {
        let labels = super::imagenet_labels();
        assert_eq!(labels.len(), super::IMAGENET_NUM_CLASSES);
        assert!(labels[0].starts_with("tench"));
        assert!(labels.iter().all(|l| !l.is_empty()));
        assert!(super::default_labels(10).is_empty());
    }
}
