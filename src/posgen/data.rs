//! Train / validation / test splits whose seed tuples never overlap, and teacher-forced
//! batches (BOS prefix, seeds not scored).

use super::rng::SplitMix64;
use super::tasks::TaskSpec;
use crate::rope::ConfigError;
use std::collections::HashSet;

/// Sizes and lengths of the three splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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
    /// Generates the splits from `seed`; every sequence starts with a different seed tuple,
    /// so no split shares a tuple with another.
    pub fn generate(spec: TaskSpec, sizes: SplitSizes, seed: u64) -> Result<Dataset, ConfigError> {
        spec.validate()?;
        let s = spec.num_seeds();
        if sizes.train_len <= s {
            return Err(ConfigError::new(
                "train-len",
                format!(
                    "must be longer than the number of seeds j + k = {s} (got {})",
                    sizes.train_len
                ),
            ));
        }
        if sizes.eval_len < sizes.train_len {
            return Err(ConfigError::new(
                "eval-len",
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
        let build = |range: std::ops::Range<usize>, len: usize| -> Split {
            let mut tokens = Vec::with_capacity(range.len() * len);
            for t in &tuples[range] {
                let mut seq = t.clone();
                spec.extend(&mut seq, len);
                tokens.extend_from_slice(&seq);
            }
            Split { len, tokens }
        };
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
