//! A minimal writer of PyTorch checkpoints holding `f32` tensors, in the two containers
//! `torch.save` has written since PyTorch 0.1.10 — the legacy pickle stream (PyTorch ≤ 1.5) and
//! the ZIP archive (1.6 and later) — for the `.pth` seed corpus only. It writes what
//! `torch.save(state_dict)` writes: a dict of tensors rebuilt by
//! `torch._utils._rebuild_tensor_v2` from `FloatStorage` persistent ids.

use std::io::Write;

/// One named tensor: row-major `f32` values of `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The state-dict key (`blocks.0.attn.qkv.weight`).
    pub name: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

/// Which container to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Sequential pickles (magic, protocol 1001, system info, the object, storage keys) followed
    /// by each storage's element count and bytes.
    Legacy,
    /// A ZIP archive: `archive/data.pkl`, `archive/data/<key>`, `archive/byteorder`,
    /// `archive/version`.
    Zip,
}

/// Pickle protocol 2 opcodes used here.
mod op {
    pub(super) const PROTO: u8 = 0x80;
    pub(super) const STOP: u8 = b'.';
    pub(super) const MARK: u8 = b'(';
    pub(super) const TUPLE: u8 = b't';
    pub(super) const EMPTY_TUPLE: u8 = b')';
    pub(super) const EMPTY_DICT: u8 = b'}';
    pub(super) const EMPTY_LIST: u8 = b']';
    pub(super) const SETITEMS: u8 = b'u';
    pub(super) const APPENDS: u8 = b'e';
    pub(super) const BINUNICODE: u8 = b'X';
    pub(super) const BININT: u8 = b'J';
    pub(super) const BININT1: u8 = b'K';
    pub(super) const BININT2: u8 = b'M';
    pub(super) const LONG1: u8 = 0x8a;
    pub(super) const NEWTRUE: u8 = 0x88;
    pub(super) const NEWFALSE: u8 = 0x89;
    pub(super) const NONE: u8 = b'N';
    pub(super) const GLOBAL: u8 = b'c';
    pub(super) const REDUCE: u8 = b'R';
    pub(super) const BINPERSID: u8 = b'Q';
}

/// A pickle being written.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Self(vec![op::PROTO, 2])
    }

    fn op(&mut self, code: u8) -> &mut Self {
        self.0.push(code);
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(op::BINUNICODE);
        let len = u32::try_from(s.len()).expect("short strings");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn int(&mut self, v: usize) -> &mut Self {
        if let Ok(v) = u8::try_from(v) {
            self.0.extend_from_slice(&[op::BININT1, v]);
        } else if let Ok(v) = u16::try_from(v) {
            self.0.push(op::BININT2);
            self.0.extend_from_slice(&v.to_le_bytes());
        } else {
            let v = i32::try_from(v).expect("seed sizes fit i32");
            self.0.push(op::BININT);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(op::GLOBAL);
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }

    fn ints(&mut self, values: &[usize]) -> &mut Self {
        self.op(op::MARK);
        for &v in values {
            self.int(v);
        }
        self.op(op::TUPLE)
    }

    /// `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` with the storage as
    /// a persistent id (the legacy container's carries a sixth field, the view metadata).
    fn tensor(&mut self, key: &str, tensor: &Tensor, container: Container) -> &mut Self {
        let mut stride = vec![1; tensor.shape.len()];
        for i in (0..tensor.shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * tensor.shape[i + 1];
        }
        self.global("torch._utils", "_rebuild_tensor_v2")
            .op(op::MARK)
            .op(op::MARK)
            .str("storage")
            .global("torch", "FloatStorage")
            .str(key)
            .str("cpu")
            .int(tensor.data.len());
        if container == Container::Legacy {
            self.op(op::NONE);
        }
        self.op(op::TUPLE)
            .op(op::BINPERSID)
            .int(0)
            .ints(&tensor.shape)
            .ints(&stride)
            .op(op::NEWFALSE)
            .global("collections", "OrderedDict")
            .op(op::EMPTY_TUPLE)
            .op(op::REDUCE)
            .op(op::TUPLE)
            .op(op::REDUCE)
    }

    /// A dict of the tensors, storage keys `0`, `1`, … in order.
    fn state_dict(&mut self, tensors: &[Tensor], container: Container) -> &mut Self {
        self.op(op::EMPTY_DICT).op(op::MARK);
        for (i, t) in tensors.iter().enumerate() {
            self.str(&t.name).tensor(&i.to_string(), t, container);
        }
        self.op(op::SETITEMS)
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.push(op::STOP);
        self.0
    }
}

/// The main pickle: the state dict, or `{wrapper: state_dict}`.
fn object(tensors: &[Tensor], wrapper: Option<&str>, container: Container) -> Vec<u8> {
    let mut p = Pickle::new();
    match wrapper {
        Some(key) => {
            p.op(op::EMPTY_DICT)
                .op(op::MARK)
                .str(key)
                .state_dict(tensors, container)
                .op(op::SETITEMS);
        }
        None => {
            p.state_dict(tensors, container);
        }
    }
    p.finish()
}

fn le_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A checkpoint of `tensors` (optionally wrapped as `{wrapper: state_dict}`, as training scripts
/// save `{"model": ...}`) in `container`.
///
/// # Panics
/// When the ZIP archive cannot be written (in memory: never).
pub fn checkpoint(tensors: &[Tensor], wrapper: Option<&str>, container: Container) -> Vec<u8> {
    let main = object(tensors, wrapper, container);
    match container {
        Container::Legacy => {
            // The magic number 0x1950a86a20f9469cfc6c as a pickled int.
            let mut magic = Pickle::new();
            magic.0.extend_from_slice(&[
                op::LONG1,
                10,
                0x6c,
                0xfc,
                0x9c,
                0x46,
                0xf9,
                0x20,
                0x6a,
                0xa8,
                0x50,
                0x19,
            ]);
            let mut version = Pickle::new();
            version.int(1001);
            let mut sys_info = Pickle::new();
            sys_info
                .op(op::EMPTY_DICT)
                .op(op::MARK)
                .str("protocol_version")
                .int(1001)
                .str("little_endian")
                .op(op::NEWTRUE)
                .str("type_sizes")
                .op(op::EMPTY_DICT)
                .op(op::MARK)
                .str("short")
                .int(2)
                .str("int")
                .int(4)
                .str("long")
                .int(4)
                .op(op::SETITEMS)
                .op(op::SETITEMS);
            let mut keys = Pickle::new();
            keys.op(op::EMPTY_LIST).op(op::MARK);
            for i in 0..tensors.len() {
                keys.str(&i.to_string());
            }
            keys.op(op::APPENDS);
            let mut out = Vec::new();
            for part in [magic, version, sys_info] {
                out.extend(part.finish());
            }
            out.extend(main);
            out.extend(keys.finish());
            for t in tensors {
                let numel = i64::try_from(t.data.len()).expect("small tensors");
                out.extend_from_slice(&numel.to_le_bytes());
                out.extend(le_bytes(&t.data));
            }
            out
        }
        Container::Zip => {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let mut entry = |name: &str, bytes: &[u8]| {
                zip.start_file(format!("archive/{name}"), options)
                    .expect("zip entry");
                zip.write_all(bytes).expect("zip write");
            };
            entry("data.pkl", &main);
            entry("byteorder", b"little");
            for (i, t) in tensors.iter().enumerate() {
                entry(&format!("data/{i}"), &le_bytes(&t.data));
            }
            entry("version", b"3\n");
            zip.finish().expect("zip finish").into_inner()
        }
    }
}
