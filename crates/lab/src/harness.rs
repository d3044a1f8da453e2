//! Runs the controller against a sandbox exactly as it runs in a cluster: CRDs installed from
//! `config/crd/`, the pod webhook served with TLS (a certificate of the sandbox CA) and registered
//! with the apiserver, AWS reached through the emulator's endpoint with the SDK.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use lb_api::{TargetGroupBinding, keys};
use lb_aws::{AwsCalls, BackendSecurityGroup, SdkAcm, SdkEc2, SdkElbv2, SdkLoadBalancers};
use lb_controller_core::ingress::IngressOptions;
use lb_controller_core::service::ServiceOptions;
use lb_controller_core::{
    ClusterContext, LoadBalancerOptions, MetricsOptions, RunError, RuntimeOptions, WebhookOptions,
};
use lb_model::ingress::IngressSettings;
use lb_model::ingress::class::ClassSettings;
use lb_model::service::build::ClusterSettings;
use lb_model::service::selection::SelectionSettings;
use lb_sandbox::aws::elb_setup;
use lb_sandbox::{Sandbox, SandboxError, manifests, testing};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("Kubernetes API error while {context}: {source}")]
    Kube {
        context: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox runs without its AWS emulator")]
    NoAws,
    #[error("the CRDs did not become usable")]
    CrdNotEstablished,
    #[error("the controller stopped before it was ready: {0}")]
    Exited(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("starting the controller's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// How the harness runs the controller.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    /// The termination hold given to pods (the controller's `--pod-termination-hold`).
    pub termination_hold: Duration,
    /// Serve the webhook on this loopback port (a restart keeps its port, as a Service would);
    /// none: a free one.
    pub webhook_port: Option<u16>,
    /// Install this controller's CRDs (and the IngressClass `alb`) first. Off for a cluster that
    /// has the upstream controller's: `helm install` leaves CRDs that exist as they are.
    pub install_crds: bool,
    /// `--default-target-type` of Gateways (upstream's default: instance; the
    /// Gateway API conformance run takes ip, as upstream's does, for its ClusterIP Services).
    pub alb_target_type: lb_api::TargetType,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        Self {
            termination_hold: lb_model::termination::DEFAULT_HOLD,
            webhook_port: None,
            install_crds: true,
            alb_target_type: lb_api::TargetType::Instance,
        }
    }
}

pub struct ControllerHandle {
    options: HarnessOptions,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), RunError>>,
    pub context: Arc<ClusterContext<SdkElbv2>>,
    pub calls: Arc<AwsCalls>,
    /// Where the pod webhook listens (TLS, certificate of the sandbox CA).
    pub webhook: std::net::SocketAddr,
    /// Where Prometheus metrics are served (`/metrics`).
    pub metrics: std::net::SocketAddr,
    /// The controller's own runtime; shut down with the handle.
    runtime: OwnRuntime,
}

impl ControllerHandle {
    /// Stops the controller gracefully (in-flight reconciles finish).
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.task.abort();
        self.runtime.shut_down();
    }

    /// Stops the controller, waits `downtime`, and starts a new one with the same options and
    /// webhook port: a controller pod restarting behind its Service. While it is away, pods are
    /// created without the webhook (it fails open) and nothing is registered or deregistered.
    pub async fn restart(
        self,
        sandbox: &Sandbox,
        downtime: Duration,
    ) -> Result<ControllerHandle, HarnessError> {
        let options = HarnessOptions {
            webhook_port: Some(self.webhook.port()),
            ..self.options.clone()
        };
        self.stop().await;
        tokio::time::sleep(downtime).await;
        start_controller_with(sandbox, options).await
    }
}

impl Drop for ControllerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Installs the CRDs and waits until the apiserver serves them.
pub async fn install_crds(client: &Client) -> Result<(), HarnessError> {
    use kube::core::CustomResourceExt;
    let crds = [
        lb_api::target_group_binding_crd(),
        lb_api::IngressClassParams::crd(),
    ];
    install_crds_from(client, &crds).await
}

/// Installs `crds` (server-side apply) and the IngressClass the chart installs beside the
/// controller, and waits until the apiserver serves them.
pub async fn install_crds_from(
    client: &Client,
    crds: &[CustomResourceDefinition],
) -> Result<(), HarnessError> {
    for crd in crds {
        let yaml =
            serde_yaml_ng::to_string(crd).map_err(|e| SandboxError::Manifest(e.to_string()))?;
        manifests::apply_yaml(client, &yaml, "default").await?;
    }
    let class = include_str!("../../../config/ingress-class/alb.yaml");
    manifests::apply_yaml(client, class, "default").await?;
    wait_for_crds(client).await
}

