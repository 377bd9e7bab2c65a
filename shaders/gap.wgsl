// Gap kernels (docs/gap.md#in-parallel-on-the-gpu) for a group of features. Requires common.wgsl; reduce.wgsl adds
// the reductions over the curves these passes write.
//
// Keys: key[j] = ||k alpha|| for k = j + 1, j = 0 .. n_keys-1 (n_keys = L' - 1), as exact
// integers identical to the CPU's the exact integer keys of docs/gap.md#exact-integer-keys:
//   Integer phase (mode 0): r = k mod lambda, key = min(r, lambda - r)   (lambda = 0: key = k)
//   Fixed phase   (mode 1): f = k alpha mod 2^64, key = min(f, 2^64 - f)
// The gap curve is the sliding-window minimum of width w = L, out[s] = min(key[s .. s+w-1]) for
// s = 0 .. n_out-1 (OOD position n = L + s), by van Herk / Gil-Werman: the keys are cut into
// blocks of w, and every window is min(suffix-min of its first block, prefix-min of its second).
// Block scans run in parallel: each block is cut into sub-chunks of at most CHUNK keys scanned by
// one invocation each (pass `chunk_scan`), one invocation per block carries the sub-chunk minima
// across the block (pass `block_carry`), and one invocation per output combines them
// (pass `window`), which also reduces each workgroup's maximum for the gap per feature.

const CHUNK: u32 = 256u;

struct GapParams {
    n_keys: u32,            // L' - 1
    window: u32,            // w = L
    n_out: u32,             // L' - L
    features: u32,          // features in this group
    chunks_per_block: u32,  // ceil(w / CHUNK)
    blocks: u32,            // ceil(n_keys / w)
    partials: u32,          // ceil(n_out / WORKGROUP): partial maxima per feature
    buckets: u32,           // min/max buckets per feature (0: none)
    write_curve: u32,       // 1: write the f32 curve
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

struct GapPhase {
    mode: u32,      // 0 integer wavelength, 1 fixed-point turns
    lambda: u32,    // integer wavelength (0: larger than any key index)
    alpha: vec2<u32>,
    to_radians: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> gp: GapParams;
@group(0) @binding(1) var<storage, read> gphases: array<GapPhase>;
@group(0) @binding(2) var<storage, read_write> prefix: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> suffix: array<vec2<u32>>;
// two entries per sub-chunk: [2g] sub-chunk minimum, then the exclusive suffix carry;
// [2g + 1] the exclusive prefix carry
@group(0) @binding(4) var<storage, read_write> carries: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read_write> curve: array<f32>;
// features * partials workgroup maxima, then one final entry per feature: (key lo, key hi, s, 0)
@group(0) @binding(6) var<storage, read_write> maxima: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read_write> buckets: array<vec2<f32>>;

fn gap_key(ph: GapPhase, k: u32) -> vec2<u32> {
    if ph.mode == 0u {
        if ph.lambda == 0u {
            return vec2<u32>(k, 0u);
        }
        let r = k % ph.lambda;
        return vec2<u32>(min(r, ph.lambda - r), 0u);
    }
    let f = mul_mod64(k, ph.alpha);
    return min64(f, neg64(f));
}

// Global sub-chunk index (within a feature) of key index j.
fn chunk_of(j: u32) -> u32 {
    let b = j / gp.window;
    return b * gp.chunks_per_block + (j - b * gp.window) / CHUNK;
}

@compute @workgroup_size(256)
fn chunk_scan(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let per_feature = gp.blocks * gp.chunks_per_block;
    let idx = linear_index(gid, nwg);
    if idx >= gp.features * per_feature {
        return;
    }
    let f = idx / per_feature;
    let g = idx - f * per_feature;
    let b = g / gp.chunks_per_block;
    let j = g - b * gp.chunks_per_block;
    let block_start = b * gp.window;
    let start = block_start + j * CHUNK;
    let end = min(min(start + CHUNK, block_start + gp.window), gp.n_keys);
    let ph = gphases[f];
    let base = f * gp.n_keys;
    var run = KEY_MAX;
    for (var i = start; i < end; i++) {
        run = min64(run, gap_key(ph, i + 1u));
        prefix[base + i] = run;
    }
    carries[2u * idx] = run;
    run = KEY_MAX;
    for (var i = end; i > start; i--) {
        run = min64(run, gap_key(ph, i));
        suffix[base + i - 1u] = run;
    }
}

@compute @workgroup_size(256)
fn block_carry(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg);
    if idx >= gp.features * gp.blocks {
        return;
    }
    let f = idx / gp.blocks;
    let b = idx - f * gp.blocks;
    let first = f * gp.blocks * gp.chunks_per_block + b * gp.chunks_per_block;
    // sub-chunks that hold keys (the last block may be short)
    let keys_in_block = min(gp.window, gp.n_keys - b * gp.window);
    let count = (keys_in_block + CHUNK - 1u) / CHUNK;
    var run = KEY_MAX;
    for (var j = 0u; j < count; j++) {
        carries[2u * (first + j) + 1u] = run;
        run = min64(run, carries[2u * (first + j)]);
    }
    run = KEY_MAX;
    for (var j = count; j > 0u; j--) {
        let m = carries[2u * (first + j - 1u)];
        carries[2u * (first + j - 1u)] = run;
        run = min64(run, m);
    }
}

var<workgroup> wg_key: array<vec2<u32>, 256>;
var<workgroup> wg_pos: array<u32, 256>;

// (key, s) beats (other key, other s) when the key is larger, or equal at an earlier s.
fn better(ka: vec2<u32>, sa: u32, kb: vec2<u32>, sb: u32) -> bool {
    return less64(kb, ka) || (ka.x == kb.x && ka.y == kb.y && sa < sb);
}

// Tree reduction of the workgroup's (wg_key, wg_pos) pairs into slot 0 by `better`. Every
// invocation of the workgroup must call it (it contains barriers).
fn reduce_workgroup_best(lid: u32) {
    workgroupBarrier();
    for (var stride = WORKGROUP / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            let ok = wg_key[lid + stride];
            let op = wg_pos[lid + stride];
            if better(ok, op, wg_key[lid], wg_pos[lid]) {
                wg_key[lid] = ok;
                wg_pos[lid] = op;
            }
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn window(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(local_invocation_index) lid: u32,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    // every feature owns `partials` whole workgroups, so a workgroup never spans two features
    let idx = linear_index(gid, nwg);
    let per_feature = gp.partials * WORKGROUP;
    let f = idx / per_feature;
    let s = idx - f * per_feature;
    var key = vec2<u32>(0u, 0u);
    var pos = 0xffffffffu;
    if f < gp.features && s < gp.n_out {
        let base = f * gp.n_keys;
        let cbase = f * gp.blocks * gp.chunks_per_block;
        let x = s + gp.window - 1u;
        let suf = min64(suffix[base + s], carries[2u * (cbase + chunk_of(s))]);
        let pre = min64(prefix[base + x], carries[2u * (cbase + chunk_of(x)) + 1u]);
        key = min64(suf, pre);
        pos = s;
        if gp.write_curve == 1u {
            curve[f * gp.n_out + s] = key_to_f32(key) * gphases[f].to_radians;
        }
    }
    wg_key[lid] = key;
    wg_pos[lid] = pos;
    reduce_workgroup_best(lid);
    if lid == 0u && f < gp.features {
        let w = s / WORKGROUP;
        maxima[f * gp.partials + w] = vec4<u32>(wg_key[0].x, wg_key[0].y, wg_pos[0], 0u);
    }
}
