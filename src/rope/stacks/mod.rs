//! What each inference stack computes for a model's RoPE: transformers, vLLM, llama.cpp and
//! mlx-lm read the same config.json differently (which keys, which head size, which pair layout,
//! where the attention factor goes, what the context changes) and form their angles with
//! different float operations. [`compute`] models one stack for one config; [`audit`] puts a
//! config through all four and lists where they part.
//!
//! Each stack's file holds that stack's model-file quirks (architecture to head size, key
//! remapping, the context knob); the per-method formulas a stack computes differently live in
//! the method files (`methods/<method>.rs`, functions named after the stack). Pure: text in,
//! values out, no IO.

mod audit;
mod input;
mod llama_cpp;
mod mlx;
mod transformers;
mod vllm;

pub use audit::{Audit, AuditOptions, Difference, audit, audit_positions};
pub use input::StackInput;

use super::hf_config::ImportError;

/// An inference stack whose RoPE the lab models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stack {
    /// Hugging Face transformers (the reference the rest of the lab follows).
    Transformers,
    /// vLLM's `get_rope` and model files.
    Vllm,
    /// llama.cpp: `convert_hf_to_gguf.py`, the loader and the ggml CPU rope kernel.
    LlamaCpp,
    /// mlx-lm's `initialize_rope`, its classes and `mx.fast.rope` on the CPU.
    Mlx,
}

impl Stack {
    /// Every stack, transformers first (the one the others are compared with).
    pub const ALL: [Stack; 4] = [
        Stack::Transformers,
        Stack::Vllm,
        Stack::LlamaCpp,
        Stack::Mlx,
    ];

    /// The stack's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Transformers => "transformers",
            Stack::Vllm => "vllm",
            Stack::LlamaCpp => "llama.cpp",
            Stack::Mlx => "mlx",
        }
    }

    /// The stack of a name (`transformers`, `vllm`, `llama.cpp` or `llamacpp`, `mlx` or
    /// `mlx-lm`).
    pub fn from_name(name: &str) -> Option<Stack> {
        match name {
            "transformers" | "hf" => Some(Stack::Transformers),
            "vllm" => Some(Stack::Vllm),
            "llama.cpp" | "llamacpp" | "llama-cpp" => Some(Stack::LlamaCpp),
            "mlx" | "mlx-lm" | "mlx_lm" => Some(Stack::Mlx),
            _ => None,
        }
    }

    /// The version of the stack that is modelled.
    pub fn version(self) -> &'static str {
        match self {
            Stack::Transformers => "transformers 5.24.0",
            Stack::Vllm => "vllm 0.34.0",
            Stack::LlamaCpp => "llama.cpp ggml-org/llama.cpp@0c1e57098 (llama-cpp-python 0.3.36)",
            Stack::Mlx => "mlx-lm 0.32.2 (mlx 0.32.4, CPU)",
        }
    }

    /// What the stack's RoPE depends on at run time, in words (the context knob).
    pub fn context_knob(self) -> &'static str {
        match self {
            Stack::Transformers => "the current sequence length (per forward pass)",
            Stack::Vllm => "max_model_len (fixed when the engine starts)",
            Stack::LlamaCpp => "n_ctx, the allocated context (rounded up to 256)",
            Stack::Mlx => "the length of the call (prompt plus cache offset)",
        }
    }
}

/// The caller's choices beyond the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StackOptions {
    /// Layer type of a per-layer config (`full_attention`, `sliding_attention`); `None` picks
    /// `full_attention`, else the first.
    pub layer_type: Option<String>,
    /// The context the stack is run at (its knob, see [`Stack::context_knob`]); `None` means
    /// `max_position_embeddings`.
    pub context: Option<u64>,
    /// Audit the Resonance twin: every stack's frequencies rounded to integer wavelengths, as a
    /// config carrying the twin would make it compute.
    pub resonance: bool,
}

/// Where a stack applies the attention factor (YaRN / LongRoPE temperature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliedTo {
    /// Multiplies cos and sin (or q and k before the rotation).
    CosSin,
    /// Multiplies the softmax scale.
    SoftmaxScale,
    /// Nowhere: the stack has no attention factor for this config.
    Nowhere,
}

impl AppliedTo {
    /// The spelling in the JSON documents and the fixtures.
    pub fn as_str(self) -> &'static str {
        match self {
            AppliedTo::CosSin => "cos_sin",
            AppliedTo::SoftmaxScale => "softmax_scale",
            AppliedTo::Nowhere => "none",
        }
    }
}

