//! Train / validation / test splits and teacher-forced batches (BOS prefix, seeds not scored).
//!
//! Two protocols make the splits ([`Protocol`]): the clean one (the default), whose seed tuples
//! never overlap between splits, and the authors' one, which reproduces the paper's public code:
//! seed tuples cycle through the lexicographic combinations, and validation and test reuse the
//! training sequences' seeds (they are longer, but their first L tokens were trained on).

use super::rng::SplitMix64;
use super::tasks::TaskSpec;
use crate::rope::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// How the splits are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Random distinct seed tuples from the run's seed; no tuple is shared between splits.
    #[default]
    Clean,
    /// The authors' code: seed tuples cycle through `combinations(range(m), j + k)` in
    /// lexicographic order, [`AUTHORS_SEQUENCES`] in all; training is sequences
    /// `0..10_000` cut to L, validation `0..1_000` and test `1_000..2_000` cut to L'. Validation
    /// and test overlap training. The data do not depend on the run's seed.
    Authors,
}

impl Protocol {
    /// Every protocol, in display order.
    pub const ALL: [Protocol; 2] = [Protocol::Clean, Protocol::Authors];

    /// The CLI / JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Clean => "clean",
            Protocol::Authors => "authors",
        }
    }

    /// Parses a CLI / JSON name.
    pub fn from_name(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The split sizes this protocol uses: the preset's for the clean protocol; the authors'
    /// fixed 10,000 / 1,000 / 1,000 sequences (same lengths) for theirs.
    pub fn sizes(self, preset: SplitSizes) -> SplitSizes {
        match self {
            Protocol::Clean => preset,
            Protocol::Authors => SplitSizes {
                train: AUTHORS_TRAIN.len(),
                val: AUTHORS_VAL.len(),
                test: AUTHORS_TEST.len(),
                ..preset
            },
        }
    }

    /// A one-line caveat for reports: what the protocol's validation and test measure.
    pub fn caveat(self) -> &'static str {
        match self {
            Protocol::Clean => {
                "train, validation and test sequences start from disjoint random seed tuples"
            }
            Protocol::Authors => {
                "validation (sequences 0..1000) and test (1000..2000) reuse training sequences' \
                 seed tuples: their first L tokens were trained on, only positions >= L are unseen"
            }
        }
    }
}

/// Sequences the authors' protocol generates (its seed tuples cycle through the combinations).
pub const AUTHORS_SEQUENCES: usize = 12_000;
/// Authors' protocol: training sequence indices.
pub const AUTHORS_TRAIN: std::ops::Range<usize> = 0..10_000;
/// Authors' protocol: validation sequence indices (a prefix of the training ones).
pub const AUTHORS_VAL: std::ops::Range<usize> = 0..1_000;
/// Authors' protocol: test sequence indices (also inside the training range).
pub const AUTHORS_TEST: std::ops::Range<usize> = 1_000..2_000;

/// The first `n` seed tuples of the authors' protocol: `combinations(range(m), s)` in
/// lexicographic order (as Python's `itertools.combinations`), cycled.
pub fn authors_seed_tuples(m: u32, s: usize, n: usize) -> Vec<Vec<u32>> {
    let mut out = Vec::with_capacity(n);
    if s as u64 > m as u64 || n == 0 {
        return out;
    }
    let mut c: Vec<u32> = (0..s as u32).collect();
    loop {
        out.push(c.clone());
        if out.len() == n {
            return out;
        }
        // next combination: rightmost index that can still grow
        match (0..s).rev().find(|&i| c[i] < m - s as u32 + i as u32) {
            Some(i) => {
                c[i] += 1;
                for k in i + 1..s {
                    c[k] = c[k - 1] + 1;
                }
            }
            None => c = (0..s as u32).collect(), // wrap around: cycle
        }
    }
}

/// Sizes and lengths of the three splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SplitSizes {
    /// Training sequences (length `train_len`).
    pub train: usize,
    /// Validation sequences (length `eval_len`).
    pub val: usize,
    /// Test sequences (length `eval_len`).
    pub test: usize,
    /// Training sequence length L (tokens, seeds included, BOS excluded).
    pub train_len: usize,
    /// Evaluation sequence length L'.
    pub eval_len: usize,
}

/// One split: `count` sequences of `len` tokens, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Tokens per sequence.
    pub len: usize,
    /// `count * len` tokens.
    pub tokens: Vec<u32>,
}

impl Split {
    /// Number of sequences.
    pub fn count(&self) -> usize {
        self.tokens.len().checked_div(self.len).unwrap_or(0)
    }

    /// Sequence `i`.
    pub fn seq(&self, i: usize) -> &[u32] {
        &self.tokens[i * self.len..(i + 1) * self.len]
    }

    /// The same sequences cut to their first `len` tokens (at most their length).
    pub fn truncated(&self, len: usize) -> Split {
        let len = len.min(self.len);
        Split {
            len,
            tokens: (0..self.count())
                .flat_map(|i| self.seq(i)[..len].iter().copied())
                .collect(),
        }
    }
}

/// The three splits of one task, generated deterministically from a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The generator.
    pub spec: TaskSpec,
    /// Training split (length L).
    pub train: Split,
    /// Validation split (length L').
    pub val: Split,
    /// Test split (length L').
    pub test: Split,
}

