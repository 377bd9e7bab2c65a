//! GGUF (llama.cpp's model file, versions 2 and 3, little-endian): a streaming reader of the
//! header (metadata and tensor infos), a writer of the same, and the bounded-buffer copy of the
//! tensor data that `gguf-patch` needs. Generic over `std::io::Read` / `Write`: no file handling
//! here (that stays in the CLI).
//!
//! Written by hand rather than taken from a crate: candle's `quantized::gguf_file` (already a
//! dependency) reads headers but writes only from tensors loaded in memory and knows only the
//! ggml types candle can compute with, and the other GGUF crates on crates.io either load the
//! whole file or have no writer. A patch must copy gigabytes of tensors of any ggml type byte for
//! byte with a small buffer, keeping every offset, so the copy works on byte ranges and the
//! format code needs only the type table below.
//!
//! Layout (ggml/docs/gguf.md): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata
//! count; metadata `(string key, u32 type, value)`; tensor infos `(string name, u32 n_dims,
//! u64 dims[n_dims], u32 ggml type, u64 offset)`; zero padding to `general.alignment` (default
//! 32); the tensor data, each tensor at its offset from the start of the data, itself a multiple
//! of the alignment. Strings are `u64` length + UTF-8 bytes.

pub mod patch;

use std::io::{self, Read, Write};

/// `GGUF` as a little-endian `u32`.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// The ggml type id of f32.
pub const GGML_TYPE_F32: u32 = 0;

/// A malformed or unusable GGUF, or a failed read or write.
#[derive(Debug)]
pub enum GgufError {
    /// The bytes are not a valid GGUF; the message names what and where.
    Invalid(String),
    /// Reading or writing failed.
    Io(io::Error),
}

impl std::fmt::Display for GgufError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GgufError::Invalid(m) => f.write_str(m),
            GgufError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GgufError {}

fn invalid(m: impl Into<String>) -> GgufError {
    GgufError::Invalid(m.into())
}