/// How a stack turns a position into the angle of each pair (all f32).
#[derive(Clone, Debug, PartialEq)]
pub enum Angles {
    /// `f32(p) * inv_freq[i]`, one f32 product (transformers' forward, vLLM's cache, mlx's
    /// kernel with unit position scale).
    Product,
    /// `f32(f32(p) * scale) * unscaled[i]`: the position scaled first (mlx's `scale`).
    ScaledPosition {
        /// The position multiplier.
        scale: f32,
        /// The frequencies before the position scale.
        unscaled: Vec<f32>,
    },
    /// `f32(f32(p) / divisor) * unscaled[i]`: the position divided first (vLLM's linear RoPE,
    /// `arange(rows) / factor`).
    DividedPosition {
        /// The position divisor (the linear factor).
        divisor: f32,
        /// The frequencies before the division.
        unscaled: Vec<f32>,
    },
    /// ggml's CPU kernel: the angle starts at p and is multiplied by `theta_scale` pair after
    /// pair, then divided by the frequency factor and blended with the YaRN ramp.
    Ggml(GgmlRope),
}

/// The arguments of one `ggml_rope_ext` call, as llama.cpp's graph passes them.
#[derive(Clone, Debug, PartialEq)]
pub struct GgmlRope {
    /// Rotated dimensions (`n_dims`).
    pub n_dims: usize,
    /// `freq_base`.
    pub freq_base: f32,
    /// `freq_scale` (1 / the linear or YaRN factor).
    pub freq_scale: f32,
    /// `ext_factor` (1 for YaRN, else 0).
    pub ext_factor: f32,
    /// `attn_factor` as passed (the kernel multiplies YaRN's `1 + 0.1 ln s` back in).
    pub attn_factor: f32,
    /// `n_ctx_orig` (the YaRN original length).
    pub n_ctx_orig: u64,
    /// `beta_fast`, `beta_slow`.
    pub beta: (f32, f32),
    /// The YaRN correction dims `ggml_rope_yarn_corr_dims` gives.
    pub corr_dims: (f32, f32),
    /// Per-pair frequency divisors (`rope_freqs`, `rope_factors_long/short`), when passed.
    pub freq_factors: Option<Vec<f32>>,
}

/// One stack's RoPE for one config, layer type and context.
#[derive(Clone, Debug, PartialEq)]
pub struct StackRope {
    /// The stack.
    pub stack: Stack,
    /// The version modelled ([`Stack::version`]).
    pub stack_version: &'static str,
    /// The context the stack was evaluated at.
    pub context: u64,
    /// Whether the stack runs the config as asked; `false` with [`StackRope::reason`] when it
    /// refuses it or silently runs something else.
    pub supported: bool,
    /// Why the config is not supported (when it is not).
    pub reason: Option<String>,
    /// What the stack runs instead, when it runs anything; the values below are those.
    pub runs_instead: Option<String>,
    /// The rotary class or kernel call that computes it.
    pub rope_class: String,
    /// The rope type the stack runs (its own name).
    pub rope_type: String,
    /// The head size the model file passes.
    pub head_dim: usize,
    /// Rotated dimensions (2 x the number of pairs).
    pub rotary_dim: usize,
    /// Angle per token of each pair in f32, as the stack computes it (a position scale folded
    /// in); empty when the stack cannot build the model.
    pub inv_freq: Vec<f32>,
    /// The attention factor the stack computes (on cos/sin or the softmax scale).
    pub attention_factor: f64,
    /// Where that factor is applied.
    pub attention_factor_applied_to: AppliedTo,
    /// What cos and sin (or q and k before rotating) are multiplied by: 1 where the factor is
    /// put on the softmax scale.
    pub cos_sin_scale: f64,
    /// The softmax scale over that of the same model without rope scaling (DeepSeek's mscale
    /// squared).
    pub softmax_scale_factor: Option<f64>,
    /// `half-split` (pair i is (i, i + d/2)) or `interleaved` (pair i is (2i, 2i+1)).
    pub pair_layout: &'static str,
    /// Positions at or past this have no cos/sin (vLLM's cache rows); `None` for no limit.
    pub max_positions: Option<u64>,
    /// Which LongRoPE factor list is in use (`short` or `long`), for LongRoPE configs.
    pub factor_list: Option<&'static str>,
    /// How the angle is formed from the position.
    pub angles: Angles,
    /// What the stack does with this config, with source references, in short sentences.
    pub notes: Vec<String>,
    /// Causes of this stack's departures from transformers, by field (see [`Quirk`]).
    pub quirks: Vec<Quirk>,
}

