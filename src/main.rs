//! `resonance-lab`: with no arguments opens the GUI; with a subcommand runs headless and prints
//! one JSON document.

/// candle allocates a fresh buffer for every tensor op; by default glibc hands large freed
/// blocks and the heap's top back to the OS, so each training step page-faults its memory in
/// again (~15% of a tiny-preset step). Keeping freed memory makes steps 1.3-1.5x faster.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(any(target_arch = "wasm32", all(target_os = "linux", target_env = "gnu"))))]
fn keep_freed_memory() {}

/// candle splits large elementwise ops between the calling thread and helper threads, which
/// busy-wait for the next op before they sleep: 25,000 spins by default, about a millisecond
/// here. A training step at 2 threads keeps both cores busy, so that wait took a core's time
/// from the step (measured: a quarter of all CPU time). 1,000 spins still bridge the gap
/// between one op and the next: against 5,000, the text model's step (`lm bench`, 2 threads,
/// AMD EPYC without AVX-512) ran 80,200 tokens/s to 76,700 (medians of 5 alternating runs),
/// PosGen's presets level. An explicit `CANDLE_BARRIER_POOL_SPIN_LIMIT` is kept.
#[cfg(not(target_arch = "wasm32"))]
fn shorten_candle_spin() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var(VAR, "1000") };
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
    shorten_candle_spin();
    keep_freed_memory();
    use resonance_lab::cli::{Cli, one_line, run};
    // wgpu probes every backend; a missing GL/EGL driver is logged as an error by wgpu_hal even
    // when Vulkan serves the request, so that probe stays quiet unless RUST_LOG asks for it.
    let filter = "warn,wgpu_hal::gles=off";
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
        .target(env_logger::Target::Stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{}", one_line(&e));
            std::process::exit(2);
        }
    };
    match &cli.command {
        Some(command) => {
            let result = run(command);
            // A failed check (`CliError::Checked`) still prints its document.
            let doc = match &result {
                Ok(doc) | Err(resonance_lab::cli::CliError::Checked(doc, _)) => Some(doc),
                Err(_) => None,
            };
            if let Some(doc) = doc {
                // a closed pipe (`| head`) ends the output quietly, never with a panic
                use std::io::Write;
                let _ = writeln!(std::io::stdout().lock(), "{doc:#}");
            }
            if let Err(e) = result {
                eprintln!("error: {}", e.message());
                std::process::exit(e.exit_code());
            }
        }
        None => {
            let result = match &cli.screenshot {
                Some(path) => resonance_lab::app::native::screenshot(path),
                None => resonance_lab::app::native::run(),
            };
            if let Err(e) = result {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// Web entry: wasm-bindgen runs `main` at start-up; it spawns eframe's `WebRunner`.
#[cfg(target_arch = "wasm32")]
fn main() {
    resonance_lab::app::web::start();
}
