//! `config --export-resonance OUT --format hf-config`: the exported config.json, read back by the
//! lab's own importer (transformers' reading), gives the twin's frequencies to 1 ulp and its
//! attention factor, keeps every other key of the file and its form, and says per stack whether
//! the twin loads. The expectations come from `config --resonance` (the twin schedule), not from
//! the export writer.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_resonance-lab"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rl-hfx-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ulps(a: f32, b: f32) -> i64 {
    (i64::from(a.to_bits() as i32) - i64::from(b.to_bits() as i32)).abs()
}

/// Removes the value at a dotted path.
fn remove_path(v: &mut Value, path: &str) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = v;
    for p in &parts[..parts.len() - 1] {
        match cur.get_mut(*p) {
            Some(c) => cur = c,
            None => return,
        }
    }
    if let Some(o) = cur.as_object_mut() {
        o.remove(parts[parts.len() - 1]);
    }
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |c, p| &c[p])
}

/// Exports, re-imports and checks one config; returns the command's output.
fn export_and_check(config: &str, extra: &[&str], section: &str) -> Value {
    let dir = scratch(&config.replace('/', "_"));
    let out = dir.join("config.json");
    let out_s = out.to_str().unwrap();
    let mut args = vec!["config", config];
    args.extend_from_slice(extra);
    // the twin, as the lab computes it
    let mut twin_args = args.clone();
    twin_args.push("--resonance");
    let twin = json(&twin_args);
    args.extend_from_slice(&["--export-resonance", out_s, "--format", "hf-config"]);
    let v = json(&args);
    assert_eq!(v["export_format"], "hf-config");
    assert_eq!(v["export_section"], section);
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert_eq!(name, "config.json", "only OUT is left");
    }

    // read back by the lab, as transformers reads it
    let mut back_args = vec!["config", out_s];
    back_args.extend_from_slice(extra);
    let back = json(&back_args);
    assert_eq!(back["rope_type"], "longrope");
    let want = f32s(&twin["inv_freq"]);
    let got = f32s(&back["inv_freq"]);
    assert_eq!(
        got.len(),
        want.len(),
        "{config}: one frequency per rotated pair"
    );
    assert_eq!(twin["dim"], back["dim"]);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(ulps(*g, *w) <= 1, "{config} pair {i}: {g} vs twin {w}");
    }
    assert_eq!(
        back["attention_factor"], twin["attention_factor"],
        "{config}"
    );
    assert_eq!(back["head_dim"], twin["head_dim"]);

    // every other key kept: equal documents once the section is removed
    let original_text = std::fs::read_to_string(config).unwrap();
    let exported_text = std::fs::read_to_string(&out).unwrap();
    let mut a: Value = serde_json::from_str(&original_text).unwrap();
    let mut b: Value = serde_json::from_str(&exported_text).unwrap();
    let sec = at(&b, section).clone();
    assert_eq!(sec["short_factor"], sec["long_factor"]);
    assert_eq!(
        sec["short_factor"].as_array().unwrap().len() as u64,
        twin["dim"].as_u64().unwrap() / 2
    );
    assert_eq!(sec["attention_factor"], twin["attention_factor"]);
    assert_eq!(sec["short_mscale"], twin["attention_factor"]);
    remove_path(&mut a, section);
    remove_path(&mut b, section);
    assert_eq!(a, b, "{config}: keys outside the RoPE section changed");
    // and the text too: what differs lies within the section
    let prefix = original_text
        .bytes()
        .zip(exported_text.bytes())
        .take_while(|(x, y)| x == y)
        .count();
    let suffix = original_text
        .bytes()
        .rev()
        .zip(exported_text.bytes().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let leaf = section.rsplit('.').next().unwrap();
    if let Some(key_pos) = original_text.find(&format!("\"{leaf}\": ")) {
        assert!(
            prefix > key_pos,
            "{config}: the text changed before the section"
        );
        // and what follows the section is the original's text (its keys, in order)
        let tail = &original_text[original_text.len() - suffix..];
        assert!(exported_text.ends_with(tail));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    v
}

fn stack<'a>(v: &'a Value, s: &str) -> &'a Value {
    let e = &v["stacks"][s];
    assert!(e["loads_twin"].is_boolean(), "{s}");
    assert!(!e["reason"].as_str().unwrap().is_empty(), "{s}");
    e
}

#[test]
fn llama_3_1_legacy_form() {
    let v = export_and_check("assets/models/llama-3.1-8b.json", &[], "rope_scaling");
    assert_eq!(stack(&v, "transformers")["loads_twin"], true);
    assert_eq!(stack(&v, "vllm")["loads_twin"], true);
    assert_eq!(stack(&v, "mlx-lm")["loads_twin"], true);
    assert_eq!(stack(&v, "llama.cpp")["loads_twin"], false);
    // attention factor 1: mlx-lm's max/original scale is 1 with original = max
    assert_eq!(v["export_original_max_position_embeddings"], 131072);
}

