// Shared helpers of every kernel: 64-bit fixed-point arithmetic on two u32 words, exact phase
// reduction and an accurate sin/cos. WGSL has no 64-bit integers and no f64, and its builtin
// sin/cos are only specified to 2^-11 absolute error, so none of them is used here.
//
// A 64-bit value is a vec2<u32> (x = low word, y = high word).

const WORKGROUP: u32 = 256u;
const KEY_MAX: vec2<u32> = vec2<u32>(0xffffffffu, 0xffffffffu);

// Full 32 x 32 -> 64-bit product, built from 16-bit limbs so that no partial product overflows.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // bits 16..47: at most 3 * (2^16 - 1), no overflow
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

// (p * alpha) mod 2^64 for a 32-bit p and a 64-bit alpha: the phase in 0.64 fixed-point turns.
fn mul_mod64(p: u32, alpha: vec2<u32>) -> vec2<u32> {
    let low = mul_wide(p, alpha.x);
    // p * alpha.y only contributes to the high word; u32 multiplication wraps
    return vec2<u32>(low.x, low.y + p * alpha.y);
}

// 2^64 - f (mod 2^64): two's complement negation on two words.
fn neg64(f: vec2<u32>) -> vec2<u32> {
    let lo = ~f.x + 1u;
    let carry = select(0u, 1u, lo == 0u);
    return vec2<u32>(lo, ~f.y + carry);
}

// a < b for 64-bit values, compared lexicographically (high word first).
fn less64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y < b.y || (a.y == b.y && a.x < b.x);
}

fn min64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return select(b, a, less64(a, b));
}

// A 64-bit key as an f32 (relative error 2^-24).
fn key_to_f32(k: vec2<u32>) -> f32 {
    return f32(k.y) * 4294967296.0 + f32(k.x);
}

// sin and cos of x for |x| <= pi/4: Cephes' single-precision minimax polynomials
// (absolute error about 6e-8 on that interval).
fn sincos_small(x: f32) -> vec2<f32> {
    let z = x * x;
    let s = x + x * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
    return vec2<f32>(s, c);
}

// (cos, sin) of 2*pi*f/2^64 for a 0.64 fixed-point phase f. The quadrant is taken from the top
// bits exactly; only the remainder (at most 1/8 turn) goes through floating point.
fn cos_sin_turns(f: vec2<u32>) -> vec2<f32> {
    let q = ((f.y + 0x20000000u) >> 30u) & 3u;
    let r = bitcast<i32>(f.y - (q << 30u)); // in [-2^29, 2^29)
    let turns = (f32(r) + f32(f.x) * 2.3283064365386963e-10) * 2.3283064365386963e-10;
    let sc = sincos_small(turns * 6.2831853071795865);
    let s = sc.x;
    let c = sc.y;
    switch q {
        case 0u: { return vec2<f32>(c, s); }
        case 1u: { return vec2<f32>(-s, c); }
        case 2u: { return vec2<f32>(-c, -s); }
        default: { return vec2<f32>(s, -c); }
    }
}

// Linear invocation index for a 1-D problem dispatched on a 2-D grid of workgroups (the grid is
// 2-D only when the workgroup count exceeds max_compute_workgroups_per_dimension).
fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP;
}
