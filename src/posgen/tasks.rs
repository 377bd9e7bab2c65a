//! The three PosGen generators (docs/posgen.md#the-tasks) for any modulus, number of far tokens `j`
//! and near tokens `k`: every token after the `j + k` seeds is the sum, modulo the modulus, of
//! the `k` previous tokens and `j` far tokens whose position depends on the task.

use crate::rope::ConfigError;
use serde::{Deserialize, Serialize};

/// Largest modulus (vocabulary size without BOS) accepted.
pub const MAX_MODULUS: u32 = 1024;
/// Largest number of far or near tokens accepted.
pub const MAX_TERMS: usize = 16;

/// Which far tokens enter the sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// `x_l = x_{l-j-k} + .. + x_{l-1}`: all terms are local (fixed relative offsets).
    Recursive,
    /// Chain of thought: the far tokens are the first `j` tokens (fixed absolute positions).
    Cot,
    /// The far tokens start at `floor((l - j - k) / 2)`: the offset grows with the position.
    SemiRecursive,
}

impl Task {
    /// All tasks, in the paper's table order.
    pub const ALL: [Task; 3] = [Task::Recursive, Task::Cot, Task::SemiRecursive];

    /// The CLI name (`recursive`, `cot`, `semi-recursive`).
    pub fn name(self) -> &'static str {
        match self {
            Task::Recursive => "recursive",
            Task::Cot => "cot",
            Task::SemiRecursive => "semi-recursive",
        }
    }

    /// The name used in the paper's table.
    pub fn title(self) -> &'static str {
        match self {
            Task::Recursive => "Recursive",
            Task::Cot => "CoT",
            Task::SemiRecursive => "Semi-recursive",
        }
    }

    /// Parses a CLI name.
    pub fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A task with its modulus and term counts: a fully specified generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The recurrence.
    pub task: Task,
    /// Modulus m: tokens are `0..m`.
    pub modulus: u32,
    /// Number of far tokens j.
    pub j: usize,
    /// Number of near (previous) tokens k.
    pub k: usize,
}

impl TaskSpec {
    /// The paper's setting: modulus 17, j = 1, k = 3.
    pub fn paper(task: Task) -> Self {
        TaskSpec {
            task,
            modulus: 17,
            j: 1,
            k: 3,
        }
    }

    /// Checks the modulus and the term counts; errors name the CLI option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(2..=MAX_MODULUS).contains(&self.modulus) {
            return Err(ConfigError::new(
                "modulus",
                format!("must be in 2..={MAX_MODULUS} (got {})", self.modulus),
            ));
        }
        if !(1..=MAX_TERMS).contains(&self.j) {
            return Err(ConfigError::new(
                "j",
                format!("must be in 1..={MAX_TERMS} (got {})", self.j),
            ));
        }
        if !(1..=MAX_TERMS).contains(&self.k) {
            return Err(ConfigError::new(
                "k",
                format!("must be in 1..={MAX_TERMS} (got {})", self.k),
            ));
        }
        Ok(())
    }

    /// Number of seed tokens (`j + k`); they are given, never scored.
    pub fn num_seeds(&self) -> usize {
        self.j + self.k
    }

    /// Number of distinct seed tuples (`m^(j+k)`), saturating.
    pub fn num_seed_tuples(&self) -> u128 {
        (self.modulus as u128).saturating_pow(self.num_seeds() as u32)
    }

    /// First index of the far tokens used for the token at position `l` (`l >= j + k`).
    pub fn far_start(&self, l: usize) -> usize {
        let s = self.num_seeds();
        match self.task {
            Task::Recursive => l - s,
            Task::Cot => 0,
            Task::SemiRecursive => (l - s) / 2,
        }
    }

    /// Whether the far pointer moves at target position `l` (`l >= j + k`): `far_start(l)`
    /// differs from `far_start(l - 1)`. The first generated position always counts as moving.
    /// On Semi-recursive the pointer stays put at every other position, and there
    /// `x_l = 2 x_{l-1} - x_{l-k-1} (mod m)`: a local shortcut that needs no far lookup.
    pub fn far_advances(&self, l: usize) -> bool {
        let s = self.num_seeds();
        l <= s || self.far_start(l) != self.far_start(l - 1)
    }

    /// Extends `seq` (which starts with at least `j + k` seeds) in place to `len` tokens.
    pub fn extend(&self, seq: &mut Vec<u32>, len: usize) {
        let m = self.modulus as u64;
        while seq.len() < len {
            let l = seq.len();
            let f = self.far_start(l);
            let far: u64 = seq[f..f + self.j].iter().map(|&x| x as u64).sum();
            let near: u64 = seq[l - self.k..l].iter().map(|&x| x as u64).sum();
            seq.push(((far + near) % m) as u32);
        }
    }

    /// The sequence of `len` tokens that starts with `seeds`.
    pub fn generate(&self, seeds: &[u32], len: usize) -> Result<Vec<u32>, ConfigError> {
        self.validate()?;
        if seeds.len() != self.num_seeds() {
            return Err(ConfigError::new(
                "seeds",
                format!(
                    "need exactly j + k = {} seeds (got {})",
                    self.num_seeds(),
                    seeds.len()
                ),
            ));
        }
        if let Some(&bad) = seeds.iter().find(|&&x| x >= self.modulus) {
            return Err(ConfigError::new(
                "seeds",
                format!("must be in 0..{} (got {bad})", self.modulus),
            ));
        }
        if len < seeds.len() {
            return Err(ConfigError::new(
                "len",
                format!(
                    "must be at least the number of seeds j + k = {} (got {len})",
                    seeds.len()
                ),
            ));
        }
        let mut seq = seeds.to_vec();
        seq.reserve(len - seeds.len());
        self.extend(&mut seq, len);
        Ok(seq)
    }
}
