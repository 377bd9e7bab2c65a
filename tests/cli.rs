//! The CLI contract: subcommand names, options, JSON fields, and exit code 2 with a one-line
//! message naming the option for every kind of bad input.
// Test helpers unwrap freely: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))] // native-only: runs the binary / uses native dev-deps

use serde_json::Value;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_resonance-lab"))
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).expect("one JSON document")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn freqs_fields_and_values() {
    let v = json(&["freqs"]);
    for f in [
        "method",
        "resonance",
        "dim",
        "base",
        "scale",
        "train_len",
        "inv_freq",
        "wavelength",
        "attention_factor",
        "critical_feature",
    ] {
        assert!(v.get(f).is_some(), "missing {f}");
    }
    assert_eq!(v["method"], "rope");
    assert_eq!(v["scale"], 4.0);
    assert_eq!(v["critical_feature"], 9);
    let inv = floats(&v["inv_freq"]);
    assert_eq!(inv.len(), 32);
    // printed f32 values round-trip: 1e4^(-1/32) in f32
    assert_eq!(inv[1] as f32, 0.7498942_f32);
    let v = json(&[
        "freqs",
        "--method",
        "yarn",
        "--dim",
        "128",
        "--train-len",
        "4096",
        "--scale",
        "8",
    ]);
    assert!((v["attention_factor"].as_f64().unwrap() - 1.2079).abs() < 5e-5);
    assert_eq!(floats(&v["yarn_correction_range"]), vec![20.0, 46.0]);
    let v = json(&["freqs", "--resonance"]);
    assert_eq!(
        &floats(&v["wavelength"])[..5],
        &[6.0, 8.0, 11.0, 15.0, 20.0]
    );
    // no wavelength reaches train_len: critical feature is d/2
    let v = json(&["freqs", "--dim", "4", "--base", "2", "--train-len", "100"]);
    assert_eq!(v["critical_feature"], 2);
}

#[test]
fn gap_fields_and_spec_values() {
    let v = json(&["gap", "--eval-len", "256"]);
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["critical_feature"], 9);
    let g = floats(&v["gap"]);
    assert_eq!(g.len(), 32);
    assert!((g[3] - 0.128).abs() < 0.0006);
    let v = json(&["gap", "--resonance", "--curve-feature", "3"]);
    assert!(floats(&v["gap"])[..9].iter().all(|&x| x < 1e-12));
    assert_eq!(floats(&v["curve"]).len(), 256 - 64);
}

