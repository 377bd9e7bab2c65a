//! The real-text language model: the split by file, perplexity of hand-built and tiny trained
//! models, checkpoints read back bit for bit, paired arms sharing their windows, the loss per
//! position, bad input, and `lm study` resuming after a kill and `lm reproduce`. Corpora here
//! are small directories written by the test (`--corpus-dir`), so no package is needed.
// Test helpers unwrap freely: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))] // native-only: runs the binary

use resonance_lab::lm::corpus::{Corpus, CorpusName, Part, part_of};
use resonance_lab::lm::eval::evaluate;
use resonance_lab::lm::preset::{LmPreset, LmPresetName};
use resonance_lab::lm::train::{finetune, pretrain, same_weights};
use resonance_lab::lm::{Checkpoint, RopeSpec};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_resonance-lab");

/// A fresh directory under the system's temporary one.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("resonance-lab-lm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A code corpus of `files` Python files (in nested folders), each `text` repeated.
fn corpus_dir(name: &str, files: usize, text: &str, reps: usize) -> PathBuf {
    let d = temp_dir(name);
    for i in 0..files {
        let sub = d.join(format!("pkg{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("mod{i}.py")), text.repeat(reps)).unwrap();
    }
    std::fs::write(d.join("README.txt"), "not python").unwrap();
    d
}

fn lab(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc, stderr)
}

#[test]
fn the_split_by_file_is_disjoint_deterministic_and_depends_on_the_path_only() {
    let d = corpus_dir("split", 240, "x = 1\n", 3);
    let a = Corpus::load(CorpusName::Code, Some(&d)).unwrap();
    let b = Corpus::load(CorpusName::Code, Some(&d)).unwrap();
    assert_eq!(a.files, b.files);
    assert_eq!(a.train, b.train);
    let parts = [&a.files.train, &a.files.validation, &a.files.test];
    let mut seen = HashSet::new();
    for p in parts {
        assert!(!p.is_empty());
        for f in p {
            assert!(seen.insert(f.clone()), "{f} is in two parts");
            assert!(f.ends_with(".py"), "{f} is not a corpus file");
        }
    }
    assert_eq!(seen.len(), 240);
    // roughly 95 / 2.5 / 2.5
    assert!(a.files.train.len() > 215, "{}", a.files.train.len());
    // the same path lands in the same part whatever else the directory holds
    let few = temp_dir("split-few");
    for f in a
        .files
        .test
        .iter()
        .chain(&a.files.validation)
        .chain(&a.files.train[..5])
    {
        let to = few.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(d.join(f), to).unwrap();
    }
    let c = Corpus::load(CorpusName::Code, Some(&few)).unwrap();
    assert_eq!(c.files.test, a.files.test);
    assert_eq!(c.files.validation, a.files.validation);
    for f in &c.files.train {
        assert_eq!(part_of(f), Part::Train);
    }
    // each part's stream is its files' bytes, each led by BOS, in path order
    let bytes: usize = a
        .files
        .test
        .iter()
        .map(|f| std::fs::metadata(d.join(f)).unwrap().len() as usize + 1)
        .sum();
    assert_eq!(a.test.len(), bytes);
}

#[test]
fn a_gzipped_prose_corpus_is_read_as_its_text() {
    use std::io::Write;
    let d = temp_dir("prose");
    for i in 0..120 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(format!("Title {i}\n=====\n\nSome text.\n").as_bytes())
            .unwrap();
        std::fs::write(d.join(format!("doc{i}.rst.gz")), gz.finish().unwrap()).unwrap();
    }
    std::fs::write(d.join("plain.txt"), "plain text file\n").unwrap();
    let c = Corpus::load(CorpusName::Prose, Some(&d)).unwrap();
    let total = c.files.train.len() + c.files.validation.len() + c.files.test.len();
    assert_eq!(total, 121);
    let text = resonance_lab::lm::tokens::decode(&c.test);
    assert!(String::from_utf8(text).unwrap().contains("Some text."));
}

