//! Limits on what the stitch space accepts from outside (anchor spec files, the space embedded in
//! a checkpoint, command-line options), checked before anything is allocated for it. Going over
//! one is an [`Error::LimitExceeded`](crate::Error::LimitExceeded) that names the constant.
//!
//! Each limit sits at least ten times above what a real SN-Net needs (the largest built-in
//! anchors are DeiT-3 Large, 24 blocks of 1,024 channels, and Swin-B and ResNet-101 with four
//! stages; the reference's largest space has 732 stitches) and far below what would exhaust a
//! machine's memory or time. Within them every size and count of a space fits `usize` on any
//! platform, so the enumeration's arithmetic cannot overflow.

/// Most blocks in one anchor, over all its stages (256; DeiT-3 Large has 24, ResNet-101 33 and
/// ResNet-152 50). A stage can hold at most as many. The equal-depth rule looks at pairs of
/// blocks, so this bounds one anchor pair's cuts to 65,536.
pub const MAX_DEPTH: usize = 256;

/// Most stages of a hierarchical anchor (8; Swin and ResNet have 4).
pub const MAX_STAGES: usize = 8;

/// Widest stage of an anchor, in channels (8,192; DeiT-3 Large has 1,024 and ResNet-50's last
/// stage 2,048). A stitching layer between two such stages has 67 million weights.
pub const MAX_WIDTH: usize = 8_192;

/// Most anchors in one space (32; SN-Net stitches 2 to 4, and there are 25 built-in anchors).
pub const MAX_ANCHORS: usize = 32;

/// Most anchor paths one space stitches (4,096): the neighbour pairs with nearest pairing, every
/// pair with all pairing, and, for plain one-way spaces with all pairing, every combination of
/// two or more anchors — `2^n − n − 1` of them for `n` anchors, so all pairing over plain anchors
/// takes at most 12 anchors. The reference's all-pairs DeiT space has 4 paths.
pub const MAX_ANCHOR_PATHS: usize = 4_096;

/// Most stitches in one space (100,000; the reference's largest space, DeiT-Ti/S/B with all
/// pairing, has 732, its default one 71; four DeiT-sized anchors with all pairing have 11,121).
/// The stitches are counted from the pair rules before any is built, so a space over the limit
/// costs neither memory nor time; at the limit the stitch descriptions take about 25 MB, and
/// every stitch is one forward path to evaluate.
pub const MAX_STITCHES: usize = 100_000;

/// Longest anchor name or label, in bytes (256; timm's longest names, with a pretrained tag,
/// are about 60).
pub const MAX_NAME_LEN: usize = 256;

/// Largest anchor spec document, in bytes (1 MiB; a spec is about 100 bytes, so this holds
/// thousands of anchors, while its parsed form stays within a few tens of MB).
pub const MAX_SPEC_BYTES: usize = 1 << 20;
