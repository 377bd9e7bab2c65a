//! The audit: one config through every stack, and the list of where each stack parts from
//! transformers (frequencies per feature, attention factor, softmax factor, factor-list choice,
//! cos/sin at the positions that matter), each with its cause and what a user sees.

use super::{Stack, StackInput, StackOptions, StackRope, compute_input};
use crate::rope::hf_config::ImportError;

/// Every stack side by side, and their differences from transformers.
#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    /// The context every stack was run at.
    pub context: u64,
    /// The positions cos/sin were compared at ([`audit_positions`]).
    pub positions: Vec<u64>,
    /// One result per stack, in [`Stack::ALL`] order.
    pub stacks: Vec<StackRope>,
    /// Where a stack's values differ from transformers'.
    pub differences: Vec<Difference>,
}

/// One difference between transformers and another stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// The stacks compared: transformers first.
    pub stacks: [Stack; 2],
    /// `supported`, `rotary_dim`, `inv_freq`, `attention_factor`, `softmax_scale_factor`,
    /// `factor_list`, `cos_sin` or `max_positions`.
    pub field: &'static str,
    /// Largest absolute difference (0 for a non-numeric field).
    pub max_abs: f64,
    /// Largest relative difference (0 for a non-numeric field).
    pub max_rel: f64,
    /// Features (pairs) where the values differ.
    pub features: Vec<usize>,
    /// Positions where cos/sin differ (for `cos_sin`, `max_positions`, `factor_list`).
    pub positions: Vec<u64>,
    /// The cause, in one line.
    pub cause: String,
    /// What a user of the second stack sees.
    pub effect: String,
    /// Whether this is float rounding only (a few ulp of the frequencies), not a modelling
    /// difference.
    pub rounding_only: bool,
}

impl Difference {
    /// A difference of `field` between `stacks` with nothing measured yet.
    fn blank(stacks: [Stack; 2], field: &'static str) -> Difference {
        Difference {
            stacks,
            field,
            max_abs: 0.0,
            max_rel: 0.0,
            features: Vec::new(),
            positions: Vec::new(),
            cause: String::new(),
            effect: String::new(),
            rounding_only: false,
        }
    }
}

/// The options the audit takes (the same as one stack's).
pub type AuditOptions = StackOptions;

/// Relative frequency difference below which two stacks agree to f32 rounding.
const ROUNDING_REL: f64 = 1e-4;

