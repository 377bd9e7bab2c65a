//! The `posgen train` command line: its options, and the two directions between them and the
//! library's typed run description ([`TrainSpec`]). Studies and probes plan `TrainSpec`s; this
//! module alone renders them into the `command` a results file records and parses a recorded
//! command back, so the library depends on no command-line syntax.

use super::CliError;
use super::common::{self, in_range};
use crate::posgen::{PresetName, Protocol, Scaling, Task, TrainSpec};
use crate::rope::Method;
use clap::{Args, FromArgMatches, Parser};

/// The environment every study run is started with: one thread per run, so that runs in
/// parallel each own a core and a re-run gives the same numbers.
pub const RUN_ENV: (&str, &str) = ("RAYON_NUM_THREADS", "1");

/// The command line recorded for a run with arguments `args` (environment, program, args).
pub fn command_line(args: &[String]) -> String {
    format!(
        "{}={} resonance-lab {}",
        RUN_ENV.0,
        RUN_ENV.1,
        args.join(" ")
    )
}

/// Options of `posgen train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Task.
    #[arg(long, value_parser = common::task())]
    pub task: Task,
    /// Frequency schedule (scaled methods use s = eval-len / train-len = 4).
    #[arg(long, value_parser = super::schedule_args::method_parser(), default_value = "rope")]
    pub method: Method,
    /// Resonance rounding after the schedule.
    #[arg(long)]
    pub resonance: bool,
    /// Hyper-parameter preset.
    #[arg(long, value_parser = common::preset(), default_value = "tiny")]
    pub preset: PresetName,
    /// Seed of data, weights and batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How the splits are drawn: disjoint random seed tuples, or the authors' code [default:
    /// clean].
    #[arg(long, value_parser = common::protocol())]
    pub protocol: Option<Protocol>,
    /// Where scaling applies: in training (paper text) or only at evaluation (authors' code)
    /// [default: train].
    #[arg(long, value_parser = common::scaling())]
    pub scaling: Option<Scaling>,
    /// Modulus, 2..=1024 [default: the preset's, 17].
    #[arg(long, allow_negative_numbers = true)]
    pub modulus: Option<i64>,
    /// Transformer blocks, 1..=64 [default: the preset's].
    #[arg(long, allow_negative_numbers = true)]
    pub layers: Option<i64>,
    /// Residual width, a multiple of the head dimension [default: the preset's]; heads =
    /// d-model / head dimension, feed-forward width 2 x d-model.
    #[arg(long = "d-model", allow_negative_numbers = true)]
    pub d_model: Option<i64>,
    /// Optimiser steps, 1..=10000000 [default: the preset's].
    #[arg(long, allow_negative_numbers = true)]
    pub steps: Option<i64>,
    /// Stop when the ID validation loss has not improved for this many checks (--steps is
    /// then the cap), and test the best weights; 1..=100000 [default: fixed steps].
    #[arg(long, allow_negative_numbers = true)]
    pub patience: Option<i64>,
    /// Steps between early-stopping checks, 1..=10000000 [default: 50].
    #[arg(long = "stop-every", allow_negative_numbers = true)]
    pub stop_every: Option<i64>,
    /// Evaluate the validation split every N steps [default: never].
    #[arg(long = "eval-every", allow_negative_numbers = true)]
    pub eval_every: Option<i64>,
    /// Also test the trained model with this schedule at evaluation (evaluation-only scaling
    /// trains RoPE and YaRN identically): prints a JSON list of both results.
    #[arg(long = "also-eval-method", value_parser = super::schedule_args::method_parser())]
    pub also_eval_method: Option<Method>,
}

fn count(field: &str, v: Option<i64>, lo: i64, hi: i64) -> Result<Option<usize>, CliError> {
    v.map(|v| in_range(field, v, lo, hi).map(|v| v as usize))
        .transpose()
}

impl TrainArgs {
    /// The run these options describe; integer options are checked against their ranges.
    pub fn spec(&self) -> Result<TrainSpec, CliError> {
        Ok(TrainSpec {
            protocol: self.protocol,
            scaling: self.scaling,
            modulus: count("modulus", self.modulus, 2, 1024)?.map(|m| m as u32),
            layers: count("layers", self.layers, 1, 64)?,
            d_model: count("d_model", self.d_model, 1, 4096)?,
            steps: count("steps", self.steps, 1, 10_000_000)?,
            patience: count("patience", self.patience, 1, 100_000)?,
            stop_every: count("stop_every", self.stop_every, 1, 10_000_000)?,
            eval_every: count("eval_every", self.eval_every, 0, 10_000_000)?,
            also_eval_method: self.also_eval_method,
            ..TrainSpec::new(
                self.task,
                self.method,
                self.resonance,
                self.preset,
                self.seed,
            )
        })
    }
}

