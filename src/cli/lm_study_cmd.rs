//! `lm study` and `lm reproduce`. The study runs every arm of every seed as child processes of
//! this binary (one thread each, `--jobs` at a time), so the command a run records is exactly
//! what ran; checkpoints go to `<out>.work/` and the results file is rewritten (atomically)
//! after every finished run, so a killed study resumes where it stopped. `reproduce` reruns
//! recorded runs from nothing, pretraining included, in a temporary directory.

use super::CliError;
use super::common::{BatchOutput, JobsArgs, in_range};
use super::lm_cmds::{CorpusDir, corpus_parser, is_checkpoint, lm_preset_parser, parse_lengths};
use super::runner::{load_finished, write_results};
use super::train_command::{RUN_ENV, command_line};
use crate::lm::CheckpointMeta;
use crate::lm::corpus::{Corpus, CorpusName};
use crate::lm::preset::{LmPreset, LmPresetName};
use crate::lm::study::{
    Arm, Budget, BudgetCheck, LmRun, LmStudyConfig, LmStudyResult, PositionCurve,
};
use clap::Args;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Options of `lm study`.
#[derive(Args, Debug)]
pub struct LmStudyArgs {
    /// Corpus.
    #[arg(long, value_parser = corpus_parser())]
    pub corpus: CorpusName,
    /// Settings preset.
    #[arg(long, value_parser = lm_preset_parser(), default_value = "small")]
    pub preset: LmPresetName,
    /// Paired seeds 0..N, 1..=100.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub seeds: i64,
    /// The first K seeds also run with patience and step cap doubled, 0..=seeds.
    #[arg(
        long = "budget-check-seeds",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub budget_check_seeds: i64,
    /// Comma-separated evaluation lengths [default: L, 2L, 4L, 8L].
    #[arg(long)]
    pub lengths: Option<String>,
    /// YaRN's scale factor s (fine-tuning "long" runs at s x L), 1..=16.
    #[arg(long, default_value_t = 4, allow_negative_numbers = true)]
    pub scale: i64,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub output: BatchOutput,
    #[command(flatten)]
    pub dir: CorpusDir,
}

/// One planned run: its seed, budget, arm, and the steps that produce it.
#[derive(Clone, Debug)]
struct Planned {
    seed: u64,
    budget: Budget,
    arm: Arm,
    /// `(args, checkpoint it writes)`; the last step is the evaluation (writes none).
    steps: Vec<(Vec<String>, Option<PathBuf>)>,
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// The steps of one (seed, budget) of a study.
struct Unit<'a> {
    c: &'a LmStudyConfig,
    work: PathBuf,
    dir_args: Vec<String>,
    lengths: String,
    seed: u64,
    budget: Budget,
}

impl Unit<'_> {
    fn dir(&self, name: &str) -> PathBuf {
        let tag = self.budget.name();
        self.work.join(format!("s{}-{tag}-{name}", self.seed))
    }

    /// The pretraining step (RoPE, or Resonance RoPE) and the checkpoint it writes.
    fn pretrain(&self, res: bool) -> (Vec<String>, Option<PathBuf>) {
        let c = self.c;
        let dir = self.dir(if res { "resonance-rope" } else { "rope" });
        let mut a = vec![
            s("lm"),
            s("pretrain"),
            s("--corpus"),
            c.corpus.clone(),
            s("--preset"),
            s(c.preset.name()),
            s("--seed"),
            s(self.seed),
        ];
        if res {
            a.push(s("--resonance"));
        }
        if self.budget != Budget::Main {
            a.extend([s("--budget"), s(self.budget.multiplier())]);
        }
        a.extend([s("--out"), dir.display().to_string()]);
        a.extend(self.dir_args.iter().cloned());
        (a, Some(dir))
    }

    /// Every step of `arm`: pretraining, the fine-tune if any, the evaluation.
    fn arm(&self, arm: Arm) -> Planned {
        let c = self.c;
        let mut steps = vec![self.pretrain(arm.pretrained_resonance())];
        let mut model = steps[0].1.clone().unwrap_or_default();
        let yarn = |a: &mut Vec<String>| {
            a.extend([s("--method"), s("yarn"), s("--scale"), s(c.scale)]);
            if arm.resonance() {
                a.push(s("--resonance"));
            }
        };
        if let Some(long) = arm.finetune_long() {
            let dir = self.dir(arm.name());
            let len = if long {
                c.scale * c.train_len
            } else {
                c.train_len
            };
            let mut a = vec![
                s("lm"),
                s("finetune"),
                s("--from"),
                model.display().to_string(),
            ];
            yarn(&mut a);
            a.extend([s("--length"), s(len), s("--out"), dir.display().to_string()]);
            a.extend(self.dir_args.iter().cloned());
            steps.push((a, Some(dir.clone())));
            model = dir;
        }
        let mut e = vec![
            s("lm"),
            s("eval"),
            s("--model"),
            model.display().to_string(),
            s("--lengths"),
            self.lengths.clone(),
        ];
        if arm.yarn() && arm.finetune_long().is_none() {
            yarn(&mut e);
        }
        e.extend(self.dir_args.iter().cloned());
        steps.push((e, None));
        Planned {
            seed: self.seed,
            budget: self.budget,
            arm,
            steps,
        }
    }
}