/// The positions the audit compares cos/sin at: 0, 1, L-1, L, 2L and max-1, with L the original
/// (pre-training) length and max the larger of `max_position_embeddings` and the context.
pub fn audit_positions(original: u64, max_pos: u64, context: u64) -> Vec<u64> {
    let top = max_pos.max(context);
    let mut v: Vec<u64> = [
        0,
        1,
        original.saturating_sub(1),
        original,
        2 * original,
        top - 1,
    ]
    .into_iter()
    .filter(|&p| p < top.max(1))
    .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Puts the config through every stack at the options' context and lists the differences.
pub fn audit(text: &str, opts: &StackOptions) -> Result<Audit, ImportError> {
    let input = StackInput::parse(text, opts)?;
    let stacks = Stack::ALL
        .iter()
        .map(|&s| compute_input(&input, s))
        .collect::<Result<Vec<_>, _>>()?;
    let original = input
        .transformers
        .as_ref()
        .map_or(input.plain.config.train_len, |m| m.config.train_len);
    let positions = audit_positions(original, input.max_pos(), input.context);
    // transformers at a short sequence, for the stacks that fix the LongRoPE list per run
    let short_ref = if stacks[0].factor_list.is_some() && input.context > original {
        let mut o = opts.clone();
        o.context = Some(original);
        let i = StackInput::parse(text, &o)?;
        Some(compute_input(&i, Stack::Transformers)?)
    } else {
        None
    };
    let mut differences = Vec::new();
    for other in &stacks[1..] {
        compare(
            &stacks[0],
            other,
            &positions,
            short_ref.as_ref(),
            original,
            &mut differences,
        );
    }
    Ok(Audit {
        context: input.context,
        positions,
        stacks,
        differences,
    })
}

/// The causes a stack gives for a field, joined; `None` when it names none.
fn causes(b: &StackRope, field: &str) -> Option<(String, String)> {
    let q: Vec<_> = b.quirks.iter().filter(|q| q.field == field).collect();
    (!q.is_empty()).then(|| {
        (
            q.iter()
                .map(|q| q.cause.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            q.iter()
                .map(|q| q.effect.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// How a stack forms its frequencies, for rounding-only differences.
fn rounding_cause(s: Stack) -> &'static str {
    match s {
        Stack::LlamaCpp => {
            "the ggml kernel forms each angle by theta *= powf(base, -2/n_dims) from theta = p \
             (ggml/src/ggml-cpu/ops.cpp:6216), not as p * 1/base^(2i/d)"
        }
        Stack::Mlx => {
            "mx.fast.rope computes exp(-i logf(base) / (d/2)) or the reciprocal of mlx-lm's periods \
             (mlx/fast.cpp:459-469), not 1/base^(2i/d)"
        }
        _ => "the same formula in another f32 operation order",
    }
}

/// Relative difference (absolute where the reference is 0).
fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else if a == 0.0 {
        (b - a).abs()
    } else {
        ((b - a) / a).abs()
    }
}

/// Appends the differences between `a` (transformers) and `b`.
fn compare(
    a: &StackRope,
    b: &StackRope,
    positions: &[u64],
    short_ref: Option<&StackRope>,
    original: u64,
    out: &mut Vec<Difference>,
) {
    let pair = [a.stack, b.stack];
    let blank = |field: &'static str| Difference::blank(pair, field);
    if a.supported != b.supported {
        let (cause, effect) = causes(b, "supported")
            .or_else(|| causes(a, "supported"))
            .unwrap_or_else(|| {
                let r = b.reason.clone().or(a.reason.clone()).unwrap_or_default();
                (r, "the stacks do not run the same RoPE".into())
            });
        out.push(Difference {
            cause,
            effect,
            ..blank("supported")
        });
    }
    if a.inv_freq.is_empty() || b.inv_freq.is_empty() {
        return;
    }
    if a.inv_freq.len() != b.inv_freq.len() {
        out.push(Difference {
            max_abs: (a.rotary_dim as f64 - b.rotary_dim as f64).abs(),
            cause: format!(
                "{} rotates {} dimensions, {} {}",
                a.stack.name(),
                a.rotary_dim,
                b.stack.name(),
                b.rotary_dim
            ),
            effect: "a different part of each head is rotated".into(),
            ..blank("rotary_dim")
        });
        return;
    }
    compare_inv_freq(a, b, out);
    compare_scales(a, b, out);
    compare_factor_list(a, b, positions, short_ref, original, out);
    compare_cos_sin(a, b, positions, out);
}

/// The frequencies, with the named cause unless they agree to rounding.
fn compare_inv_freq(a: &StackRope, b: &StackRope, out: &mut Vec<Difference>) {
    let blank = |field: &'static str| Difference::blank([a.stack, b.stack], field);
    let mut d = blank("inv_freq");
    for (i, (&x, &y)) in a.inv_freq.iter().zip(&b.inv_freq).enumerate() {
        let r = rel(x as f64, y as f64);
        if x != y {
            d.features.push(i);
            d.max_abs = d.max_abs.max((y as f64 - x as f64).abs());
            d.max_rel = d.max_rel.max(r);
        }
    }
    if !d.features.is_empty() {
        let rounding = d.max_rel < ROUNDING_REL;
        let named = causes(b, "inv_freq")
            .or_else(|| causes(b, "factor_list").filter(|_| a.factor_list != b.factor_list));
        let (cause, effect) = match (rounding, named) {
            (false, Some(c)) => c,
            _ => (
                rounding_cause(b.stack).to_string(),
                format!(
                    "frequencies agree to a relative {:.1e}: wavelengths differ in the last f32 \
                     digits only",
                    d.max_rel
                ),
            ),
        };
        out.push(Difference {
            cause,
            effect,
            rounding_only: rounding,
            ..d
        });
    }
}

/// The attention factor on cos/sin and the softmax scale.
fn compare_scales(a: &StackRope, b: &StackRope, out: &mut Vec<Difference>) {
    let blank = |field: &'static str| Difference::blank([a.stack, b.stack], field);
    for (field, x, y) in [
        ("attention_factor", a.cos_sin_scale, b.cos_sin_scale),
        (
            "softmax_scale_factor",
            a.softmax_scale_factor.unwrap_or(1.0),
            b.softmax_scale_factor.unwrap_or(1.0),
        ),
    ] {
        let r = rel(x, y);
        if r > 1e-6 {
            let (cause, effect) = causes(b, field).unwrap_or_else(|| {
                (
                    format!("{} computes {y}, transformers {x}", b.stack.name()),
                    "attention logits are scaled differently".into(),
                )
            });
            out.push(Difference {
                max_abs: (y - x).abs(),
                max_rel: r,
                cause,
                effect,
                ..blank(field)
            });
        }
    }
}

/// The LongRoPE list: fixed per run in the other stacks, per sequence in transformers.
fn compare_factor_list(
    a: &StackRope,
    b: &StackRope,
    positions: &[u64],
    short_ref: Option<&StackRope>,
    original: u64,
    out: &mut Vec<Difference>,
) {
    if let (Some(la), Some(lb)) = (a.factor_list, b.factor_list) {
        let vs_short = lb == "long" && short_ref.is_some();
        if la != lb || vs_short || b.stack == Stack::Mlx && la == "short" {
            let reference = if vs_short { short_ref.unwrap_or(a) } else { a };
            let mut d = Difference::blank([a.stack, b.stack], "factor_list");
            for (i, (&x, &y)) in reference.inv_freq.iter().zip(&b.inv_freq).enumerate() {
                if rel(x as f64, y as f64) > ROUNDING_REL {
                    d.features.push(i);
                    d.max_abs = d.max_abs.max((y as f64 - x as f64).abs());
                    d.max_rel = d.max_rel.max(rel(x as f64, y as f64));
                }
            }
            d.positions = positions
                .iter()
                .copied()
                .filter(|&p| p < original)
                .collect();
            let (cause, effect) = causes(b, "factor_list").unwrap_or_else(|| {
                (
                    format!(
                        "{} uses the {lb} factors, transformers the {la}",
                        b.stack.name()
                    ),
                    "other frequencies for the same sequence".into(),
                )
            });
            out.push(Difference { cause, effect, ..d });
        }
    }
}

/// The largest cos/sin difference at each audit position: the `cos_sin` difference with its
/// positions and max_rel filled in (features collected), the positions only `a` has values for,
/// and the worst difference with its position.
fn measure_cos_sin(
    a: &StackRope,
    b: &StackRope,
    positions: &[u64],
) -> (Difference, Vec<u64>, (f64, u64)) {
    let ca = a.cos_sin(positions);
    let cb = b.cos_sin(positions);
    let mut d = Difference::blank([a.stack, b.stack], "cos_sin");
    let mut missing = Vec::new();
    let mut worst = (0.0f64, 0u64);
    let mut feats = std::collections::BTreeSet::new();
    for (k, (ra, rb)) in ca.iter().zip(&cb).enumerate() {
        match (ra, rb) {
            (Some(ra), Some(rb)) => {
                let mut hit = false;
                for (i, ((&x1, &y1), (&x2, &y2))) in ra
                    .cos
                    .iter()
                    .zip(&rb.cos)
                    .zip(ra.sin.iter().zip(&rb.sin))
                    .enumerate()
                {
                    let e = ((x1 - y1).abs().max((x2 - y2).abs())) as f64;
                    if e > 1e-5 {
                        hit = true;
                        feats.insert(i);
                    }
                    if e > worst.0 {
                        worst = (e, positions[k]);
                    }
                    d.max_rel = d
                        .max_rel
                        .max(e / (x1.abs().max(x2.abs()) as f64).max(1e-30));
                }
                if hit {
                    d.positions.push(positions[k]);
                }
            }
            (Some(_), None) => missing.push(positions[k]),
            _ => {}
        }
    }
    d.features = feats.into_iter().collect();
    (d, missing, worst)
}

/// cos/sin at the audit positions (a modelling cause only where one was found above), and the
/// positions past the stack's cache.
fn compare_cos_sin(a: &StackRope, b: &StackRope, positions: &[u64], out: &mut Vec<Difference>) {
    let pair = [a.stack, b.stack];
    let blank = |field: &'static str| Difference::blank(pair, field);
    let modelled = out
        .iter()
        .any(|d| d.stacks == pair && !d.rounding_only && d.field != "max_positions");
    let (mut d, missing, worst) = measure_cos_sin(a, b, positions);
    if !d.positions.is_empty() {
        d.max_abs = worst.0;
        let fields = ["inv_freq", "attention_factor", "factor_list", "supported"];
        let named: Vec<(String, String)> = fields.iter().filter_map(|f| causes(b, f)).collect();
        let (cause, effect) = if named.is_empty() || !modelled {
            (
                format!(
                    "{}; the angle's f32 rounding grows with the position",
                    rounding_cause(b.stack)
                ),
                format!(
                    "cos/sin differ by up to {:.2e} (at position {}); f32 angle rounding, no \
                     modelling difference",
                    worst.0, worst.1
                ),
            )
        } else {
            (
                named
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                format!(
                    "q and k are rotated differently: cos/sin differ by up to {:.3} (at position {})",
                    worst.0, worst.1
                ),
            )
        };
        d.rounding_only = !modelled;
        out.push(Difference { cause, effect, ..d });
    }
    if !missing.is_empty() {
        out.push(Difference {
            positions: missing.clone(),
            cause: format!(
                "{}'s cos/sin cache has {} rows at this length",
                b.stack.name(),
                b.max_positions.unwrap_or(0)
            ),
            effect: format!(
                "positions from {} on have no rotary value in {} (IndexError on the CPU path)",
                missing[0],
                b.stack.name()
            ),
            ..blank("max_positions")
        });
    }
}
