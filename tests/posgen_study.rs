//! The PosGen study: the authors' protocol against hand-derived tuples and split indices,
//! evaluation-only scaling constants, pairing of runs by seed, early stopping, Semi-recursive
//! stay/advance positions, the confidence-interval arithmetic, resume after a kill, bad input,
//! the probe's plan order and its report of a probe stopped part-way, and `posgen reproduce`.
// Test helpers unwrap freely: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))] // native-only: runs the binary

use resonance_lab::cli::train_command::{command, train_args};
use resonance_lab::posgen::data::authors_seed_tuples;
use resonance_lab::posgen::study::{
    Budget, StudyConfig, StudyResult, StudyRun, Verdict, batches, budget_check, comparisons,
    estimate, t_quantile_975,
};
use resonance_lab::posgen::{
    Dataset, EarlyStop, PresetName, Protocol, RunConfig, Scaling, SplitSizes, Task, TaskSpec,
    Trainer,
};
use resonance_lab::rope::schedule::yarn_correction_range;
use resonance_lab::rope::{Method, Schedule};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn authors_tuples_are_lexicographic_combinations_cycled() {
    // combinations(range(5), 4), by hand, then the cycle starts again.
    let t = authors_seed_tuples(5, 4, 7);
    let want: [[u32; 4]; 7] = [
        [0, 1, 2, 3],
        [0, 1, 2, 4],
        [0, 1, 3, 4],
        [0, 2, 3, 4],
        [1, 2, 3, 4],
        [0, 1, 2, 3],
        [0, 1, 2, 4],
    ];
    assert_eq!(t, want.map(|w| w.to_vec()).to_vec());
    // m = 17: (0,1,2,x) for x = 3..=16 are the first 14; C(17,4) = 2380 tuples per cycle;
    // indices 999, 1000, 1999 as Python's itertools.combinations lists them.
    let t = authors_seed_tuples(17, 4, 2381);
    assert_eq!(t[13], [0, 1, 2, 16]);
    assert_eq!(t[14], [0, 1, 3, 4]);
    assert_eq!(t[999], [1, 11, 13, 14]);
    assert_eq!(t[1000], [1, 11, 13, 15]);
    assert_eq!(t[1999], [5, 9, 10, 16]);
    assert_eq!(t[2379], [13, 14, 15, 16]);
    assert_eq!(t[2380], [0, 1, 2, 3]);
}

#[test]
fn authors_splits_overlap_training_and_ignore_the_seed() {
    let spec = TaskSpec::paper(Task::SemiRecursive);
    let preset = SplitSizes {
        train: 7,
        val: 3,
        test: 3,
        train_len: 64,
        eval_len: 256,
    };
    let d = Dataset::generate_with(Protocol::Authors, spec, preset, 1).unwrap();
    assert_eq!(
        (d.train.count(), d.val.count(), d.test.count()),
        (10_000, 1_000, 1_000)
    );
    assert_eq!((d.train.len, d.val.len, d.test.len), (64, 256, 256));
    // Training sequence i starts with tuple i mod 2380.
    assert_eq!(&d.train.seq(2380)[..4], &[0, 1, 2, 3]);
    assert_eq!(&d.train.seq(1000)[..4], &[1, 11, 13, 15]);
    // Validation = training sequences 0..1000, test = 1000..2000, longer: the first L tokens
    // of every validation and test sequence were trained on.
    for i in 0..1000 {
        assert_eq!(&d.val.seq(i)[..64], d.train.seq(i));
        assert_eq!(&d.test.seq(i)[..64], d.train.seq(1000 + i));
    }
    assert_eq!(
        spec.generate(&d.test.seq(5)[..4], 256).unwrap(),
        d.test.seq(5)
    );
    let other = Dataset::generate_with(Protocol::Authors, spec, preset, 99).unwrap();
    assert_eq!(d, other, "the authors' data do not depend on the seed");
    // The clean protocol with the same preset: disjoint tuples and the preset's counts.
    let clean = Dataset::generate_with(Protocol::Clean, spec, preset, 1).unwrap();
    assert_eq!(clean.train.count(), 7);
}

