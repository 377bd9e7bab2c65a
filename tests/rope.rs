//! Math core tests against independent expectations: the worked numbers of docs/rope.md, docs/schedules.md and docs/gap.md, transformers'
//! f32 schedules (tests/data/hf_reference.json, made by scripts/hf_reference.py: numpy
//! re-derivations, and transformers' own `ROPE_INIT_FUNCTIONS` run on config.json dictionaries),
//! mpmath phases, hand-derived cases, brute force and properties.
// Test helpers unwrap freely: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))] // native-only: runs the binary / uses native dev-deps

mod common;

use proptest::prelude::*;
use resonance_lab::rope::{
    self, GapWorkspace, Method, PairLayout, Phase, Schedule, ScheduleConfig, gap::gap_brute_force,
    hf_config, reference,
};
use serde_json::Value;
use std::f64::consts::PI;

fn cfg(method: Method, dim: usize, base: f64, l: u64, lp: u64) -> ScheduleConfig {
    ScheduleConfig::with_lengths(method, dim, base, l, lp)
}

fn reference_json() -> Value {
    serde_json::from_str(include_str!("data/hf_reference.json")).unwrap()
}

/// The config of a reference case's command-line arguments, parsed by the CLI's own schedule
/// options (derived from the method registry).
fn config_from_args(args: &[Value]) -> ScheduleConfig {
    use clap::{Args, FromArgMatches};
    let args = args.iter().map(|a| a.as_str().unwrap());
    let cmd = resonance_lab::cli::ScheduleArgs::augment_args(clap::Command::new("case"));
    let m = cmd
        .try_get_matches_from(std::iter::once("case").chain(args))
        .unwrap();
    resonance_lab::cli::ScheduleArgs::from_arg_matches(&m)
        .unwrap()
        .to_config()
        .unwrap()
}

