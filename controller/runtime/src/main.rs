//! patchfleet: keeps AWS Systems Manager Patch Manager, in many accounts, converged on patch
//! intent declared as Kubernetes resources. `main` only parses the command line and wires.

mod apidoc;
mod crdgen;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "patchfleet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the CustomResourceDefinitions (crds/*.yaml) and the API reference
    /// (docs/api.md), generated from the Rust types.
    Crdgen {
        /// Directory for the CRD YAML files.
        #[arg(long, default_value = "crds")]
        crds_dir: PathBuf,
        /// Path of the generated API reference.
        #[arg(long, default_value = "docs/api.md")]
        api_doc: PathBuf,
        /// Write nothing; exit 1 and name the files that are out of date.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crdgen {
            crds_dir,
            api_doc,
            check,
        } => {
            let outputs = match crdgen::render(&crds_dir, &api_doc) {
                Ok(outputs) => outputs,
                Err(error) => {
                    eprintln!("patchfleet crdgen: {error:#}");
                    return ExitCode::FAILURE;
                }
            };
            let result = if check {
                crdgen::check(&outputs)
            } else {
                crdgen::write(&outputs)
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("patchfleet crdgen: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