#[test]
fn eval_only_scaling_uses_the_authors_constants() {
    let mut rc = RunConfig::new(PresetName::Tiny, Task::Cot, Method::YARN, true, 0);
    rc.scaling = Scaling::EvalOnly;
    let train = rc.schedule_config(false);
    assert_eq!(train.method, Method::ROPE);
    assert!(train.resonance, "training keeps the Resonance flag");
    let eval = rc.schedule_config(true);
    assert_eq!(eval.method, Method::YARN);
    assert!(eval.resonance);
    assert_eq!(eval.scale, 257.0 / 65.0);
    assert_eq!((eval.beta_fast, eval.beta_slow), (2.0, 1.0));
    // D(r) = 32 ln(257 / (2 pi r)) / (2 ln 1e4): D(2) = 5.243 -> floor 5, D(1) = 6.447 -> ceil 7.
    assert_eq!(yarn_correction_range(&eval), (5.0, 7.0));
    let s = Schedule::new(&eval).unwrap();
    assert!((s.attention_factor - 1.137_468_881_5).abs() < 1e-9);
    assert_eq!(rc.effective_scale(), 257.0 / 65.0);
    // Training-time scaling: the paper's text, s = 4 and the default betas.
    rc.scaling = Scaling::Train;
    let t = rc.schedule_config(false);
    assert_eq!((t.method, t.scale, t.beta_fast), (Method::YARN, 4.0, 32.0));
}

fn small(task: Task, method: Method, resonance: bool, seed: u64, steps: usize) -> RunConfig {
    let mut rc = RunConfig::new(PresetName::Tiny, task, method, resonance, seed);
    rc.steps = steps;
    rc.preset.sizes.train = 256;
    rc.preset.sizes.val = 8;
    rc.preset.sizes.test = 8;
    rc.preset.batch_size = 16;
    rc
}

