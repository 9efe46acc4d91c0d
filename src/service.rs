//! The job-server commands: `serve`, `keys` and `usage`, over the server crate.

use std::{path::Path, process::ExitCode};

use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeysAction {
    /// Create an API key for a tenant; the key is printed once and stored only hashed.
    Add {
        /// The tenant the key's jobs belong to.
        #[arg(long)]
        tenant: String,
        /// May read every tenant's usage (`GET /v1/usage`).
        #[arg(long)]
        admin: bool,
    },
}

/// The server configuration: the file's (or the defaults), with `--data-dir` applied when it
/// was given explicitly or there is no file.
fn server_config(config: Option<&Path>, data_dir: &Path) -> Result<proofmill_server::Config> {
    let explicit = std::env::var_os("PROOFMILL_DATA_DIR").is_some()
        || std::env::args_os().any(|a| {
            let a = a.to_string_lossy();
            a == "--data-dir" || a.starts_with("--data-dir=")
        });
    let mut server = match config {
        Some(path) => proofmill_server::Config::load(path)?,
        None => proofmill_server::Config::default(),
    };
    if explicit || config.is_none() {
        server.data_dir = data_dir.to_owned();
    }
    server.apply_env();
    server.check()?;
    Ok(server)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn serve(
    config: Option<&Path>,
    listen: Option<std::net::SocketAddr>,
    data_dir: &Path,
    backend: proofmill_prover::engine::Engine,
) -> Result<ExitCode> {
    let mut server = server_config(config, data_dir)?;
    if let Some(listen) = listen {
        server.listen = listen;
    }
    // The server asks the prover's device layer for its devices, which also installs the
    // process-wide engine (the CPU engine when GPU workers carry the GPUs).
    server.engine = backend;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", server.listen))?;
        let addr = listener.local_addr()?;
        println!("proofmill listening on http://{addr}");
        proofmill_server::run(listener, server, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

pub fn keys(config: Option<&Path>, action: KeysAction, data_dir: &Path) -> Result<ExitCode> {
    let server = server_config(config, data_dir)?;
    match action {
        KeysAction::Add { tenant, admin } => {
            let key =
                runtime()?.block_on(proofmill_server::add_api_key(&server, &tenant, admin))?;
            eprintln!(
                "API key for tenant {tenant}{} (shown once; stored hashed in {}):",
                if admin { ", admin" } else { "" },
                server.database_url.as_deref().map_or_else(
                    || server.database_path().display().to_string(),
                    proofmill_server::store::redact_url
                )
            );
            println!("{key}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn usage(config: Option<&Path>, json: bool, data_dir: &Path) -> Result<ExitCode> {
    let server = server_config(config, data_dir)?;
    let rows = runtime()?.block_on(proofmill_server::usage_report(&server))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<24} {:<6} {:>14} {:>8}",
            "TENANT", "KIND", "DEVICE-SECONDS", "JOBS"
        );
        for r in rows {
            println!(
                "{:<24} {:<6} {:>14.1} {:>8}",
                r.tenant, r.device_kind, r.device_seconds, r.jobs
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
