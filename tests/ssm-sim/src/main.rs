//! `ssm-sim --listen 127.0.0.1:PORT [--config FILE]`: serves the simulator and
//! prints the address it listens on.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use ssm_sim::{Config, Server};

#[derive(Debug, Parser)]
#[command(
    name = "ssm-sim",
    about = "AWS SSM and STS simulator for tests, benchmarks and the demo"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", env = "SSM_SIM_LISTEN")]
    listen: SocketAddr,
    /// JSON file declaring accounts, roles, access keys, quotas and faults.
    #[arg(long, env = "SSM_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Account of unknown long-term access keys (overrides the config file).
    #[arg(long)]
    default_account: Option<String>,
    /// Seed for injected faults.
    #[arg(long)]
    fault_seed: Option<u64>,
    /// Fraction of calls answered with ThrottlingException.
    #[arg(long)]
    throttle_rate: Option<f64>,
    /// Fraction of calls answered with a 500 InternalServerError.
    #[arg(long)]
    server_error_rate: Option<f64>,
    /// Latency added to every call, in milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Account whose AssumeRole is denied (repeatable).
    #[arg(long = "unreachable-account")]
    unreachable_accounts: Vec<String>,
    /// Seconds Run Command invocations stay in progress (default 2).
    #[arg(long)]
    command_seconds: Option<f64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ssm-sim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(a) = args.default_account {
        config.default_account = a;
    }
    let f = &mut config.faults;
    if let Some(s) = args.fault_seed {
        f.seed = s;
    }
    if let Some(r) = args.throttle_rate {
        f.throttle_rate = r;
    }
    if let Some(r) = args.server_error_rate {
        f.server_error_rate = r;
    }
    if let Some(ms) = args.latency_ms {
        f.latency_ms.insert("*".into(), ms);
    }
    f.unreachable_accounts.extend(args.unreachable_accounts);
    f.validate().map_err(anyhow::Error::msg)?;
    if let Some(s) = args.command_seconds {
        config.settings.command_seconds = s;
    }
    config.settings.validate().map_err(anyhow::Error::msg)?;

    let server = Server::start(config, args.listen).await?;
    // Scripts read this line to learn the port.
    println!("listening on http://{}", server.addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await?;
    Ok(())
}