fn plan(c: &LmStudyConfig) -> Vec<Planned> {
    let dir_args: Vec<String> = c
        .corpus_dir
        .iter()
        .flat_map(|d| [s("--corpus-dir"), d.clone()])
        .collect();
    let lengths = c
        .lengths
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let units = (0..c.seeds)
        .map(|seed| (seed, Budget::Main))
        .chain((0..c.budget_check_seeds).map(|seed| (seed, Budget::Doubled)));
    let mut out = Vec::new();
    for (seed, budget) in units {
        let unit = Unit {
            c,
            work: PathBuf::from(&c.work_dir),
            dir_args: dir_args.clone(),
            lengths: lengths.clone(),
            seed,
            budget,
        };
        out.extend(Arm::ALL.map(|arm| unit.arm(arm)));
    }
    out
}

/// The recorded command of a planned run: every step, joined by `&&`.
fn chain(p: &Planned) -> String {
    p.steps
        .iter()
        .map(|(a, _)| command_line(a))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Runs `resonance-lab <args>` with one thread and returns the JSON it printed.
fn child(exe: &Path, args: &[String]) -> Result<Value, String> {
    let out = std::process::Command::new(exe)
        .args(args)
        .env(RUN_ENV.0, RUN_ENV.1)
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", command_line(args)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").to_string();
        return Err(format!("`{}` failed: {last}", command_line(args)));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`{}` printed no JSON: {e}", command_line(args)))
}

fn read_meta(dir: &Path) -> Result<CheckpointMeta, String> {
    let text = std::fs::read_to_string(dir.join("meta.json"))
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.display()))
}

fn keyed(v: &Value, field: &str) -> BTreeMap<usize, f64> {
    v[field]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the steps of `p` whose checkpoints are missing, then its evaluation.
fn execute(exe: &Path, p: &Planned, corpus: &str) -> Result<LmRun, String> {
    let mut seconds = 0.0;
    let mut last = Value::Null;
    for (args, ck) in &p.steps {
        match ck {
            // training time as recorded, whether it ran now or for an earlier arm
            Some(dir) => {
                if !is_checkpoint(dir) {
                    child(exe, args)?;
                }
                seconds += read_meta(dir)?.seconds;
            }
            None => {
                let start = Instant::now();
                last = child(exe, args)?;
                seconds += start.elapsed().as_secs_f64();
            }
        }
    }
    let pre = read_meta(p.steps[0].1.as_deref().unwrap_or(Path::new("")))?;
    let ft_steps = match p.steps.get(1) {
        Some((_, Some(d))) => read_meta(d)?.steps,
        _ => 0,
    };
    let lpp = last["loss_per_position"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse::<usize>().ok()?, v)))
                .max_by_key(|(k, _)| *k)
        })
        .and_then(|(_, v)| serde_json::from_value::<Vec<f64>>(v.clone()).ok())
        .unwrap_or_default();
    Ok(LmRun {
        command: chain(p),
        corpus: corpus.into(),
        seed: p.seed,
        arm: p.arm,
        budget: p.budget,
        steps: pre.steps,
        finetune_steps: ft_steps,
        pretrain_val_loss: pre.val_loss,
        perplexity: keyed(&last, "perplexity"),
        bits_per_byte: keyed(&last, "bits_per_byte"),
        loss_per_position: PositionCurve::binned(&lpp, (lpp.len() / 128).max(1)),
        data_order: pre.data_order,
        seconds,
    })
}

