//! Exact phases at any position (docs/phases.md#phase-representation). A feature's phase in turns is either
//! `(p mod lambda) / lambda` for an integer wavelength, or `frac(p * alpha)` with alpha (turns per
//! token) held as a 64-bit binary fraction, so it stays exact where `p * theta` in f32 does not.

use std::f64::consts::PI;

/// `1 / (2*pi)` as a double-double (hi + lo), accurate to ~1e-33.
pub const INV_TWO_PI_HI: f64 = 0.15915494309189535;
/// Low word of `1 / (2*pi)`.
pub const INV_TWO_PI_LO: f64 = -9.839338337591243e-18;

/// Integer wavelengths up to this value use integer phases; above it (where positions up to
/// 2^32 never complete a turn) the fixed-point form is exact enough.
pub const MAX_INTEGER_WAVELENGTH: f64 = 9_007_199_254_740_992.0; // 2^53

/// 2^64 as f64.
pub const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// The exact phase representation of one feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Integer period: phase turns are `(p mod lambda) / lambda`.
    Integer {
        /// The wavelength in tokens (>= 1).
        lambda: u64,
    },
    /// Turns per token as a 0.64 fixed-point fraction: phase turns are `(p * alpha mod 2^64) / 2^64`.
    Fixed {
        /// `round(theta / (2*pi) * 2^64)`.
        alpha: u64,
    },
}

/// `theta / (2*pi)` as a double-double (hi, lo), from an exact f64 `theta`.
pub fn turns_per_token_dd(theta: f64) -> (f64, f64) {
    let hi = theta * INV_TWO_PI_HI;
    let err = theta.mul_add(INV_TWO_PI_HI, -hi);
    let lo = err + theta * INV_TWO_PI_LO;
    let s = hi + lo;
    (s, lo - (s - hi))
}

impl Phase {
    /// Phase of a feature whose f32 inverse frequency is `inv` (radians per token, < 2*pi).
    pub fn from_inv_freq(inv: f32) -> Phase {
        let (hi, lo) = turns_per_token_dd(inv as f64);
        // alpha * 2^64 split into an exact integer part and a small remainder
        let x = hi * TWO_POW_64;
        let xi = x.floor();
        let rest = (x - xi) + lo * TWO_POW_64;
        let v = xi as i128 + rest.round() as i128;
        Phase::Fixed {
            alpha: v.rem_euclid(1i128 << 64) as u64,
        }
    }

    /// Phase of a feature with an integer wavelength (e.g. after Resonance rounding).
    pub fn from_wavelength(lambda: f64) -> Phase {
        if (1.0..=MAX_INTEGER_WAVELENGTH).contains(&lambda) && lambda.fract() == 0.0 {
            Phase::Integer {
                lambda: lambda as u64,
            }
        } else {
            // theta = 2*pi / lambda, alpha = 1 / lambda
            let a = (1.0 / lambda) * TWO_POW_64;
            Phase::Fixed { alpha: a as u64 }
        }
    }

    /// Phase at position `p` in turns, in `[0, 1)`.
    pub fn turns(&self, p: u64) -> f64 {
        match *self {
            Phase::Integer { lambda } => (p % lambda) as f64 / lambda as f64,
            Phase::Fixed { alpha } => p.wrapping_mul(alpha) as f64 / TWO_POW_64,
        }
        .min(PREV_ONE)
    }

    /// Phase at position `p` in radians, reduced to `[-pi, pi)`.
    pub fn angle(&self, p: u64) -> f64 {
        reduce_turns(self.turns(p)) * 2.0 * PI
    }
}

const PREV_ONE: f64 = 1.0 - f64::EPSILON / 2.0;

/// Maps turns in `[0, 1)` to `[-0.5, 0.5)`.
pub fn reduce_turns(t: f64) -> f64 {
    if t >= 0.5 { t - 1.0 } else { t }
}
