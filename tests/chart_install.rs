//! The Helm chart (charts/lb-controller), with the real helm binary, on the sandbox:
//! - it lints; `helm template` with only `clusterName` renders; without it, or with a typo in a
//!   value, it fails naming the value; config/ holds the same CRDs, RBAC and webhooks;
//! - upstream's values files (its chart's default values.yaml, a typical EKS one) render unchanged,
//!   and every upstream value that is a controller flag becomes that flag as upstream's chart
//!   passes it (crates/lab/fixtures/upstream-chart); the binary takes them all;
//! - installed (every object applied server-side), the controller runs as the chart's
//!   ServiceAccount behind the chart's webhook configurations: readiness gates, an NLB Service
//!   and an ALB Ingress work, so a verb missing from the chart's RBAC fails here;
//! - two replicas: kill -9 of the leader during a rollout under load, the standby takes over and
//!   no request fails; SIGTERM of the leader hands over at once (takeover times printed);
//! - the webhook certificate files rotated: admission goes on, the new certificate is served.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;
use lb_lab::bench_rollout::load::Load;
use lb_lab::chart::{self, ControllerProcess, Installed, lease_holder};
use lb_lab::harness::gated_web_binding;
use lb_sandbox::testing::*;
use lb_sandbox::{Sandbox, manifests};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_lb-controller");

