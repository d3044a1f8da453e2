//! `lb-controller demo`: the main job on the local sandbox, and how a user tries manifests before a
//! cluster. Starts a real control plane with simulated nodes and the AWS emulator, runs the
//! controller with its webhooks, creates an ALB with an ip target group in the emulator, and
//! applies the manifests (by default the examples'), with placeholders filled from the emulator
//! (see [`PLACEHOLDERS`]). Then it prints, as it happens: pods bound and probed, targets registered
//! and turning healthy, gates flipping, pods Ready, requests answered through the ALB; with the
//! default examples, a rolling update under load that fails no request. When it stops (Ctrl-C or
//! `--for`, counted from the moment the demo is up), it prints what became of each object and
//! every Warning event, and with `--report` writes the same as JSON.

mod alb;
mod follow;
mod manifests;
mod nlb;
mod outcome;
mod rollout;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use lb_api::keys;
use lb_sandbox::aws::elb_setup::{self, TargetGroupSpec};
use lb_sandbox::stop::StopSignals;
use lb_sandbox::{Sandbox, SandboxConfig, SandboxError};
use tokio::sync::watch;

use crate::harness::{HarnessError, start_controller};
use follow::say;
use manifests::{Applied, Document, Placeholders};
pub use outcome::Report;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error("reading manifest {path}: {source}")]
    ReadManifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Manifest(String),
    #[error("writing the report {path}: {source}")]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Stop this long after the demo is up (e.g. 30s; one-time builds do not count); default:
    /// until Ctrl-C.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub run_for: Option<Duration>,
    /// Manifests to apply (YAML, several documents allowed). Placeholders: ${TARGET_GROUP_ARN},
    /// ${TARGET_GROUP_NAME}, ${INSTANCE_TARGET_GROUP_ARN}, ${INSTANCE_TARGET_GROUP_NAME},
    /// ${VPC_ID}, ${CERTIFICATE_ARN}, ${REGION}, ${ACCOUNT_ID}.
    #[arg(long, num_args = 1.., default_values = ["examples/sandbox/echo-tgb.yaml", "examples/sandbox/echo.yaml", "examples/service-nlb/nlb-ip.yaml", "examples/ingress-alb/canary.yaml"])]
    pub manifests: Vec<PathBuf>,
    /// Namespace for objects that name none (labelled for readiness gates).
    #[arg(long, default_value = "demo")]
    pub namespace: String,
    /// Also write the outcome as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Let every packet through: the emulator enforces no security group (by default it drops
    /// what the groups do not admit, as a VPC does).
    #[arg(long)]
    pub no_security_groups: bool,
}

/// The placeholders a manifest may use.
pub const PLACEHOLDERS: [&str; 8] = [
    "TARGET_GROUP_ARN",
    "TARGET_GROUP_NAME",
    "INSTANCE_TARGET_GROUP_ARN",
    "INSTANCE_TARGET_GROUP_NAME",
    "VPC_ID",
    "CERTIFICATE_ARN",
    "REGION",
    "ACCOUNT_ID",
];

/// The ALB the demo creates, with an ip target group of the same name.
const ALB: &str = "echo";
/// The instance target group, made when a manifest names it, behind the ALB's port 81.
const INSTANCE_TARGET_GROUP: &str = "echo-nodes";
const INSTANCE_PORT: i32 = 81;

/// Set once Ctrl-C or SIGTERM arrives.
type Stopped = watch::Receiver<bool>;

async fn stopped(mut stop: Stopped) {
    let _ = stop.wait_for(|s| *s).await;
}