#[test]
fn features_fields_and_ranges() {
    let v = json(&["features", "--positions", "0,1,4294967295"]);
    assert_eq!(v["backend"], "cpu");
    let cos = v["cos"].as_array().unwrap();
    assert_eq!(cos.len(), 3);
    assert_eq!(cos[0].as_array().unwrap().len(), 32);
    assert!(floats(&cos[0]).iter().all(|&c| c == 1.0));
    assert!(floats(&v["sin"][0]).iter().all(|&s| s == 0.0));
    // feature 0 has theta = 1 rad per token
    assert!((floats(&cos[1])[0] - 1f64.cos()).abs() < 1e-12);
    let v = json(&["features", "--positions", "10..14,7"]);
    assert_eq!(floats(&v["positions"]), vec![10.0, 11.0, 12.0, 13.0, 7.0]);
    // attention factor is included
    let v = json(&[
        "features",
        "--method",
        "yarn",
        "--scale",
        "16",
        "--positions",
        "0",
    ]);
    let want = 0.1 * 16f64.ln() + 1.0;
    assert!((floats(&v["cos"][0])[0] - want).abs() < 1e-12);
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (&["freqs", "--dim", "63"], "--dim"),
        (&["freqs", "--dim", "0"], "--dim"),
        (&["freqs", "--dim", "-4"], "--dim"),
        (&["freqs", "--base", "1"], "--base"),
        (&["freqs", "--base", "nan"], "--base"),
        (&["freqs", "--base", "inf"], "--base"),
        (&["freqs", "--scale", "0.5"], "--scale"),
        (&["freqs", "--scale", "NaN"], "--scale"),
        (
            &["gap", "--train-len", "64", "--eval-len", "32"],
            "--eval-len",
        ),
        (&["gap", "--train-len", "0"], "--train-len"),
        (&["freqs", "--method", "foo"], "--method"),
        (
            &["freqs", "--high-freq-factor", "0.5"],
            "--high-freq-factor",
        ),
        (&["features", "--positions", "4294967296"], "--positions"),
        (&["features", "--positions", "-1"], "--positions"),
        (&["features", "--positions", "1,,2"], "--positions"),
        (&["features", "--positions", "0..2000000"], "--positions"),
        (&["features", "--positions", "abc"], "--positions"),
        (&["gap", "--curve-feature", "32"], "--curve-feature"),
        (&["freqs", "--dim", "abc"], "--dim"),
        // the GPU backend validates before touching a device: no GPU validation panics
        (
            &["features", "--backend", "gpu", "--positions", "0..2000000"],
            "--positions",
        ),
        (
            &["features", "--backend", "gpu", "--positions", "4294967296"],
            "--positions",
        ),
        (
            &["gap", "--backend", "gpu", "--train-len", "0"],
            "--train-len",
        ),
        (
            &[
                "gap",
                "--backend",
                "gpu",
                "--train-len",
                "64",
                "--eval-len",
                "32",
            ],
            "--eval-len",
        ),
        (&["gap", "--backend", "gpu", "--dim", "0"], "--dim"),
    ];
    for (args, option) in cases {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(option), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `--backend gpu` either runs on an adapter (and then agrees with the CPU path) or falls back to
/// the CPU with the reason in `gpu_fallback_reason`; a large gap request (d=128, L'=131072, more
/// than one dispatch row of work) succeeds in chunks.
#[test]
fn gpu_backend_agrees_with_cpu_or_reports_its_fallback() {
    let pos = "0,1,1000000,4294967295";
    let cpu = json(&["features", "--dim", "64", "--resonance", "--positions", pos]);
    let gpu = json(&[
        "features",
        "--dim",
        "64",
        "--resonance",
        "--positions",
        pos,
        "--backend",
        "gpu",
    ]);
    let on_gpu = gpu["backend"] != "cpu";
    assert!(on_gpu || gpu["gpu_fallback_reason"].is_string(), "{gpu}");
    for key in ["cos", "sin"] {
        for (g, c) in gpu[key]
            .as_array()
            .unwrap()
            .iter()
            .zip(cpu[key].as_array().unwrap())
        {
            for (a, b) in floats(g).iter().zip(floats(c)) {
                assert!((a - b).abs() <= 2e-6, "{key}: gpu {a} vs cpu {b}");
            }
        }
    }
    let args = [
        "gap",
        "--dim",
        "128",
        "--train-len",
        "4096",
        "--eval-len",
        "131072",
    ];
    let cpu = json(&args);
    let mut gargs = args.to_vec();
    gargs.extend(["--backend", "gpu"]);
    let gpu = json(&gargs);
    assert!(gpu["backend"] != "cpu" || gpu["gpu_fallback_reason"].is_string());
    let (g, c) = (floats(&gpu["gap"]), floats(&cpu["gap"]));
    assert_eq!(g.len(), 64);
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        assert!((a - b).abs() <= 1e-5, "feature {i}: gpu {a} vs cpu {b}");
    }
}

/// `--screenshot FILE` renders one frame of the GUI offscreen (wgpu; lavapipe in CI) and exits:
/// a 1280x800 PNG with real content (a blank frame compresses to a few kB).
#[test]
fn screenshot_renders_one_frame_to_png() {
    let path = std::env::temp_dir().join(format!("resonance-lab-shot-{}.png", std::process::id()));
    let (code, _, err) = run(&["--screenshot", path.to_str().unwrap()]);
    if code != 0 && std::env::var_os("CI").is_none() && err.contains("adapter") {
        eprintln!("skipping: {err}");
        return;
    }
    assert_eq!(code, 0, "{err}");
    let png = std::fs::read(&path).expect("PNG written");
    let _ = std::fs::remove_file(&path);
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), (1280, 800), "IHDR width x height");
    assert!(
        png.len() > 20_000,
        "suspiciously small PNG: {} bytes",
        png.len()
    );
    // bad paths are a clear error, not a panic
    let (code, _, err) = run(&["--screenshot", "/nonexistent-dir/x.png"]);
    assert_ne!(code, 0);
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs the binary with `stdin` piped in.
fn run_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_resonance-lab"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LLAMA31: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/configs/llama-3.1-8b.json"
);