fn yaml_documents(path: &str) -> Vec<Value> {
    chart::documents(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

/// The webhooks of a configuration without their caBundle (the chart's own, config/'s injected).
fn webhooks_without_ca(configuration: &Value) -> Value {
    let mut webhooks = configuration["webhooks"].clone();
    for webhook in webhooks.as_array_mut().unwrap() {
        if let Some(client) = webhook["clientConfig"].as_object_mut() {
            client.remove("caBundle");
        }
    }
    webhooks
}

#[test]
fn the_chart_lints_renders_with_only_the_cluster_name_refuses_typos_and_matches_config() {
    chart::helm(&["lint", ".", "--set", "clusterName=prod"]).expect("helm lint passes");
    let missing = chart::render(&[], &[]).unwrap_err().to_string();
    assert!(missing.contains("clusterName is required"), "{missing}");
    let typo = chart::render(&[("clusterName", "prod"), ("clusterNmae", "prod")], &[])
        .unwrap_err()
        .to_string();
    assert!(typo.contains("clusterNmae"), "{typo}");
    let typo = chart::render(&[("clusterName", "prod"), ("replicas", "3")], &[])
        .unwrap_err()
        .to_string();
    assert!(typo.contains("replicas"), "{typo}");

    let rendered =
        chart::documents(&chart::render(&[("clusterName", "prod")], &[]).unwrap()).unwrap();
    let config = |path: &str| yaml_documents(&format!("config/{path}"));
    // CRDs, exactly: ours as config/ has them, and the Gateway API's as vendored (kept on
    // uninstall), unless the values leave those out.
    let crds = of_kind(&rendered, "CustomResourceDefinition");
    let (gateway_api, ours): (Vec<&Value>, Vec<&Value>) = crds
        .into_iter()
        .partition(|crd| crd["spec"]["group"] == "gateway.networking.k8s.io");
    let mut expected = config("crd/elbv2.k8s.aws.yaml");
    expected.extend(config("crd/gateway.k8s.aws.yaml"));
    assert_eq!(ours, expected.iter().collect::<Vec<_>>());
    let mut vendored: Vec<Value> = std::fs::read_dir("charts/lb-controller/gateway-api-crds")
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .flat_map(|path| yaml_documents(path.to_str().unwrap()))
        .collect();
    for crd in &mut vendored {
        crd["metadata"]["annotations"]["helm.sh/resource-policy"] = "keep".into();
    }
    let names = |crds: Vec<&Value>| {
        let mut crds: Vec<Value> = crds.into_iter().cloned().collect();
        crds.sort_by_key(|crd| crd["metadata"]["name"].to_string());
        crds
    };
    vendored.sort_by_key(|crd| crd["metadata"]["name"].to_string());
    assert_eq!(vendored.len(), 10);
    assert_eq!(names(gateway_api), vendored);
    let without = chart::documents(
        &chart::render(
            &[("clusterName", "prod"), ("gatewayAPI.installCRDs", "false")],
            &[],
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        of_kind(&without, "CustomResourceDefinition")
            .iter()
            .all(|crd| crd["spec"]["group"] != "gateway.networking.k8s.io")
    );
    // RBAC: the same rules.
    for (kind, path) in [
        ("ClusterRole", "rbac/cluster-role.yaml"),
        ("Role", "rbac/leader-election-role.yaml"),
    ] {
        assert_eq!(
            of_kind(&rendered, kind)[0]["rules"],
            config(path)[0]["rules"],
            "{kind}"
        );
    }
    // Webhooks: the same names, paths, rules, selectors and failure policies.
    let webhooks = config("webhook/manifests.yaml");
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(
            webhooks_without_ca(of_kind(&rendered, kind)[0]),
            webhooks_without_ca(of_kind(&webhooks, kind)[0]),
            "{kind}"
        );
    }
    // The webhooks trust the CA that signed the chart's certificate.
    let secret = of_kind(&rendered, "Secret")[0];
    let ca = secret["data"]["ca.crt"].as_str().unwrap();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        for webhook in of_kind(&rendered, kind)[0]["webhooks"].as_array().unwrap() {
            assert_eq!(
                webhook["clientConfig"]["caBundle"], ca,
                "{}",
                webhook["name"]
            );
        }
    }
    // The Deployment runs the product as upstream's chart does.
    let deployment = of_kind(&rendered, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--cluster-name=prod"), "{args:?}");
    assert!(args.contains(&"--enable-leader-election=true"), "{args:?}");
    the_binary_takes(&args);
}

/// The binary takes every argument the chart gives it: it gets past its flags and stops at the
/// cluster connection (clap exits 2 on a flag it does not know or a bad value).
fn the_binary_takes(args: &[&str]) {
    let run = std::process::Command::new(BINARY)
        .args(args)
        .env_clear()
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_ne!(run.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains("connecting to Kubernetes"),
        "{args:?}: {stderr}"
    );
}

/// `helm template` of the chart with a values file of crates/lab/fixtures/upstream-chart and
/// `--set` values: the rendered documents, or helm's error.
fn render_upstream_values(file: &str, sets: &[&str]) -> Result<Vec<Value>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/lab/fixtures/upstream-chart")
        .join(file);
    let path = path.to_string_lossy().into_owned();
    let mut args = vec![
        "template",
        chart::RELEASE,
        ".",
        "--namespace",
        chart::NAMESPACE,
        "--values",
        path.as_str(),
    ];
    for set in sets {
        args.extend(["--set", *set]);
    }
    let rendered = chart::helm(&args).map_err(|e| e.to_string())?;
    Ok(chart::documents(&rendered).unwrap())
}

/// The controller container's arguments.
fn controller_args(documents: &[Value]) -> Vec<&str> {
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect()
}

/// What the chart passes whatever the values (its own flags, and upstream's it always passes with
/// their defaults), with the cluster's name and the AWS flags `aws` in their places.
fn chart_args(cluster: &str, aws: &[&str]) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        format!("--cluster-name={cluster}"),
        "--ingress-class=alb".to_string(),
        "--load-balancer-class=service.k8s.aws/nlb".to_string(),
    ];
    args.extend(aws.iter().map(|a| (*a).to_string()));
    args.extend(
        [
            "--webhook-bind-port=9443",
            "--metrics-bind-addr=:8080",
            "--health-probe-bind-addr=:61779",
            "--enable-leader-election=true",
            "--leader-election-id=lb-controller-leader",
            "--default-target-type=instance",
            "--log-level=info",
            "--log-format=json",
            "--pod-termination-hold=15s",
        ]
        .map(String::from),
    );
    args
}

