//! `gguf-patch`: synthetic GGUF files (written by the lab's writer and, once, assembled byte by
//! byte), patched with twins exported by `config`, read back: metadata and factor tensors as
//! llama.cpp reads them, every other tensor byte-identical, alignment kept; and every bad input
//! exits 2 with one line, leaving neither OUT nor a temporary file.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))]

use resonance_lab::gguf::{self, Header, MetaValue, TensorInfo};
use serde_json::Value;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_resonance-lab");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rl-gguf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Exports the twin of a config into `dir` and returns its path and document.
fn twin(dir: &Path, config: &str) -> (PathBuf, Value) {
    let out = dir.join("twin.json");
    let (code, _, err) = run(&["config", config, "--export-resonance", p(&out)]);
    assert_eq!(code, 0, "{err}");
    let v = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (out, v)
}

/// Deterministic filler bytes.
fn filler(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A synthetic model: the header and each tensor's data, offsets laid out at `alignment`.
struct Model {
    header: Header,
    data: Vec<Vec<u8>>,
}

fn model(
    arch: &str,
    meta: Vec<(&str, MetaValue)>,
    tensors: Vec<(&str, Vec<u64>, u32, Vec<u8>)>,
    alignment: Option<u32>,
) -> Model {
    let mut metadata = vec![(
        "general.architecture".to_string(),
        MetaValue::String(arch.into()),
    )];
    if let Some(a) = alignment {
        metadata.push(("general.alignment".into(), MetaValue::U32(a)));
    }
    metadata.push(("general.name".into(), MetaValue::String("synthetic".into())));
    metadata.extend(meta.into_iter().map(|(k, v)| (k.to_string(), v)));
    metadata.push((
        "tokenizer.ggml.tokens".into(),
        MetaValue::array(&[
            MetaValue::String("<s>".into()),
            MetaValue::String("hello".into()),
            MetaValue::String("".into()),
        ])
        .unwrap(),
    ));
    metadata.push((
        "tokenizer.ggml.token_type".into(),
        MetaValue::array(&[MetaValue::I32(1), MetaValue::I32(3), MetaValue::I32(-2)]).unwrap(),
    ));
    let align = u64::from(alignment.unwrap_or(32));
    let mut offset = 0u64;
    let mut infos = Vec::new();
    let mut data = Vec::new();
    for (name, dims, ty, bytes) in tensors {
        let info = TensorInfo {
            name: name.into(),
            dims,
            ggml_type: ty,
            offset,
        };
        assert_eq!(info.nbytes().unwrap(), bytes.len() as u64, "{name}");
        offset = gguf::align_up(offset + bytes.len() as u64, align);
        infos.push(info);
        data.push(bytes);
    }
    Model {
        header: Header {
            version: 3,
            metadata,
            tensors: infos,
        },
        data,
    }
}

impl Model {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let start = self.header.write(&mut out).unwrap();
        assert_eq!(start % self.header.alignment(), 0);
        for (t, d) in self.header.tensors.iter().zip(&self.data) {
            out.resize((start + t.offset) as usize, 0);
            out.extend_from_slice(d);
        }
        out
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.bytes()).unwrap();
    }
}

/// A Llama-style GGUF as the converter writes it for `twin`'s config: rotary dim and base from
/// the twin, rope metadata given, with an F16 embedding, a Q8_0 matrix, an odd-sized norm and
/// `extra` tensors.
fn llama_like(
    twin: &Value,
    rope_meta: Vec<(&str, MetaValue)>,
    extra: Vec<(&str, Vec<u64>, u32, Vec<u8>)>,
    alignment: Option<u32>,
) -> Model {
    let dim = twin["dim"].as_u64().unwrap();
    let mut meta = vec![
        ("llama.context_length", MetaValue::U32(8192)),
        ("llama.embedding_length", MetaValue::U32(256)),
        ("llama.attention.head_count", MetaValue::U32(2)),
        (
            "llama.rope.freq_base",
            MetaValue::F32(twin["rope_theta"].as_f64().unwrap() as f32),
        ),
        ("llama.rope.dimension_count", MetaValue::U32(dim as u32)),
    ];
    meta.extend(rope_meta);
    let mut tensors = vec![
        ("token_embd.weight", vec![128, 4], 1, filler(128 * 4 * 2, 1)),
        ("blk.0.attn_q.weight", vec![64, 3], 8, filler(2 * 3 * 34, 2)),
        ("output_norm.weight", vec![13], 0, filler(13 * 4, 3)),
    ];
    tensors.extend(extra);
    model("llama", meta, tensors, alignment)
}