fn weights(t: &Trainer) -> Vec<Vec<f32>> {
    t.model()
        .named_vars()
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

#[test]
fn paired_runs_of_one_seed_share_data_and_initial_weights() {
    let a = Trainer::new(small(Task::Recursive, Method::ROPE, false, 4, 5)).unwrap();
    let b = Trainer::new(small(Task::Recursive, Method::YARN, true, 4, 5)).unwrap();
    assert_eq!(a.data(), b.data());
    assert_eq!(weights(&a), weights(&b));
    let c = Trainer::new(small(Task::Recursive, Method::ROPE, false, 5, 5)).unwrap();
    assert_ne!(a.data(), c.data());
    assert_ne!(weights(&a), weights(&c));
    // Evaluation-only scaling: RoPE and YaRN train the very same model (same batches too).
    let run = |method| {
        let mut rc = small(Task::Cot, method, false, 2, 6);
        rc.scaling = Scaling::EvalOnly;
        Trainer::new(rc).unwrap().run().unwrap()
    };
    let (rope, yarn) = (run(Method::ROPE), run(Method::YARN));
    assert_eq!(rope.loss_curve, yarn.loss_curve);
}

#[test]
fn early_stopping_stops_on_a_plateau_and_tests_the_best_weights() {
    // A learning rate of 0 never improves the loss: the first check is the best, then
    // `patience` checks without improvement end the run.
    let mut rc = small(Task::Recursive, Method::ROPE, false, 1, 1000);
    rc.preset.lr = 0.0;
    rc.early_stop = Some(EarlyStop {
        patience: 3,
        every: 5,
    });
    let r = Trainer::new(rc.clone()).unwrap().run().unwrap();
    assert!(r.stopped_early);
    assert_eq!(r.steps, 20);
    assert_eq!(r.best_step, 5);
    let steps: Vec<usize> = r.val_loss.iter().map(|p| p.step).collect();
    assert_eq!(steps, [5, 10, 15, 20]);
    // A learning run improves on its checks; the cap ends it when patience is never used up.
    rc.preset.lr = 3e-3;
    rc.steps = 40;
    rc.early_stop = Some(EarlyStop {
        patience: 100,
        every: 10,
    });
    let r = Trainer::new(rc).unwrap().run().unwrap();
    assert!(!r.stopped_early);
    assert_eq!(r.steps, 40);
    let first = r.val_loss.first().unwrap().loss;
    let best = r
        .val_loss
        .iter()
        .map(|p| p.loss)
        .fold(f64::INFINITY, f64::min);
    assert!(best < first, "{:?}", r.val_loss);
    assert_eq!(
        r.best_step,
        r.val_loss.iter().find(|p| p.loss == best).unwrap().step
    );
}

#[test]
fn semi_recursive_stay_positions_follow_the_local_shortcut() {
    let spec = TaskSpec::paper(Task::SemiRecursive);
    // floor((l-4)/2) vs floor((l-5)/2): l = 4 advances, 5 stays, 6 advances, 7 stays, ...
    let kinds: Vec<bool> = (4..10).map(|l| spec.far_advances(l)).collect();
    assert_eq!(kinds, [true, false, true, false, true, false]);
    let d = Dataset::generate(
        spec,
        SplitSizes {
            train: 50,
            val: 1,
            test: 1,
            train_len: 100,
            eval_len: 100,
        },
        3,
    )
    .unwrap();
    let (mut stay_holds, mut advance_holds, mut advance) = (0, 0, 0);
    for i in 0..d.train.count() {
        let x = d.train.seq(i);
        for l in 5..x.len() {
            let shortcut = (2 * x[l - 1] + 17 - x[l - 4]) % 17;
            if spec.far_advances(l) {
                advance += 1;
                advance_holds += (shortcut == x[l]) as usize;
            } else {
                assert_eq!(x[l], shortcut, "sequence {i} position {l}");
                stay_holds += 1;
            }
        }
    }
    assert!(stay_holds > 2000);
    // At advance positions the shortcut is right only by chance (~1/17).
    assert!((advance_holds as f64) < 0.15 * advance as f64);
    // Runs on Semi-recursive report the split; other tasks do not.
    let r = Trainer::new(small(Task::SemiRecursive, Method::ROPE, false, 0, 2))
        .unwrap()
        .run()
        .unwrap();
    let (s, a) = (r.id_stay_accuracy.unwrap(), r.id_advance_accuracy.unwrap());
    // ID positions 4..64: 30 stay and 30 advance, so the ID accuracy is their mean.
    assert!((r.id_accuracy - (s + a) / 2.0).abs() < 1e-12);
    assert!(r.ood_stay_accuracy.is_some() && r.ood_advance_accuracy.is_some());
    let r = Trainer::new(small(Task::Cot, Method::ROPE, false, 0, 1))
        .unwrap()
        .run()
        .unwrap();
    assert!(r.id_stay_accuracy.is_none());
}

#[test]
fn confidence_intervals_match_a_hand_computed_case() {
    // Student t 97.5% quantiles from a printed table.
    assert!((t_quantile_975(4) - 2.776_445).abs() < 1e-5);
    assert!((t_quantile_975(9) - 2.262_157).abs() < 1e-5);
    // 1..5: mean 3, sd sqrt(2.5), half-width 2.776445 * 1.581139 / sqrt(5) = 1.963243.
    let e = estimate(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!((e.n, e.mean), (5, 3.0));
    assert!((e.sd.unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
    let [lo, hi] = e.ci95.unwrap();
    assert!((lo - 1.036_757).abs() < 1e-5 && (hi - 4.963_243).abs() < 1e-5);
    // One value: no interval.
    assert_eq!(estimate(&[2.0]).ci95, None);
}

fn fake_run(task: Task, method: Method, resonance: bool, seed: u64, ood: f64) -> StudyRun {
    let mut r = Trainer::new(small(task, method, resonance, seed, 1))
        .unwrap()
        .run()
        .unwrap();
    r.ood_accuracy = ood;
    StudyRun {
        command: format!("{task:?} {method:?} {resonance} {seed}"),
        budget: Budget::Main,
        result: r,
    }
}

#[test]
fn comparisons_pair_by_seed() {
    // Resonance RoPE - RoPE per seed: +0.10, +0.20, +0.30 (points: 10, 20, 30) even though
    // the RoPE accuracies vary widely across seeds: pairing removes the seed effect.
    let rope = [0.10, 0.50, 0.30];
    let mut runs = Vec::new();
    for (seed, &r) in rope.iter().enumerate() {
        let seed = seed as u64;
        runs.push(fake_run(Task::Recursive, Method::ROPE, false, seed, r));
        let d = 0.1 * (seed as f64 + 1.0);
        runs.push(fake_run(Task::Recursive, Method::ROPE, true, seed, r + d));
    }
    let c = comparisons(&runs, Budget::Main, &[Task::Recursive], None);
    let ood = c
        .iter()
        .find(|c| c.metric == "ood" && c.a == "Resonance RoPE" && c.b == "RoPE")
        .unwrap();
    assert_eq!(ood.n, 3);
    assert!((ood.mean_diff - 20.0).abs() < 1e-9);
    // sd 10, half-width t(2) * 10 / sqrt 3 = 4.302653 * 5.773503 = 24.841...
    assert!((ood.ci95.unwrap()[1] - ood.mean_diff - 24.841_387).abs() < 1e-4);
    assert_eq!(ood.verdict, Verdict::Unclear);
    // Comparisons whose runs are missing are left out, not invented.
    assert!(!c.iter().any(|c| c.a == "Resonance YaRN"));
}

/// The budget checks' study: Recursive, seeds 0..2, the first two also trained with the doubled
/// budget.
fn recursive_check_config() -> StudyConfig {
    StudyConfig {
        preset: PresetName::Tiny,
        tasks: vec![Task::Recursive],
        seeds: vec![0, 1, 2],
        protocol: Protocol::Clean,
        scaling: Scaling::Train,
        cap: 10,
        early_stop: EarlyStop {
            patience: 2,
            every: 5,
        },
        check_seeds: 2,
    }
}

/// The budget check by hand: RoPE on Recursive, OOD 10, 50, 30 % on seeds 0..2 at the main
/// budget (across-seed sd 20 points) and 20, 40 % on check seeds 0, 1 at the doubled budget (each
/// run moves 10 points). Resonance RoPE scores 20, 60, 30 % (main) and 40, 45 % (doubled), so
/// Resonance RoPE - RoPE is +10, +10 (main) and +20, +5 (doubled) on the check seeds: shifts of
/// +10 and -5, mean +2.5, sd 10.607, half-width t(1) * 10.607 / sqrt 2 = 95.30.
#[test]
fn budget_check_reports_the_change_per_run_against_the_spread_across_seeds() {
    let mut runs = Vec::new();
    let main = [(false, [0.10, 0.50, 0.30]), (true, [0.20, 0.60, 0.30])];
    for (resonance, oods) in main {
        for (seed, ood) in oods.into_iter().enumerate() {
            runs.push(fake_run(
                Task::Recursive,
                Method::ROPE,
                resonance,
                seed as u64,
                ood,
            ));
        }
    }
    for (resonance, oods) in [(false, [0.20, 0.40]), (true, [0.40, 0.45])] {
        for (seed, ood) in oods.into_iter().enumerate() {
            let mut r = fake_run(Task::Recursive, Method::ROPE, resonance, seed as u64, ood);
            r.budget = Budget::Double;
            runs.push(r);
        }
    }
    let config = recursive_check_config();
    let b = budget_check(&runs, &config).unwrap();
    assert_eq!(b.seeds, [0, 1]);
    let rope = |v: &[(String, f64)]| v.iter().find(|(m, _)| m == "RoPE").unwrap().1;
    assert!((rope(&b.mean_abs_ood_change) - 10.0).abs() < 1e-9);
    assert!((rope(&b.ood_seed_sd) - 20.0).abs() < 1e-9);
    let shift = b
        .shifts
        .iter()
        .find(|c| c.metric == "ood" && c.a == "Resonance RoPE" && c.b == "RoPE")
        .unwrap();
    assert_eq!(shift.n, 2);
    assert!((shift.mean_diff - 2.5).abs() < 1e-9);
    assert!((shift.ci95.unwrap()[1] - 2.5 - 95.297).abs() < 1e-2);
    assert_eq!(shift.verdict, Verdict::Unclear);
    // a comparison with no doubled runs of one side has no shift
    assert!(!b.shifts.iter().any(|c| c.a == "Resonance YaRN"));
    // check seeds without doubled runs yet (a study part-way) are left out of the check
    runs.retain(|r| r.budget == Budget::Main || r.result.seed == 0);
    assert_eq!(budget_check(&runs, &config).unwrap().seeds, [0]);
    // no doubled runs: no check
    runs.retain(|r| r.budget == Budget::Main);
    assert!(budget_check(&runs, &config).is_none());
}

/// A clear verdict over all seeds (Resonance RoPE - RoPE: +10, +11, +11 points) that the doubled
/// budget turns clearly the other way on the check seeds (-20, -19) is a reversed conclusion; the
/// ID comparison, equal everywhere, is not.
#[test]
fn budget_check_names_conclusions_the_doubled_budget_reverses() {
    let mut runs = Vec::new();
    for (resonance, budget, oods) in [
        (false, Budget::Main, vec![0.10, 0.20, 0.30]),
        (true, Budget::Main, vec![0.20, 0.31, 0.41]),
        (false, Budget::Double, vec![0.50, 0.60]),
        (true, Budget::Double, vec![0.30, 0.41]),
    ] {
        for (seed, ood) in oods.into_iter().enumerate() {
            let mut r = fake_run(Task::Recursive, Method::ROPE, resonance, seed as u64, ood);
            r.result.id_accuracy = 0.9;
            r.budget = budget;
            runs.push(r);
        }
    }
    let config = recursive_check_config();
    let b = budget_check(&runs, &config).unwrap();
    assert_eq!(b.reversed, ["recursive ood Resonance RoPE - RoPE"]);
    // on the check seeds the main budget already said "Resonance RoPE higher" (+10, +11)
    assert!(
        b.changed
            .contains(&"recursive ood Resonance RoPE - RoPE".to_string())
    );
    let report = StudyResult::new(config, "test".into(), runs).markdown();
    assert!(
        report.contains("doubled budget): recursive ood Resonance RoPE - RoPE."),
        "{report}"
    );
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resonance-lab"))
}

fn study_args(out: &std::path::Path) -> Vec<String> {
    [
        "posgen",
        "study",
        "--tasks",
        "recursive",
        "--seeds",
        "2",
        "--steps",
        "2",
        "--patience",
        "1",
        "--stop-every",
        "1",
        "--check-seeds",
        "1",
        "--jobs",
        "1",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

fn read_study(path: &std::path::Path) -> StudyResult {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_killed_study_resumes_without_losing_a_run() {
    let dir = std::env::temp_dir().join(format!("posgen-study-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("s");
    let json = out.with_extension("json");
    let _ = std::fs::remove_file(&json);
    // Start, wait for the first finished runs, kill.
    let mut child = bin()
        .args(study_args(&out))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let before = loop {
        if let Ok(text) = std::fs::read_to_string(&json)
            && let Ok(r) = serde_json::from_str::<StudyResult>(&text)
            && r.runs.len() >= 2
        {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no run finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = read_study(&json);
    assert!(killed.runs.len() >= before.runs.len() && !killed.complete());
    // Resume: every run recorded before the kill is kept as it was, the rest are added.
    let o = bin().args(study_args(&out)).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{} already in", killed.runs.len())),
        "{err}"
    );
    let done = read_study(&json);
    assert!(done.complete());
    // 2 seeds x 4 schedules + the budget check's 1 seed x 4.
    assert_eq!(done.runs.len(), 12);
    for r in &killed.runs {
        assert!(done.runs.contains(r), "lost or changed: {}", r.command);
    }
    let mut commands: Vec<&str> = done.runs.iter().map(|r| r.command.as_str()).collect();
    commands.sort();
    commands.dedup();
    assert_eq!(commands.len(), 12, "a run ran twice");
    // Each recorded command reproduces its run.
    let r = &done.runs[0];
    let args: Vec<&str> = r.command.split_whitespace().skip(2).collect();
    assert!(
        r.command
            .starts_with("RAYON_NUM_THREADS=1 resonance-lab posgen train")
    );
    let o = bin()
        .args(&args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        again["ood_accuracy"].as_f64().unwrap(),
        r.result.ood_accuracy
    );
    assert!(
        std::fs::read_to_string(out.with_extension("md"))
            .unwrap()
            .contains("## The answer")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn study_config_plans_paired_runs_with_reproducing_commands() {
    let c = StudyConfig {
        preset: PresetName::Tiny,
        tasks: vec![Task::Cot],
        seeds: vec![0, 1, 2],
        protocol: Protocol::Authors,
        scaling: Scaling::EvalOnly,
        cap: 100,
        early_stop: EarlyStop {
            patience: 4,
            every: 10,
        },
        check_seeds: 1,
    };
    let plan = c.plan();
    assert_eq!(plan.len(), 3 * 4 + 4);
    let double: Vec<_> = plan.iter().filter(|p| p.budget == Budget::Double).collect();
    assert!(double.iter().all(|p| p.seed == 0));
    assert!(command(&double[0].spec).contains("--steps 200 --patience 8"));
    assert_eq!(
        command(&plan[3].spec),
        "RAYON_NUM_THREADS=1 resonance-lab posgen train --task cot --method yarn --resonance \
         --preset tiny --seed 0 --protocol authors --scaling eval-only --steps 100 \
         --patience 4 --stop-every 10"
    );
}

#[test]
fn evaluation_only_runs_share_one_training_per_rope_yarn_pair() {
    let mut c = StudyConfig {
        preset: PresetName::Tiny,
        tasks: vec![Task::Cot, Task::Recursive],
        seeds: vec![0, 1],
        protocol: Protocol::Authors,
        scaling: Scaling::EvalOnly,
        cap: 10,
        early_stop: EarlyStop {
            patience: 1,
            every: 5,
        },
        check_seeds: 0,
    };
    let plan = c.plan();
    let b = batches(c.scaling, &plan);
    assert_eq!(b.len(), plan.len() / 2);
    for (spec, runs) in &b {
        let args = train_args(spec);
        // YaRN trains and is tested first, RoPE (same task, seed, flag) is the second test.
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].method, runs[1].method),
            (Method::YARN, Method::ROPE)
        );
        assert_eq!(
            (runs[0].task, runs[0].seed, runs[0].resonance),
            (runs[1].task, runs[1].seed, runs[1].resonance)
        );
        assert_eq!(&args[..args.len() - 2], &train_args(&runs[0].spec)[..]);
        assert_eq!(&args[args.len() - 2..], ["--also-eval-method", "rope"]);
    }
    // Whatever is already done stays done: a lone YaRN run is a batch of its own.
    let rest: Vec<_> = plan.iter().skip(1).cloned().collect();
    assert_eq!(
        batches(c.scaling, &rest)
            .iter()
            .filter(|(_, r)| r.len() == 1)
            .count(),
        1
    );
    // Training-time scaling: every run trains differently, one process each.
    c.scaling = Scaling::Train;
    assert!(
        batches(c.scaling, &c.plan())
            .iter()
            .all(|(_, r)| r.len() == 1)
    );
    // The pair's second result is what the RoPE run's own command gives (4 steps here).
    let short = |args: &[String]| -> Vec<String> {
        let mut a = args.to_vec();
        if let Some(i) = a.iter().position(|x| x == "--steps") {
            a[i + 1] = "4".into();
        }
        a
    };
    let o = bin().args(short(&train_args(&b[0].0))).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let both: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let o = bin()
        .args(short(&train_args(&b[0].1[1].spec)))
        .output()
        .unwrap();
    let alone: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in [
        "method",
        "resonance",
        "id_accuracy",
        "ood_accuracy",
        "per_position_accuracy",
    ] {
        assert_eq!(both[1][k], alone[k], "{k}");
    }
    assert_eq!(both[0]["method"], "yarn");
}

#[test]
fn study_and_train_reject_bad_input_with_exit_2() {
    let bad: [(&[&str], &str); 6] = [
        (
            &["posgen", "study", "--protocol", "nope", "--out", "x"],
            "--protocol",
        ),
        (
            &["posgen", "study", "--seeds", "0", "--out", "x"],
            "--seeds",
        ),
        (
            &["posgen", "study", "--patience", "0", "--out", "x"],
            "--patience",
        ),
        (
            &["posgen", "study", "--check-seeds", "11", "--out", "x"],
            "--check-seeds",
        ),
        (
            &["posgen", "train", "--task", "cot", "--patience", "0"],
            "--patience",
        ),
        (
            &["posgen", "train", "--task", "cot", "--protocol", "x"],
            "--protocol",
        ),
    ];
    for (args, needle) in bad {
        let o = bin().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn probe_plans_cheapest_shapes_first_under_every_protocol() {
    use resonance_lab::posgen::probe::ProbeConfig;
    let c = ProbeConfig {
        task: Task::SemiRecursive,
        preset: PresetName::Tiny,
        depths: vec![4, 2],
        widths: vec![128, 64],
        budgets: vec![10],
        protocols: vec![Protocol::Clean, Protocol::Authors],
        seed: 0,
    };
    let flag = |args: &[String], f: &str| {
        let i = args.iter().position(|a| a == f).unwrap();
        args[i + 1].clone()
    };
    // cost steps x width^2 x depth: 2x64 (81920) < 4x64 < 2x128 < 4x128; each shape under
    // both protocols before the next
    let plan: Vec<Vec<String>> = c.plan().iter().map(train_args).collect();
    let got: Vec<(String, String, String)> = plan
        .iter()
        .map(|a| {
            (
                flag(a, "--layers"),
                flag(a, "--d-model"),
                flag(a, "--protocol"),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> =
        [("2", "64"), ("4", "64"), ("2", "128"), ("4", "128")]
            .iter()
            .flat_map(|&(d, w)| {
                ["clean", "authors"].map(|p| (d.to_string(), w.to_string(), p.to_string()))
            })
            .collect();
    assert_eq!(got, want);
    // validation every budget / 10 steps
    assert!(plan.iter().all(|a| flag(a, "--eval-every") == "1"));
}

#[test]
fn a_probe_report_lists_planned_runs_that_did_not_finish() {
    use resonance_lab::posgen::probe::ProbeResult;
    let dir = std::env::temp_dir().join(format!("posgen-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("p");
    let _ = std::fs::remove_file(out.with_extension("json"));
    let probe = |widths: &str, extra: &[&str]| {
        let o = bin()
            .args([
                "posgen",
                "probe",
                "--depths",
                "1",
                "--widths",
                widths,
                "--budgets",
                "2",
                "--protocols",
                "clean",
                "--jobs",
                "1",
                "--out",
            ])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let json = std::fs::read_to_string(out.with_extension("json")).unwrap();
        let md = std::fs::read_to_string(out.with_extension("md")).unwrap();
        (serde_json::from_str::<ProbeResult>(&json).unwrap(), md)
    };
    let (done, md) = probe("32", &[]);
    assert_eq!(done.runs.len(), 1);
    assert!(!md.contains("not finished"), "{md}");
    // a wider grid, reported only: nothing runs, the new shape is listed as not finished
    let (partial, md) = probe("32,64", &["--report-only"]);
    assert_eq!(partial.runs, done.runs);
    assert_eq!(partial.planned_runs, 2);
    assert!(md.contains("1 of 2 planned runs finished"), "{md}");
    assert!(
        md.contains("not finished (the probe was stopped; the same command resumes it): 1 layers x 64 wide, 2 steps, protocol clean."),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The probe report's finding names, per protocol, the run with the highest ID accuracy at
/// advance positions (found here by a plain scan of the committed probe's runs), and warns that
/// the authors' protocol tests on trained sequences.
#[test]
fn a_probe_report_names_each_protocols_best_far_lookup() {
    use resonance_lab::posgen::probe::ProbeResult;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/results/posgen_probe.json");
    let probe: ProbeResult = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let md = probe.markdown();
    let finding = &md[md.find("## What it shows").unwrap()..];
    for protocol in ["clean", "authors"] {
        let mut best = (f64::MIN, String::new());
        for r in probe.runs.iter().filter(|r| r.result.protocol == protocol) {
            let v = r.result.id_advance_accuracy.unwrap();
            if v > best.0 {
                best = (
                    v,
                    format!(
                        "protocol {protocol}: {:.1} % ({} layers x {} wide, {} steps)",
                        100.0 * v,
                        r.result.layers,
                        r.result.d_model,
                        r.result.steps
                    ),
                );
            }
        }
        assert!(finding.contains(&best.1), "{} not in {finding}", best.1);
    }
    assert!(finding.contains("memorised tokens"), "{finding}");
    // a clean-only probe has no such warning
    let mut clean = probe.clone();
    clean.runs.retain(|r| r.result.protocol == "clean");
    clean.config.protocols.retain(|p| p.name() == "clean");
    assert!(!clean.markdown().contains("memorised"));
}

/// Runs `posgen reproduce FILE EXTRA...`: exit code, the printed document (null when none),
/// stderr.
fn reproduce(file: &std::path::Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let o = bin()
        .args(["posgen", "reproduce"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    (
        o.status.code(),
        doc,
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// A finished 4-run Semi-recursive study of 3-step runs in `dir`; returns its JSON path.
fn tiny_semi_recursive_study(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("s");
    let _ = std::fs::remove_file(out.with_extension("json"));
    let o = bin()
        .args([
            "posgen",
            "study",
            "--tasks",
            "semi-recursive",
            "--seeds",
            "1",
            "--steps",
            "3",
            "--patience",
            "1",
            "--stop-every",
            "1",
            "--check-seeds",
            "0",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.with_extension("json")
}

/// `posgen reproduce` reruns a results file's recorded commands: an untouched file reproduces
/// exactly (same binary, one thread), and an edited accuracy is caught with its size and exit 1
/// (the document still printed).
#[test]
fn reproduce_reruns_recorded_commands_and_catches_an_edited_result() {
    let dir = std::env::temp_dir().join(format!("posgen-reproduce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = tiny_semi_recursive_study(&dir);
    let (code, doc, err) = reproduce(&json, &["--all"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["reproduced"], true);
    assert_eq!(doc["rerun"], 4);
    assert_eq!(doc["max_abs_diff"].as_f64(), Some(0.0));
    let first = &doc["runs"][0];
    // Semi-recursive runs are compared on the stay/advance split too.
    assert_eq!(first["accuracies"].as_object().unwrap().len(), 6);
    assert!(
        first["command"]
            .as_str()
            .unwrap()
            .starts_with("RAYON_NUM_THREADS=1 resonance-lab posgen train")
    );
    let (code, doc, _) = reproduce(&json, &["--runs", "1", "--jobs", "1"]);
    assert_eq!((code, doc["rerun"].as_u64()), (Some(0), Some(1)));

    // Edit one recorded accuracy by 5 points.
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &mut edited["runs"][2];
    let was = run["ood_accuracy"].as_f64().unwrap();
    let now = if was > 0.5 { was - 0.05 } else { was + 0.05 };
    run["ood_accuracy"] = serde_json::json!(now);
    let command = run["command"].as_str().unwrap().to_string();
    let edited_path = dir.join("edited.json");
    std::fs::write(&edited_path, edited.to_string()).unwrap();
    let (code, doc, err) = reproduce(&edited_path, &["--all"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(doc["reproduced"], false);
    assert!(err.contains("1 of 4 rerun runs differ"), "{err}");
    let off: Vec<&serde_json::Value> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["within_tolerance"] == false)
        .collect();
    assert_eq!(off.len(), 1);
    assert_eq!(off[0]["command"].as_str(), Some(command.as_str()));
    let diff = off[0]["accuracies"]["ood_accuracy"]["abs_diff"]
        .as_f64()
        .unwrap();
    assert!((diff - 0.05).abs() < 1e-9, "{diff}");
    // A tolerance above the edit accepts it.
    let (code, _, err) = reproduce(&edited_path, &["--all", "--tolerance", "0.06"]);
    assert_eq!(code, Some(0), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad input to `posgen reproduce` exits 2 with one line, prints nothing and runs nothing: a
/// missing or empty file, a recorded command other than `posgen train`, `--runs` out of range,
/// a tolerance outside 0..=1.
#[test]
fn reproduce_rejects_bad_input_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("posgen-reproduce-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = tiny_semi_recursive_study(&dir);
    let mut foreign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    foreign["runs"][0]["command"] =
        serde_json::json!("RAYON_NUM_THREADS=1 resonance-lab posgen study --out /tmp/x");
    let foreign_path = dir.join("foreign.json");
    std::fs::write(&foreign_path, foreign.to_string()).unwrap();
    let no_runs_path = dir.join("no-runs.json");
    std::fs::write(&no_runs_path, r#"{"runs": []}"#).unwrap();
    let missing = dir.join("missing.json");
    for (file, extra, needle) in [
        (&missing, &[][..], "FILE"),
        (&no_runs_path, &[][..], "FILE"),
        (&foreign_path, &["--all"][..], "posgen train"),
        (&json, &["--runs", "0"][..], "--runs"),
        (&json, &["--runs", "5"][..], "--runs"),
        (&json, &["--tolerance", "2"][..], "--tolerance"),
    ] {
        let (code, doc, err) = reproduce(file, extra);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(doc.is_null(), "{extra:?}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