/// A metadata value. Arrays keep their encoded bytes, so they are written back unchanged without
/// decoding, e.g., a tokenizer's hundreds of thousands of strings into separate allocations.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7.
    Bool(bool),
    /// Type 8.
    String(String),
    /// Type 9: element type, element count and the encoded elements.
    Array {
        /// Type id of the elements.
        elem_type: u32,
        /// Number of elements.
        len: u64,
        /// The elements as stored in the file.
        raw: Vec<u8>,
    },
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl MetaValue {
    /// The GGUF type id.
    pub fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::String(_) => 8,
            MetaValue::Array { .. } => 9,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
        }
    }

    /// An array of scalars or strings (every item of one type, no nested arrays).
    pub fn array(items: &[MetaValue]) -> Result<MetaValue, GgufError> {
        let elem_type = items.first().map_or(4, MetaValue::type_id);
        let mut raw = Vec::new();
        for v in items {
            if v.type_id() != elem_type || elem_type == 9 {
                return Err(invalid("array items must share one non-array type"));
            }
            v.write_payload(&mut raw).map_err(GgufError::Io)?;
        }
        Ok(MetaValue::Array {
            elem_type,
            len: items.len() as u64,
            raw,
        })
    }

    /// The value as an unsigned integer, for any integer type holding one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, for f32 and f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn write_payload<W: Write>(&self, w: &mut W) -> io::Result<()> {
        match self {
            MetaValue::U8(v) => w.write_all(&[*v]),
            MetaValue::I8(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::U16(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::I16(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::U32(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::I32(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::F32(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::Bool(v) => w.write_all(&[u8::from(*v)]),
            MetaValue::String(s) => write_string(w, s),
            MetaValue::Array {
                elem_type,
                len,
                raw,
            } => {
                w.write_all(&elem_type.to_le_bytes())?;
                w.write_all(&len.to_le_bytes())?;
                w.write_all(raw)
            }
            MetaValue::U64(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::I64(v) => w.write_all(&v.to_le_bytes()),
            MetaValue::F64(v) => w.write_all(&v.to_le_bytes()),
        }
    }
}

/// One tensor's entry in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name (`token_embd.weight`, `rope_freqs.weight`, ...).
    pub name: String,
    /// ggml's `ne`: the number of elements along each dimension, fastest first.
    pub dims: Vec<u64>,
    /// The ggml type id.
    pub ggml_type: u32,
    /// Offset of the data from the start of the data section (a multiple of the alignment).
    pub offset: u64,
}

impl TensorInfo {
    /// Bytes of the tensor's data, or why it has none (unknown type, a row that is not a whole
    /// number of blocks, an overflowing size).
    pub fn nbytes(&self) -> Result<u64, GgufError> {
        let (block, size) = type_size(self.ggml_type).ok_or_else(|| {
            invalid(format!(
                "tensor '{}': unknown ggml type {}",
                self.name, self.ggml_type
            ))
        })?;
        let ne0 = self.dims.first().copied().unwrap_or(1);
        if ne0 % block != 0 {
            return Err(invalid(format!(
                "tensor '{}': first dimension {ne0} is not a multiple of its type's block size {block}",
                self.name
            )));
        }
        let mut n = ne0 / block * size;
        for &d in self.dims.iter().skip(1) {
            n = n
                .checked_mul(d)
                .ok_or_else(|| invalid(format!("tensor '{}': its size overflows", self.name)))?;
        }
        Ok(n)
    }
}

/// `(block size in elements, bytes per block)` of a ggml type (ggml/src/ggml.c `type_traits`);
/// `None` for ids that are unknown or were removed from ggml.
pub fn type_size(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    })
}

/// A GGUF header: everything before the tensor data.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// The format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, MetaValue)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
}

impl Header {
    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets a metadata value in place, or appends it when the key is new.
    pub fn set(&mut self, key: &str, value: MetaValue) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    /// Removes a metadata key; true when it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.metadata.len();
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.len() != before
    }

    /// `general.alignment`, else 32.
    pub fn alignment(&self) -> u64 {
        self.get("general.alignment")
            .and_then(MetaValue::as_u64)
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// A tensor info by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The end of the last tensor's data, relative to the data section.
    pub fn data_len(&self) -> Result<u64, GgufError> {
        let mut end = 0u64;
        for t in &self.tensors {
            let e = t
                .offset
                .checked_add(t.nbytes()?)
                .ok_or_else(|| invalid(format!("tensor '{}': offset overflows", t.name)))?;
            end = end.max(e);
        }
        Ok(end)
    }

    /// The encoded size of the header before padding.
    pub fn encoded_len(&self) -> u64 {
        let mut counter = Counter(0);
        // writing to a counter cannot fail
        let _ = self.write_unpadded(&mut counter);
        counter.0
    }

    fn write_unpadded<W: Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(&MAGIC)?;
        w.write_all(&self.version.to_le_bytes())?;
        w.write_all(&(self.tensors.len() as u64).to_le_bytes())?;
        w.write_all(&(self.metadata.len() as u64).to_le_bytes())?;
        for (k, v) in &self.metadata {
            write_string(w, k)?;
            w.write_all(&v.type_id().to_le_bytes())?;
            v.write_payload(w)?;
        }
        for t in &self.tensors {
            write_string(w, &t.name)?;
            w.write_all(&(t.dims.len() as u32).to_le_bytes())?;
            for d in &t.dims {
                w.write_all(&d.to_le_bytes())?;
            }
            w.write_all(&t.ggml_type.to_le_bytes())?;
            w.write_all(&t.offset.to_le_bytes())?;
        }
        Ok(())
    }

    /// Writes the header and the zero padding up to the alignment; returns the bytes written,
    /// which is where the data section starts.
    pub fn write<W: Write>(&self, w: &mut W) -> io::Result<u64> {
        self.write_unpadded(w)?;
        let len = self.encoded_len();
        let start = align_up(len, self.alignment());
        write_zeros(w, start - len)?;
        Ok(start)
    }
}

/// `x` rounded up to a multiple of `align` (a power of two).
pub fn align_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

/// Writes `n` zero bytes.
pub fn write_zeros<W: Write>(w: &mut W, n: u64) -> io::Result<()> {
    let zeros = [0u8; 4096];
    let mut left = n;
    while left > 0 {
        let k = left.min(zeros.len() as u64) as usize;
        w.write_all(&zeros[..k])?;
        left -= k as u64;
    }
    Ok(())
}

fn write_string<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A header as read, with where its data section starts in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadHeader {
    /// The header.
    pub header: Header,
    /// Bytes of the header as stored, before the padding.
    pub header_len: u64,
    /// File offset of the data section (the header length rounded up to the alignment).
    pub data_start: u64,
}