/// The factors llama.cpp needs: twin wavelength / plain RoPE wavelength, per pair.
fn expected_factors(twin: &Value) -> Vec<f32> {
    let dim = twin["dim"].as_f64().unwrap();
    let base = twin["rope_theta"].as_f64().unwrap();
    twin["wavelength"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_f64().unwrap() / (2.0 * PI * base.powf(2.0 * i as f64 / dim))) as f32)
        .collect()
}

fn read(path: &Path) -> (gguf::ReadHeader, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let h = gguf::read_header(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
    (h, bytes)
}

fn tensor_bytes<'a>(h: &gguf::ReadHeader, bytes: &'a [u8], name: &str) -> &'a [u8] {
    let t = h.header.tensor(name).unwrap();
    let start = (h.data_start + t.offset) as usize;
    &bytes[start..start + t.nbytes().unwrap() as usize]
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Only OUT may be left in the directory besides the inputs: no temporary file.
fn assert_no_temp(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.contains(".tmp-"), "temporary file left: {name}");
    }
}

/// Patches and checks everything a reader of the patched file relies on.
fn patch_and_check(
    dir: &Path,
    input: &Model,
    twin_path: &Path,
    twin: &Value,
    factor_names: &[&str],
) -> Value {
    let inp = dir.join("in.gguf");
    let out = dir.join("out.gguf");
    input.write(&inp);
    let (code, stdout, err) = run(&["gguf-patch", p(&inp), p(&out), "--twin", p(twin_path)]);
    assert_eq!(code, 0, "{err}");
    assert_no_temp(dir);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let (a, abytes) = read(&inp);
    let (b, bbytes) = read(&out);
    let arch = a
        .header
        .get("general.architecture")
        .unwrap()
        .as_str()
        .unwrap();
    let key = |k: &str| format!("{arch}.{k}");
    // alignment: the data section and every tensor
    let align = b.header.alignment();
    assert_eq!(align, a.header.alignment());
    assert_eq!(b.data_start % align, 0);
    for t in &b.header.tensors {
        assert_eq!(t.offset % align, 0, "{}", t.name);
    }
    // metadata: the rope keys llama.cpp reads, everything else unchanged and in order
    assert_eq!(
        b.header.get(&key("rope.scaling.type")),
        Some(&MetaValue::String("none".into()))
    );
    assert_eq!(
        b.header.get(&key("rope.scaling.attn_factor")),
        Some(&MetaValue::F32(
            twin["attention_factor"].as_f64().unwrap() as f32
        ))
    );
    assert!(b.header.get(&key("rope.scaling.factor")).is_none());
    assert_eq!(
        b.header
            .get("resonance_lab.twin.name")
            .and_then(MetaValue::as_str),
        twin["name"].as_str()
    );
    let touched = |k: &str| k.contains(".rope.scaling.") || k.starts_with("resonance_lab.");
    let kept_a: Vec<_> = a
        .header
        .metadata
        .iter()
        .filter(|(k, _)| !touched(k))
        .collect();
    let kept_b: Vec<_> = b
        .header
        .metadata
        .iter()
        .filter(|(k, _)| !touched(k))
        .collect();
    assert_eq!(kept_a, kept_b);
    // factor tensors: the twin's factors, f32, one per pair
    let want = expected_factors(twin);
    assert_eq!(want.len() as u64, twin["dim"].as_u64().unwrap() / 2);
    for name in factor_names {
        let t = b.header.tensor(name).unwrap();
        assert_eq!(t.ggml_type, 0);
        assert_eq!(t.dims, vec![want.len() as u64]);
        let got = f32s(tensor_bytes(&b, &bbytes, name));
        assert_eq!(got, want, "{name}");
    }
    // every other tensor: same info, same bytes
    for t in &a.header.tensors {
        if factor_names.contains(&t.name.as_str()) {
            continue;
        }
        assert_eq!(b.header.tensor(&t.name), Some(t));
        assert_eq!(
            tensor_bytes(&a, &abytes, &t.name),
            tensor_bytes(&b, &bbytes, &t.name),
            "{}",
            t.name
        );
    }
    assert_eq!(
        report["output_bytes"].as_u64().unwrap(),
        bbytes.len() as u64
    );
    assert_eq!(report["architecture"], arch);
    report
}