#[test]
fn upstream_values_files_render_unchanged_and_become_upstream_flags() {
    // Upstream's own default values.yaml (v3.3.0), verbatim. Its clusterName is empty, which
    // upstream's chart refuses too (`required`); so does this one.
    let missing = render_upstream_values("values-default.yaml", &[]).unwrap_err();
    assert!(missing.contains("clusterName is required"), "{missing}");
    let rendered = render_upstream_values("values-default.yaml", &["clusterName=my-cluster"])
        .expect("upstream's default values.yaml renders");
    // Its non-null values imply no flag beyond the chart's own: its empty maps, lists and strings
    // (controllerConfig.featureGates, defaultTags, vpcTags, externalManagedTags,
    // certDiscovery.allowedCertificateAuthorityARNs, metricsBindAddr) and its nulls pass nothing.
    let args = controller_args(&rendered);
    assert_eq!(args, chart_args("my-cluster", &[]), "{args:?}");
    // The same arguments as config/'s Deployment (the chart's defaults).
    let config = yaml_documents("config/manager/deployment.yaml");
    assert_eq!(args, controller_args(&config));
    the_binary_takes(&args);
    // What its other values ask for: the IngressClassParams (create: true), the ServiceAccount.
    let params = of_kind(&rendered, "IngressClassParams");
    assert_eq!(params.len(), 1);
    assert_eq!(params[0]["metadata"]["name"], "alb");
    assert_eq!(
        of_kind(&rendered, "IngressClass")[0]["spec"]["parameters"]["name"],
        "alb"
    );
    assert_eq!(
        of_kind(&rendered, "ServiceAccount")[0]["metadata"]["name"],
        "lb-controller"
    );
    // Its null webhook selectors leave no null behind.
    let validating = of_kind(&rendered, "ValidatingWebhookConfiguration")[0];
    let ingress = validating["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "vingress.elbv2.k8s.aws")
        .unwrap();
    assert!(ingress.get("namespaceSelector").is_none(), "{ingress}");
    assert!(ingress.get("objectSelector").is_none(), "{ingress}");

    // The EKS user guide's install: a ServiceAccount made beforehand (IRSA or Pod Identity),
    // the region and the VPC given.
    let rendered = render_upstream_values("values-eks.yaml", &[]).expect("the EKS values render");
    let args = controller_args(&rendered);
    assert_eq!(
        args,
        chart_args(
            "my-cluster",
            &[
                "--aws-region=us-west-2",
                "--aws-vpc-id=vpc-0123456789abcdef0"
            ]
        ),
        "{args:?}"
    );
    the_binary_takes(&args);
    assert!(of_kind(&rendered, "ServiceAccount").is_empty());
    let deployment = of_kind(&rendered, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "aws-load-balancer-controller");
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        let binding = of_kind(&rendered, kind)[0];
        let subject = &binding["subjects"][0];
        assert_eq!(subject["name"], "aws-load-balancer-controller", "{kind}");
        assert_eq!(subject["namespace"], chart::NAMESPACE, "{kind}");
    }

    // Every upstream key that becomes a flag: exactly the flags upstream's chart passes for it,
    // in their forms (bools as =true|false, maps as k=v sorted by key, lists joined with
    // commas, integers as integers), and the binary takes them all.
    let rendered = render_upstream_values("values-flags.yaml", &[]).expect("the flags render");
    let args = controller_args(&rendered);
    let expected = [
        "run",
        "--cluster-name=prod",
        "--ingress-class=internal-alb",
        "--load-balancer-class=example.com/nlb",
        "--aws-region=eu-west-1",
        "--aws-vpc-id=vpc-0123456789abcdef0",
        "--aws-vpc-tags=Name=prod-vpc,team=platform",
        "--aws-api-endpoints=ec2=https://ec2.eu-west-1.amazonaws.com,elasticloadbalancing=https://elasticloadbalancing.eu-west-1.amazonaws.com",
        "--aws-api-throttle=Elastic Load Balancing v2:RegisterTargets|DeregisterTargets=4:20,Elastic Load Balancing v2:.*=10:40",
        "--aws-max-retries=5",
        "--webhook-bind-port=9444",
        "--metrics-bind-addr=:9090",
        "--health-probe-bind-addr=:61779",
        "--enable-leader-election=true",
        "--leader-election-id=lb-controller-leader",
        "--watch-namespace=shop",
        "--sync-period=1h",
        "--ingress-max-concurrent-reconciles=4",
        "--service-max-concurrent-reconciles=5",
        "--targetgroupbinding-max-concurrent-reconciles=6",
        "--targetgroupbinding-max-exponential-backoff-delay=500s",
        "--targetgroupbinding-requeue-duration=30s",
        "--alb-gateway-max-concurrent-reconciles=2",
        "--nlb-gateway-max-concurrent-reconciles=2",
        "--globalaccelerator-max-concurrent-reconciles=2",
        "--globalaccelerator-max-exponential-backoff-delay=10m",
        "--lb-stabilization-monitor-interval=3m",
        "--default-target-type=ip",
        "--default-load-balancer-scheme=internet-facing",
        "--default-ssl-policy=ELBSecurityPolicy-TLS13-1-2-2021-06",
        "--default-tags=env=prod,team=platform",
        "--external-managed-tags=owner,cost-center",
        "--disable-ingress-class-annotation=true",
        "--disable-ingress-group-name-annotation=true",
        "--tolerate-non-existent-backend-service=false",
        "--tolerate-non-existent-backend-action=false",
        "--allowed-certificate-authority-arns=arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555",
        "--enable-backend-security-group=true",
        "--backend-security-group=sg-0123456789abcdef0",
        "--enable-manage-backend-security-group-rules=true",
        "--disable-restricted-sg-rules=true",
        "--service-target-eni-security-group-tags=team=platform,env=prod",
        "--enable-endpoint-slices=false",
        "--max-targets-per-target-group=1000000",
        "--enable-pod-readiness-gate-inject=false",
        "--enable-shield=false",
        "--enable-waf=false",
        "--enable-wafv2=false",
        "--feature-gates=EnableRGTAPI=true,NLBSecurityGroup=false",
        "--log-level=debug",
        "--log-format=json",
        "--pod-termination-hold=15s",
    ];
    assert_eq!(args, expected, "{args:?}");
    the_binary_takes(&args);
    // A Deployment written for upstream's image passes its flags with no subcommand: `run` is
    // implied, and the flags start the controller unchanged.
    let upstream_style: Vec<&str> = args.iter().copied().filter(|a| *a != "run").collect();
    assert!(upstream_style.first().is_some_and(|a| a.starts_with("--")));
    the_binary_takes(&upstream_style);

    // Typos in upstream's keys are still refused, at the top and nested; and so are values
    // upstream's controller would refuse to start with (an unknown feature gate, a security
    // group that is not sg-..., a duration without unit, one of its tracking tags).
    for (typo, named) in [
        ("enableWafV2=false", "enableWafV2"),
        ("serviceMonitor.scrapeTimout=10s", "scrapeTimout"),
        (
            "controllerConfig.featureGate.NLBSecurityGroup=false",
            "featureGate",
        ),
        (
            "controllerConfig.featureGates.NoSuchGate=true",
            "NoSuchGate",
        ),
        (
            "defaultTags.elbv2\\.k8s\\.aws/cluster=x",
            "elbv2.k8s.aws/cluster",
        ),
        ("backendSecurityGroup=default", "backendSecurityGroup"),
        ("syncPeriod=10", "syncPeriod"),
    ] {
        let refused =
            render_upstream_values("values-default.yaml", &["clusterName=my-cluster", typo])
                .unwrap_err();
        assert!(refused.contains(named), "{typo}: {refused}");
    }
}