/// The Gateway API's standard-channel CRDs, as the chart installs them (with upstream's
/// `gateway.k8s.aws` CRDs: [`install_gateway_api_crds`]).
const GATEWAY_API_CRDS: [&str; 10] = [
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_backendtlspolicies.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_gatewayclasses.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_gateways.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_grpcroutes.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_httproutes.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_listenersets.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_referencegrants.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_tcproutes.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_tlsroutes.yaml"
    ),
    include_str!(
        "../../../charts/lb-controller/gateway-api-crds/gateway.networking.k8s.io_udproutes.yaml"
    ),
];

/// Installs the Gateway API CRDs (before the controller starts: it looks for them once) and
/// upstream's configuration kinds, and waits until the apiserver serves them.
pub async fn install_gateway_api_crds(client: &Client) -> Result<(), HarnessError> {
    install_gateway_api_kinds(client).await?;
    install_configuration_kinds(client).await
}

/// The Gateway API CRDs alone, served.
pub async fn install_gateway_api_kinds(client: &Client) -> Result<(), HarnessError> {
    for crd in GATEWAY_API_CRDS {
        manifests::apply_yaml(client, crd, "default").await?;
    }
    wait_until_served(
        client,
        &[
            ("gateway.networking.k8s.io/v1", "gatewayclasses"),
            ("gateway.networking.k8s.io/v1", "gateways"),
            ("gateway.networking.k8s.io/v1", "httproutes"),
        ],
    )
    .await
}

/// Upstream's own configuration kinds (gateway.k8s.aws), as the chart installs them, served.
pub async fn install_configuration_kinds(client: &Client) -> Result<(), HarnessError> {
    let configurations = include_str!("../../../config/crd/gateway.k8s.aws.yaml");
    manifests::apply_yaml(client, configurations, "default").await?;
    wait_until_served(
        client,
        &[
            ("gateway.k8s.aws/v1", "loadbalancerconfigurations"),
            ("gateway.k8s.aws/v1", "targetgroupconfigurations"),
        ],
    )
    .await
}

/// Waits until discovery lists each `(group version, resource)`: a kind a controller looks for
/// before it is listed would be looked for again only after the controller's discovery retry.
async fn wait_until_served(client: &Client, kinds: &[(&str, &str)]) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut all = true;
        for (group_version, resource) in kinds {
            all &= match client.list_api_group_resources(group_version).await {
                Ok(list) => list.resources.iter().any(|r| r.name == *resource),
                Err(_) => false,
            };
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(HarnessError::CrdNotEstablished)
}

/// Waits until the apiserver serves the CRDs (TargetGroupBindings can be listed).
pub async fn wait_for_crds(client: &Client) -> Result<(), HarnessError> {
    let bindings: Api<TargetGroupBinding> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if bindings.list(&ListParams::default().limit(1)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(HarnessError::CrdNotEstablished)
}

/// What a controller needs from the sandbox before it starts, as a cluster gives it: the CRDs, a
/// serving certificate of the sandbox CA for its webhooks (`tls.crt` and `tls.key` in the returned
/// directory, as `--webhook-cert-dir` reads them), and the webhook configurations of
/// `config/webhook/` pointing at `https://127.0.0.1:<port>`.
pub async fn prepare_cluster(
    sandbox: &Sandbox,
    port: u16,
    crds: bool,
) -> Result<std::path::PathBuf, HarnessError> {
    let client = sandbox.client();
    if crds {
        install_crds(&client).await?;
    }
    let (cert_pem, key_pem) = sandbox.pki().serving_certificate(
        "lb-controller-webhook",
        &["localhost"],
        &[std::net::Ipv4Addr::LOCALHOST.into()],
    )?;
    let dir = sandbox.dir().join("webhook-certs");
    write_file(&dir.join("tls.crt"), cert_pem.as_bytes())?;
    write_file(&dir.join("tls.key"), key_pem.as_bytes())?;
    register_webhooks(&client, port, sandbox.pki().ca_pem()).await?;
    Ok(dir)
}

/// Writes `bytes` to `path`, creating its directory first.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), HarnessError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| HarnessError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, bytes).map_err(|source| HarnessError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Starts the controller in this process against `sandbox`, with the production defaults.
pub async fn start_controller(sandbox: &Sandbox) -> Result<ControllerHandle, HarnessError> {
    start_controller_with(sandbox, HarnessOptions::default()).await
}

/// A runtime of its own, for work whose latency must not include the sandbox's: the controller
/// (a multi-threaded one with as many workers as the product binary's `#[tokio::main]` has; in a
/// cluster the controller is a process of its own, and on the caller's runtime its tasks would
/// queue behind the simulated kubelets, the pods' HTTP servers and the benchmarks' watches), and a
/// benchmark's watches (whose delivery times are its figures). Its threads are named so that
/// `cpu_use` counts them apart.
pub(crate) struct OwnRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    /// Spawns onto it (cheap to clone); its tasks end with `shut_down`.
    pub(crate) handle: tokio::runtime::Handle,
}

