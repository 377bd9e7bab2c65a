//! PosGen: generators against hand-derived sequences, split disjointness, gradient flow,
//! deterministic learning, and CLI bad input.
// Test helpers unwrap freely: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))] // native-only: runs the binary / uses native dev-deps

use resonance_lab::posgen::{
    Dataset, PresetName, RunConfig, SplitSizes, Task, TaskSpec, Trainer, time_to_converge,
};
use resonance_lab::rope::Method;
use std::collections::HashSet;
use std::process::Command;

fn spec7(task: Task) -> TaskSpec {
    TaskSpec {
        task,
        modulus: 7,
        j: 1,
        k: 3,
    }
}

#[test]
fn generators_match_hand_derived_modulus_7() {
    let seeds = [2, 0, 3, 1];
    let cases = [
        (Task::Recursive, [6, 3, 6, 2, 3, 0, 4, 2]),
        (Task::Cot, [6, 5, 0, 6, 6, 0, 0, 1]),
        (Task::SemiRecursive, [6, 5, 5, 2, 1, 4, 1, 0]),
    ];
    for (task, cont) in cases {
        let seq = spec7(task).generate(&seeds, 12).unwrap();
        assert_eq!(&seq[..4], &seeds);
        assert_eq!(&seq[4..], &cont, "{task:?}");
    }
}

#[test]
fn generator_rejects_short_length() {
    let e = spec7(Task::Cot).generate(&[1, 2, 3, 4], 3).unwrap_err();
    assert_eq!(e.field, "len");
}

#[test]
fn splits_do_not_share_seed_tuples_and_are_deterministic() {
    let sizes = SplitSizes {
        train: 300,
        val: 50,
        test: 50,
        train_len: 16,
        eval_len: 40,
    };
    let spec = TaskSpec {
        task: Task::SemiRecursive,
        modulus: 5,
        j: 1,
        k: 3,
    };
    let d = Dataset::generate(spec, sizes, 9).unwrap();
    let tuples = |s: &resonance_lab::posgen::Split| -> Vec<Vec<u32>> {
        (0..s.count()).map(|i| s.seq(i)[..4].to_vec()).collect()
    };
    let all: Vec<Vec<u32>> = [tuples(&d.train), tuples(&d.val), tuples(&d.test)].concat();
    let set: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(set.len(), all.len(), "seed tuples overlap");
    assert_eq!(d, Dataset::generate(spec, sizes, 9).unwrap());
    assert_ne!(d, Dataset::generate(spec, sizes, 10).unwrap());
    // Every sequence follows the recurrence.
    for i in 0..d.test.count() {
        let s = d.test.seq(i);
        assert_eq!(spec.generate(&s[..4], s.len()).unwrap(), s);
    }
}

fn small_run(task: Task, method: Method, resonance: bool, steps: usize) -> RunConfig {
    let mut rc = RunConfig::new(PresetName::Tiny, task, method, resonance, 3);
    rc.steps = steps;
    rc.preset.sizes.train = 256;
    rc.preset.sizes.val = 8;
    rc.preset.sizes.test = 8;
    rc.preset.batch_size = 16;
    rc.spec.modulus = 5;
    rc
}

#[test]
fn short_training_learns_deterministically() {
    let rc = small_run(Task::Recursive, Method::ROPE, false, 60);
    let mut a = Trainer::new(rc.clone()).unwrap();
    let ra = a.run().unwrap();
    let first: f32 = ra.loss_curve[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = ra.loss_curve[ra.loss_curve.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(last < first, "loss did not fall: {first} -> {last}");
    assert!(
        ra.id_accuracy > 1.5 / 5.0,
        "ID accuracy {} near chance 0.2",
        ra.id_accuracy
    );
    assert_eq!(ra.per_position_accuracy.len(), 256 - 4);
    let mut b = Trainer::new(rc).unwrap();
    let rb = b.run().unwrap();
    assert_eq!(ra.loss_curve, rb.loss_curve);
    assert_eq!(ra.per_position_accuracy, rb.per_position_accuracy);
}

#[test]
fn time_to_converge_stops_at_the_first_validation_that_reaches_the_target() {
    // Any accuracy reaches 0: the run stops at the first validation pass.
    let c = time_to_converge(small_run(Task::Recursive, Method::ROPE, false, 20), 0.0, 4).unwrap();
    assert!(c.reached);
    assert_eq!((c.steps, c.validation.len()), (4, 1));
    assert!(c.seconds > 0.0 && c.steps_per_second > 0.0);
    // Accuracy 1 is out of reach of 6 steps: all steps run, one pass every 4 plus the last.
    let c = time_to_converge(small_run(Task::Recursive, Method::ROPE, false, 6), 1.0, 4).unwrap();
    assert!(!c.reached);
    assert_eq!(c.steps, 6);
    let steps: Vec<usize> = c.validation.iter().map(|v| v.step).collect();
    assert_eq!(steps, [4, 6]);
    // The learning run of the test above: stops at the first pass at or above the target.
    let a = time_to_converge(
        small_run(Task::Recursive, Method::ROPE, false, 60),
        0.35,
        10,
    )
    .unwrap();
    assert!(a.reached, "{:?}", a.validation);
    let (last, before) = a.validation.split_last().unwrap();
    assert_eq!(last.step, a.steps);
    assert!(last.id_accuracy >= 0.35 && before.iter().all(|v| v.id_accuracy < 0.35));
    assert!(a.steps < 60, "{:?}", a.validation);
    assert!(time_to_converge(small_run(Task::Cot, Method::ROPE, false, 2), 1.5, 1).is_err());
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_resonance-lab"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn cli_sample_reproduces_spec_example() {
    let (code, out, _) = cli(&[
        "posgen",
        "sample",
        "--task",
        "cot",
        "--len",
        "12",
        "--modulus",
        "7",
        "--seed-tokens",
        "2,0,3,1",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["task"], "cot");
    assert_eq!(
        v["sequences"][0],
        serde_json::json!([2, 0, 3, 1, 6, 5, 0, 6, 6, 0, 0, 1])
    );
}

#[test]
fn cli_bad_input_exits_2_with_one_line() {
    let bad: [(&[&str], &str); 4] = [
        (
            &["posgen", "sample", "--task", "nope", "--len", "8"],
            "--task",
        ),
        (
            &[
                "posgen",
                "sample",
                "--task",
                "cot",
                "--len",
                "8",
                "--modulus",
                "1",
            ],
            "--modulus",
        ),
        (
            &["posgen", "sample", "--task", "cot", "--len", "3"],
            "--len",
        ),
        (
            &["posgen", "train", "--task", "cot", "--steps", "0"],
            "--steps",
        ),
    ];
    for (args, needle) in bad {
        let (code, out, err) = cli(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?} printed {out}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