/// Reads from a byte stream of known total length, so that every length read from the file
/// is checked against what is left before anything is allocated.
struct Source<'a, R: Read> {
    r: &'a mut R,
    pos: u64,
    len: u64,
}

impl<R: Read> Source<'_, R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        if n > self.len - self.pos.min(self.len) {
            return Err(invalid(format!(
                "truncated or malformed GGUF: {what} at byte {} needs {n} bytes, {} are left",
                self.pos,
                self.len.saturating_sub(self.pos)
            )));
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                invalid(format!("truncated GGUF: {what} at byte {}", self.pos))
            } else {
                GgufError::Io(e)
            }
        })?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let v = self.bytes(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let n = self.u64(what)?;
        let at = self.pos;
        let b = self.bytes(n, what)?;
        String::from_utf8(b)
            .map_err(|_| invalid(format!("malformed GGUF: {what} at byte {at} is not UTF-8")))
    }

    fn value(&mut self, t: u32, key: &str) -> Result<MetaValue, GgufError> {
        let what = format!("metadata '{key}'");
        Ok(match t {
            0 => MetaValue::U8(self.array::<1>(&what)?[0]),
            1 => MetaValue::I8(i8::from_le_bytes(self.array(&what)?)),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => MetaValue::U32(self.u32(&what)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => match self.array::<1>(&what)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => {
                    return Err(invalid(format!(
                        "malformed GGUF: {what} is a bool of value {b}"
                    )));
                }
            },
            8 => MetaValue::String(self.string(&what)?),
            9 => {
                let elem_type = self.u32(&what)?;
                let len = self.u64(&what)?;
                let raw = self.array_payload(elem_type, len, &what)?;
                MetaValue::Array {
                    elem_type,
                    len,
                    raw,
                }
            }
            10 => MetaValue::U64(self.u64(&what)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(&what)?)),
            _ => {
                return Err(invalid(format!(
                    "malformed GGUF: {what} has unknown value type {t}"
                )));
            }
        })
    }

    /// The encoded elements of an array, checked element by element for strings.
    fn array_payload(
        &mut self,
        elem_type: u32,
        len: u64,
        what: &str,
    ) -> Result<Vec<u8>, GgufError> {
        let fixed = match elem_type {
            0 | 1 | 7 => Some(1u64),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        if let Some(size) = fixed {
            let n = len.checked_mul(size).ok_or_else(|| {
                invalid(format!(
                    "malformed GGUF: {what}: array length {len} overflows"
                ))
            })?;
            return self.bytes(n, what);
        }
        if elem_type != 8 {
            return Err(invalid(format!(
                "malformed GGUF: {what}: array of unsupported element type {elem_type}"
            )));
        }
        // each string has at least its 8-byte length
        if len > (self.len - self.pos.min(self.len)) / 8 {
            return Err(invalid(format!(
                "truncated or malformed GGUF: {what}: {len} strings cannot fit in the {} bytes left",
                self.len.saturating_sub(self.pos)
            )));
        }
        let mut raw = Vec::new();
        for _ in 0..len {
            let n = self.u64(what)?;
            raw.extend_from_slice(&n.to_le_bytes());
            let b = self.bytes(n, what)?;
            raw.extend_from_slice(&b);
        }
        Ok(raw)
    }
}

