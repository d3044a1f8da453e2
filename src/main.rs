//! `lb-controller`: binds Kubernetes workloads to AWS Elastic Load Balancers.
//!
//! `lb-controller demo` runs everything on the local sandbox; `lb-controller crd` prints the CRDs.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lb-controller", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo on the local sandbox: a real control plane, simulated nodes, the examples'
    /// workloads, and what happens to them, live.
    Demo {
        /// Stop after this long (e.g. 30s); default: until Ctrl-C.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        run_for: Option<Duration>,
        /// Manifests to apply (YAML, several documents allowed).
        #[arg(long, default_value = "examples/sandbox/echo.yaml")]
        manifests: Vec<PathBuf>,
        /// Namespace for objects that name none.
        #[arg(long, default_value = "demo")]
        namespace: String,
    },
    /// Print the CRDs (YAML), as committed in config/crd/.
    Crd,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // kube logs every non-2xx answer; the sandbox's /readyz answers 500 until it is up.
                .unwrap_or_else(|_| "warn,kube_client::client::builder=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Demo {
            run_for,
            manifests,
            namespace,
        } => {
            demo::run(demo::DemoOptions {
                run_for,
                manifests,
                namespace,
            })
            .await
        }
        Command::Crd => lb_api::crds_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(|err| demo::DemoError::Crd(err.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lb-controller: {err}");
            ExitCode::FAILURE
        }
    }
}
