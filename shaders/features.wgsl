// Feature table kernel: cos/sin of every feature of a schedule at a chunk of positions, with the
// attention factor applied, from exact phases (docs/phases.md#the-feature-kernel). One invocation per
// (position, feature). Requires common.wgsl.
//
// Phase of feature i at position p, per `phases[i] = (lambda, alpha_lo, alpha_hi, 0)`:
//   r = p mod lambda  (integer wavelength lambda < 2^32; lambda = 0 means "no reduction": r = p)
//   f = r * alpha mod 2^64  (0.64 fixed-point turns)
// Integer wavelengths carry alpha = round(2^64 / lambda), so the reduction stays exact in
// integers and f is within lambda * 2^-65 turns of r / lambda; other features carry their
// 64-bit turns per token.

struct FeatureParams {
    rows: u32,          // positions in this chunk
    num_features: u32,  // d/2
    list: u32,          // 1: positions[row]; 0: range_start + (row_offset + row) * range_stride
    range_start: u32,
    range_stride: u32,
    row_offset: u32,    // first row of this chunk within a range request
    row_layout: u32,    // 0: d/2 values per row; 1: d values, half-split; 2: d values, interleaved
    attention: f32,
}

@group(0) @binding(0) var<uniform> params: FeatureParams;
@group(0) @binding(1) var<storage, read> phases: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
// cos block (rows x width) followed by the sin block (rows x width)
@group(0) @binding(3) var<storage, read_write> table: array<f32>;

@compute @workgroup_size(256)
fn feature_table(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg);
    let nf = params.num_features;
    if idx >= params.rows * nf {
        return;
    }
    let row = idx / nf;
    let i = idx - row * nf;
    var p: u32;
    if params.list == 1u {
        p = positions[row];
    } else {
        p = params.range_start + (params.row_offset + row) * params.range_stride;
    }
    let ph = phases[i];
    var r = p;
    if ph.x != 0u {
        r = p % ph.x;
    }
    let cs = cos_sin_turns(mul_mod64(r, ph.yz)) * params.attention;
    if params.row_layout == 0u {
        table[idx] = cs.x;
        table[params.rows * nf + idx] = cs.y;
    } else {
        let width = 2u * nf;
        var a = i;
        var b = i + nf;
        if params.row_layout == 2u {
            a = 2u * i;
            b = 2u * i + 1u;
        }
        let base = row * width;
        let sin_base = params.rows * width + base;
        table[base + a] = cs.x;
        table[base + b] = cs.x;
        table[sin_base + a] = cs.y;
        table[sin_base + b] = cs.y;
    }
}
