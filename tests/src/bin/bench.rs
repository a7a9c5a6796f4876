//! `bench ACCOUNTS [REGIONS] [--steady-minutes M] [--patchfleet PATH] [--doc FILE]`: the
//! scale benchmark (see `patchfleet_tests::bench`). Prints every figure as `key=value`
//! lines on stdout (progress on stderr) and, with `--doc`, appends the run to that file
//! (scripts/bench passes docs/performance.md).
//!
//! `--steady-minutes` (env PATCHFLEET_BENCH_STEADY_MINUTES, default 2) is the quiet window
//! after convergence; `--patchfleet` the controller binary (default: `patchfleet` next to
//! this binary, so a release build of both measures the release controller).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use patchfleet_tests::bench::{self, Options, Workload};

const USAGE: &str = "usage: bench ACCOUNTS [REGIONS] [--steady-minutes M] [--ceiling-seconds S] \
                     [--patchfleet PATH] [--doc FILE]";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut positional = Vec::new();
    let mut steady_minutes: f64 = match std::env::var("PATCHFLEET_BENCH_STEADY_MINUTES") {
        Ok(value) => value
            .parse()
            .context("PATCHFLEET_BENCH_STEADY_MINUTES: a number of minutes")?,
        Err(_) => 2.0,
    };
    let mut ceiling_seconds = 5.0;
    let mut patchfleet = None;
    let mut doc = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--steady-minutes" => {
                steady_minutes = value(&arg)?
                    .parse()
                    .context("--steady-minutes: a number of minutes")?;
            }
            "--ceiling-seconds" => {
                ceiling_seconds = value(&arg)?
                    .parse()
                    .context("--ceiling-seconds: a number of seconds")?;
            }
            "--patchfleet" => patchfleet = Some(PathBuf::from(value(&arg)?)),
            "--doc" => doc = Some(PathBuf::from(value(&arg)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            flag if flag.starts_with('-') => anyhow::bail!("unknown flag {flag}\n{USAGE}"),
            _ => positional.push(arg),
        }
    }
    let (accounts, regions) = match positional.as_slice() {
        [accounts] => (accounts.as_str(), "2"),
        [accounts, regions] => (accounts.as_str(), regions.as_str()),
        _ => anyhow::bail!("{USAGE}"),
    };
    let workload = Workload::new(
        accounts.parse().context("ACCOUNTS: a number")?,
        regions.parse().context("REGIONS: a number")?,
    )?;
    anyhow::ensure!(
        steady_minutes >= 0.0 && ceiling_seconds >= 0.0,
        "durations must not be negative"
    );
    let patchfleet = match patchfleet {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .join("patchfleet"),
    };
    anyhow::ensure!(
        patchfleet.exists(),
        "{} does not exist (cargo build --release -p patchfleet)",
        patchfleet.display()
    );
    let options = Options {
        name: "bench".into(),
        workload,
        patchfleet,
        controller_args: Vec::new(),
        steady: Duration::from_secs_f64(steady_minutes * 60.0),
        ceiling: Duration::from_secs_f64(ceiling_seconds),
        quiet: Duration::from_secs(5),
        // A phase that takes this long is broken, not slow: 1,000 accounts converge far sooner.
        timeout: Duration::from_secs(3600),
        progress: true,
        delete_accounts: false,
    };
    let report = bench::run(&options).await?;
    for (key, value) in report.lines() {
        println!("{key}={value}");
    }
    if let Some(doc) = doc {
        let mut text =
            std::fs::read_to_string(&doc).with_context(|| format!("reading {}", doc.display()))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&report.markdown());
        std::fs::write(&doc, text).with_context(|| format!("writing {}", doc.display()))?;
        eprintln!("bench: the run is appended to {}", doc.display());
    }
    Ok(())
}