pub async fn run(options: DemoOptions) -> Result<(), CliError> {
    let clock = Instant::now();
    // Before anything is printed: a Ctrl-C at any point must stop the demo gracefully.
    let signals = StopSignals::install();
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        signals.wait(None).await;
        let _ = stop_tx.send(true);
    });
    let texts = options
        .manifests
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|text| (path.clone(), text))
                .map_err(|source| CliError::ReadManifest {
                    path: path.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;

    say(
        clock,
        "starting the sandbox (the first run builds Kubernetes and the moto venv: minutes)",
    );
    let sandbox = tokio::select! {
        sandbox = Sandbox::start(SandboxConfig {
            enforce_security_groups: !options.no_security_groups,
            ..SandboxConfig::default()
        }) => sandbox?,
        () = stopped(stop.clone()) => {
            // The builds are children of ours: they stop with us, not minutes later.
            lb_sandbox::one_time::cancel();
            say(clock, "stopped before the sandbox was ready");
            return Ok(());
        }
    };
    introduce(&sandbox, clock);
    let result = async {
        // Gateway API manifests need its CRDs before the controller starts (it looks once).
        if texts
            .iter()
            .any(|(_, text)| text.contains(lb_api::gateway::GROUP))
        {
            crate::harness::install_gateway_api_crds(&sandbox.client()).await?;
            say(clock, "Gateway API CRDs installed (the manifests use them)");
        }
        let controller = start_controller(&sandbox).await?;
        say(clock, "controller running, webhooks registered");
        let outcome = show(&sandbox, &options, &texts, stop, clock).await;
        controller.stop().await;
        outcome
    }
    .await;
    say(clock, "stopping the sandbox");
    sandbox.shutdown().await;
    result
}

fn introduce(sandbox: &Sandbox, clock: Instant) {
    say(
        clock,
        &format!(
            "sandbox ready in {:.1?}: apiserver {}",
            sandbox.startup_time(),
            sandbox.api_url()
        ),
    );
    say(
        clock,
        &format!(
            "  kubectl --kubeconfig {} get pods,tgb -A -o wide",
            sandbox.kubeconfig_path().display()
        ),
    );
    for node in sandbox.nodes() {
        say(
            clock,
            &format!(
                "  node {} in {} at {} ({})",
                node.name,
                node.zone,
                node.address,
                node.provider_id()
            ),
        );
    }
}

/// Sets up the ALB, applies the manifests, follows them until stopped, then reports.
async fn show(
    sandbox: &Sandbox,
    options: &DemoOptions,
    texts: &[(PathBuf, String)],
    stop: Stopped,
    clock: Instant,
) -> Result<(), CliError> {
    let aws = sandbox
        .aws()
        .ok_or_else(|| SandboxError::Config("the demo needs the AWS emulator".into()))?;
    let elb = elb_setup::client(aws).await;
    let web = elb_setup::web_alb(&elb, aws, ALB, "/healthz", 2, 10).await?;
    let alb = aws.listener_address(&web.dns_name, 80).await?;
    // Like a real ALB's nodes, the emulated one follows target changes a moment late.
    aws.control()
        .set_routing_lag(Duration::from_secs(2))
        .await?;
    say(
        clock,
        &format!(
            "ALB {}:80 (served locally at {alb}) forwards to target group {ALB} (ip, health check /healthz every 2 s, 2 to be healthy; routes 2 s behind target changes)",
            web.dns_name
        ),
    );
    let mut placeholders = placeholders(sandbox, &web.target_group_arn);
    let needs_instance = texts
        .iter()
        .any(|(_, t)| t.contains("${INSTANCE_TARGET_GROUP_"));
    if needs_instance {
        let arn = instance_target_group(&elb, sandbox, &web.load_balancer_arn).await?;
        say(
            clock,
            &format!(
                "instance target group {INSTANCE_TARGET_GROUP} behind the ALB's port {INSTANCE_PORT} (health check /healthz on the NodePort every 2 s)"
            ),
        );
        placeholders.insert("INSTANCE_TARGET_GROUP_ARN", arn);
        placeholders.insert(
            "INSTANCE_TARGET_GROUP_NAME",
            INSTANCE_TARGET_GROUP.to_string(),
        );
    }
    sandbox
        .create_namespace(
            &options.namespace,
            &[(
                keys::READINESS_GATE_INJECT_LABEL,
                keys::READINESS_GATE_INJECT_ENABLED,
            )],
        )
        .await?;
    say(
        clock,
        &format!(
            "namespace {} labelled {}={}",
            options.namespace,
            keys::READINESS_GATE_INJECT_LABEL,
            keys::READINESS_GATE_INJECT_ENABLED
        ),
    );
    let documents = read_documents(texts, &placeholders, clock)?;
    emulate_other_accounts(sandbox, &documents, &placeholders, clock).await?;
    let report_applied = |applied: &Applied| {
        let what = format!(
            "{}/{}",
            applied.document.kind().to_lowercase(),
            applied.document.name()
        );
        let source = applied.document.source.display();
        match &applied.refused {
            None => say(clock, &format!("applied {what} from {source}")),
            Some(reason) => say(clock, &format!("REFUSED {what} from {source}: {reason}")),
        }
    };
    let applied = manifests::apply_all(
        &sandbox.client(),
        documents,
        &options.namespace,
        &report_applied,
    )
    .await;
    say(
        clock,
        &format!(
            "demo up in {:.1} s{}",
            clock.elapsed().as_secs_f64(),
            match options.run_for {
                Some(d) => format!("; stopping in {}", humantime::format_duration(d)),
                None => "; Ctrl-C to stop".to_string(),
            }
        ),
    );
    follow_until_stopped(sandbox, options, &applied, &elb, alb, stop, clock).await;
    let guard = sandbox.guard();
    // The CAs of the emulated account's certificates and of those imported from Secrets
    // (examples/gateway/sandbox-tls-secret.yaml).
    let trusted = format!(
        "{}\n{}",
        aws.seeded().certificate_ca_pem,
        sandbox.pki().ca_pem()
    );
    let probes = outcome::Probes {
        emulator: aws.control(),
        guard: &guard,
        elb: &elb,
        ca_pem: &trusted,
    };
    let report = outcome::collect(&sandbox.client(), &probes, &applied).await;
    println!("{}", outcome::text(&report));
    if let Some(path) = &options.report {
        let json =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Manifest(e.to_string()))?;
        std::fs::write(path, json).map_err(|source| CliError::WriteReport {
            path: path.clone(),
            source,
        })?;
        say(clock, &format!("report written to {}", path.display()));
    }
    Ok(())
}