/// Llama 3.1 8B: 128-dim heads, llama3 scaling from 8192 to 131072. Worked by hand: plain
/// wavelengths `2 pi 500000^(i/64)` of features 31 and 32 are 3619.2 and `2 pi sqrt(500000)` =
/// 4442.9 tokens, inside Llama-3's blend band (2048, 8192); blended with
/// `k = (8192/lambda - 1)/3`, i.e. divided by `(1-k)/8 + k`, they become 7333.5 (< 8192) and
/// 11971.5 (>= 8192), so the critical feature is 32.
#[test]
fn config_reads_llama31_as_transformers_does() {
    let v = json(&["config", LLAMA31]);
    assert_eq!(v["name"], "meta-llama/Llama-3.1-8B");
    assert_eq!(v["rope_type"], "llama3");
    assert_eq!(v["head_dim"], 128);
    assert_eq!(v["dim"], 128);
    assert_eq!(v["train_len"], 8192);
    assert_eq!(v["eval_len"], 131072);
    assert_eq!(v["attention_factor"], 1.0);
    assert_eq!(v["layer_types"].as_array().unwrap().len(), 0);
    assert_eq!(v["critical_feature"], 32);
    let wl = floats(&v["wavelength"]);
    assert!((wl[31] - 7333.5).abs() < 1.0, "{}", wl[31]);
    assert!((wl[32] - 11971.5).abs() < 1.0, "{}", wl[32]);
    let inv = floats(&v["inv_freq"]);
    assert_eq!(inv.len(), 64);
    assert_eq!(inv[0], 1.0);
    // the highest-frequency features are untouched: 500000^(-1/64) in f32
    assert_eq!(inv[1] as f32, 0.8146172_f32);
    // lowest: divided by 8
    assert_eq!(inv[63] as f32, (500000f64.powf(-63.0 / 64.0) as f32) / 8.0);
    let g = &v["gap_summary"];
    assert_eq!(g["ood_positions"], 131072 - 8192);
    assert!(g["pre_critical_max"].as_f64().unwrap() > 0.0);
    // Resonance closes the gap of every pre-critical feature (Theorem 1)
    let r = json(&["config", LLAMA31, "--resonance"]);
    assert_eq!(
        r["rounding"]["zero_frequency_features"],
        serde_json::json!([])
    );
    assert_eq!(r["gap_summary"]["pre_critical_max"], 0.0);
    assert_eq!(r["gap_summary"]["pre_critical_zero"], r["critical_feature"]);
    assert!(floats(&r["wavelength"]).iter().all(|w| w.fract() == 0.0));
}

/// The exported twin carries exactly the numbers `config --resonance` prints.
#[test]
fn exported_resonance_twin_equals_config_resonance() {
    let out = std::env::temp_dir().join(format!("rl-twin-{}.json", std::process::id()));
    let path = out.to_str().unwrap();
    let v = json(&["config", LLAMA31, "--resonance", "--export-resonance", path]);
    assert_eq!(v["exported"], path);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    for key in [
        "inv_freq",
        "wavelength",
        "attention_factor",
        "rope_type",
        "head_dim",
        "dim",
    ] {
        assert_eq!(doc[key], v[key], "{key}");
    }
    assert_eq!(doc["name"], "meta-llama/Llama-3.1-8B");
    assert_eq!(doc["resonance"], true);
    // the twin is the same with or without --resonance on the printed schedule
    let plain = json(&["config", LLAMA31, "--export-resonance", path]);
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(again, doc);
    assert_ne!(plain["inv_freq"], doc["inv_freq"]);
    // every exported frequency is 2 pi / an integer wavelength in f32
    for (f, w) in floats(&doc["inv_freq"])
        .iter()
        .zip(floats(&doc["wavelength"]))
    {
        assert_eq!(*f as f32, (2.0 * std::f64::consts::PI) as f32 / w as f32);
    }
}

const GEMMA_LIKE: &str = r#"{
  "model_type": "gemma3_text", "head_dim": 256, "hidden_size": 2560, "num_attention_heads": 8,
  "max_position_embeddings": 131072,
  "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
  "rope_parameters": {
    "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}
  }
}"#;

#[test]
fn config_per_layer_types_from_stdin() {
    let (code, out, err) = run_stdin(&["config", "-"], GEMMA_LIKE);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["layer_types"],
        serde_json::json!(["full_attention", "sliding_attention"])
    );
    assert_eq!(v["layer_type"], "full_attention");
    assert_eq!(v["rope_type"], "linear");
    assert_eq!(v["name"], "gemma3_text");
    assert_eq!(floats(&v["inv_freq"])[0], 0.125);
    let (code, out, err) = run_stdin(
        &["config", "-", "--layer-type", "sliding_attention"],
        GEMMA_LIKE,
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rope_type"], "default");
    assert_eq!(v["rope_theta"], 10000.0);
    assert_eq!(floats(&v["inv_freq"]).len(), 128);
}

