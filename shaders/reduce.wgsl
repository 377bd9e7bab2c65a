// Reductions that turn gap curves into plot-ready data on the GPU, so that only a few numbers
// per feature are read back: the maximum of each curve (the gap per feature, with the first OOD
// offset where it is attained) and min/max per pixel bucket of each curve. Requires common.wgsl
// and gap.wgsl (bindings and the `better` ordering).

// One workgroup per feature: maximum over that feature's workgroup partials.
@compute @workgroup_size(256)
fn reduce_max(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let f = wid.x;
    var key = vec2<u32>(0u, 0u);
    var pos = 0xffffffffu;
    if f < gp.features {
        for (var w = lid; w < gp.partials; w += WORKGROUP) {
            let m = maxima[f * gp.partials + w];
            if better(m.xy, m.z, key, pos) {
                key = m.xy;
                pos = m.z;
            }
        }
    }
    wg_key[lid] = key;
    wg_pos[lid] = pos;
    reduce_workgroup_best(lid);
    if lid == 0u && f < gp.features {
        maxima[gp.features * gp.partials + f] = vec4<u32>(wg_key[0].x, wg_key[0].y, wg_pos[0], 0u);
    }
}

// One invocation per (feature, bucket): min and max of the curve over the bucket's OOD
// positions. Buckets split n_out as evenly as possible (sizes differ by at most one).
@compute @workgroup_size(256)
fn bucket_min_max(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg);
    if idx >= gp.features * gp.buckets {
        return;
    }
    let f = idx / gp.buckets;
    let b = idx - f * gp.buckets;
    let size = gp.n_out / gp.buckets;
    let extra = gp.n_out - size * gp.buckets;
    let start = b * size + min(b, extra);
    let end = start + size + select(0u, 1u, b < extra);
    // the largest finite f32, as bits: the decimal literal lies above it, which WGSL compilers
    // other than naga reject (Chromium's Tint: "cannot be represented as 'f32'")
    var lo = bitcast<f32>(0x7f7fffffu);
    var hi = -lo;
    for (var s = start; s < end; s++) {
        let v = curve[f * gp.n_out + s];
        lo = min(lo, v);
        hi = max(hi, v);
    }
    buckets[idx] = vec2<f32>(lo, hi);
}