#[test]
fn llama_3_1_rope_parameters_form() {
    let v = export_and_check(
        "tests/data/stack_configs/llama-3.1-8b-rope-parameters.json",
        &[],
        "rope_parameters",
    );
    // mlx-lm's llama drops rope_parameters
    assert_eq!(stack(&v, "mlx-lm")["loads_twin"], false);
    let text =
        std::fs::read_to_string("tests/data/stack_configs/llama-3.1-8b-rope-parameters.json")
            .unwrap();
    assert!(!text.contains("rope_scaling"));
}

#[test]
fn partial_rotary_configs() {
    // phi-2: rotary 0.4 of head 80 = 32 dims, rope_scaling null replaced
    let v = export_and_check("tests/data/stack_configs/phi-2.json", &[], "rope_scaling");
    assert_eq!(v["export_factors"].as_array().unwrap().len(), 16);
    // phi-4-mini: LongRoPE with partial rotary in rope_parameters; attention factor != 1
    let v = export_and_check(
        "tests/data/stack_configs/phi-4-mini-longrope-partial.json",
        &[],
        "rope_parameters",
    );
    assert!(v["export_attention_factor"].as_f64().unwrap() > 1.0);
}

#[test]
fn gemma3_per_layer_and_legacy() {
    let v = export_and_check(
        "tests/data/stack_configs/gemma-3-27b-rope-parameters.json",
        &[],
        "rope_parameters.full_attention",
    );
    assert_eq!(stack(&v, "transformers")["loads_twin"], true);
    export_and_check(
        "tests/data/stack_configs/gemma-3-27b-rope-parameters.json",
        &["--layer-type", "sliding_attention"],
        "rope_parameters.sliding_attention",
    );
    // multimodal legacy form: text_config.rope_scaling
    export_and_check(
        "assets/models/gemma-3-4b-it.json",
        &[],
        "text_config.rope_scaling",
    );
}

#[test]
fn deepseek_mla() {
    let v = export_and_check("assets/models/deepseek-v3.json", &[], "rope_scaling");
    // qk_rope_head_dim 64: 32 factors; softmax keys kept for the model file
    assert_eq!(v["export_factors"].as_array().unwrap().len(), 32);
    assert_eq!(stack(&v, "vllm")["loads_twin"], false);
    assert_eq!(stack(&v, "mlx-lm")["loads_twin"], false);
    export_and_check(
        "tests/data/stack_configs/deepseek-v2-lite.json",
        &[],
        "rope_scaling",
    );
}

#[test]
fn yarn_and_longrope_sources() {
    let v = export_and_check(
        "tests/data/stack_configs/llama-2-7b-yarn-64k.json",
        &[],
        "rope_scaling",
    );
    // attention factor 0.1 ln 16 + 1: mlx-lm's SuScaledRoPE cannot carry it
    assert_eq!(stack(&v, "mlx-lm")["loads_twin"], false);
    assert_eq!(stack(&v, "vllm")["loads_twin"], true);
    let v = export_and_check(
        "assets/models/phi-3.5-mini-instruct.json",
        &[],
        "rope_scaling",
    );
    assert_eq!(stack(&v, "llama.cpp")["loads_twin"], true);
    export_and_check("assets/models/qwen3-8b.json", &[], "rope_scaling");
    export_and_check("assets/models/gpt-oss-20b.json", &[], "rope_scaling");
}

#[test]
fn refusals_exit_2_and_write_nothing() {
    let dir = scratch("refusals");
    let out = dir.join("out.json");
    let out_s = out.to_str().unwrap();
    // legacy Gemma 3 has no section for its sliding layers
    let (code, stdout, err) = run(&[
        "config",
        "assets/models/gemma-3-4b-it.json",
        "--layer-type",
        "sliding_attention",
        "--export-resonance",
        out_s,
        "--format",
        "hf-config",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(stdout.is_empty());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("rope_local_base_freq"), "{err}");
    // zero-frequency pairs (proportional RoPE) have no LongRoPE form
    let (code, _, err) = run(&[
        "config",
        "tests/data/stack_configs/gemma-4-proportional.json",
        "--export-resonance",
        out_s,
        "--format",
        "hf-config",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("zero-frequency"), "{err}");
    // --format needs --export-resonance
    let (code, _, err) = run(&[
        "config",
        "assets/models/llama-3.1-8b.json",
        "--format",
        "hf-config",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(Path::new(&dir)).unwrap();
}