/// Proportional RoPE (head 64, a quarter rotates): features 8..31 have frequency 0; they are
/// listed, their wavelength is infinite (`null`), Resonance leaves them at 0, their gap is 0.
#[test]
fn config_reports_zero_frequency_features() {
    let cfg = r#"{"head_dim": 64, "max_position_embeddings": 8192,
        "rope_parameters": {"rope_type": "proportional", "rope_theta": 10000.0,
                            "partial_rotary_factor": 0.25},
        "original_max_position_embeddings": 2048}"#;
    for res in [false, true] {
        let mut args = vec!["config", "-"];
        if res {
            args.push("--resonance");
        }
        let (code, out, err) = run_stdin(&args, cfg);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        let zeros: Vec<u64> = (8..32).collect();
        assert_eq!(v["zero_frequency_features"], serde_json::json!(zeros));
        assert_eq!(v["dim"], 64);
        for i in 8..32 {
            assert_eq!(v["inv_freq"][i], 0.0);
            assert!(v["wavelength"][i].is_null());
            assert_eq!(v["gap"][i], 0.0);
        }
        if res {
            assert_eq!(
                v["rounding"]["zero_frequency_features"],
                serde_json::json!(zeros)
            );
        }
    }
}

#[test]
fn new_methods_and_transformers_names_on_the_shared_options() {
    // transformers' names are accepted next to the CLI.md ones
    let a = json(&["freqs", "--method", "linear", "--scale", "4"]);
    let b = json(&["freqs", "--method", "pi", "--scale", "4"]);
    assert_eq!(a["inv_freq"], b["inv_freq"]);
    // LongRoPE worked by hand: d = 8, b = 1e4 gives b^(2i/d) = 1, 10, 100, 1000; seq-len
    // defaults to eval-len 1024 > 256, so the long factors 1, 2, 4, 8 divide them
    let v = json(&[
        "freqs",
        "--method",
        "longrope",
        "--dim",
        "8",
        "--train-len",
        "256",
        "--eval-len",
        "1024",
        "--short-factor",
        "1,1,1.5,2",
        "--long-factor",
        "1,2,4,8",
    ]);
    let inv: Vec<f32> = floats(&v["inv_freq"]).iter().map(|&x| x as f32).collect();
    assert_eq!(inv, vec![1.0, 0.05, 0.0025, 0.000125]);
    assert_eq!(v["attention_factor"], 1.25f64.sqrt());
}