/// A sandbox with the chart installed (`sets` beside the cluster's name) and `replicas`
/// controller processes behind the webhook Service.
async fn installed(
    replicas: &[&str],
    files: &[(&str, &Path)],
) -> (Sandbox, Installed, Vec<ControllerProcess>) {
    let sandbox = start_sandbox().await;
    let cluster = sandbox.aws().unwrap().cluster_name().to_string();
    let rendered = chart::render(&[("clusterName", &cluster)], files).unwrap();
    let installed = chart::install(&sandbox, &rendered).await.unwrap();
    let mut processes = Vec::new();
    for name in replicas {
        processes.push(
            ControllerProcess::start(Path::new(BINARY), &sandbox, &installed, name)
                .await
                .unwrap(),
        );
    }
    let ports: Vec<u16> = processes.iter().map(|p| p.webhook_port).collect();
    chart::point_webhook_service(&sandbox, &ports)
        .await
        .unwrap();
    (sandbox, installed, processes)
}

async fn deploy_web(client: &kube::Client, ns: &str, replicas: i32) {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &web_deployment("web", replicas, 1, 0),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_from_the_chart_as_its_service_account_gates_nlb_and_alb_work() {
    common::init_tracing();
    let (sandbox, installed, processes) = installed(&["replica-a"], &[]).await;
    let client = sandbox.client();
    assert_eq!(installed.service_account, "lb-controller");
    eventually("the replica leads", Duration::from_secs(30), || async {
        lease_holder(&sandbox)
            .await
            .filter(|h| h.starts_with("replica-a"))
    })
    .await;

    // Readiness gates: injected through the chart's pod webhook, opened by the controller.
    gated_web_binding(&sandbox, "gates", "chart-gates", 2)
        .await
        .unwrap();
    deploy_web(&client, "gates", 3).await;
    let pods = eventually("3 gated pods Ready", Duration::from_secs(90), || async {
        let ready = ready_pods(&client, "gates", "web").await;
        (ready.len() == 3).then_some(ready)
    })
    .await;
    for pod in &pods {
        let gates = pod.spec.as_ref().unwrap().readiness_gates.clone();
        assert_eq!(gates.map(|g| g.len()), Some(1), "{:?}", pod.metadata.name);
    }

    // An NLB: the Service webhook gives it our class; the reconciler makes the NLB.
    sandbox.create_namespace("nlb", &[]).await.unwrap();
    let mut web = service("web", "LoadBalancer");
    web.metadata.annotations = Some(
        [(
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type".to_string(),
            "ip".to_string(),
        )]
        .into(),
    );
    let services: Api<Service> = Api::namespaced(client.clone(), "nlb");
    let created = services.create(&PostParams::default(), &web).await.unwrap();
    assert_eq!(
        created.spec.unwrap().load_balancer_class.as_deref(),
        Some("service.k8s.aws/nlb")
    );
    deploy_web(&client, "nlb", 2).await;
    eventually("the NLB's hostname", Duration::from_secs(60), || {
        common::service_hostname(&client, "nlb", "web")
    })
    .await;

    // An ALB from the seed's 2048 Ingress, answering through the data plane.
    let yaml = std::fs::read_to_string("examples/ingress-alb/game-2048.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let dns_name = eventually("the ALB's hostname", Duration::from_secs(90), || async {
        common::ingress_hostname(&client, "game-2048", "ingress-2048").await
    })
    .await;
    let aws = sandbox.aws().unwrap();
    eventually(
        "the game answered through the ALB",
        Duration::from_secs(90),
        || async {
            let listener = aws.listener_address(&dns_name, 80).await.ok()?;
            let answer = lb_sandbox::http_client::get(
                &sandbox.guard(),
                listener,
                "/",
                Duration::from_secs(5),
            )
            .await
            .ok()?;
            (answer.status == 200).then_some(())
        },
    )
    .await;
    for process in processes {
        process.terminate(Duration::from_secs(10)).await;
    }
    sandbox.shutdown().await;
}