/// Prints pods, targets and requests until Ctrl-C or `--for` (from now).
async fn follow_until_stopped(
    sandbox: &Sandbox,
    options: &DemoOptions,
    applied: &[Applied],
    elb: &Elb,
    alb: std::net::SocketAddr,
    stop: Stopped,
    clock: Instant,
) {
    let Some(aws) = sandbox.aws() else {
        return;
    };
    let mut namespaces: BTreeSet<String> =
        applied.iter().filter_map(|a| a.namespace.clone()).collect();
    namespaces.insert(options.namespace.clone());
    let groups = target_groups(elb).await;
    let rolls = applied.iter().any(|a| {
        a.refused.is_none()
            && a.document.kind() == "Deployment"
            && a.document.name() == rollout::DEPLOYMENT
            && a.namespace.as_deref() == Some(options.namespace.as_str())
    });
    let run_for = async {
        match options.run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let roll = async {
        match rolls {
            true => rollout::roll_under_load(sandbox, &options.namespace, alb, clock).await,
            false => std::future::pending().await,
        }
    };
    tokio::select! {
        () = follow::follow_pods(sandbox, &namespaces, clock) => {}
        () = follow::follow_targets(aws.control(), groups, clock) => {}
        () = follow::send_requests(sandbox, alb, ALB, clock) => {}
        () = roll => {}
        () = run_for => {}
        () = stopped(stop) => {}
    }
}

/// The placeholders' values on this sandbox.
fn placeholders(sandbox: &Sandbox, target_group_arn: &str) -> Placeholders {
    let mut values = Placeholders::new();
    values.insert("TARGET_GROUP_ARN", target_group_arn.to_string());
    values.insert("TARGET_GROUP_NAME", ALB.to_string());
    if let Some(aws) = sandbox.aws() {
        values.insert("VPC_ID", aws.seeded().vpc_id.clone());
        values.insert("CERTIFICATE_ARN", aws.seeded().certificate_arn.clone());
        values.insert("REGION", aws.region().to_string());
    }
    // A listener certificate Secret's (examples/gateway/sandbox-tls-secret.yaml): a PEM pair
    // from the sandbox's CA, as YAML double-quoted strings (JSON's escapes are YAML's).
    let pair = sandbox.pki().serving_certificate(
        "demo.example.com",
        &["demo.example.com", "*.example.com"],
        &[],
    );
    if let Ok((certificate, key)) = pair {
        for (name, pem) in [("SANDBOX_TLS_CRT", certificate), ("SANDBOX_TLS_KEY", key)] {
            values.insert(name, serde_json::Value::String(pem).to_string());
        }
    }
    if let Some(account) = lb_model::elb::account_of_arn(target_group_arn) {
        values.insert("ACCOUNT_ID", account.to_string());
    }
    values
}

/// Reads every manifest's documents, saying which placeholders are unknown.
fn read_documents(
    texts: &[(PathBuf, String)],
    placeholders: &Placeholders,
    clock: Instant,
) -> Result<Vec<Document>, CliError> {
    let mut all = Vec::new();
    for (path, text) in texts {
        let (documents, unknown) =
            manifests::documents(path, text, placeholders).map_err(CliError::Manifest)?;
        for name in unknown {
            say(
                clock,
                &format!(
                    "{}: unknown placeholder ${{{name}}} (known: {})",
                    path.display(),
                    PLACEHOLDERS.join(", ")
                ),
            );
        }
        all.extend(documents);
    }
    Ok(all)
}

/// What manifests assume exists in AWS. Bindings to a target group in another account (through
/// `iamRoleArnToAssume`): the emulator makes that account, its VPC, an ALB and the target group
/// with exactly the ARN named, so that cross-account manifests run as written (the role needs
/// nothing: STS lets it be assumed). Security groups a binding's `networking` names by ID: the
/// emulator makes them in the cluster's VPC, as the user's own groups.
async fn emulate_other_accounts(
    sandbox: &Sandbox,
    documents: &[Document],
    placeholders: &Placeholders,
    clock: Instant,
) -> Result<(), CliError> {
    let Some(aws) = sandbox.aws() else {
        return Ok(());
    };
    let own = placeholders.get("ACCOUNT_ID").cloned().unwrap_or_default();
    for document in documents
        .iter()
        .filter(|d| d.kind() == "TargetGroupBinding")
    {
        let spec = &document.value["spec"];
        let peers = spec["networking"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|rule| rule["from"].as_array().into_iter().flatten());
        for peer in peers {
            if let Some(id) = peer["securityGroup"]["groupID"].as_str()
                && aws.control().ensure_security_group(id).await?
            {
                say(
                    clock,
                    &format!(
                        "made security group {id}, which binding {} names",
                        document.name()
                    ),
                );
            }
        }
        let (Some(role), Some(arn)) = (
            spec["iamRoleArnToAssume"].as_str(),
            spec["targetGroupARN"].as_str(),
        ) else {
            continue;
        };
        if lb_model::elb::account_of_arn(arn).is_none_or(|account| account == own) {
            continue;
        }
        let peer = aws.control().peer_target_group(arn).await?;
        say(
            clock,
            &format!(
                "emulating AWS account {} for binding {}: target group {arn} behind an ALB, reached by assuming {role}",
                peer.account,
                document.name()
            ),
        );
    }
    Ok(())
}

/// An instance target group (health check /healthz on the NodePort every 2 s) behind the ALB's
/// port [`INSTANCE_PORT`], for manifests that bind nodes.
async fn instance_target_group(
    elb: &Elb,
    sandbox: &Sandbox,
    load_balancer_arn: &str,
) -> Result<String, CliError> {
    let aws = sandbox
        .aws()
        .ok_or_else(|| SandboxError::Config("the demo needs the AWS emulator".into()))?;
    let spec = TargetGroupSpec {
        name: INSTANCE_TARGET_GROUP,
        target_type: TargetTypeEnum::Instance,
        port: 80,
        health_check_path: "/healthz",
        interval: 2,
    };
    let arn = elb_setup::target_group(elb, aws, spec).await?;
    elb_setup::http_listener(
        elb,
        load_balancer_arn,
        INSTANCE_PORT,
        elb_setup::forward(&arn),
    )
    .await?;
    Ok(arn)
}

/// Every target group in the emulator, as (ARN, name).
async fn target_groups(elb: &Elb) -> Vec<(String, String)> {
    match elb.describe_target_groups().send().await {
        Ok(output) => output
            .target_groups()
            .iter()
            .map(|tg| {
                (
                    tg.target_group_arn().unwrap_or_default().to_string(),
                    tg.target_group_name().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}
