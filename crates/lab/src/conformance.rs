//! The Gateway API conformance suite (GATEWAY-HTTP, `sigs.k8s.io/gateway-api/conformance`
//! v1.6.3, unmodified) against lb-controller on the sandbox: the sandbox with the Gateway API CRDs,
//! the controller (ip targets by default, as upstream's conformance run), the GatewayClass, then
//! `go test` of the entry file in `tests/conformance/` (its only change from a real cluster is
//! the dialer: each load balancer's hostname and port to the emulator's loopback listener). The Go
//! modules come from the Go module proxy once and stay in the Go module cache. The report YAML is
//! written where asked, and its counts are printed per profile.

use std::path::PathBuf;
use std::process::Stdio;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use lb_api::gateway::GatewayClass;
use lb_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

use lb_model::gateway::class::SUPPORTED_FEATURES;

use crate::harness::{
    HarnessError, HarnessOptions, install_gateway_api_crds, start_controller_with,
};

/// The GatewayClass the suite tests.
pub const CLASS: &str = "lb-controller";

/// How long the suite waits for three consistent answers (its default: 30 s). ELB's timing is
/// kept: a new target group's targets are healthy after 3 checks 15 s apart, then the listener
/// routes to them; 120 s covers that with room for a busy machine.
pub const MAX_TIME_TO_CONSISTENCY: std::time::Duration = std::time::Duration::from_secs(120);

/// Tests skipped, each for an ALB limit (docs/conformance/README.md says which). The features
/// claimed are the GatewayClass's own (`lb_model::gateway::class::SUPPORTED_FEATURES`).
pub const SKIPPED: &[&str] = &[
    // Core. ALB cannot add, set or remove request headers.
    "HTTPRouteRequestHeaderModifier",
    // GatewayInfrastructure: an ALB Gateway makes no in-cluster objects to carry the labels and
    // annotations to (its invalid-parameters test runs).
    "GatewayInfrastructureMetadata",
];

#[derive(Debug, Clone, clap::Args)]
pub struct ConformanceOptions {
    /// Run only this test (its short name, e.g. HTTPRouteSimpleSameNamespace).
    #[arg(long)]
    pub run_test: Option<String>,
    /// Run only these tests (short names, comma-separated); the others are skipped.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Where to write the conformance report YAML.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// `go test -timeout`.
    #[arg(long, default_value = "90m")]
    pub timeout: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Sandbox(#[from] lb_sandbox::SandboxError),
    #[error("creating the GatewayClass: {0}")]
    Kube(#[from] kube::Error),
    #[error("running go test (is Go 1.26 on PATH?): {0}")]
    Go(#[source] std::io::Error),
    #[error("the conformance suite failed (go test exited with {0})")]
    Failed(std::process::ExitStatus),
    #[error("reading the report {path}: {why}")]
    Report { path: PathBuf, why: String },
}

/// Runs the suite; the summary of its report (when one was asked for).
pub async fn run(options: ConformanceOptions) -> Result<String, ConformanceError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let result = run_on(&sandbox, &options).await;
    sandbox.shutdown().await;
    result
}

async fn run_on(
    sandbox: &Sandbox,
    options: &ConformanceOptions,
) -> Result<String, ConformanceError> {
    let client = sandbox.client();
    install_gateway_api_crds(&client).await?;
    let harness = HarnessOptions {
        alb_target_type: lb_api::TargetType::Ip,
        ..HarnessOptions::default()
    };
    let controller = start_controller_with(sandbox, harness).await?;
    create_class(&client).await?;
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let report = options
        .report
        .clone()
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    let status = tokio::process::Command::new("go")
        .args([
            "test",
            "-count=1",
            "-v",
            "-run",
            "TestConformance",
            "-timeout",
            &options.timeout,
            ".",
        ])
        .current_dir(entry_dir())
        .env("KUBECONFIG", sandbox.kubeconfig_path())
        .env("LB_SANDBOX_CONTROL", aws.control().address().to_string())
        .env("GATEWAY_CLASS", CLASS)
        .env("SUPPORTED_FEATURES", SUPPORTED_FEATURES.join(","))
        .env("SKIP_TESTS", SKIPPED.join(","))
        .env("RUN_TEST", options.run_test.clone().unwrap_or_default())
        .env("ONLY_TESTS", options.only.join(","))
        .env("REPORT", report.clone().unwrap_or_default())
        .env("VERSION", env!("CARGO_PKG_VERSION"))
        .env(
            "MAX_TIME_TO_CONSISTENCY",
            MAX_TIME_TO_CONSISTENCY.as_secs().to_string(),
        )
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(ConformanceError::Go)?;
    controller.stop().await;
    let summary = match &report {
        Some(path) => summary(path)?,
        None => String::new(),
    };
    if !status.success() {
        eprintln!("{summary}");
        return Err(ConformanceError::Failed(status));
    }
    Ok(summary)
}

/// `tests/conformance/` of this checkout.
fn entry_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

async fn create_class(client: &Client) -> Result<(), kube::Error> {
    let classes: Api<GatewayClass> = Api::all(client.clone());
    let class = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": CLASS},
        "spec": {"controllerName": lb_api::gateway::ALB_CONTROLLER_NAME},
    });
    classes
        .patch(
            CLASS,
            &PatchParams::apply("lb-controller-conformance"),
            &Patch::Apply(class),
        )
        .await?;
    Ok(())
}

/// Passed, failed and skipped per profile and level, from the report.
pub fn summary(path: &std::path::Path) -> Result<String, ConformanceError> {
    let error = |why: String| ConformanceError::Report {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let report: serde_json::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| error(e.to_string()))?;
    let mut lines = Vec::new();
    for profile in report["profiles"].as_array().into_iter().flatten() {
        for level in ["core", "extended"] {
            let counts = &profile[level]["statistics"];
            if counts.is_null() {
                continue;
            }
            lines.push(format!(
                "{} {level}: {} passed, {} failed, {} skipped ({})",
                profile["name"].as_str().unwrap_or_default(),
                counts["Passed"].as_u64().unwrap_or(0),
                counts["Failed"].as_u64().unwrap_or(0),
                counts["Skipped"].as_u64().unwrap_or(0),
                profile[level]["result"].as_str().unwrap_or_default(),
            ));
        }
    }
    Ok(lines.join("\n"))
}