/// The budget-check section of a study's report.
fn budget_md(md: &mut String, b: &BudgetCheck) {
    md.push_str(&format!(
        "\n## Budget check\n\nSeeds {:?} also ran with patience and step cap doubled; the \
         largest change of an arm's perplexity is {:.2}%, and {} of {} paired differences \
         change sign.\n\n| length | a - b | main | doubled |\n|---|---|---|---|\n",
        b.seeds,
        b.max_change_percent,
        b.sign_changes,
        b.differences.len()
    ));
    for d in &b.differences {
        md.push_str(&format!(
            "| {} | {} - {} | {:+.4} | {:+.4} |\n",
            d.length,
            d.a.label(),
            d.b.label(),
            d.main,
            d.doubled
        ));
    }
    md.push_str("\n| arm | length | main | doubled | change |\n|---|---|---|---|---|\n");
    for c in &b.perplexity {
        md.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:+.2}% |\n",
            c.arm.label(),
            c.length,
            c.main,
            c.doubled,
            c.change_percent
        ));
    }
}

/// One paragraph on how the pretrainings stopped: the rule, and how many reached the cap (a
/// budget set by convergence stops by the rule, not the cap).
fn pretraining_md(r: &LmStudyResult) -> String {
    let c = &r.config;
    let mut md = format!(
        "Pretraining stops after {} validation checks (one every {} steps) without an \
         improvement of {} nats per byte, and keeps the best weights; step cap {}. The doubled \
         budget doubles patience and cap.",
        c.patience, c.check_every, c.min_delta, c.max_steps
    );
    for budget in Budget::ALL {
        let cap = c.max_steps * budget.multiplier();
        let mut steps: Vec<usize> = r
            .runs
            .iter()
            .filter(|x| x.budget == budget && matches!(x.arm, Arm::Rope | Arm::ResonanceRope))
            .map(|x| x.steps)
            .collect();
        if steps.is_empty() {
            continue;
        }
        steps.sort_unstable();
        let at_cap = steps.iter().filter(|&&s| s >= cap).count();
        let name = budget.name();
        let n = steps.len();
        if n == 1 {
            let cap_note = if at_cap == 1 {
                "to the cap"
            } else {
                "below the cap"
            };
            md.push_str(&format!(
                " Under the {name} budget 1 pretraining ran {} steps ({cap_note}).",
                steps[0]
            ));
        } else {
            let median = if n % 2 == 1 {
                steps[n / 2] as f64
            } else {
                (steps[n / 2 - 1] + steps[n / 2]) as f64 / 2.0
            };
            md.push_str(&format!(
                " Under the {name} budget {n} pretrainings ran {} to {} steps (median {median}); \
                 {at_cap} of them reached the cap.",
                steps[0],
                steps[n - 1]
            ));
        }
    }
    md.push_str("\n\n");
    md
}

