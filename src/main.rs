//! The `marsad` binary: parse the command line, set up logging, run the command, and map errors
//! to exit codes (0 ok, 1 runtime failure, 2 invalid input or configuration).

mod commands;

use std::process::ExitCode;

use clap::Parser;
use marsad::cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs its progress; one-shot commands print their own summary and log only problems.
    let default = if matches!(cli.command, marsad::cli::Command::Run) {
        "warn,marsad=info"
    } else {
        "warn"
    };
    init_logging(cli.log_format, default);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            let code = commands::exit_code(&err);
            if let Some(config) = err.downcast_ref::<marsad::settings::ConfigErrors>() {
                // Already one `file:line:col: message` per line.
                eprintln!("{config}");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}

fn init_logging(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_env("MARSAD_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