#[test]
fn llama3_twin_replaces_rope_freqs_in_place() {
    let dir = scratch("llama3");
    let (tp, tv) = twin(&dir, "assets/models/llama-3.1-8b.json");
    assert_eq!(tv["llama_cpp_architecture"], "llama");
    let m = llama_like(
        &tv,
        vec![],
        vec![("rope_freqs.weight", vec![64], 0, filler(64 * 4, 9))],
        None,
    );
    let r = patch_and_check(&dir, &m, &tp, &tv, &["rope_freqs.weight"]);
    assert_eq!(r["tensors_written"][0]["action"], "replaced");
    // in place: the file keeps its tensor count and its data layout
    assert_eq!(r["tensors"], 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn yarn_twin_adds_rope_freqs_and_switches_yarn_off() {
    let dir = scratch("yarn");
    let (tp, tv) = twin(&dir, "tests/data/stack_configs/llama-2-7b-yarn-64k.json");
    let m = llama_like(
        &tv,
        vec![
            ("llama.rope.scaling.type", MetaValue::String("yarn".into())),
            ("llama.rope.scaling.factor", MetaValue::F32(16.0)),
            (
                "llama.rope.scaling.original_context_length",
                MetaValue::U32(4096),
            ),
            ("llama.rope.scaling.yarn_beta_fast", MetaValue::F32(32.0)),
        ],
        vec![],
        Some(64),
    );
    let r = patch_and_check(&dir, &m, &tp, &tv, &["rope_freqs.weight"]);
    assert_eq!(r["tensors_written"][0]["action"], "added");
    let removed: Vec<&str> = r["metadata_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(removed.contains(&"llama.rope.scaling.factor"));
    assert!(removed.contains(&"llama.rope.scaling.yarn_beta_fast"));
    assert!(tv["attention_factor"].as_f64().unwrap() > 1.2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn phi3_twin_writes_both_factor_lists() {
    let dir = scratch("phi3");
    let (tp, tv) = twin(&dir, "assets/models/phi-3.5-mini-instruct.json");
    assert_eq!(tv["dim"], 96);
    let meta = vec![
        ("phi3.rope.freq_base", MetaValue::F32(10000.0)),
        ("phi3.rope.dimension_count", MetaValue::U32(96)),
        ("phi3.rope.scaling.attn_factor", MetaValue::F32(1.190_238_1)),
        (
            "phi3.rope.scaling.original_context_length",
            MetaValue::U32(4096),
        ),
    ];
    let tensors = vec![
        ("rope_factors_long.weight", vec![48], 0, filler(48 * 4, 4)),
        ("rope_factors_short.weight", vec![48], 0, filler(48 * 4, 5)),
        ("token_embd.weight", vec![256, 2], 12, filler(144 * 2, 6)),
    ];
    let m = model("phi3", meta, tensors, None);
    patch_and_check(
        &dir,
        &m,
        &tp,
        &tv,
        &["rope_factors_long.weight", "rope_factors_short.weight"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----- an independent byte layout ---------------------------------------------------------------

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// A yarn Llama GGUF assembled byte by byte from the format description, default alignment 32.
fn hand_assembled() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&2u64.to_le_bytes()); // tensors
    b.extend_from_slice(&5u64.to_le_bytes()); // metadata
    put_str(&mut b, "general.architecture");
    b.extend_from_slice(&8u32.to_le_bytes());
    put_str(&mut b, "llama");
    put_str(&mut b, "llama.rope.freq_base");
    b.extend_from_slice(&6u32.to_le_bytes());
    b.extend_from_slice(&10000f32.to_le_bytes());
    put_str(&mut b, "llama.rope.dimension_count");
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&128u32.to_le_bytes());
    put_str(&mut b, "llama.rope.scaling.type");
    b.extend_from_slice(&8u32.to_le_bytes());
    put_str(&mut b, "yarn");
    put_str(&mut b, "llama.rope.scaling.factor");
    b.extend_from_slice(&6u32.to_le_bytes());
    b.extend_from_slice(&16f32.to_le_bytes());
    // tensor infos: an f32 [3] at 0 and an i8 [5, 2] at 32
    put_str(&mut b, "a.weight");
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&3u64.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    put_str(&mut b, "b.weight");
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&5u64.to_le_bytes());
    b.extend_from_slice(&2u64.to_le_bytes());
    b.extend_from_slice(&24u32.to_le_bytes());
    b.extend_from_slice(&32u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    for x in [1.5f32, -2.0, 3.25] {
        b.extend_from_slice(&x.to_le_bytes());
    }
    b.resize(b.len() + 20, 0); // padding to offset 32
    b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    b
}

#[test]
fn writer_matches_a_hand_assembled_file_and_the_patch_is_laid_out_as_specified() {
    let dir = scratch("hand");
    let bytes = hand_assembled();
    // the reader reads it, the writer writes the same bytes back
    let h = gguf::read_header(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
    let mut again = Vec::new();
    let start = h.header.write(&mut again).unwrap();
    assert_eq!(start, h.data_start);
    assert_eq!(again[..], bytes[..start as usize]);
    assert_eq!(h.header.tensors[1].nbytes().unwrap(), 10);

    let (tp, tv) = twin(&dir, "tests/data/stack_configs/llama-2-7b-yarn-64k.json");
    let inp = dir.join("in.gguf");
    let out = dir.join("out.gguf");
    std::fs::write(&inp, &bytes).unwrap();
    let (code, _, err) = run(&["gguf-patch", p(&inp), p(&out), "--twin", p(&tp)]);
    assert_eq!(code, 0, "{err}");
    let o = std::fs::read(&out).unwrap();
    assert_eq!(&o[..4], b"GGUF");
    assert_eq!(u32::from_le_bytes(o[4..8].try_into().unwrap()), 3);
    assert_eq!(u64::from_le_bytes(o[8..16].try_into().unwrap()), 3); // one tensor added
    // the data: a.weight, b.weight as before, rope_freqs at the next multiple of 32 (64)
    let oh = gguf::read_header(&mut o.as_slice(), o.len() as u64).unwrap();
    let ds = oh.data_start as usize;
    assert_eq!(ds % 32, 0);
    let old_ds = h.data_start as usize;
    assert_eq!(o[ds..ds + 42], bytes[old_ds..old_ds + 42]);
    assert_eq!(o.len(), ds + 64 + 64 * 4);
    assert_eq!(o[ds + 42..ds + 64], [0u8; 22]);
    assert_eq!(f32s(&o[ds + 64..]), expected_factors(&tv));
    // the last tensor info names it, at offset 64
    let tail = oh.header.tensors.last().unwrap();
    assert_eq!(
        (
            tail.name.as_str(),
            tail.offset,
            tail.ggml_type,
            tail.dims.clone()
        ),
        ("rope_freqs.weight", 64, 0, vec![64])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----- bad input ---------------------------------------------------------------------------------

/// Runs a patch that must fail: exit 2, one line naming `needle`, no OUT, no temporary file.
fn refused(dir: &Path, input: &Path, out: &Path, twin: &Path, needle: &str) {
    let (code, stdout, err) = run(&["gguf-patch", p(input), p(out), "--twin", p(twin)]);
    assert_eq!(code, 2, "{needle}: {err}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    let same = out.canonicalize().ok() == input.canonicalize().ok();
    if !same {
        assert!(!out.exists(), "{needle}: OUT was written");
    }
    assert_no_temp(dir);
}

#[test]
fn bad_inputs_exit_2_with_one_line_and_leave_nothing() {
    let dir = scratch("bad");
    let (tp, tv) = twin(&dir, "tests/data/stack_configs/llama-2-7b-yarn-64k.json");
    let yarn = vec![
        ("llama.rope.scaling.type", MetaValue::String("yarn".into())),
        ("llama.rope.scaling.factor", MetaValue::F32(16.0)),
    ];
    let good = llama_like(&tv, yarn.clone(), vec![], None).bytes();
    let out = dir.join("out.gguf");
    let case = |name: &str, bytes: &[u8], needle: &str| {
        let f = dir.join(format!("{name}.gguf"));
        std::fs::write(&f, bytes).unwrap();
        refused(&dir, &f, &out, &tp, needle);
    };
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"GGML");
    case("magic", &magic, "not a GGUF file");
    for v in [1u32, 4] {
        let mut ver = good.clone();
        ver[4..8].copy_from_slice(&v.to_le_bytes());
        case("version", &ver, "unsupported GGUF version");
    }
    let mut counts = good.clone();
    counts[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    case("counts", &counts, "malformed GGUF");
    let mut value_type = good.clone();
    // the first metadata value type follows the key "general.architecture"
    value_type[24 + 8 + 20..24 + 8 + 20 + 4].copy_from_slice(&99u32.to_le_bytes());
    case("value-type", &value_type, "unknown value type 99");
    case("empty", &[], "truncated");
    case("truncated-header", &good[..100], "truncated");
    case(
        "truncated-data",
        &good[..good.len() - 7],
        "truncated GGUF: tensor",
    );
    case("garbage", &filler(4096, 7), "not a GGUF file");

    // wrong architecture: a twin of another model type, and an architecture without factors
    let mut qwen = llama_like(&tv, yarn.clone(), vec![], None);
    qwen.header.metadata[0].1 = MetaValue::String("qwen2".into());
    case("arch", &qwen.bytes(), "wrong architecture");
    let (qtp, _) = {
        let d = dir.join("q");
        std::fs::create_dir_all(&d).unwrap();
        twin(&d, "assets/models/qwen3-8b.json")
    };
    let f = dir.join("llama-for-qwen-twin.gguf");
    std::fs::write(&f, &good).unwrap();
    refused(&dir, &f, &out, &qtp, "wrong architecture");

    // a twin of another head size
    let mut small = llama_like(&tv, yarn.clone(), vec![], None);
    small
        .header
        .set("llama.rope.dimension_count", MetaValue::U32(64));
    case("head", &small.bytes(), "head size mismatch");
    // rope metadata that the twin's config would not give: another factor, another base
    let mut factor = llama_like(&tv, yarn.clone(), vec![], None);
    factor
        .header
        .set("llama.rope.scaling.factor", MetaValue::F32(8.0));
    case("factor", &factor.bytes(), "rope metadata mismatch");
    let mut base = llama_like(&tv, yarn, vec![], None);
    base.header
        .set("llama.rope.freq_base", MetaValue::F32(500000.0));
    case("base", &base.bytes(), "rope metadata mismatch");

    // IN == OUT, also spelled differently; the file is left as it was
    let same = dir.join("same.gguf");
    std::fs::write(&same, &good).unwrap();
    let other_spelling = dir.join("q").join("..").join("same.gguf");
    refused(&dir, &same, &other_spelling, &tp, "is the input file");
    assert_eq!(std::fs::read(&same).unwrap(), good);

    // patching a patched file again
    let (code, _, err) = run(&["gguf-patch", p(&same), p(&out), "--twin", p(&tp)]);
    assert_eq!(code, 0, "{err}");
    let out2 = dir.join("out2.gguf");
    refused(&dir, &out, &out2, &tp, "already holds a Resonance twin");

    // a bad twin document
    let bad_twin = dir.join("bad-twin.json");
    std::fs::write(&bad_twin, "{\"format\": \"something else\"}").unwrap();
    let (code, _, err) = run(&["gguf-patch", p(&same), p(&out2), "--twin", p(&bad_twin)]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid --twin"), "{err}");
    assert!(!out2.exists());
    assert_no_temp(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