/// One known departure of a stack from transformers: the field it touches, the cause in one
/// line and what a user sees. The audit attaches it to a measured difference of that field.
#[derive(Clone, Debug, PartialEq)]
pub struct Quirk {
    /// `inv_freq`, `attention_factor`, `softmax_scale_factor`, `factor_list`, `cos_sin`,
    /// `supported` or `max_positions`.
    pub field: &'static str,
    /// The cause, with the stack's code reference.
    pub cause: String,
    /// What a user of the stack sees.
    pub effect: String,
}

/// cos and sin of one position, per pair, as the stack multiplies q and k (the attention factor
/// included where the stack puts it on cos/sin).
#[derive(Clone, Debug, PartialEq)]
pub struct CosSinRow {
    /// The position.
    pub position: u64,
    /// cos per pair.
    pub cos: Vec<f32>,
    /// sin per pair.
    pub sin: Vec<f32>,
}

impl StackRope {
    /// A stack's answer before its rope branch fills it in: supported, no frequencies, unit
    /// scales, half-split pairs, no notes. Each stack module starts from it.
    pub(super) fn blank(stack: Stack, input: &StackInput) -> StackRope {
        StackRope {
            stack,
            stack_version: stack.version(),
            context: input.context,
            supported: true,
            reason: None,
            runs_instead: None,
            rope_class: String::new(),
            rope_type: input.rope_type.clone(),
            head_dim: input.plain.head_dim,
            rotary_dim: 0,
            inv_freq: Vec::new(),
            attention_factor: 1.0,
            attention_factor_applied_to: AppliedTo::Nowhere,
            cos_sin_scale: 1.0,
            softmax_scale_factor: None,
            pair_layout: "half-split",
            max_positions: None,
            factor_list: None,
            angles: Angles::Product,
            notes: Vec::new(),
            quirks: Vec::new(),
        }
    }

    /// A stack that cannot build the model: no values, the reason, and `effect` as its quirk
    /// when there is one.
    pub(super) fn unbuildable(
        stack: Stack,
        input: &StackInput,
        reason: String,
        effect: Option<&str>,
    ) -> StackRope {
        let mut r = StackRope::blank(stack, input);
        r.supported = false;
        if let Some(effect) = effect {
            r.quirks.push(Quirk {
                field: "supported",
                cause: reason.clone(),
                effect: effect.into(),
            });
        }
        r.reason = Some(reason);
        r
    }

    /// Records a departure from transformers (see [`Quirk`]).
    pub(super) fn quirk(
        &mut self,
        field: &'static str,
        cause: impl Into<String>,
        effect: impl Into<String>,
    ) {
        self.quirks.push(Quirk {
            field,
            cause: cause.into(),
            effect: effect.into(),
        });
    }
}

impl StackRope {
    /// The angle of each pair at `position`, as the stack forms it in f32.
    pub fn angles_at(&self, position: u64) -> Vec<f32> {
        let p = position as f32;
        match &self.angles {
            Angles::Product => self.inv_freq.iter().map(|&w| p * w).collect(),
            Angles::ScaledPosition { scale, unscaled } => {
                let q = p * scale;
                unscaled.iter().map(|&w| q * w).collect()
            }
            Angles::DividedPosition { divisor, unscaled } => {
                let q = p / divisor;
                unscaled.iter().map(|&w| q * w).collect()
            }
            Angles::Ggml(g) => g.angles(p).0,
        }
    }

    /// cos and sin at each position exactly as the stack computes them; `None` for a position
    /// the stack has no value for (past vLLM's cache rows).
    pub fn cos_sin(&self, positions: &[u64]) -> Vec<Option<CosSinRow>> {
        positions
            .iter()
            .map(|&p| {
                if self.inv_freq.is_empty() || self.max_positions.is_some_and(|m| p >= m) {
                    return None;
                }
                let (angles, scale) = match &self.angles {
                    Angles::Ggml(g) => g.angles(p as f32),
                    _ => (self.angles_at(p), self.cos_sin_scale as f32),
                };
                let cos = angles
                    .iter()
                    .map(|&t| (t as f64).cos() as f32 * scale)
                    .collect();
                let sin = angles
                    .iter()
                    .map(|&t| (t as f64).sin() as f32 * scale)
                    .collect();
                Some(CosSinRow {
                    position: p,
                    cos,
                    sin,
                })
            })
            .collect()
    }

    /// The period in tokens of each pair (`2 pi / inv_freq`; infinite for frequency 0).
    pub fn wavelength(&self) -> Vec<f64> {
        self.inv_freq
            .iter()
            .map(|&w| 2.0 * std::f64::consts::PI / w as f64)
            .collect()
    }
}