impl OwnRuntime {
    /// `workers`: None for one per core.
    pub(crate) fn start(thread_name: &str, workers: Option<usize>) -> Result<Self, HarnessError> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = workers {
            builder.worker_threads(workers);
        }
        let runtime = builder
            .thread_name(thread_name)
            // Idle blocking threads stay: one that ended would take its CPU time out of `cpu_use`.
            .thread_keep_alive(Duration::from_secs(3600))
            .enable_all()
            .build()
            .map_err(HarnessError::Runtime)?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    /// A Kubernetes client of `sandbox` whose request queue and connections live on this runtime.
    pub(crate) fn client(&self, sandbox: &Sandbox) -> Result<Client, HarnessError> {
        // The client's request queue is a task spawned where the client is built.
        let _inside = self.handle.enter();
        Client::try_from(sandbox.kube_config()).map_err(|source| HarnessError::Kube {
            context: "building a client of its own",
            source,
        })
    }

    /// Drops the remaining tasks without blocking: a runtime dropped plainly inside the caller's
    /// async code would panic.
    pub(crate) fn shut_down(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Starts the controller in this process against `sandbox`, on a runtime and with a Kubernetes
/// client of its own (its own connections to the apiserver, as a controller pod has).
pub async fn start_controller_with(
    sandbox: &Sandbox,
    harness: HarnessOptions,
) -> Result<ControllerHandle, HarnessError> {
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let runtime = OwnRuntime::start(crate::cpu_use::CONTROLLER_THREAD, None)?;
    let client = runtime.client(sandbox)?;
    let port = match harness.webhook_port {
        Some(port) => port,
        None => lb_sandbox::ports::free_loopback_port()?,
    };
    let cert_dir = prepare_cluster(sandbox, port, harness.install_crds).await?;
    let (cert, key) = (cert_dir.join("tls.crt"), cert_dir.join("tls.key"));

    let calls = Arc::new(AwsCalls::default());
    let metrics: std::net::SocketAddr =
        ([127, 0, 0, 1], lb_sandbox::ports::free_loopback_port()?).into();
    let config = lb_aws::with_controller_retries(aws.sdk_config().await);
    let targets = SdkElbv2::new(&config, calls.clone());
    let vpc = &aws.seeded().vpc_id;
    // One for both reconcilers, as the binary has it: they share the backend group.
    let backend = BackendSecurityGroup::Managed {
        cluster: aws.cluster_name().to_string(),
    };
    let ec2 = SdkEc2::new(&config, calls.clone(), vpc, backend).for_cluster(aws.cluster_name());
    let target_rules = lb_controller_core::tgb::TargetRules::new(
        Arc::new(ec2.clone()),
        lb_controller_core::tgb::TargetRulesSettings {
            cluster: aws.cluster_name().to_string(),
            extra_tags: Default::default(),
            restricted: true,
        },
    );
    let services = ServiceOptions {
        elb: SdkLoadBalancers::new(&config, calls.clone(), vpc),
        ec2: ec2.clone(),
        cluster: ClusterSettings::upstream_defaults(aws.cluster_name()),
        selection: SelectionSettings::default(),
    };
    let gateways = lb_controller_core::gateway::GatewayOptions {
        elb: SdkLoadBalancers::new(&config, calls.clone(), vpc),
        ec2: ec2.clone(),
        acm: SdkAcm::new(&config, calls.clone()),
        settings: IngressSettings {
            default_target_type: harness.alb_target_type,
            ..IngressSettings::upstream_defaults(aws.cluster_name())
        },
        caches: lb_controller_core::gateway::GatewayCaches::default(),
    };
    let ingresses = IngressOptions {
        elb: SdkLoadBalancers::new(&config, calls.clone(), vpc),
        ec2,
        acm: SdkAcm::new(&config, calls.clone()),
        settings: IngressSettings::upstream_defaults(aws.cluster_name()),
        class: ClassSettings::default(),
    };
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = oneshot::channel();
    let options = WebhookOptions {
        listen: ([127, 0, 0, 1], port).into(),
        cert,
        key,
        termination_hold: harness.termination_hold,
        load_balancer_class: Some(lb_api::keys::service::DEFAULT_LOAD_BALANCER_CLASS.to_string()),
    };
    let task = runtime.handle.spawn(lb_controller_core::run(
        client,
        targets,
        LoadBalancerOptions {
            services: Some(services),
            ingresses: Some(ingresses),
            gateways: Some(gateways),
        },
        RuntimeOptions {
            webhook: Some(options),
            metrics: Some(MetricsOptions {
                listen: metrics,
                calls: calls.clone(),
            }),
            target_rules: Some(target_rules),
            ..RuntimeOptions::default()
        },
        async move {
            let _ = shutdown_rx.await;
        },
        Some(ready_tx),
    ));
    let context = match ready_rx.await {
        Ok(context) => context,
        Err(_) => {
            let reason = match task.await {
                Ok(Err(err)) => err.to_string(),
                Ok(Ok(())) => "it returned".to_string(),
                Err(err) => err.to_string(),
            };
            return Err(HarnessError::Exited(reason));
        }
    };
    Ok(ControllerHandle {
        options: harness,
        shutdown: Some(shutdown_tx),
        task,
        context,
        calls,
        webhook: ([127, 0, 0, 1], port).into(),
        metrics,
        runtime,
    })
}

/// The webhook configurations of a cluster (`config/webhook/manifests.yaml`).
const WEBHOOK_MANIFESTS: &str = include_str!("../../../config/webhook/manifests.yaml");

/// Registers the webhooks exactly as `config/webhook/` declares them, but reached at
/// `https://127.0.0.1:<port><path>` with the sandbox CA instead of through a Service.
async fn register_webhooks(client: &Client, port: u16, ca_pem: String) -> Result<(), HarnessError> {
    let ca_bundle = serde_json::to_value(ByteString(ca_pem.into_bytes()))
        .map_err(|e| SandboxError::Manifest(e.to_string()))?;
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(WEBHOOK_MANIFESTS) {
        let mut value = serde_json::Value::deserialize(document)
            .map_err(|e| SandboxError::Manifest(format!("config/webhook: {e}")))?;
        for webhook in value["webhooks"].as_array_mut().into_iter().flatten() {
            let path = webhook["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            webhook["clientConfig"] = json!({
                "url": format!("https://127.0.0.1:{port}{path}"),
                "caBundle": ca_bundle,
            });
        }
        documents.push(
            serde_yaml_ng::to_string(&value).map_err(|e| SandboxError::Manifest(e.to_string()))?,
        );
    }
    manifests::apply_yaml(client, &documents.join("---\n"), "default").await?;
    Ok(())
}

/// The benchmarks' common start: namespace `namespace` labelled for readiness gates, an ALB whose
/// target group `group` health-checks `/healthz` every `interval_seconds`, a Service `web` and a
/// TargetGroupBinding `web` (ip targets) of that group. Returns the target group's ARN.
pub async fn gated_web_binding(
    sandbox: &Sandbox,
    namespace: &str,
    group: &str,
    interval_seconds: i32,
) -> Result<String, HarnessError> {
    web_binding(sandbox, namespace, group, interval_seconds, Front::Open).await
}

/// How a benchmark's load balancer reaches its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// It carries the cluster security group too (which admits itself), as a cloud engineer
    /// makes it: the targets admit it already.
    Open,
    /// It carries the frontend group only, and the binding's `networking` admits it: the
    /// controller opens the cluster security group.
    Closed,
}