/// The `posgen train ...` arguments of a run, in one fixed order (the order recorded commands
/// have always had): what is `None` in the description is not written.
pub fn train_args(s: &TrainSpec) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "posgen".into(),
        "train".into(),
        "--task".into(),
        s.task.name().into(),
        "--method".into(),
        s.method.name().into(),
    ];
    if s.resonance {
        a.push("--resonance".into());
    }
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.into());
            a.push(v);
        }
    };
    opt("--preset", Some(s.preset.name().into()));
    opt("--seed", Some(s.seed.to_string()));
    opt("--protocol", s.protocol.map(|p| p.name().into()));
    opt("--scaling", s.scaling.map(|x| x.name().into()));
    opt("--modulus", s.modulus.map(|v| v.to_string()));
    opt("--layers", s.layers.map(|v| v.to_string()));
    opt("--d-model", s.d_model.map(|v| v.to_string()));
    opt("--steps", s.steps.map(|v| v.to_string()));
    opt("--patience", s.patience.map(|v| v.to_string()));
    opt("--stop-every", s.stop_every.map(|v| v.to_string()));
    opt("--eval-every", s.eval_every.map(|v| v.to_string()));
    opt(
        "--also-eval-method",
        s.also_eval_method.map(|m| m.name().into()),
    );
    a
}

/// The command a results file records for a run.
pub fn command(s: &TrainSpec) -> String {
    command_line(&train_args(s))
}

/// `posgen train`'s options alone, for parsing recorded arguments.
#[derive(Parser, Debug)]
#[command(name = "posgen-train", no_binary_name = true)]
struct TrainOnly {
    #[command(flatten)]
    args: TrainArgs,
}

/// The run of recorded `posgen train ...` arguments; `None` for any other command line.
pub fn parse_train_args(args: &[String]) -> Option<TrainSpec> {
    let rest = match args {
        [p, t, rest @ ..] if p == "posgen" && t == "train" => rest,
        _ => return None,
    };
    let m = <TrainOnly as clap::CommandFactory>::command()
        .try_get_matches_from(rest)
        .ok()?;
    TrainOnly::from_arg_matches(&m).ok()?.args.spec().ok()
}

/// The run of a recorded command (as [`command_line`] writes it:
/// `RAYON_NUM_THREADS=1 resonance-lab posgen train ...`); any other command is refused, so a
/// results file can only make this program train.
pub fn parse_command(command: &str) -> Option<TrainSpec> {
    let args: Vec<String> = command
        .strip_prefix(&command_line(&[]))?
        .split_whitespace()
        .map(String::from)
        .collect();
    parse_train_args(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recorded_train_commands_parse() {
        let s = parse_command("RAYON_NUM_THREADS=1 resonance-lab posgen train --task cot --seed 3")
            .expect("a train command");
        assert_eq!((s.task, s.seed), (Task::Cot, 3));
        for bad in [
            "resonance-lab posgen train --task cot",
            "RAYON_NUM_THREADS=1 resonance-lab posgen study --out x",
            "RAYON_NUM_THREADS=1 resonance-lab config /etc/passwd",
            "RAYON_NUM_THREADS=1 resonance-lab posgen train --task nope",
        ] {
            assert_eq!(parse_command(bad), None, "{bad}");
        }
    }

    #[test]
    fn rendering_and_parsing_are_inverse() {
        let mut s = TrainSpec::new(Task::SemiRecursive, Method::YARN, true, PresetName::Tiny, 7);
        s.protocol = Some(Protocol::Authors);
        s.scaling = Some(Scaling::EvalOnly);
        s.steps = Some(4000);
        s.patience = Some(24);
        s.stop_every = Some(50);
        s.also_eval_method = Some(Method::ROPE);
        assert_eq!(parse_command(&command(&s)), Some(s.clone()));
        let plain = TrainSpec::new(Task::Cot, Method::ROPE, false, PresetName::Paper, 0);
        assert_eq!(
            command(&plain),
            "RAYON_NUM_THREADS=1 resonance-lab posgen train --task cot --method rope --preset paper --seed 0"
        );
    }
}