/// Draws `n` distinct seed tuples of `s` tokens in `0..m`.
fn distinct_seed_tuples(spec: &TaskSpec, n: usize, rng: &mut SplitMix64) -> Vec<Vec<u32>> {
    let s = spec.num_seeds();
    let m = spec.modulus as u64;
    let total = spec.num_seed_tuples();
    let decode = |mut code: u128| -> Vec<u32> {
        let mut t = vec![0u32; s];
        for x in t.iter_mut().rev() {
            *x = (code % m as u128) as u32;
            code /= m as u128;
        }
        t
    };
    if (n as u128) * 2 > total {
        // Dense: shuffle every tuple and take a prefix (total is small here).
        let mut codes: Vec<u128> = (0..total).collect();
        rng.shuffle(&mut codes);
        return codes[..n].iter().map(|&c| decode(c)).collect();
    }
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let t: Vec<u32> = (0..s).map(|_| rng.below(m) as u32).collect();
        if seen.insert(t.clone()) {
            out.push(t);
        }
    }
    out
}

impl Dataset {
    /// Generates the splits from `seed` under the clean protocol: every sequence starts with a
    /// different seed tuple, so no split shares a tuple with another.
    pub fn generate(spec: TaskSpec, sizes: SplitSizes, seed: u64) -> Result<Dataset, ConfigError> {
        Dataset::generate_with(Protocol::Clean, spec, sizes, seed)
    }

    /// Generates the splits under `protocol` (the authors' protocol ignores `seed` and the split
    /// counts of `sizes`, using [`Protocol::sizes`]).
    pub fn generate_with(
        protocol: Protocol,
        spec: TaskSpec,
        sizes: SplitSizes,
        seed: u64,
    ) -> Result<Dataset, ConfigError> {
        spec.validate()?;
        let sizes = protocol.sizes(sizes);
        let s = spec.num_seeds();
        if sizes.train_len <= s {
            return Err(ConfigError::new(
                "train_len",
                format!(
                    "must be longer than the number of seeds j + k = {s} (got {})",
                    sizes.train_len
                ),
            ));
        }
        if sizes.eval_len < sizes.train_len {
            return Err(ConfigError::new(
                "eval_len",
                format!(
                    "must be at least train-len = {} (got {})",
                    sizes.train_len, sizes.eval_len
                ),
            ));
        }
        if sizes.train == 0 || sizes.val == 0 || sizes.test == 0 {
            return Err(ConfigError::new(
                "sequences",
                "every split needs at least one sequence",
            ));
        }
        if protocol == Protocol::Authors {
            return Dataset::authors(spec, sizes);
        }
        let needed = (sizes.train + sizes.val + sizes.test) as u128;
        if needed > spec.num_seed_tuples() {
            return Err(ConfigError::new(
                "modulus",
                format!(
                    "{} distinct seed tuples are needed but modulus {} with j + k = {s} has only {}",
                    needed,
                    spec.modulus,
                    spec.num_seed_tuples()
                ),
            ));
        }
        let mut rng = SplitMix64::derive(seed, "posgen-data");
        let tuples = distinct_seed_tuples(&spec, needed as usize, &mut rng);
        let build =
            |range: std::ops::Range<usize>, len: usize| build_split(&spec, &tuples[range], len);
        let a = sizes.train;
        let b = a + sizes.val;
        let c = b + sizes.test;
        Ok(Dataset {
            spec,
            train: build(0..a, sizes.train_len),
            val: build(a..b, sizes.eval_len),
            test: build(b..c, sizes.eval_len),
        })
    }
}

impl Dataset {
    fn authors(spec: TaskSpec, sizes: SplitSizes) -> Result<Dataset, ConfigError> {
        let s = spec.num_seeds();
        if s > spec.modulus as usize {
            return Err(ConfigError::new(
                "modulus",
                format!(
                    "the authors' protocol draws j + k = {s} distinct seed tokens, so the modulus \
                     must be at least {s} (got {})",
                    spec.modulus
                ),
            ));
        }
        let tuples = authors_seed_tuples(spec.modulus, s, AUTHORS_SEQUENCES);
        let build =
            |range: std::ops::Range<usize>, len: usize| build_split(&spec, &tuples[range], len);
        Ok(Dataset {
            spec,
            train: build(AUTHORS_TRAIN, sizes.train_len),
            val: build(AUTHORS_VAL, sizes.eval_len),
            test: build(AUTHORS_TEST, sizes.eval_len),
        })
    }
}

/// The split of sequences of `len` tokens that start with `tuples`.
fn build_split(spec: &TaskSpec, tuples: &[Vec<u32>], len: usize) -> Split {
    let mut tokens = Vec::with_capacity(tuples.len() * len);
    for t in tuples {
        let mut seq = t.clone();
        spec.extend(&mut seq, len);
        tokens.extend_from_slice(&seq);
    }
    Split { len, tokens }
}

/// Teacher-forced model input and targets for a batch of sequences.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Sequences in the batch.
    pub batch: usize,
    /// Model positions per sequence (= sequence length).
    pub len: usize,
    /// `batch * len` input ids: BOS then the sequence without its last token.
    pub inputs: Vec<u32>,
    /// `batch * len` targets: the sequence itself (target at model position p is token p).
    pub targets: Vec<u32>,
    /// First scored target position (j + k): seeds are not scored.
    pub first_scored: usize,
}

impl Batch {
    /// Builds a batch from sequences `rows` of `split`; `bos` is the BOS id (= modulus).
    pub fn from_split(split: &Split, rows: &[usize], bos: u32, first_scored: usize) -> Batch {
        let len = split.len;
        let mut inputs = Vec::with_capacity(rows.len() * len);
        let mut targets = Vec::with_capacity(rows.len() * len);
        for &r in rows {
            let seq = split.seq(r);
            inputs.push(bos);
            inputs.extend_from_slice(&seq[..len - 1]);
            targets.extend_from_slice(seq);
        }
        Batch {
            batch: rows.len(),
            len,
            inputs,
            targets,
            first_scored,
        }
    }
}
