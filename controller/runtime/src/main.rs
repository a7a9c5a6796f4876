//! patchfleet: keeps AWS Systems Manager Patch Manager, in many accounts, converged on patch
//! intent declared as Kubernetes resources. `main` only parses the command line and wires.

mod apidoc;
mod args;
mod controller;
mod crdgen;
mod dashboard;
mod enroll;
mod fleet;
mod http;
mod leader;
mod metrics;
mod nodes;
mod plan_cmd;
mod report;
mod rollup;
mod serving;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc, not the C library's allocator: with glibc's, memory freed after convergence
/// stayed resident (88 MiB at 1,000 accounts, 63 MiB with jemalloc returning what stays
/// free for a second: docs/performance.md), and musl's (the image) is slow. Its options are
/// set when it is built (.cargo/config.toml, JEMALLOC_SYS_WITH_MALLOC_CONF).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "patchfleet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: watch the resources and keep every account and region converged.
    /// A flag given twice takes its last value (a wrapper's default, then an override).
    #[command(args_override_self = true)]
    Run(Box<args::RunArgs>),
    /// Print the SSM state the manifests in a directory declare, per account and region;
    /// with --against, also the changes that would be applied (no cluster needed).
    Plan(args::PlanArgs),
    /// Print the fleet's compliance as the resources' status says it (kubeconfig only, no
    /// AWS credentials): per account-region, per PatchGroup, per MaintenanceWindow.
    Report(args::ReportArgs),
    /// Serve the read-only web dashboard: the statuses per account, group and window, and
    /// per-instance detail read from SSM on demand, as each user's RBAC allows
    /// (docs/dashboard.md).
    Dashboard(Box<args::DashboardArgs>),
    /// Serve machine enrollment over TLS: verify a machine's signed cloud identity, map it to
    /// its SystemAccount and hand out an SSM hybrid activation (docs/enrollment.md).
    Enroll(Box<args::EnrollArgs>),
    /// Write the CustomResourceDefinitions (crds/*.yaml) and the API reference
    /// (docs/api.md), generated from the Rust types.
    Crdgen(args::CrdgenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crdgen(args) => report(crdgen::run(args)),
        Command::Run(args) => {
            args::init_logging(args.log_format);
            report(tokio_main(async move {
                controller::run(args.into_config()?).await
            }))
        }
        Command::Dashboard(args) => {
            args::init_logging(args.log_format);
            report(tokio_main(dashboard::run(*args)))
        }
        Command::Enroll(args) => {
            args::init_logging(args.log_format);
            report(tokio_main(enroll::run(*args)))
        }
        Command::Report(args) => report(tokio_main(report::run(args))),
        Command::Plan(args) => {
            args::init_logging(args::LogFormat::Text);
            report(tokio_main(plan_cmd::run(args)))
        }
    }
}

fn tokio_main(future: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("patchfleet: {error:#}");
            ExitCode::FAILURE
        }
    }
}
