//! `resonance-lab`: with no arguments opens the GUI; with a subcommand runs headless and prints
//! one JSON document.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
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
        Some(command) => match run(command) {
            Ok(doc) => {
                let text =
                    serde_json::to_string_pretty(&doc).expect("JSON values always serialize");
                println!("{text}");
            }
            Err(e) => {
                eprintln!("error: {}", e.message());
                std::process::exit(e.exit_code());
            }
        },
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