#[test]
fn a_missing_corpus_names_its_package_and_a_bad_dir_exits_2() {
    let e = Corpus::load_at(
        CorpusName::Prose,
        Path::new("/nonexistent/linux-doc"),
        false,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("linux-doc-6.1") && e.contains("install"), "{e}");
    let e = Corpus::load_at(CorpusName::Code, Path::new("/nonexistent/py"), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("libpython3.11-stdlib"), "{e}");
    let (code, doc, err) = lab(&[
        "lm",
        "pretrain",
        "--corpus",
        "code",
        "--preset",
        "tiny",
        "--out",
        "/tmp/x",
        "--corpus-dir",
        "/nonexistent/dir",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(doc, Value::Null);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--corpus-dir"), "{err}");
}

#[test]
fn a_tiny_model_learns_a_repeated_string_to_perplexity_near_1_and_reads_back_bit_for_bit() {
    let d = corpus_dir("repeat", 200, "abcdefgh", 40);
    let c = Corpus::load(CorpusName::Code, Some(&d)).unwrap();
    let preset = LmPreset::get(LmPresetName::Tiny);
    let mut quiet = |_: usize, _: f32| {};
    let (ck, out) = pretrain(
        &preset,
        "code",
        3,
        RopeSpec::rope(false),
        (&c.train, &c.validation),
        1,
        &mut quiet,
    )
    .unwrap();
    assert!(out.steps > 0 && out.steps <= preset.max_steps);
    let schedule = ck.meta.rope.schedule(&preset).unwrap();
    let s = evaluate(&ck.model, &schedule, &c.test, preset.train_len, 512).unwrap();
    assert!(s.perplexity < 1.3, "perplexity {}", s.perplexity);
    assert!((s.bits_per_byte - s.mean_loss / std::f64::consts::LN_2).abs() < 1e-12);
    // a fresh model is near uniform: perplexity in the hundreds
    let fresh = resonance_lab::posgen::Model::new(
        preset.dims,
        &mut resonance_lab::posgen::SplitMix64::derive(9, "x"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let f = evaluate(&fresh, &schedule, &c.test, preset.train_len, 512).unwrap();
    assert!(f.perplexity > 50.0, "fresh perplexity {}", f.perplexity);

    // the checkpoint reads back bit for bit, so a fine-tune starts from the pretrained weights
    let dir = temp_dir("ck");
    ck.save(&dir).unwrap();
    let back = Checkpoint::load(&dir, "--from").unwrap();
    assert_eq!(back.meta, ck.meta);
    assert!(same_weights(&back.model, &ck.model).unwrap());
    let again = evaluate(&back.model, &schedule, &c.test, preset.train_len, 512).unwrap();
    assert_eq!(again, s);
}

#[test]
fn paired_arms_share_windows_and_the_loss_per_position_averages_to_the_loss() {
    let d = corpus_dir("paired", 200, "def f(x):\n    return x * 2\n", 10);
    let c = Corpus::load(CorpusName::Code, Some(&d)).unwrap();
    let mut preset = LmPreset::get(LmPresetName::Tiny);
    preset.max_steps = 12;
    let mut quiet = |_: usize, _: f32| {};
    let data = (c.train.as_slice(), c.validation.as_slice());
    let (a, _) = pretrain(
        &preset,
        "code",
        1,
        RopeSpec::rope(false),
        data,
        1,
        &mut quiet,
    )
    .unwrap();
    let (b, _) = pretrain(
        &preset,
        "code",
        1,
        RopeSpec::rope(true),
        data,
        1,
        &mut quiet,
    )
    .unwrap();
    let (z, _) = pretrain(
        &preset,
        "code",
        2,
        RopeSpec::rope(false),
        data,
        1,
        &mut quiet,
    )
    .unwrap();
    assert_eq!(a.meta.data_order, b.meta.data_order);
    assert_ne!(a.meta.data_order, z.meta.data_order);
    assert!(
        !same_weights(&a.model, &b.model).unwrap(),
        "the schedules differ"
    );
    let yarn = |res: bool| RopeSpec {
        method: "yarn".into(),
        resonance: res,
        scale: 4.0,
    };
    let dir = temp_dir("pair-ck");
    a.save(&dir).unwrap();
    let load = || Checkpoint::load(&dir, "--from").unwrap();
    let p = "p".to_string();
    let (fy, _) = finetune(
        &preset,
        load(),
        p.clone(),
        yarn(false),
        64,
        data,
        &mut quiet,
    )
    .unwrap();
    let (fr, _) = finetune(&preset, load(), p, yarn(true), 64, data, &mut quiet).unwrap();
    assert_eq!(fy.meta.data_order, fr.meta.data_order);
    assert_ne!(fy.meta.data_order, a.meta.data_order);
    assert_eq!(fy.meta.steps, preset.ft_steps);

    // one window: its per-position losses average to its mean loss (no BOS target inside)
    let schedule = yarn(false).schedule(&preset).unwrap();
    let stream: Vec<u16> = c.test[1..].to_vec();
    let s = evaluate(&fy.model, &schedule, &stream, 64, 64).unwrap();
    assert_eq!((s.windows, s.tokens), (1, 64));
    let mean: f64 = s.loss_per_position.iter().sum::<f64>() / 64.0;
    assert!(
        (mean - s.mean_loss).abs() < 1e-12,
        "{mean} vs {}",
        s.mean_loss
    );
    assert!((s.perplexity - s.mean_loss.exp()).abs() < 1e-12);
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let d = corpus_dir("bad", 200, "print('hi')\n", 20);
    let ds = d.to_str().unwrap();
    let ck = temp_dir("bad-ck").join("m");
    let cks = ck.to_str().unwrap();
    let pre = &[
        "lm",
        "pretrain",
        "--corpus",
        "code",
        "--preset",
        "tiny",
        "--out",
        cks,
        "--corpus-dir",
        ds,
    ];
    let (code, doc, err) = lab(pre);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["checkpoint"]["preset"], "tiny");
    for (args, needle) in [
        (vec!["--lengths", "0"], "--lengths"),
        (vec!["--lengths", "32,-4"], "--lengths"),
        (vec!["--lengths", "abc"], "--lengths"),
        (vec!["--resonance"], "--method"),
        (vec!["--method", "yarn", "--scale", "0.5"], "--scale"),
    ] {
        let mut a = vec!["lm", "eval", "--model", cks, "--corpus-dir", ds];
        a.extend(args);
        let (code, doc, err) = lab(&a);
        assert_eq!(code, 2, "{a:?}: {err}");
        assert_eq!(doc, Value::Null);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{a:?}: {err}");
    }
    // a checkpoint of another preset
    let meta = ck.join("meta.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("\"tiny\"", "\"small\"")).unwrap();
    let (code, _, err) = lab(&["lm", "eval", "--model", cks, "--corpus-dir", ds]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("another preset"), "{err}");
    let (code, _, err) = lab(&["lm", "finetune", "--from", "/nonexistent", "--out", cks]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from"), "{err}");
    let (code, _, err) = lab(&[
        "lm", "pretrain", "--corpus", "code", "--out", cks, "--budget", "0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--budget"), "{err}");
    for (flag, v) in [
        ("--patience", "0"),
        ("--max-steps", "0"),
        ("--max-steps", "-3"),
    ] {
        let (code, _, err) = lab(&["lm", "pretrain", "--corpus", "code", "--out", cks, flag, v]);
        assert_eq!(code, 2, "{flag} {v}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(flag), "{err}");
    }
    // the rule's overrides replace the preset's, before the budget multiplier
    let capped = temp_dir("bad-ck").join("capped");
    let mut a = pre.to_vec();
    a[7] = capped.to_str().unwrap();
    a.extend(["--max-steps", "3", "--patience", "1000", "--budget", "2"]);
    let (code, doc, err) = lab(&a);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["checkpoint"]["steps"], 6);
}

#[test]
fn a_study_resumes_after_a_kill_to_the_same_results_and_reproduces() {
    let d = corpus_dir("study", 200, "for i in range(10):\n    total += i\n", 12);
    let ds = d.to_str().unwrap();
    let w = temp_dir("study-out");
    let out = w.join("study");
    let outs = out.to_str().unwrap();
    let args = [
        "lm",
        "study",
        "--corpus",
        "code",
        "--preset",
        "tiny",
        "--seeds",
        "2",
        "--lengths",
        "32,64",
        "--jobs",
        "2",
        "--out",
        outs,
        "--corpus-dir",
        ds,
    ];
    let (code, doc, err) = lab(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["runs"], 24, "{doc}");
    let json = out.with_extension("json");
    let full: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = full["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 24);
    for r in runs {
        assert!(r["command"].as_str().unwrap().contains("lm pretrain"));
        assert!(r["perplexity"]["64"].as_f64().unwrap() > 1.0);
        assert!(r["bits_per_byte"]["32"].as_f64().unwrap() > 0.0);
    }
    // paired arms of a seed were pretrained on the same windows
    let order = |arm: &str, seed: u64| {
        runs.iter()
            .find(|r| r["arm"] == arm && r["seed"] == seed && r["budget"] == "main")
            .unwrap()["data_order"]
            .clone()
    };
    // every arm on the RoPE model carries its pretraining's digest
    for arm in ["yarn-zero-shot", "resonance-yarn-ft-short", "yarn-ft-long"] {
        assert_eq!(order("rope", 1), order(arm, 1));
    }
    assert_ne!(order("rope", 0), order("rope", 1));
    let cmps = full["comparisons"].as_array().unwrap();
    assert_eq!(cmps.len(), 8, "4 pairs x 2 lengths");
    assert!(cmps.iter().all(|c| c["n"] == 2 && c["ci95"].is_array()));
    assert!(full["budget_check"]["seeds"] == serde_json::json!([0]));
    check_stopping_rule(&full, &out, &w, &args);

    // a kill after some runs: the file holds fewer runs and one checkpoint is half-written
    let mut cut = full.clone();
    cut["runs"] = Value::Array(runs[..9].to_vec());
    std::fs::write(&json, serde_json::to_string(&cut).unwrap()).unwrap();
    let work = out.with_extension("work");
    let ft = work.join("s1-main-yarn-ft-long");
    std::fs::remove_file(ft.join("meta.json")).unwrap();
    let (code, doc, err) = lab(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["runs"], 24);
    let resumed: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let strip = |v: &Value| {
        let mut rs = v["runs"].as_array().unwrap().clone();
        for r in &mut rs {
            r["seconds"] = Value::Null;
        }
        rs
    };
    assert_eq!(strip(&resumed), strip(&full));
    assert_eq!(resumed["comparisons"], full["comparisons"]);

    check_reproduce(&json, &w, &full);
}

/// The study at `out` (run with `args`) records its stopping rule, its report counts the
/// pretrainings that reached the cap, and a file of the same study under another rule is not
/// resumed into it.
fn check_stopping_rule(full: &Value, out: &Path, w: &Path, args: &[&str]) {
    // the file records the stopping rule; the report counts the pretrainings at the cap
    let tiny = LmPreset::get(LmPresetName::Tiny);
    assert_eq!(full["config"]["patience"], tiny.patience);
    assert_eq!(full["config"]["max_steps"], tiny.max_steps);
    let mut main: Vec<u64> = full["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["budget"] == "main" && (r["arm"] == "rope" || r["arm"] == "resonance-rope"))
        .map(|r| r["steps"].as_u64().unwrap())
        .collect();
    main.sort_unstable();
    let capped = main.iter().filter(|&&s| s >= tiny.max_steps as u64).count();
    let md = std::fs::read_to_string(out.with_extension("md")).unwrap();
    let (line, _) = md
        .split("Under the main budget ")
        .nth(1)
        .unwrap()
        .split_once("reached the cap")
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "4 pretrainings ran {} to {} steps",
            main[0], main[3]
        )) && line.ends_with(&format!("; {capped} of them ")),
        "{line}"
    );
    // a results file of the same study under another stopping rule is not resumed into it
    let other = w.join("other");
    let mut stale = full.clone();
    stale["config"]["work_dir"] = other.with_extension("work").display().to_string().into();
    stale["config"]["patience"] = (tiny.patience + 1).into();
    std::fs::write(other.with_extension("json"), stale.to_string()).unwrap();
    let mut a = args.to_vec();
    a[13] = other.to_str().unwrap();
    let (code, _, err) = lab(&a);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("other settings"), "{err}");
}

/// `lm reproduce` of the study at `json`: the cheapest run from nothing gives the recorded
/// perplexities, and a tampered record (written under `w`) is caught.
fn check_reproduce(json: &Path, w: &Path, full: &Value) {
    // reproduce: the cheapest run from nothing gives the same perplexities
    let (code, doc, err) = lab(&["lm", "reproduce", json.to_str().unwrap(), "--runs", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["reran"], 1);
    assert_eq!(doc["max_relative_difference"], 0.0, "{doc}");
    // a tampered record is caught
    let mut bad = full.clone();
    for r in bad["runs"].as_array_mut().unwrap() {
        r["perplexity"]["32"] = serde_json::json!(1000.0);
    }
    let bad_path = w.join("bad.json");
    std::fs::write(&bad_path, serde_json::to_string(&bad).unwrap()).unwrap();
    let (code, doc, err) = lab(&["lm", "reproduce", bad_path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(doc["max_relative_difference"].as_f64().unwrap() > 0.01);
}

/// The model the page ships is a whole `small` checkpoint pretrained with RoPE at L, and
/// `lm score` (what the tab computes live) reads the README far better than uniform bytes
/// within L, while past L plain RoPE breaks and YaRN holds (the committed studies' pattern).
#[test]
fn the_shipped_model_scores_the_readme_and_rope_breaks_past_l() {
    let ck = Checkpoint::load(Path::new("web/assets/lm-small-prose"), "--model").unwrap();
    let p = LmPreset::get(LmPresetName::Small);
    assert_eq!(ck.meta.preset, LmPresetName::Small);
    assert_eq!(
        (ck.meta.stage.as_str(), ck.meta.length),
        ("pretrain", p.train_len)
    );
    assert_eq!(ck.meta.rope, RopeSpec::rope(false));
    let (code, doc, err) = lab(&["lm", "score", "--text", "README.md"]);
    assert_eq!(code, 0, "{err}");
    let r = &doc["result"];
    assert_eq!(r["length"], 4 * p.train_len);
    assert_eq!(r["text_bytes"], std::fs::read("README.md").unwrap().len());
    let arms = r["arms"].as_array().unwrap();
    let labels: Vec<&str> = arms.iter().map(|a| a["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["RoPE", "YaRN s=4", "Resonance YaRN s=4"]);
    let f = |a: usize, k: &str| arms[a][k].as_f64().unwrap();
    assert!(f(0, "loss_within").exp() < 32.0, "{}", f(0, "loss_within"));
    assert!(f(0, "loss_beyond") > f(0, "loss_within") + 0.2, "{r}");
    assert!(f(1, "loss_beyond") < f(0, "loss_beyond") - 0.2, "{r}");
    assert!(f(2, "loss_beyond") < f(0, "loss_beyond") - 0.2, "{r}");
    let d = &r["resonance_minus_yarn_beyond"];
    assert!(
        (d["mean"].as_f64().unwrap() - (f(2, "loss_beyond") - f(1, "loss_beyond"))).abs() < 1e-9
    );
    // `lm bench` times the same step on random bytes
    let (code, doc, err) = lab(&[
        "lm", "bench", "--preset", "tiny", "--steps", "2", "--warmup", "0",
    ]);
    assert_eq!(code, 0, "{err}");
    let tiny = LmPreset::get(LmPresetName::Tiny);
    assert_eq!(doc["tokens_per_step"], tiny.batch * tiny.train_len);
    assert_eq!(doc["parameters"], tiny.dims.num_params());
    assert!(doc["tokens_per_second"].as_f64().unwrap() > 0.0);
    // bad input: one line, exit 2
    let empty = temp_dir("score").join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    for args in [
        vec!["lm", "score", "--text", "no/such/file.txt"],
        vec!["lm", "score", "--text", empty.to_str().unwrap()],
        vec!["lm", "score", "--text", "README.md", "--model", "src"],
        vec!["lm", "score", "--text", "README.md", "--length", "0"],
        vec!["lm", "bench", "--steps", "0"],
    ] {
        let (code, _, err) = lab(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