/// Polls the Lease until a holder other than `old` (a prefix) holds it; the time it took.
async fn takeover(sandbox: &Sandbox, old: &str, since: Instant) -> (String, Duration) {
    loop {
        if let Some(holder) = lease_holder(sandbox).await
            && !holder.starts_with(old)
        {
            return (holder, since.elapsed());
        }
        assert!(since.elapsed() < Duration::from_secs(60), "no takeover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_killed_leader_mid_rollout_without_a_failed_request() {
    common::init_tracing();
    let (sandbox, installed, mut processes) = installed(&["replica-a", "replica-b"], &[]).await;
    let client = sandbox.client();
    let leader = eventually("a leader", Duration::from_secs(30), || async {
        lease_holder(&sandbox).await
    })
    .await;
    let leader_index = usize::from(!leader.starts_with("replica-a"));
    let standby = processes.remove(1 - leader_index);
    let leader = processes.remove(0);

    gated_web_binding(&sandbox, "failover", "failover", 2)
        .await
        .unwrap();
    deploy_web(&client, "failover", 4).await;
    eventually("4 gated pods Ready", Duration::from_secs(90), || async {
        (ready_pods(&client, "failover", "web").await.len() == 4).then_some(())
    })
    .await;
    let aws = sandbox.aws().unwrap();
    let dns_name = aws
        .control()
        .listeners()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.dns_name.contains("failover"))
        .map(|l| l.dns_name)
        .unwrap();
    let listener = aws.listener_address(&dns_name, 80).await.unwrap();
    let load = Load::start(listener, "/", 50);
    tokio::time::sleep(Duration::from_secs(2)).await;

    start_rollout(&client, "failover", "web", "v2").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = Instant::now();
    let leader_name = leader.name.clone();
    leader.kill().await;
    let (holder, after_kill) = takeover(&sandbox, &leader_name, killed).await;
    assert!(holder.starts_with(&standby.name), "{holder}");
    // The new leader works from its warm caches: its first gate opens soon after it leads.
    let leading = Instant::now();
    eventually(
        "a gate opened by the new leader",
        Duration::from_secs(60),
        || async {
            (standby
                .metric("lb_controller_readiness_gates_opened_total")
                .await
                > 0.0)
                .then_some(())
        },
    )
    .await;
    let first_gate = leading.elapsed();
    assert_eq!(standby.metric("lb_controller_leader").await, 1.0);
    eventually(
        "the rollout completes under the new leader",
        Duration::from_secs(180),
        || async {
            rollout_complete(&client, "failover", "web", 4)
                .await
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = load.stop().await;
    let failed = samples.iter().filter(|s| s.outcome.is_failure()).count();
    println!(
        "FIGURE takeover after kill -9 of the leader: {:.2} s (lease 15 s); first gate opened by the new leader {:.2} s after it took over; requests {} failed {failed}",
        after_kill.as_secs_f64(),
        first_gate.as_secs_f64(),
        samples.len()
    );
    assert_eq!(failed, 0, "requests failed during the failover");

    // SIGTERM: the leader releases the Lease; a new standby takes it at once.
    let next = ControllerProcess::start(Path::new(BINARY), &sandbox, &installed, "replica-c")
        .await
        .unwrap();
    chart::point_webhook_service(&sandbox, &[standby.webhook_port, next.webhook_port])
        .await
        .unwrap();
    let terminated = Instant::now();
    let standby_name = standby.name.clone();
    let status = standby.terminate(Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let (holder, after_term) = takeover(&sandbox, &standby_name, terminated).await;
    assert!(holder.starts_with("replica-c"), "{holder}");
    println!(
        "FIGURE takeover after SIGTERM of the leader: {:.2} s",
        after_term.as_secs_f64()
    );
    next.terminate(Duration::from_secs(10)).await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_webhook_certificate_files_are_served_without_a_restart() {
    common::init_tracing();
    let webhook_service = "lb-controller-webhook-service";
    let names = [
        format!("{webhook_service}.kube-system"),
        format!("{webhook_service}.kube-system.svc"),
    ];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // User-supplied TLS (webhookTLS.*): a CA of ours, so the test can sign the next certificate.
    let scratch = tempfile::tempdir().unwrap();
    let pki = lb_sandbox::pki::Pki::generate(scratch.path(), [10, 96, 0, 1].into()).unwrap();
    let (cert, key) = pki.serving_certificate(names[1], &names, &[]).unwrap();
    let files = [
        ("ca.crt", pki.ca_pem()),
        ("tls.crt", cert),
        ("tls.key", key),
    ];
    for (file, pem) in &files {
        std::fs::write(scratch.path().join(file), pem).unwrap();
    }
    let paths: Vec<(&str, std::path::PathBuf)> = [
        ("webhookTLS.caCert", "ca.crt"),
        ("webhookTLS.cert", "tls.crt"),
        ("webhookTLS.key", "tls.key"),
    ]
    .iter()
    .map(|(k, f)| (*k, scratch.path().join(f)))
    .collect();
    let paths: Vec<(&str, &Path)> = paths.iter().map(|(k, p)| (*k, p.as_path())).collect();
    let (sandbox, installed, processes) = installed(&["replica-a"], &paths).await;
    let port = processes[0].webhook_port;
    assert_eq!(
        served_certificate(&pki, port, names[1]).await,
        pem_der(&files[1].1)
    );

    // Rotation: a new pair written over the mounted files, as the kubelet does with a Secret.
    let (next_cert, next_key) = pki.serving_certificate(names[1], &names, &[]).unwrap();
    std::fs::write(installed.cert_dir.join("tls.key"), &next_key).unwrap();
    std::fs::write(installed.cert_dir.join("tls.crt"), &next_cert).unwrap();
    eventually(
        "the new certificate served",
        Duration::from_secs(20),
        || async {
            (served_certificate(&pki, port, names[1]).await == pem_der(&next_cert)).then_some(())
        },
    )
    .await;
    // Admission through the apiserver goes on: a new LoadBalancer Service gets our class.
    sandbox.create_namespace("rotated", &[]).await.unwrap();
    let services: Api<Service> = Api::namespaced(sandbox.client(), "rotated");
    let created = services
        .create(&PostParams::default(), &service("web", "LoadBalancer"))
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().load_balancer_class.as_deref(),
        Some("service.k8s.aws/nlb")
    );
    for process in processes {
        process.terminate(Duration::from_secs(10)).await;
    }
    sandbox.shutdown().await;
}

fn pem_der(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// The leaf certificate the webhook serves to a client asking for `name`, trusting `pki`'s CA.
async fn served_certificate(pki: &lb_sandbox::pki::Pki, port: u16, name: &str) -> Vec<u8> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem_der(&pki.ca_pem()).into()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let tls = connector.connect(server, stream).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}