fn ulp_distance(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

/// A reference case's `inv_freq` (transformers' f32 values, stored as JSON numbers).
fn reference_inv_freq(case: &Value) -> Vec<f32> {
    case["inv_freq"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn f32_schedules_match_transformers_within_one_ulp() {
    let data = reference_json();
    for case in data["schedules"].as_array().unwrap() {
        let c = config_from_args(case["args"].as_array().unwrap());
        let s = Schedule::new(&c).unwrap();
        let want = reference_inv_freq(case);
        assert_eq!(s.inv_freq.len(), want.len(), "{}", case["name"]);
        for (i, (&got, &w)) in s.inv_freq.iter().zip(&want).enumerate() {
            assert!(
                ulp_distance(got, w) <= 1,
                "{} feature {i}: {got:e} vs {w:e}",
                case["name"]
            );
        }
        let att = case["attention_factor"].as_f64().unwrap();
        assert!((s.attention_factor - att).abs() < 1e-12, "{}", case["name"]);
        if let Some(r) = case.get("rounded") {
            let rounded: Vec<f64> = r
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(
                s.rounding.as_ref().unwrap().rounded,
                rounded,
                "{}",
                case["name"]
            );
        }
        if let Some(r) = case.get("correction_range") {
            let (lo, hi) = rope::schedule::yarn_correction_range(&c);
            assert!((lo - r[0].as_f64().unwrap()).abs() < 1e-12);
            assert!((hi - r[1].as_f64().unwrap()).abs() < 1e-12);
        }
    }
}

/// Imports `text` as transformers' reference `case` asks (layer type, sequence length) and
/// checks the rope type, every `inv_freq` value within 1 ulp and the attention factor. Returns
/// the rope type, the values compared and how many of them are 1 ulp off.
fn check_transformers_case(name: &str, text: &str, case: &Value) -> (String, usize, usize) {
    // transformers' init passes seq_len None, which LongRoPE treats as short; our default
    // is max_position_embeddings (long), so ask for a length within the original one
    let init_longrope = case["rope_type"] == "longrope" && case["seq_len"].is_null();
    let opts = hf_config::ImportOptions {
        layer_type: case["layer_type"].as_str().map(String::from),
        seq_len: if init_longrope {
            Some(1)
        } else {
            case["seq_len"].as_u64()
        },
        eval_len: None,
    };
    let model =
        hf_config::parse_config(text, "case", &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        model.rope_type,
        case["rope_type"].as_str().unwrap(),
        "{name}"
    );
    let s = Schedule::new(&model.config).unwrap();
    let want = reference_inv_freq(case);
    assert_eq!(s.inv_freq.len(), want.len(), "{name}: feature count");
    let mut off_by_one = 0;
    for (i, (&got, &w)) in s.inv_freq.iter().zip(&want).enumerate() {
        let d = ulp_distance(got, w);
        assert!(d <= 1, "{name} feature {i}: {got:e} vs {w:e}");
        off_by_one += d as usize;
    }
    let att = case["attention_factor"].as_f64().unwrap();
    assert!(
        (s.attention_factor - att).abs() <= 1e-15 * att,
        "{name}: attention factor {} vs {att}",
        s.attention_factor
    );
    (model.rope_type, want.len(), off_by_one)
}

/// transformers' own values (torch f32 on the CPU) for every rope type and both config forms.
/// Our pow is correctly rounded; torch's vectorised `pow` can be 1 ulp off in `b^(2i/d)`, and
/// every later f32 operation (reciprocal, `/ factor`, the YaRN / Llama-3 blends, LongRoPE's
/// `ext * pos`) follows transformers' order, so each value is within 1 ulp, and the count of
/// values that are not bit-identical is printed.
#[test]
fn transformers_rope_init_functions_match_within_one_ulp() {
    let data = reference_json();
    let cases = data["transformers_configs"].as_array().unwrap();
    assert!(cases.len() >= 25);
    let (mut total, mut off_by_one) = (0usize, 0usize);
    let mut types = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (rope_type, n, off) = check_transformers_case(name, &case["config"].to_string(), case);
        types.insert(rope_type);
        total += n;
        off_by_one += off;
    }
    let all: Vec<&str> = vec![
        "default",
        "dynamic",
        "linear",
        "llama3",
        "longrope",
        "proportional",
        "yarn",
    ];
    assert_eq!(types.iter().map(String::as_str).collect::<Vec<_>>(), all);
    eprintln!(
        "transformers cases: {off_by_one} of {total} values 1 ulp off, the rest bit-identical"
    );
}

/// The app's built-in models (assets/models, the published config.json files) import to
/// transformers' own inv_freq and attention factor, every layer type, LongRoPE both branches.
#[test]
fn builtin_model_configs_match_transformers() {
    let data = reference_json();
    let cases = data["builtin_models"].as_array().unwrap();
    let files: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c["file"].as_str().unwrap()).collect();
    assert!(files.len() >= 10, "at least ten built-in models checked");
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let path = format!("{}/assets/models/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let name = format!("{file} {} {}", case["layer_type"], case["seq_len"]);
        check_transformers_case(&name, &text, case);
    }
}

/// LongRoPE worked by hand: d = 8, b = 1e4, so `b^(2i/d)` = 1, 10, 100, 1000; short factors
/// (1, 1, 1.5, 2) and long factors (1, 2, 4, 8); L = 256, max length 1024, s = 4 and the
/// attention factor `sqrt(1 + ln 4 / ln 256) = sqrt(1.25)`.
#[test]
fn longrope_hand_worked_both_branches() {
    let mut c = cfg(Method::LONGROPE, 8, 1e4, 256, 1024);
    c.short_factor = vec![1.0, 1.0, 1.5, 2.0];
    c.long_factor = vec![1.0, 2.0, 4.0, 8.0];
    c.scale = 4.0;
    c.seq_len = 1024;
    let s = Schedule::new(&c).unwrap();
    assert_eq!(s.inv_freq, vec![1.0, 0.05, 0.0025, 0.000125]);
    assert_eq!(s.attention_factor, 1.25f64.sqrt());
    c.seq_len = 256; // not beyond the original length: short factors
    let s = Schedule::new(&c).unwrap();
    assert_eq!(s.inv_freq, vec![1.0, 0.1, 1.0 / 150.0, 0.0005]);
    c.attention_factor = Some(1.5);
    assert_eq!(Schedule::new(&c).unwrap().attention_factor, 1.5);
    // wrong list length and non-positive entries name the field
    c.long_factor = vec![1.0; 3];
    assert_eq!(Schedule::new(&c).unwrap_err().field, "long_factor");
    c.long_factor = vec![1.0, 0.0, 1.0, 1.0];
    assert_eq!(Schedule::new(&c).unwrap_err().field, "long_factor");
}

/// YaRN attention factor with DeepSeek's mscale: `get_mscale(8, 1) / get_mscale(8, 0.5)` =
/// `(0.1 ln 8 + 1) / (0.05 ln 8 + 1)`; an explicit attention factor wins; zero mscale falls back
/// to `0.1 ln s + 1` (transformers tests `mscale and mscale_all_dim` for truth).
#[test]
fn yarn_mscale_and_explicit_attention_factor() {
    let mut c = cfg(Method::YARN, 128, 1e4, 4096, 32768);
    c.scale = 8.0;
    c.mscale = Some(1.0);
    c.mscale_all_dim = Some(0.5);
    let l8 = 8f64.ln();
    let want = (0.1 * l8 + 1.0) / (0.05 * l8 + 1.0);
    assert!((Schedule::new(&c).unwrap().attention_factor - want).abs() < 1e-15);
    assert!((want - 1.09418).abs() < 1e-5);
    c.mscale_all_dim = Some(0.0);
    assert_eq!(Schedule::new(&c).unwrap().attention_factor, 0.1 * l8 + 1.0);
    c.attention_factor = Some(0.75);
    assert_eq!(Schedule::new(&c).unwrap().attention_factor, 0.75);
}

/// Partial rotary: head 80 x 0.4 rotates 32 dims (16 features, Phi-2); Proportional with head 20
/// x 0.3 keeps 10 features of which `int(0.3 * 20 // 2)` = 3 rotate with `b^(-2i/20)`.
#[test]
fn partial_rotary_and_proportional_feature_counts() {
    let mut c = cfg(Method::ROPE, 80, 1e4, 2048, 8192);
    c.partial_rotary_factor = 0.4;
    assert_eq!(c.rotary_dim(), 32);
    let s = Schedule::new(&c).unwrap();
    assert_eq!(s.num_features(), 16);
    assert_eq!(s.inv_freq[8], 0.01f32); // 1e4^(-16/32)
    let mut c = cfg(Method::PROPORTIONAL, 20, 1e4, 2048, 8192);
    c.partial_rotary_factor = 0.3;
    c.scale = 2.0;
    let s = Schedule::new(&c).unwrap();
    assert_eq!(s.num_features(), 10);
    assert_eq!(s.inv_freq[0], 0.5);
    assert_eq!(s.inv_freq[1], (1e4f64.powf(-0.1) / 2.0) as f32);
    assert_eq!(s.zero_frequency_features(), (3..10).collect::<Vec<_>>());
    // an odd rotary dimension is rejected, naming the factor
    let mut c = cfg(Method::ROPE, 64, 1e4, 64, 256);
    c.partial_rotary_factor = 0.5 + 1.0 / 64.0;
    assert_eq!(
        Schedule::new(&c).unwrap_err().field,
        "partial_rotary_factor"
    );
}

/// Zero-frequency pairs under Resonance: they stay 0 (infinite wavelength), are listed, are not
/// "duplicates" of each other, have gap 0 and feature value (cos, sin) = (1, 0) everywhere.
#[test]
fn zero_frequency_features_survive_resonance() {
    let mut c = cfg(Method::PROPORTIONAL, 64, 1e4, 64, 256);
    c.partial_rotary_factor = 0.25;
    c.scale = 1.0; // proportional divides every frequency by its factor
    c.resonance = true;
    let s = Schedule::new(&c).unwrap();
    // int(0.25 * 64 // 2) = 8 pairs rotate
    let zeros: Vec<usize> = (8..32).collect();
    assert_eq!(s.zero_frequency_features(), zeros);
    let r = s.rounding.as_ref().unwrap();
    assert_eq!(r.zero_frequency_features, zeros);
    assert!(r.duplicates.iter().all(|i| *i < 8));
    for &i in &zeros {
        assert_eq!(s.inv_freq[i], 0.0);
        assert!(s.wavelength[i].is_infinite());
    }
    assert_eq!(&s.wavelength[..4], &[6.0, 8.0, 11.0, 15.0]);
    let g = rope::gap_analysis(&s);
    assert!(zeros.iter().all(|&i| g.gap[i] == 0.0));
    for p in [0u64, 7, 1_000_000, u32::MAX as u64] {
        let (cs, sn) = rope::cos_sin(&s, p);
        assert!(zeros.iter().all(|&i| cs[i] == 1.0 && sn[i] == 0.0));
    }
    // without Resonance the same: no division by zero anywhere
    c.resonance = false;
    let s = Schedule::new(&c).unwrap();
    assert!(rope::gap_analysis(&s).gap[8..].iter().all(|&g| g == 0.0));
}

#[test]
// 6.28 is docs/rope.md#worked-example's printed wavelength for feature 0, compared to 2 decimals, not a stand-in for TAU
#[allow(clippy::approx_constant)]
fn wavelengths_and_critical_features_from_spec() {
    let s = Schedule::new(&cfg(Method::ROPE, 64, 1e4, 64, 256)).unwrap();
    for (got, want) in s.wavelength.iter().zip([6.28, 8.38, 11.17, 14.90]) {
        assert!((got - want).abs() < 0.005, "{got} vs {want}");
    }
    assert_eq!(s.critical_feature, 9);
    let s = Schedule::new(&cfg(Method::ROPE, 128, 1e4, 4096, 16384)).unwrap();
    assert_eq!(s.critical_feature, 46);
    let mut c = cfg(Method::ROPE, 64, 1e4, 64, 256);
    c.resonance = true;
    let r = Schedule::new(&c).unwrap();
    assert_eq!(
        &r.wavelength[..10],
        &[6.0, 8.0, 11.0, 15.0, 20.0, 26.0, 35.0, 47.0, 63.0, 84.0]
    );
    assert_eq!(r.critical_feature, 9);
    assert!(r.rounding.as_ref().unwrap().duplicates.is_empty());
}

#[test]
fn yarn_llama2_correction_range_and_attention_factor() {
    let mut c = cfg(Method::YARN, 128, 1e4, 4096, 32768);
    c.scale = 8.0;
    assert_eq!(rope::schedule::yarn_correction_range(&c), (20.0, 46.0));
    let s = Schedule::new(&c).unwrap();
    assert!((s.attention_factor - 1.2079).abs() < 5e-5);
    // features at or below low keep theta, at or above high get theta / s
    let plain = Schedule::new(&cfg(Method::ROPE, 128, 1e4, 4096, 32768)).unwrap();
    for i in 0..=20 {
        assert_eq!(s.inv_freq[i], plain.inv_freq[i]);
    }
    for i in 46..64 {
        let want = plain.inv_freq_f64[i] / 8.0;
        assert!((s.inv_freq_f64[i] - want).abs() <= want * 1e-12);
    }
}

#[test]
fn interpolation_gap_matches_spec_worked_numbers() {
    let rope_gap =
        rope::gap_analysis(&Schedule::new(&cfg(Method::ROPE, 64, 1e4, 64, 256)).unwrap()).gap;
    let want = [
        0.071, 0.080, 0.075, 0.128, 0.109, 0.008, 0.060, 0.063, 0.050,
    ];
    for (i, w) in want.iter().enumerate() {
        assert!(
            (rope_gap[i] - w).abs() <= 0.0006,
            "feature {i}: {} vs {w}",
            rope_gap[i]
        );
    }
    for (i, w) in [(9, 0.78), (10, 1.36), (11, 1.81)] {
        assert!(
            (rope_gap[i] - w).abs() <= 0.006,
            "feature {i}: {}",
            rope_gap[i]
        );
    }
    let mut c = cfg(Method::ROPE, 64, 1e4, 64, 256);
    c.resonance = true;
    let res_gap = rope::gap_analysis(&Schedule::new(&c).unwrap()).gap;
    for (i, g) in res_gap.iter().enumerate().take(9) {
        assert!(*g < 1e-12, "resonance feature {i}: {g}");
    }
    for (i, w) in [(9, 0.75), (10, 1.35), (11, 1.81)] {
        assert!(
            (res_gap[i] - w).abs() <= 0.006,
            "resonance feature {i}: {}",
            res_gap[i]
        );
    }
}

#[test]
fn gap_curve_hand_derived_case() {
    // lambda = 4 tokens, L = 3: positions 0,1,2 cover angles 0, pi/2, pi; position 3 (3pi/2)
    // is pi/2 from both neighbours, positions 4, 5, 6 repeat seen angles.
    let curve = rope::gap_curve(&Phase::Integer { lambda: 4 }, 3, 8);
    // n = 7 is again 3 (mod 4): the gap returns
    let want = [PI / 2.0, 0.0, 0.0, 0.0, PI / 2.0];
    assert_eq!(curve.len(), 5);
    for (g, w) in curve.iter().zip(want) {
        assert!((g - w).abs() < 1e-15, "{curve:?}");
    }
    assert!(rope::gap_curve(&Phase::Integer { lambda: 4 }, 8, 8).is_empty());
}

#[test]
fn mpmath_phases_at_long_positions() {
    let data = reference_json();
    let s = Schedule::new(&cfg(Method::ROPE, 64, 1e4, 64, 256)).unwrap();
    for ph in data["phases_rope_d64"].as_array().unwrap() {
        let (i, p) = (
            ph["feature"].as_u64().unwrap() as usize,
            ph["position"].as_u64().unwrap(),
        );
        let (c, sn) = rope::cos_sin(&s, p);
        assert!(
            (c[i] - ph["cos"].as_f64().unwrap()).abs() < 1e-9,
            "cos f{i} p{p}"
        );
        assert!(
            (sn[i] - ph["sin"].as_f64().unwrap()).abs() < 1e-9,
            "sin f{i} p{p}"
        );
        let (rc, rs) = reference::cos_sin(&s, p);
        assert!((rc[i] - ph["cos"].as_f64().unwrap()).abs() < 1e-9);
        assert!((rs[i] - ph["sin"].as_f64().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn naive_f32_is_wrong_at_a_million_but_exact_phases_are_not() {
    let s = Schedule::new(&cfg(Method::ROPE, 64, 1e4, 64, 256)).unwrap();
    let p = 1_000_000;
    let (nc, _) = common::naive_f32_cos_sin(&s, p);
    let (ec, _) = rope::cos_sin(&s, p);
    let (rc, _) = reference::cos_sin(&s, p);
    let naive_err = nc
        .iter()
        .zip(&rc)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    let exact_err = ec
        .iter()
        .zip(&rc)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(naive_err > 1e-3, "naive error {naive_err}");
    assert!(exact_err < 1e-9, "exact error {exact_err}");
}

#[test]
fn scale_one_and_short_sequences_reduce_to_rope() {
    let plain = Schedule::new(&cfg(Method::ROPE, 64, 1e4, 64, 64)).unwrap();
    // every method whose schedule depends on the scale is a scaling of RoPE: at scale 1 it is
    // RoPE (methods that ignore the scale, NoPE say, are no scaling of it)
    let at = |m: Method, scale: f64| {
        let mut c = cfg(m, 64, 1e4, 64, 64);
        c.scale = scale;
        Schedule::new(&c).unwrap()
    };
    for &m in Method::ALL {
        let (two, one) = (at(m, 2.0), at(m, 1.0));
        if (two.inv_freq, two.attention_factor) == (one.inv_freq, one.attention_factor) {
            continue;
        }
        let s = at(m, 1.0);
        // llama3 blends (1-k) theta/1 + k theta in f32 like transformers: equal within 1 ulp
        for (a, b) in s.inv_freq.iter().zip(&plain.inv_freq) {
            assert!(
                ulp_distance(*a, *b) <= u32::from(m == Method::LLAMA3),
                "{m}"
            );
        }
        assert_eq!(s.attention_factor, 1.0, "{m}");
    }
    // dynamic NTK with the current length inside the trained range is plain RoPE at any scale
    let mut c = cfg(Method::DYNAMIC_NTK, 64, 1e4, 64, 256);
    c.seq_len = 10;
    assert_eq!(Schedule::new(&c).unwrap().inv_freq, plain.inv_freq);
}

#[test]
fn invalid_configs_name_the_field() {
    let ok = ScheduleConfig::default();
    type Mutation = Box<dyn Fn(&mut ScheduleConfig)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("dim", Box::new(|c| c.dim = 63)),
        ("dim", Box::new(|c| c.dim = 0)),
        ("dim", Box::new(|c| c.dim = 2048)),
        ("base", Box::new(|c| c.base = 1.0)),
        ("base", Box::new(|c| c.base = f64::NAN)),
        ("base", Box::new(|c| c.base = f64::INFINITY)),
        ("scale", Box::new(|c| c.scale = 0.5)),
        ("scale", Box::new(|c| c.scale = f64::NAN)),
        ("train_len", Box::new(|c| c.train_len = 0)),
        ("eval_len", Box::new(|c| c.eval_len = 10)),
        ("beta_fast", Box::new(|c| c.beta_fast = -1.0)),
        ("high_freq_factor", Box::new(|c| c.high_freq_factor = 1.0)),
        ("seq_len", Box::new(|c| c.seq_len = 0)),
    ];
    for (field, f) in cases {
        let mut c = ok.clone();
        f(&mut c);
        let e = Schedule::new(&c).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        // the library names fields by key; each caller renders them in its own words
        assert!(
            e.to_string().starts_with(&format!("invalid {field}: ")),
            "{e}"
        );
    }
}

#[test]
fn large_base_reports_f32_f64_disagreement_and_duplicates() {
    // huge wavelengths: f32 cannot hold the integer wavelength, f64 can
    let mut c = cfg(Method::ROPE, 512, 1e12, 64, 256);
    c.resonance = true;
    let s = Schedule::new(&c).unwrap();
    let r = s.rounding.as_ref().unwrap();
    assert!(r.f32_f64_disagreements.contains(&255));
    assert!(!r.f32_f64_disagreements.contains(&0));
    // d = 256, b = 1e4: wavelengths 6.28, 6.75, 7.26 round to 6, 7, 7
    let mut c = cfg(Method::ROPE, 256, 1e4, 64, 256);
    c.resonance = true;
    let s = Schedule::new(&c).unwrap();
    let r = s.rounding.as_ref().unwrap();
    assert_eq!(&r.rounded[..3], &[6.0, 7.0, 7.0]);
    assert_eq!(r.duplicates[0], 1);
    for &i in &r.duplicates {
        assert_eq!(r.rounded[i], r.rounded[i + 1]);
    }
}

fn method_strategy() -> impl Strategy<Value = Method> {
    prop::sample::select(Method::ALL.to_vec())
}

fn config_strategy() -> impl Strategy<Value = ScheduleConfig> {
    (
        method_strategy(),
        1usize..=64,
        2.0f64..1e6,
        4u64..200,
        1u64..5,
        any::<bool>(),
    )
        .prop_map(|(m, half, base, l, mult, res)| {
            let mut c = cfg(m, half * 2, base, l, l * mult);
            c.resonance = res;
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn resonance_closes_the_gap_of_every_short_wavelength(c in config_strategy()) {
        let mut c = c;
        c.resonance = true;
        let s = Schedule::new(&c).unwrap();
        let g = rope::gap_analysis(&s).gap;
        for (i, w) in s.wavelength.iter().enumerate() {
            if *w <= c.train_len as f64 {
                prop_assert!(g[i] == 0.0, "feature {} wavelength {} gap {}", i, w, g[i]);
            }
        }
    }

    #[test]
    fn fast_gap_equals_brute_force(c in config_strategy()) {
        let s = Schedule::new(&c).unwrap();
        let g = rope::gap_analysis(&s).gap;
        for (i, &gi) in g.iter().enumerate() {
            let theta = match &s.rounding {
                Some(r) => 2.0 * PI / r.rounded[i],
                None => s.inv_freq[i] as f64,
            };
            let b = gap_brute_force(theta, c.train_len, c.eval_len);
            prop_assert!((gi - b).abs() < 1e-9, "feature {}: {} vs {}", i, gi, b);
        }
    }

    /// The streamed maximum (one block buffer) equals the maximum of the full curve (two
    /// arrays of block minima), position included, across block boundaries and partial blocks.
    #[test]
    fn streamed_max_gap_equals_max_of_curve(
        alpha in any::<u64>(),
        lambda in 1u64..300,
        integer in any::<bool>(),
        l in 1u64..40,
        extra in 0u64..400,
    ) {
        let phase = if integer { Phase::Integer { lambda } } else { Phase::Fixed { alpha } };
        let lp = l + extra;
        let curve = rope::gap_curve(&phase, l, lp);
        let (g, at) = GapWorkspace::default().max_gap(&phase, l, lp);
        let best = curve.iter().copied().fold(0.0f64, f64::max);
        prop_assert_eq!(g, best);
        let first = curve.iter().position(|&x| x == best && best > 0.0);
        prop_assert_eq!(at, l + first.unwrap_or(0) as u64);
    }

    #[test]
    fn features_have_norm_equal_to_attention_factor(c in config_strategy(), p in 0u64..=u32::MAX as u64) {
        let s = Schedule::new(&c).unwrap();
        let (cs, sn) = rope::cos_sin(&s, p);
        for (a, b) in cs.iter().zip(&sn) {
            prop_assert!(((a * a + b * b).sqrt() - s.attention_factor).abs() < 1e-12);
        }
    }

    #[test]
    fn exact_phases_match_double_double_reference(c in config_strategy(), p in 0u64..=u32::MAX as u64) {
        let s = Schedule::new(&c).unwrap();
        let (cs, sn) = rope::cos_sin(&s, p);
        let (rc, rs) = reference::cos_sin(&s, p);
        for i in 0..cs.len() {
            prop_assert!((cs[i] - rc[i]).abs() < 1e-6 && (sn[i] - rs[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn rotation_preserves_norm_in_both_layouts(
        c in config_strategy(),
        p in 0u64..1_000_000,
        seed in any::<u64>(),
    ) {
        let s = Schedule::new(&c).unwrap();
        let (cs, sn) = rope::cos_sin(&s, p);
        let af = s.attention_factor;
        let mut state = seed | 1;
        let x: Vec<f64> = (0..c.dim).map(|_| {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            (state % 2001) as f64 / 1000.0 - 1.0
        }).collect();
        let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
        for layout in [PairLayout::HalfSplit, PairLayout::Interleaved] {
            let mut y = x.clone();
            rope::rotate(&mut y, &cs, &sn, layout);
            prop_assert!((norm(&y) - af * norm(&x)).abs() < 1e-9 * (1.0 + norm(&x)));
        }
    }

    #[test]
    fn llama3_and_yarn_are_continuous(base in 100.0f64..1e6, bf in 2.0f64..64.0) {
        // llama3 blends continuously across its band edges; YaRN without truncation is
        // continuous in beta_fast. A tiny parameter change gives a tiny frequency change.
        let eps = 1e-9;
        let mut a = cfg(Method::LLAMA3, 128, base, 8192, 65536);
        let mut b = a.clone();
        b.base = base * (1.0 + eps);
        let (sa, sb) = (Schedule::new(&a).unwrap(), Schedule::new(&b).unwrap());
        for (x, y) in sa.inv_freq_f64.iter().zip(&sb.inv_freq_f64) {
            prop_assert!((x - y).abs() <= 1e-6 * x);
        }
        a.method = Method::YARN;
        a.truncate = false;
        a.beta_fast = bf;
        let mut b = a.clone();
        b.beta_fast = bf * (1.0 + eps);
        let (sa, sb) = (Schedule::new(&a).unwrap(), Schedule::new(&b).unwrap());
        for (x, y) in sa.inv_freq_f64.iter().zip(&sb.inv_freq_f64) {
            prop_assert!((x - y).abs() <= 1e-6 * x);
        }
    }
}
