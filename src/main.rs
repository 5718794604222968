//! The `coform` binary. See `coform --help`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use coform::config::{Cli, Command};
use coform::{backup, server, telemetry};

fn main() -> ExitCode {
    // Files the server creates (the embedded database and its WAL, mails
    // with sign-in links, keys) are for its own user only.
    #[cfg(unix)]
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    // Backup and restore work on files only: no server, no runtime.
    match &cli.command {
        Some(Command::Backup(args)) => {
            let _logs = telemetry::init(coform::config::LogFormat::Text, None);
            return report(backup::backup(args));
        }
        Some(Command::Restore(args)) => {
            let _logs = telemetry::init(coform::config::LogFormat::Text, None);
            return report(backup::restore(args));
        }
        _ => {}
    }
    let rotate = matches!(cli.command, Some(Command::RotateSecrets(_)));
    let config = cli.into_config();
    if let Err(e) = config.validate() {
        eprintln!("coform: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coform: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Spans leave over connections made on the runtime.
    let spans = match config.otlp.endpoint {
        Some(_) => match telemetry::otlp::Pipeline::new(&config.otlp, runtime.handle().clone()) {
            Ok(pipeline) => Some((pipeline, config.otlp.filter.as_str())),
            Err(e) => {
                eprintln!("coform: --otlp-endpoint: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let telemetry = telemetry::init(config.log_format, spans);
    let code = if rotate {
        runtime.block_on(async {
            match server::rotate_secrets(&config).await {
                Ok(count) => {
                    println!("re-sealed the secrets of {count} data sources");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("coform: {e:#}");
                    ExitCode::FAILURE
                }
            }
        })
    } else {
        runtime.block_on(serve(config))
    };
    // After the server stopped, so its last spans are sent too.
    telemetry.shutdown();
    code
}

/// Runs the server until SIGTERM or Ctrl-C, then shuts it down.
async fn serve(config: coform::config::Config) -> ExitCode {
    let server = match server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("coform: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // One line on stdout that scripts and tests wait for.
    println!("coform listening on http://{}", server.addr);
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Prints what a command did, or why it failed.
fn report<T: std::fmt::Display>(result: anyhow::Result<T>) -> ExitCode {
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("coform: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