/// Reads a GGUF header from the start of a file of `file_len` bytes and checks it: magic,
/// version, counts, value types, tensor dimensions and types, offsets aligned, and every
/// tensor's data inside the file.
pub fn read_header<R: Read>(r: &mut R, file_len: u64) -> Result<ReadHeader, GgufError> {
    let mut s = Source {
        r,
        pos: 0,
        len: file_len,
    };
    let magic: [u8; 4] = s.array("the magic")?;
    if magic != MAGIC {
        return Err(invalid(format!(
            "not a GGUF file: the magic is {:?}, expected \"GGUF\"",
            String::from_utf8_lossy(&magic)
        )));
    }
    let version = s.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(invalid(format!(
            "unsupported GGUF version {version} (supported: 2, 3)"
        )));
    }
    let n_tensors = s.u64("the tensor count")?;
    let n_meta = s.u64("the metadata count")?;
    // a metadata entry takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8
    let left = file_len.saturating_sub(s.pos);
    if n_meta > left / 13 || n_tensors > left / 24 {
        return Err(invalid(format!(
            "truncated or malformed GGUF: {n_meta} metadata entries and {n_tensors} tensors cannot fit in {file_len} bytes"
        )));
    }
    let mut metadata = Vec::with_capacity(n_meta as usize);
    for i in 0..n_meta {
        let key = s.string(&format!("metadata key {i}"))?;
        let t = s.u32(&format!("metadata '{key}' type"))?;
        let v = s.value(t, &key)?;
        if metadata
            .iter()
            .any(|(k, _): &(String, MetaValue)| *k == key)
        {
            return Err(invalid(format!(
                "malformed GGUF: metadata key '{key}' appears twice"
            )));
        }
        metadata.push((key, v));
    }
    let tensors = read_tensor_infos(&mut s, n_tensors)?;
    let header = Header {
        version,
        metadata,
        tensors,
    };
    let header_len = s.pos;
    let data_start = check_layout(&header, header_len, file_len)?;
    Ok(ReadHeader {
        header,
        header_len,
        data_start,
    })
}

fn read_tensor_infos<R: Read>(
    s: &mut Source<'_, R>,
    n_tensors: u64,
) -> Result<Vec<TensorInfo>, GgufError> {
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let name = s.string(&format!("tensor {i} name"))?;
        let n_dims = s.u32(&format!("tensor '{name}' n_dims"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(invalid(format!(
                "malformed GGUF: tensor '{name}' has {n_dims} dimensions (1..={MAX_DIMS})"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(s.u64(&format!("tensor '{name}' dims"))?);
        }
        let ggml_type = s.u32(&format!("tensor '{name}' type"))?;
        let offset = s.u64(&format!("tensor '{name}' offset"))?;
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }
    Ok(tensors)
}

/// Checks the alignment, the tensor offsets and that every tensor's data lies in the file;
/// returns the file offset of the data section.
fn check_layout(header: &Header, header_len: u64, file_len: u64) -> Result<u64, GgufError> {
    let alignment = match header.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(MetaValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(v) => {
            return Err(invalid(format!(
                "malformed GGUF: general.alignment must be a u32 power of two (got {v:?})"
            )));
        }
    };
    let data_start = align_up(header_len, alignment);
    let data_avail = file_len.saturating_sub(data_start);
    for t in &header.tensors {
        if t.offset % alignment != 0 {
            return Err(invalid(format!(
                "malformed GGUF: tensor '{}' offset {} is not a multiple of the alignment {alignment}",
                t.name, t.offset
            )));
        }
        let end = t.offset.saturating_add(t.nbytes()?);
        if end > data_avail {
            return Err(invalid(format!(
                "truncated GGUF: tensor '{}' needs data up to byte {} of the data section, the file holds {data_avail}",
                t.name, end
            )));
        }
    }
    let mut names: Vec<&str> = header.tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(format!(
            "malformed GGUF: tensor '{}' appears twice",
            w[0]
        )));
    }
    Ok(data_start)
}

/// Copies `len` bytes from `r` to `w` through a buffer of `buf_size` bytes, writing `patches`
/// (offset from the start of the copied range, new bytes, sorted, not overlapping) in place of
/// the bytes at those offsets.
pub fn copy_patched<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    len: u64,
    patches: &[(u64, Vec<u8>)],
    buf_size: usize,
) -> Result<(), GgufError> {
    let mut buf = vec![0u8; buf_size.max(1)];
    let mut pos = 0u64;
    let mut copy = |r: &mut R, w: &mut W, n: u64, discard: bool| -> Result<(), GgufError> {
        let mut left = n;
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            r.read_exact(&mut buf[..k]).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    invalid("truncated GGUF: the tensor data ends early")
                } else {
                    GgufError::Io(e)
                }
            })?;
            if !discard {
                w.write_all(&buf[..k]).map_err(GgufError::Io)?;
            }
            left -= k as u64;
        }
        Ok(())
    };
    for (off, bytes) in patches {
        if *off < pos || off + bytes.len() as u64 > len {
            return Err(invalid("patches overlap or lie outside the data"));
        }
        copy(r, w, off - pos, false)?;
        copy(r, w, bytes.len() as u64, true)?;
        w.write_all(bytes).map_err(GgufError::Io)?;
        pos = off + bytes.len() as u64;
    }
    copy(r, w, len - pos, false)
}
