//! `gguf-patch IN.gguf OUT.gguf --twin TWIN.json`: writes a Resonance twin into a GGUF as
//! llama.cpp reads it. The format and the checks live in [`crate::gguf`]; this module opens the
//! files, streams the tensor data through a 1 MiB buffer and writes OUT through a temporary file
//! in OUT's directory that is renamed at the end (removed on any error).

use super::CliError;
use super::atomic::AtomicFile;
use crate::gguf::{self, GgufError, patch};
use clap::Args;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The copy buffer: the most tensor data held in memory at once.
const BUFFER: usize = 1 << 20;

/// Options of `gguf-patch`.
#[derive(Args, Debug)]
pub struct GgufPatchArgs {
    /// The GGUF to read (llama.cpp's converter output for the twin's original config).
    #[arg(value_name = "IN.gguf")]
    pub input: PathBuf,
    /// The patched GGUF to write (never the input).
    #[arg(value_name = "OUT.gguf")]
    pub output: PathBuf,
    /// The twin document written by `config FILE --export-resonance TWIN.json`.
    #[arg(long, value_name = "TWIN.json")]
    pub twin: PathBuf,
}

fn usage(what: &str, path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("invalid {what} '{}': {e}", path.display()))
}

/// Whether two paths name the same file (OUT may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
            _ => std::env::current_dir().ok()?,
        };
        Some(parent.join(p.file_name()?))
    };
    matches!((canon(a), canon(b)), (Some(x), Some(y)) if x == y)
}

/// `gguf-patch`.
pub fn gguf_patch(args: &GgufPatchArgs) -> Result<Value, CliError> {
    let started = web_time::Instant::now();
    if same_file(&args.input, &args.output) {
        return Err(usage(
            "OUT.gguf",
            &args.output,
            "is the input file; write the patched GGUF to another path",
        ));
    }
    let twin_text =
        std::fs::read_to_string(&args.twin).map_err(|e| usage("--twin", &args.twin, e))?;
    let twin_json: Value = serde_json::from_str(&twin_text)
        .map_err(|e| usage("--twin", &args.twin, format!("malformed JSON: {e}")))?;
    let twin = patch::Twin::from_json(&twin_json).map_err(|e| CliError::Usage(e.to_string()))?;

    let file = File::open(&args.input).map_err(|e| usage("IN.gguf", &args.input, e))?;
    let in_len = file
        .metadata()
        .map_err(|e| usage("IN.gguf", &args.input, e))?
        .len();
    let mut reader = BufReader::with_capacity(BUFFER, file);
    let bad_in = |e: GgufError| match e {
        GgufError::Invalid(m) => usage("IN.gguf", &args.input, m),
        GgufError::Io(e) => usage("IN.gguf", &args.input, e),
    };
    let read = gguf::read_header(&mut reader, in_len).map_err(bad_in)?;
    let plan = patch::plan(&read.header, &twin).map_err(|e| match e {
        GgufError::Invalid(m) => CliError::Usage(format!(
            "invalid IN.gguf '{}' for this twin: {m}",
            args.input.display()
        )),
        GgufError::Io(e) => CliError::Runtime(e.to_string()),
    })?;

    let mut out = AtomicFile::create(&args.output).map_err(|e| {
        usage(
            "OUT.gguf",
            &args.output,
            format!("cannot create a file beside it: {e}"),
        )
    })?;
    let runtime = |e: GgufError| CliError::Runtime(format!("gguf-patch: {e}"));
    let w = out.writer();
    let data_start = plan
        .header
        .write(w)
        .map_err(|e| runtime(GgufError::Io(e)))?;
    // skip the input's padding, then stream its data section with the factors in place
    let pad = read.data_start - read.header_len;
    std::io::copy(&mut (&mut reader).take(pad), &mut std::io::sink())
        .map_err(|e| runtime(GgufError::Io(e)))?;
    gguf::copy_patched(&mut reader, w, plan.data_len, &plan.in_place, BUFFER).map_err(runtime)?;
    gguf::write_zeros(w, plan.appended_at - plan.data_len)
        .map_err(|e| runtime(GgufError::Io(e)))?;
    w.write_all(&plan.appended)
        .map_err(|e| runtime(GgufError::Io(e)))?;
    let out_len = data_start + plan.appended_at + plan.appended.len() as u64;
    out.commit()
        .map_err(|e| usage("OUT.gguf", &args.output, format!("cannot write it: {e}")))?;

    let mut doc = json!({
        "input": args.input.display().to_string(),
        "output": args.output.display().to_string(),
        "twin": args.twin.display().to_string(),
        "name": twin.name,
        "source_rope_type": twin.rope_type,
        "factors": plan.factors,
        "attention_factor": twin.attention_factor,
        "input_bytes": in_len,
        "output_bytes": out_len,
        "data_start": data_start,
        "tensors": plan.header.tensors.len(),
        "buffer_bytes": BUFFER,
        "seconds": started.elapsed().as_secs_f64(),
    });
    if let (Value::Object(d), Value::Object(r)) = (&mut doc, plan.report) {
        d.extend(r);
    }
    Ok(doc)
}