fn report_md(r: &LmStudyResult) -> String {
    let c = &r.config;
    let mut md = format!(
        "# Real-text study: {} corpus\n\n`{}`\n\n{} of {} runs. Byte-level model, preset `{}`, \
         pretrained at L = {}, YaRN s = {}; perplexity per byte on the test split (lower is \
         better), mean over seeds with 95% Student-t intervals.\n\n",
        c.corpus,
        r.study_command,
        r.runs.len(),
        r.planned_runs,
        c.preset.name(),
        c.train_len,
        c.scale
    );
    md.push_str(&pretraining_md(r));
    md.push_str("| arm |");
    for l in &c.lengths {
        md.push_str(&format!(" {l} |"));
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(c.lengths.len()));
    md.push('\n');
    for arm in Arm::ALL {
        md.push_str(&format!("| {} |", arm.label()));
        for l in &c.lengths {
            match r.summary.iter().find(|s| s.arm == arm && s.length == *l) {
                Some(s) => {
                    let ci = s
                        .perplexity
                        .ci95
                        .map_or(String::new(), |[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"));
                    md.push_str(&format!(" {:.3}{ci} |", s.perplexity.mean));
                }
                None => md.push_str(" - |"),
            }
        }
        md.push('\n');
    }
    md.push_str("\n## Paired differences (a - b, perplexity)\n\n| length | a - b | n | mean | 95% CI | verdict |\n|---|---|---|---|---|---|\n");
    for x in &r.comparisons {
        let ci = x
            .ci95
            .map_or("-".into(), |[lo, hi]| format!("[{lo:+.4}, {hi:+.4}]"));
        md.push_str(&format!(
            "| {} | {} - {} | {} | {:+.4} | {ci} | {} |\n",
            x.length,
            x.a.label(),
            x.b.label(),
            x.n,
            x.mean_diff,
            x.verdict
        ));
    }
    if let Some(b) = &r.budget_check {
        budget_md(&mut md, b);
    }
    md.push_str(&format!(
        "\n## Splits\n\n{} training, {} validation and {} test files (listed in the JSON).\n",
        r.splits.train.len(),
        r.splits.validation.len(),
        r.splits.test.len()
    ));
    md
}

fn study_config(a: &LmStudyArgs) -> Result<LmStudyConfig, CliError> {
    let seeds = in_range("seeds", a.seeds, 1, 100)? as u64;
    let check = in_range("budget_check_seeds", a.budget_check_seeds, 0, seeds as i64)? as u64;
    let scale = in_range("scale", a.scale, 1, 16)? as usize;
    let preset = LmPreset::get(a.preset);
    let l = preset.train_len;
    let lengths = match &a.lengths {
        Some(s) => parse_lengths(s)?,
        None => vec![l, 2 * l, 4 * l, 8 * l],
    };
    let work_dir = a.output.out.with_extension("work").display().to_string();
    let corpus_dir = a.dir.corpus_dir.as_ref().map(|d| d.display().to_string());
    for p in std::iter::once(&work_dir).chain(&corpus_dir) {
        if p.contains(char::is_whitespace) {
            return Err(CliError::Usage(format!(
                "invalid --out/--corpus-dir: `{p}` has whitespace, which recorded commands \
                 cannot carry"
            )));
        }
    }
    Ok(LmStudyConfig {
        corpus: a.corpus.name().into(),
        preset: a.preset,
        seeds,
        budget_check_seeds: check,
        lengths,
        scale,
        train_len: l,
        patience: preset.patience,
        check_every: preset.check_every,
        min_delta: preset.min_delta,
        max_steps: preset.max_steps,
        work_dir,
        corpus_dir,
    })
}

/// Runs every unit (the arms of one seed and budget, in order), `jobs` units at a time;
/// `save` gets all runs so far after each finished one. Returns the runs and the first
/// failure (no new run starts after one).
fn run_units(
    units: VecDeque<VecDeque<Planned>>,
    finished: Vec<LmRun>,
    jobs: usize,
    config: &LmStudyConfig,
    save: &(dyn Fn(&[LmRun]) -> Result<LmStudyResult, CliError> + Sync),
) -> Result<(Vec<LmRun>, Option<String>), CliError> {
    let todo: usize = units.iter().map(VecDeque::len).sum();
    let queue = Mutex::new(units);
    let state = Mutex::new((finished, 0usize, None::<String>));
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Runtime(format!("cannot find this program's path: {e}")))?;
    let start = Instant::now();
    // no worker panics while holding a lock; recover the data if one did
    let lock = |m| -> std::sync::MutexGuard<'_, _> {
        Mutex::lock(m).unwrap_or_else(PoisonError::into_inner)
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                while lock(&state).2.is_none() {
                    let Some(unit) = queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front()
                    else {
                        return;
                    };
                    for p in unit {
                        let done = execute(&exe, &p, &config.corpus);
                        let mut st = lock(&state);
                        let run = match done {
                            Ok(run) => run,
                            Err(e) => {
                                st.2 = Some(e);
                                return;
                            }
                        };
                        st.1 += 1;
                        let eta =
                            start.elapsed().as_secs_f64() / st.1 as f64 * (todo - st.1) as f64;
                        eprintln!(
                            "lm study: [{}/{todo}] {} seed {} {:?}: ppl {:?}; ETA {:.0} min",
                            st.1,
                            run.arm.name(),
                            run.seed,
                            run.budget,
                            run.perplexity,
                            eta / 60.0
                        );
                        st.0.push(run);
                        if let Err(e) = save(&st.0) {
                            st.2 = Some(e.message().to_string());
                            return;
                        }
                    }
                }
            });
        }
    });
    let (runs, _, failure) = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    Ok((runs, failure))
}