/// [`gated_web_binding`], the load balancer reaching its targets as `front` says.
pub async fn web_binding(
    sandbox: &Sandbox,
    namespace: &str,
    group: &str,
    interval_seconds: i32,
    front: Front,
) -> Result<String, HarnessError> {
    let client = sandbox.client();
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    sandbox
        .create_namespace(
            namespace,
            &[(
                keys::READINESS_GATE_INJECT_LABEL,
                keys::READINESS_GATE_INJECT_ENABLED,
            )],
        )
        .await?;
    let elb = elb_setup::client(aws).await;
    let frontend = aws.seeded().frontend_security_group_id.clone();
    let mut groups = vec![frontend.clone()];
    if front == Front::Open {
        groups.push(aws.seeded().cluster_security_group_id.clone());
    }
    let target_group_arn =
        elb_setup::web_alb_with_groups(&elb, aws, group, "/healthz", interval_seconds, 5, &groups)
            .await?
            .target_group_arn;
    let kube = |context| move |source| HarnessError::Kube { context, source };
    Api::<Service>::namespaced(client.clone(), namespace)
        .create(
            &PostParams::default(),
            &testing::service("web", "ClusterIP"),
        )
        .await
        .map_err(kube("creating Service web"))?;
    let mut binding: TargetGroupBinding = serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": "web"},
        "spec": {"targetGroupARN": target_group_arn, "targetType": "ip",
                 "serviceRef": {"name": "web", "port": 80}},
    }))
    .map_err(|e| SandboxError::Manifest(e.to_string()))?;
    if front == Front::Closed {
        binding.spec.networking = serde_json::from_value(json!({"ingress": [{
            "from": [{"securityGroup": {"groupID": frontend}}],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }]}))
        .map_err(|e| SandboxError::Manifest(e.to_string()))?;
    }
    Api::<TargetGroupBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .map_err(kube("creating TargetGroupBinding web"))?;
    Ok(target_group_arn)
}
