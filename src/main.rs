//! `resonance-lab`: with no arguments opens the GUI; with a subcommand runs headless and prints
//! one JSON document.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
    use resonance_lab::cli::{Cli, one_line, run};
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
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
            eprintln!("the GUI is not part of this build yet; use a subcommand (see --help)");
            std::process::exit(2);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