/// A results file with no runs yet: the settings, the command and the corpus's splits.
fn empty_result(
    config: &LmStudyConfig,
    corpus: &Corpus,
    study_command: String,
    planned_runs: usize,
) -> LmStudyResult {
    LmStudyResult {
        config: config.clone(),
        study_command,
        splits: corpus.files.clone(),
        split_tokens: BTreeMap::from([
            ("train".into(), corpus.train.len()),
            ("validation".into(), corpus.validation.len()),
            ("test".into(), corpus.test.len()),
        ]),
        runs: Vec::new(),
        comparisons: Vec::new(),
        comparisons_doubled: Vec::new(),
        summary: Vec::new(),
        budget_check: None,
        position_curves: Vec::new(),
        finished_runs: 0,
        planned_runs,
    }
}

/// `lm study`.
pub fn study(a: &LmStudyArgs) -> Result<Value, CliError> {
    let config = study_config(a)?;
    let jobs = a.jobs.get()?;
    let corpus = Corpus::load(a.corpus, a.dir.corpus_dir.as_deref())?;
    let json_path = a.output.out.with_extension("json");
    let previous: Option<LmStudyResult> = load_finished(&json_path)?;
    if let Some(p) = &previous
        && p.config != config
    {
        return Err(CliError::Usage(format!(
            "invalid --out: {} holds a study with other settings; move it away or repeat its \
             command: {}",
            json_path.display(),
            p.study_command
        )));
    }
    let planned = plan(&config);
    // the command that ran the study: `--report-only` recomputes statistics, it runs nothing
    let study_command = format!(
        "resonance-lab {}",
        std::env::args()
            .skip(1)
            .filter(|x| x != "--report-only")
            .collect::<Vec<_>>()
            .join(" ")
    );
    let finished = previous.map(|p| p.runs).unwrap_or_default();
    let base = empty_result(&config, &corpus, study_command, planned.len());
    drop(corpus);
    let save = |runs: &[LmRun]| -> Result<LmStudyResult, CliError> {
        let r = LmStudyResult {
            runs: runs.to_vec(),
            ..base.clone()
        }
        .derive();
        write_results(&a.output.out, &r, &report_md(&r))?;
        Ok(r)
    };
    if a.output.report_only {
        return Ok(serde_json::to_value(save(&finished)?).unwrap_or(Value::Null));
    }
    std::fs::create_dir_all(&config.work_dir)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", config.work_dir)))?;
    // one queue per (seed, budget), so a worker trains a pretrained model once for its arms
    let mut units: BTreeMap<(Budget, u64), VecDeque<Planned>> = BTreeMap::new();
    for p in planned {
        let done = finished
            .iter()
            .any(|r| r.seed == p.seed && r.arm == p.arm && r.budget == p.budget);
        if !done {
            units.entry((p.budget, p.seed)).or_default().push_back(p);
        }
    }
    let (runs, failure) = run_units(
        units.into_values().collect(),
        finished,
        jobs,
        &config,
        &save,
    )?;
    let result = save(&runs)?;
    if let Some(f) = failure {
        return Err(CliError::Runtime(format!(
            "{f} ({} finished runs are saved; run the same command again to resume)",
            result.runs.len()
        )));
    }
    Ok(json!({
        "json": json_path.display().to_string(),
        "md": a.output.out.with_extension("md").display().to_string(),
        "runs": result.runs.len(),
        "planned_runs": result.planned_runs,
        "comparisons": result.comparisons,
        "budget_check": result.budget_check,
    }))
}