/// Bad config.json texts and the field each error must name.
fn bad_config_texts() -> Vec<(String, &'static str)> {
    let llama = |rope: &str| {
        format!(
            r#"{{"hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 4096, {rope}}}"#
        )
    };
    let longrope = |n: usize| {
        let list = vec!["1.0"; n].join(",");
        llama(&format!(
            r#""rope_scaling": {{"type": "longrope", "short_factor": [{list}], "long_factor": [{list}]}}"#
        ))
    };
    vec![
        (r#"{"hidden_size": 4096,"#.into(), "JSON"),
        ("   \n".into(), "empty"),
        ("[1, 2]".into(), "JSON object"),
        (r#"{"max_position_embeddings": 4096}"#.into(), "head_dim"),
        (
            r#"{"hidden_size": 4096, "num_attention_heads": 32}"#.into(),
            "max_position_embeddings",
        ),
        (
            llama(r#""rope_scaling": {"type": "foo", "factor": 2}"#),
            "rope_scaling.type",
        ),
        (
            llama(r#""rope_parameters": {"rope_type": "foo"}"#),
            "rope_parameters.rope_type",
        ),
        (llama(r#""rope_theta": "abc""#), "rope_theta"),
        (llama(r#""rope_theta": -5"#), "rope_theta"),
        (
            llama(r#""rope_scaling": {"type": "linear", "factor": -2}"#),
            "rope_scaling.factor",
        ),
        (
            llama(r#""rope_scaling": {"type": "linear", "factor": "x"}"#),
            "rope_scaling.factor",
        ),
        (
            llama(r#""rope_scaling": {"type": "linear"}"#),
            "rope_scaling.factor",
        ),
        (
            llama(r#""rope_scaling": {"type": "linear", "factor": 0.5}"#),
            "rope_scaling.factor",
        ),
        (
            r#"{"hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 0}"#
                .into(),
            "max_position_embeddings",
        ),
        (
            r#"{"head_dim": 63, "max_position_embeddings": 4096}"#.into(),
            "head_dim",
        ),
        (longrope(63), "rope_scaling.short_factor"),
        (
            longrope(64).replace(r#""long_factor": ["#, r#""long_factor": "x", "_": ["#),
            "rope_scaling.long_factor",
        ),
        (
            longrope(64).replace(r#""short_factor": [1.0,"#, r#""short_factor": [-1.0,"#),
            "rope_scaling.short_factor[0]",
        ),
        (
            llama(r#""rope_scaling": {"rope_type": "llama3", "factor": 8, "high_freq_factor": 4}"#),
            "rope_scaling.low_freq_factor",
        ),
        (
            llama(r#""rope_scaling": {"rope_type": "yarn", "factor": 4, "truncate": "yes"}"#),
            "rope_scaling.truncate",
        ),
        (
            llama(r#""partial_rotary_factor": 1.5"#),
            "partial_rotary_factor",
        ),
    ]
}

#[test]
fn config_bad_files_exit_2_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("rl-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.join("does-not-exist.json");
    let stdin_cases = bad_config_texts();
    let mut cases: Vec<(Vec<String>, Option<String>, &str)> = stdin_cases
        .into_iter()
        .map(|(text, field)| (vec!["config".into(), "-".into()], Some(text), field))
        .collect();
    let file = |p: &std::path::Path| vec!["config".to_string(), p.to_str().unwrap().to_string()];
    cases.push((file(&empty), None, "empty"));
    cases.push((file(&missing), None, "FILE"));
    let mut lt = file(std::path::Path::new(LLAMA31));
    lt.extend(["--layer-type".into(), "full_attention".into()]);
    cases.push((lt, None, "--layer-type"));
    let mut sl = file(std::path::Path::new(LLAMA31));
    sl.extend(["--seq-len".into(), "0".into()]);
    cases.push((sl, None, "--seq-len"));
    let mut ex = file(std::path::Path::new(LLAMA31));
    ex.extend([
        "--export-resonance".into(),
        "/nonexistent-dir/x.json".into(),
    ]);
    cases.push((ex, None, "--export-resonance"));
    for (args, stdin, field) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = match stdin {
            Some(text) => run_stdin(&args, text),
            None => run(&args),
        };
        assert_eq!(code, 2, "{args:?} {stdin:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(field),
            "{args:?} {stdin:?}: wanted {field} in {err}"
        );
        if !field.starts_with("--export") {
            assert!(out.is_empty(), "{args:?} printed {out}");
        }
    }
    let (code, _, err) = run_stdin(&["config", "-", "--layer-type", "nope"], GEMMA_LIKE);
    assert_eq!(code, 2);
    assert!(
        err.contains("--layer-type") && err.contains("sliding_attention"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Qwen2-7B-Instruct: plain RoPE, head 3584 / 28 = 128, base 1e6, no original length, so L =
/// max_position_embeddings = 32768. By hand the critical feature is the first i with
/// `2 pi 1e6^(i/64) >= 32768`, i.e. `i >= 64 ln(5215.2) / ln(1e6) = 39.65`: 40. With the
/// default eval length (= L) there is no OOD position; `--eval-len` asks about 4x.
#[test]
fn config_reads_qwen2_and_eval_len_extends_the_analysis() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/configs/qwen2-7b-instruct.json"
    );
    let v = json(&["config", path]);
    assert_eq!(v["rope_type"], "default");
    assert_eq!(v["head_dim"], 128);
    assert_eq!(v["rope_theta"], 1e6);
    assert_eq!(
        (v["train_len"].as_u64(), v["eval_len"].as_u64()),
        (Some(32768), Some(32768))
    );
    assert_eq!(v["critical_feature"], 40);
    assert_eq!(v["gap_summary"]["ood_positions"], 0);
    assert!(floats(&v["gap"]).iter().all(|&g| g == 0.0));
    let v = json(&["config", path, "--eval-len", "131072"]);
    assert_eq!(v["gap_summary"]["ood_positions"], 131072 - 32768);
    assert!(v["gap_summary"]["post_critical_max"].as_f64().unwrap() > 0.1);
}