/// f32 `powf`, `logf` as glibc computes them (correctly rounded for these arguments).
pub(crate) fn powf(a: f32, b: f32) -> f32 {
    (a as f64).powf(b as f64) as f32
}

/// f32 natural logarithm.
pub(crate) fn logf(a: f32) -> f32 {
    (a as f64).ln() as f32
}

impl GgmlRope {
    /// The angle of each pair at position `p` and the magnitude on cos/sin, transcribing
    /// `ggml_rope_cache_init` / `rope_yarn` (ggml/src/ggml-cpu/ops.cpp) in f32.
    pub fn angles(&self, p: f32) -> (Vec<f32>, f32) {
        let theta_scale = powf(self.freq_base, -2.0f32 / self.n_dims as f32);
        let mut theta = p;
        let mut mscale = self.attn_factor;
        let mut out = Vec::with_capacity(self.n_dims / 2);
        for i in 0..self.n_dims / 2 {
            let extrap = match &self.freq_factors {
                Some(f) => theta / f[i],
                None => theta,
            };
            let interp = self.freq_scale * extrap;
            let t = if self.ext_factor != 0.0 {
                let (c0, c1) = self.corr_dims;
                let y = (i as f32 - c0) / 0.001f32.max(c1 - c0);
                let ramp = 1.0f32 - 1.0f32.min(0.0f32.max(y));
                let mix = ramp * self.ext_factor;
                mscale = self.attn_factor * (1.0f32 + 0.1f32 * logf(1.0f32 / self.freq_scale));
                // GCC contracts `interp*(1-mix) + extrap*mix` into one fma in the built library
                ((interp as f64) * ((1.0f32 - mix) as f64) + (extrap * mix) as f64) as f32
            } else {
                interp
            };
            out.push(t);
            theta *= theta_scale;
        }
        (out, mscale)
    }
}

/// Models `stack` on the config `text` (a config.json): the frequencies, the attention factor
/// and where it goes, at the options' context. An error names the offending field when the
/// file cannot be read at all; a config the stack cannot run is `supported: false` instead.
pub fn compute(text: &str, stack: Stack, opts: &StackOptions) -> Result<StackRope, ImportError> {
    let input = StackInput::parse(text, opts)?;
    compute_input(&input, stack)
}

/// [`compute`] on a parsed input (the audit parses once for four stacks).
pub fn compute_input(input: &StackInput, stack: Stack) -> Result<StackRope, ImportError> {
    let mut r = match stack {
        Stack::Transformers => transformers::compute(input)?,
        Stack::Vllm => vllm::compute(input)?,
        Stack::LlamaCpp => llama_cpp::compute(input)?,
        Stack::Mlx => mlx::compute(input)?,
    };
    if input.resonance {
        resonance_twin(&mut r);
    }
    Ok(r)
}

/// Rounds every pair's wavelength to an integer (SPEC.md section 3), as a config carrying the
/// Resonance twin's frequencies makes the stack compute: the angle per token is
/// `2 pi / round(2 pi / inv_freq)` in f32, folded into a plain product.
fn resonance_twin(r: &mut StackRope) {
    let rounded: Vec<f32> = r
        .inv_freq
        .iter()
        .map(|&w| {
            if w == 0.0 {
                return 0.0;
            }
            let l = (2.0 * std::f64::consts::PI / w as f64)
                .round_ties_even()
                .max(1.0);
            (2.0 * std::f64::consts::PI / l) as f32
        })
        .collect();
    r.inv_freq = rounded;
    if let Angles::Ggml(g) = &r.angles {
        // the twin reaches llama.cpp as rope_freqs divisors on plain RoPE
        let mut plain = g.clone();
        plain.freq_scale = 1.0;
        plain.ext_factor = 0.0;
        plain.attn_factor = r.cos_sin_scale as f32;
        let (base, _) = plain_ggml_angles(&plain);
        plain.freq_factors = Some(
            base.iter()
                .zip(&r.inv_freq)
                .map(|(&b, &w)| if w == 0.0 { 1e30 } else { b / w })
                .collect(),
        );
        r.angles = Angles::Ggml(plain);
    } else {
        r.angles = Angles::Product;
    }
    r.notes.push(
        "Resonance twin: every wavelength rounded to an integer after the stack's schedule \
         (inv_freq = 2 pi / round(2 pi / inv_freq))"
            .into(),
    );
}

/// The kernel's angles at p = 1 without factors (the base the twin's divisors apply to).
fn plain_ggml_angles(g: &GgmlRope) -> (Vec<f32>, f32) {
    let mut bare = g.clone();
    bare.freq_factors = None;
    bare.angles(1.0)
}
