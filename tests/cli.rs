//! The CLI contract: subcommand names, options, JSON fields, and exit code 2 with a one-line
//! message naming the option for every kind of bad input.

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