/// Options of `lm reproduce`.
#[derive(Args, Debug)]
pub struct LmReproduceArgs {
    /// A results file written by `lm study`.
    pub file: PathBuf,
    /// Rerun the N cheapest recorded runs, 1..=1000.
    #[arg(
        long,
        default_value_t = 1,
        allow_negative_numbers = true,
        conflicts_with = "all"
    )]
    pub runs: i64,
    /// Rerun every recorded run.
    #[arg(long)]
    pub all: bool,
}

/// The arguments of one recorded step (`RAYON_NUM_THREADS=1 resonance-lab lm ...`), with the
/// study's work directory moved to `work`.
fn step_args(step: &str, study_work: &str, work: &str) -> Option<Vec<String>> {
    let prefix = format!("{}={} resonance-lab ", RUN_ENV.0, RUN_ENV.1);
    let rest = step.trim().strip_prefix(&prefix)?;
    Some(
        rest.split_whitespace()
            .map(|a| match a.strip_prefix(study_work) {
                Some(tail) if tail.starts_with('/') => format!("{work}{tail}"),
                _ => a.to_string(),
            })
            .collect(),
    )
}

/// `lm reproduce`.
pub fn reproduce(a: &LmReproduceArgs) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(&a.file).map_err(|e| {
        CliError::Usage(format!(
            "invalid FILE: cannot read {}: {e}",
            a.file.display()
        ))
    })?;
    let study: LmStudyResult = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "invalid FILE: {} is not an `lm study` results file ({e})",
            a.file.display()
        ))
    })?;
    let mut runs = study.runs.clone();
    runs.sort_by(|x, y| x.seconds.total_cmp(&y.seconds));
    if !a.all {
        runs.truncate(in_range("runs", a.runs, 1, 1000)? as usize);
    }
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Runtime(format!("cannot find this program's path: {e}")))?;
    let work =
        std::env::temp_dir().join(format!("resonance-lab-lm-reproduce-{}", std::process::id()));
    let work_s = work.display().to_string();
    let mut rows = Vec::new();
    let mut worst = 0.0f64;
    for r in &runs {
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)
            .map_err(|e| CliError::Runtime(format!("cannot create {work_s}: {e}")))?;
        let mut last = Value::Null;
        for step in r.command.split("&&") {
            let args = step_args(step, &study.config.work_dir, &work_s).ok_or_else(|| {
                CliError::Usage(format!(
                    "invalid FILE: a recorded step is not a command: {step}"
                ))
            })?;
            last = child(&exe, &args).map_err(CliError::Runtime)?;
        }
        let rerun = keyed(&last, "perplexity");
        let diffs: BTreeMap<usize, f64> = r
            .perplexity
            .iter()
            .map(|(l, p)| {
                (
                    *l,
                    rerun.get(l).map_or(f64::INFINITY, |q| (q / p - 1.0).abs()),
                )
            })
            .collect();
        let max = diffs.values().copied().fold(0.0, f64::max);
        worst = worst.max(max);
        eprintln!(
            "lm reproduce: {} seed {}: largest relative difference {:.2e}",
            r.arm.name(),
            r.seed,
            max
        );
        rows.push(json!({
            "arm": r.arm, "seed": r.seed, "budget": r.budget, "command": r.command,
            "recorded": r.perplexity, "rerun": rerun, "relative_difference": diffs,
        }));
    }
    let _ = std::fs::remove_dir_all(&work);
    let doc = json!({
        "file": a.file.display().to_string(),
        "reran": rows.len(),
        "max_relative_difference": worst,
        "runs": rows,
    });
    if worst > 0.01 {
        return Err(CliError::Checked(
            doc,
            format!(
                "a rerun's perplexity differs from the recorded one by {:.2}% (> 1%)",
                100.0 * worst
            ),
        ));
    }
    Ok(doc)
}
