//! `lb-controller run`'s flags. Named as upstream's where they exist (a Deployment written for the
//! upstream controller keeps its arguments); each also reads `LB_CONTROLLER_<FLAG>` from the
//! environment when not given.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgAction;
use clap::builder::BoolishValueParser;
use lb_model::stack::tags;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The cluster's name: tagged on everything the controller creates in AWS, and how it tells
    /// its own resources (and subnets) from other clusters'.
    #[arg(long, env = "LB_CONTROLLER_CLUSTER_NAME")]
    pub cluster_name: String,
    /// The AWS region (default: the SDK's chain: AWS_REGION, profile, instance metadata).
    #[arg(long, env = "LB_CONTROLLER_AWS_REGION")]
    pub aws_region: Option<String>,
    /// The cluster's VPC (target groups, subnets and security groups); found by
    /// `--aws-vpc-tags` or instance metadata when not given. Without one, Services and Ingresses
    /// are not reconciled.
    #[arg(long, env = "LB_CONTROLLER_AWS_VPC_ID")]
    pub aws_vpc_id: Option<String>,
    /// Without `--aws-vpc-id`: the VPC that has all these tags (`key=value,key=value`); without
    /// either, the VPC of the instance the controller runs on (instance metadata).
    #[arg(long, env = "LB_CONTROLLER_AWS_VPC_TAGS", default_value = "", value_parser = parse_tags)]
    pub aws_vpc_tags: BTreeMap<String, String>,
    /// Endpoints per service: `ec2=https://...,elasticloadbalancing=https://...` (also acm, sts).
    #[arg(long, env = "LB_CONTROLLER_AWS_API_ENDPOINTS", default_value = "", value_parser = lb_aws::parse_endpoints)]
    pub aws_api_endpoints: BTreeMap<&'static str, String>,
    /// Ingresses whose kubernetes.io/ingress.class annotation says this are ours.
    #[arg(long, env = "LB_CONTROLLER_INGRESS_CLASS", default_value = lb_api::keys::ingress::DEFAULT_CLASS)]
    pub ingress_class: String,
    /// Services with this spec.loadBalancerClass are ours (and the Service webhook gives it to
    /// new LoadBalancer Services that name none).
    #[arg(long, env = "LB_CONTROLLER_LOAD_BALANCER_CLASS", default_value = lb_api::keys::service::DEFAULT_LOAD_BALANCER_CLASS)]
    pub load_balancer_class: String,
    /// Serve the admission webhooks on this port (all addresses).
    #[arg(long, env = "LB_CONTROLLER_WEBHOOK_BIND_PORT", default_value_t = 9443)]
    pub webhook_bind_port: u16,
    /// Directory with the webhooks' serving certificate (tls.crt, tls.key), re-read on change.
    #[arg(
        long,
        env = "LB_CONTROLLER_WEBHOOK_CERT_DIR",
        default_value = "/tmp/k8s-webhook-server/serving-certs"
    )]
    pub webhook_cert_dir: PathBuf,
    /// Run without the webhooks (pods then get no gates injected, bindings no defaults).
    #[arg(long, env = "LB_CONTROLLER_DISABLE_WEBHOOK", value_parser = BoolishValueParser::new())]
    pub disable_webhook: bool,
    /// Prometheus metrics (`/metrics`): `[host]:port`.
    #[arg(long, env = "LB_CONTROLLER_METRICS_BIND_ADDR", default_value = ":8080", value_parser = parse_bind_addr)]
    pub metrics_bind_addr: SocketAddr,
    /// Probes (`/healthz`, `/readyz`): `[host]:port`.
    #[arg(long, env = "LB_CONTROLLER_HEALTH_PROBE_BIND_ADDR", default_value = ":61779", value_parser = parse_bind_addr)]
    pub health_probe_bind_addr: SocketAddr,
    /// Only the holder of a Lease reconciles; the other replicas stand by with warm caches and
    /// serve the webhooks. `--enable-leader-election=false` for a single replica.
    #[arg(long, env = "LB_CONTROLLER_ENABLE_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_leader_election: bool,
    /// The Lease's name.
    #[arg(
        long,
        env = "LB_CONTROLLER_LEADER_ELECTION_ID",
        default_value = "lb-controller-leader"
    )]
    pub leader_election_id: String,
    /// The Lease's namespace (default: the pod's, from POD_NAMESPACE or the service account).
    #[arg(long, env = "LB_CONTROLLER_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Watch (and reconcile) only this namespace; default: all.
    #[arg(long, env = "LB_CONTROLLER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Target type of Services and Ingresses that say none.
    #[arg(long, env = "LB_CONTROLLER_DEFAULT_TARGET_TYPE", default_value = "instance", value_parser = parse_target_type)]
    pub default_target_type: lb_api::TargetType,
    /// Scheme of ALBs whose Ingresses say none.
    #[arg(long, env = "LB_CONTROLLER_DEFAULT_LOAD_BALANCER_SCHEME", default_value = "internal", value_parser = parse_scheme)]
    pub default_load_balancer_scheme: lb_model::ingress::Scheme,
    /// TLS listeners without an SSL policy annotation get this policy.
    #[arg(
        long,
        env = "LB_CONTROLLER_DEFAULT_SSL_POLICY",
        default_value = lb_model::stack::DEFAULT_SSL_POLICY
    )]
    pub default_ssl_policy: String,
    /// Tags for every AWS resource the controller creates: `key=value,key=value`.
    #[arg(long, env = "LB_CONTROLLER_DEFAULT_TAGS", default_value = "", value_parser = parse_tags)]
    pub default_tags: BTreeMap<String, String>,
    /// How long a pod behind a binding keeps serving after its deletion starts, when it has no
    /// preStop hook of its own (injected as a preStop sleep; 0s: never). Pods override it with the
    /// annotation lb-controller.dev/termination-hold-seconds.
    #[arg(long, env = "LB_CONTROLLER_POD_TERMINATION_HOLD", default_value = "15s", value_parser = humantime::parse_duration)]
    pub pod_termination_hold: Duration,
    /// Leave Services alone (only TargetGroupBindings and Ingresses are reconciled).
    #[arg(long, env = "LB_CONTROLLER_DISABLE_SERVICE_CONTROLLER", value_parser = BoolishValueParser::new())]
    pub disable_service_controller: bool,
    /// Leave Ingresses alone.
    #[arg(long, env = "LB_CONTROLLER_DISABLE_INGRESS_CONTROLLER", value_parser = BoolishValueParser::new())]
    pub disable_ingress_controller: bool,
    /// `info` or `debug`; any other value is `info`, as upstream takes it (RUST_LOG, when set,
    /// says more precisely).
    #[arg(long, env = "LB_CONTROLLER_LOG_LEVEL", default_value = "info", value_parser = parse_log_level)]
    pub log_level: String,
    /// `text` or `json` (one object per line).
    #[arg(long, env = "LB_CONTROLLER_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// The webhooks' certificate and key files (default: `tls.crt` and `tls.key` in
    /// `--webhook-cert-dir`).
    #[arg(long, env = "LB_CONTROLLER_WEBHOOK_CERT_FILE")]
    pub webhook_cert_file: Option<PathBuf>,
    #[arg(long, env = "LB_CONTROLLER_WEBHOOK_KEY_FILE")]
    pub webhook_key_file: Option<PathBuf>,
    /// A kubeconfig to reach the cluster (default: in-cluster, else the usual kubeconfig).
    #[arg(long, env = "LB_CONTROLLER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Attach the cluster's shared backend security group to every load balancer with a managed
    /// frontend group (the targets' groups then admit it).
    #[arg(long, env = "LB_CONTROLLER_ENABLE_BACKEND_SECURITY_GROUP", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_backend_security_group: bool,
    /// Use this security group (an ID) as the backend group instead of finding or creating
    /// `k8s-traffic-<cluster>-<hash>`.
    #[arg(long, env = "LB_CONTROLLER_BACKEND_SECURITY_GROUP", value_parser = parse_security_group)]
    pub backend_security_group: Option<String>,
    /// Load balancers with explicit security groups get the backend group too (the annotation
    /// `manage-backend-security-group-rules` says otherwise per object).
    #[arg(long, env = "LB_CONTROLLER_ENABLE_MANAGE_BACKEND_SECURITY_GROUP_RULES", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_manage_backend_security_group_rules: bool,
    /// Write the targets' security-group rules (`spec.networking`) as given, one rule per port,
    /// instead of one port range per protocol and source group.
    #[arg(long, env = "LB_CONTROLLER_DISABLE_RESTRICTED_SG_RULES", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub disable_restricted_sg_rules: bool,
    /// On a target interface with several security groups, the one that gets the rules carries
    /// `kubernetes.io/cluster/<cluster-name>` and these tags too: `key=value,key=value`.
    #[arg(long, env = "LB_CONTROLLER_SERVICE_TARGET_ENI_SECURITY_GROUP_TAGS", default_value = "", value_parser = parse_tags)]
    pub service_target_eni_security_group_tags: BTreeMap<String, String>,
    /// Tag keys someone else manages on the controller's resources: never removed, and refused
    /// in `--default-tags`.
    #[arg(long, env = "LB_CONTROLLER_EXTERNAL_MANAGED_TAGS", value_delimiter = ',', action = ArgAction::Append)]
    pub external_managed_tags: Vec<String>,
    /// Upstream's feature gates: `Name=true,Name=false` (upstream's names only).
    #[arg(long, env = "LB_CONTROLLER_FEATURE_GATES", action = ArgAction::Append, value_parser = crate::feature_gates::parse)]
    pub feature_gates: Vec<crate::feature_gates::FeatureGates>,
    /// Upstream's flags this controller accepts without acting on them (named at startup).
    #[command(flatten)]
    pub upstream_only: crate::upstream_flags::UpstreamOnly,
    /// Arguments that are no flag: upstream ignores them (its own command line passes its program
    /// name as one); named at startup.
    #[arg(hide = true)]
    pub stray_arguments: Vec<String>,
}

/// Tracking tag keys the controller writes itself: no default tag may use them (upstream's rule).
const TRACKING_TAGS: [&str; 6] = [
    tags::CLUSTER,
    tags::ELBV2_RESOURCE,
    tags::INGRESS_STACK,
    tags::INGRESS_RESOURCE,
    tags::SERVICE_STACK,
    tags::SERVICE_RESOURCE,
];

/// Why flags that parse cannot be used together (upstream's checks at startup).
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("--{flag}: {key:?} is a tag the controller writes itself (its tracking tags: {})", TRACKING_TAGS.join(", "))]
    TrackingTag { flag: &'static str, key: String },
    #[error("--external-managed-tags: {0:?} is also in --default-tags")]
    ExternalAndDefault(String),
    #[error(
        "--enable-manage-backend-security-group-rules needs the backend security group, which --enable-backend-security-group=false turns off"
    )]
    ManageWithoutBackend,
}

impl RunArgs {
    /// Upstream's startup checks of the flags together.
    pub fn validate(&self) -> Result<(), FlagError> {
        for key in self.default_tags.keys() {
            if TRACKING_TAGS.contains(&key.as_str()) {
                return Err(FlagError::TrackingTag {
                    flag: "default-tags",
                    key: key.clone(),
                });
            }
        }
        for key in &self.external_managed_tags {
            if TRACKING_TAGS.contains(&key.as_str()) {
                return Err(FlagError::TrackingTag {
                    flag: "external-managed-tags",
                    key: key.clone(),
                });
            }
            if self.default_tags.contains_key(key) {
                return Err(FlagError::ExternalAndDefault(key.clone()));
            }
        }
        if self.enable_manage_backend_security_group_rules && !self.enable_backend_security_group {
            return Err(FlagError::ManageWithoutBackend);
        }
        Ok(())
    }

    /// Every `--feature-gates` value, in order.
    pub fn feature_gates(&self) -> crate::feature_gates::FeatureGates {
        self.feature_gates
            .iter()
            .fold(Default::default(), |gates, later| gates.then(later))
    }

    /// Upstream flags and gates given that this controller does not act on, for the startup
    /// warning.
    pub fn not_implemented(&self) -> Vec<String> {
        let mut named = self.upstream_only.given();
        named.extend(self.stray_arguments.iter().cloned());
        named.extend(
            self.feature_gates()
                .not_implemented()
                .into_iter()
                .map(|g| format!("--feature-gates {g}")),
        );
        named
    }

    /// Where the backend security group comes from.
    pub fn backend_security_group(&self) -> lb_aws::BackendSecurityGroup {
        match &self.backend_security_group {
            Some(id) => lb_aws::BackendSecurityGroup::Given(id.clone()),
            None => lb_aws::BackendSecurityGroup::Managed {
                cluster: self.cluster_name.clone(),
            },
        }
    }

    /// The security-group settings the model builds with.
    pub fn security_group_settings(&self) -> lb_model::stack::SecurityGroupSettings {
        lb_model::stack::SecurityGroupSettings {
            backend: self.enable_backend_security_group,
            manage_backend_rules: self.enable_manage_backend_security_group_rules,
        }
    }

    /// The Lease settings, when leader election is on. The identity is the pod's name (unique
    /// among replicas), with the process id so two processes of one host differ too.
    pub fn leader(&self) -> Option<lb_controller_core::LeaderOptions> {
        if !self.enable_leader_election {
            return None;
        }
        let namespace = self.leader_election_namespace.clone().unwrap_or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .or_else(|| {
                    std::fs::read_to_string(
                        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
                    )
                    .ok()
                })
                .map(|ns| ns.trim().to_string())
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| "kube-system".to_string())
        });
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "lb-controller".to_string());
        let identity = format!("{host}_{}", std::process::id());
        Some(lb_controller_core::LeaderOptions::new(
            namespace,
            self.leader_election_id.clone(),
            identity,
        ))
    }
}

/// `:8080` (all addresses, IPv6 and IPv4), `127.0.0.1:8080`, `[::]:8080`.
fn parse_bind_addr(value: &str) -> Result<SocketAddr, String> {
    let full = match value.strip_prefix(':') {
        Some(port) => format!("[::]:{port}"),
        None => value.to_string(),
    };
    full.parse()
        .map_err(|_| format!("{value:?}: expected [host]:port"))
}

/// `--log-level`: `debug`, or `info` for anything else (upstream's reading).
fn parse_log_level(value: &str) -> Result<String, String> {
    Ok(if value == "debug" { "debug" } else { "info" }.to_string())
}

/// `--backend-security-group`: an ID (upstream checks the `sg-` prefix).
fn parse_security_group(value: &str) -> Result<String, String> {
    if value.starts_with("sg-") {
        Ok(value.to_string())
    } else {
        Err(format!("{value:?}: expected a security group ID (sg-...)"))
    }
}

fn parse_scheme(value: &str) -> Result<lb_model::ingress::Scheme, String> {
    lb_model::ingress::Scheme::parse(value)
        .ok_or_else(|| format!("{value:?}: expected internal or internet-facing"))
}

fn parse_target_type(value: &str) -> Result<lb_api::TargetType, String> {
    match value {
        "instance" => Ok(lb_api::TargetType::Instance),
        "ip" => Ok(lb_api::TargetType::Ip),
        other => Err(format!("{other:?}: expected instance or ip")),
    }
}

fn parse_tags(value: &str) -> Result<BTreeMap<String, String>, String> {
    value
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("{pair:?}: expected key=value")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(args_override_self = true)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("lb-controller").chain(args.iter().copied()))
            .map(|cli| cli.run)
    }

    #[test]
    fn upstream_flags_parse_with_upstream_defaults() {
        let run = parse(&["--cluster-name=prod"]).unwrap();
        assert_eq!(run.cluster_name, "prod");
        assert_eq!(run.webhook_bind_port, 9443);
        assert_eq!(run.metrics_bind_addr, "[::]:8080".parse().unwrap());
        assert_eq!(run.health_probe_bind_addr, "[::]:61779".parse().unwrap());
        assert!(run.enable_leader_election);
        assert_eq!(run.ingress_class, "alb");
        assert_eq!(run.load_balancer_class, "service.k8s.aws/nlb");
        let run = parse(&[
            "--cluster-name=prod",
            "--enable-leader-election=false",
            "--aws-api-endpoints=ec2=https://ec2.local",
            "--metrics-bind-addr=127.0.0.1:9000",
            "--watch-namespace=shop",
            "--log-format=json",
        ])
        .unwrap();
        assert!(!run.enable_leader_election && run.leader().is_none());
        assert_eq!(run.aws_api_endpoints["EC2"], "https://ec2.local");
        assert_eq!(run.watch_namespace.as_deref(), Some("shop"));
    }

    /// The args upstream's chart renders (its default values plus a typical EKS file's), and
    /// upstream flags this controller does not implement: all accepted, the latter named.
    #[test]
    fn upstreams_flags_are_accepted_and_the_unimplemented_ones_named() {
        let run = parse(&[
            "--cluster-name=prod",
            "--ingress-class=alb",
            "--aws-region=us-west-2",
            "--aws-vpc-id=vpc-0123",
            "--feature-gates=EnableTCPUDPListener=true,EnableRGTAPI=true",
            "--feature-gates",
            "NLBSecurityGroup=true",
            "--enable-waf=false",
            "--enable-shield",
            "--sync-period=10h0m0s",
            "--aws-max-retries",
            "3",
            "--external-managed-tags=team,cost-center",
            "--enable-backend-security-group=false",
            "--webhook-cert-file=/certs/tls.crt",
            "--aws-vpc-tags=env=prod,team=web",
            "--aws-vpc-tag-key=Name",
        ])
        .unwrap();
        run.validate().unwrap();
        let gates = run.feature_gates();
        assert!(gates.enabled("EnableTCPUDPListener"));
        assert!(!run.enable_backend_security_group);
        assert_eq!(run.external_managed_tags, ["team", "cost-center"]);
        assert_eq!(run.aws_vpc_tags.len(), 2);
        assert_eq!(
            run.not_implemented(),
            [
                "--sync-period=10h0m0s",
                "--aws-vpc-tag-key=Name",
                "--aws-max-retries=3",
                "--enable-waf=false",
                "--enable-shield=true",
                "--feature-gates EnableRGTAPI=true",
            ]
        );
        // Upstream's checks of the flags together.
        let tracking = parse(&[
            "--cluster-name=prod",
            "--default-tags=elbv2.k8s.aws/cluster=x",
        ])
        .unwrap();
        assert!(matches!(
            tracking.validate(),
            Err(FlagError::TrackingTag { .. })
        ));
        let both = parse(&[
            "--cluster-name=prod",
            "--default-tags=team=a",
            "--external-managed-tags=team",
        ])
        .unwrap();
        assert!(matches!(
            both.validate(),
            Err(FlagError::ExternalAndDefault(_))
        ));
        for bad in [
            "--feature-gates=NoSuchGate=true",
            "--sync-period=10",
            "--aws-max-retries=many",
            "--backend-security-group=default",
            "--enable-waf=maybe",
        ] {
            assert!(parse(&["--cluster-name=prod", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        assert!(
            parse(&[])
                .unwrap_err()
                .to_string()
                .contains("--cluster-name")
        );
        let err = parse(&["--cluster-name=x", "--default-target-type=pod"]).unwrap_err();
        assert!(err.to_string().contains("\"pod\""), "{err}");
        let err = parse(&["--cluster-name=x", "--aws-api-endpoints=s3=https://x"]).unwrap_err();
        assert!(err.to_string().contains("s3"), "{err}");
        // A repeated flag: the last value wins, as upstream takes it.
        let run = parse(&[
            "--cluster-name=x",
            "--cluster-name=y",
            "--log-level=verbose",
        ])
        .unwrap();
        assert_eq!(
            (run.cluster_name.as_str(), run.log_level.as_str()),
            ("y", "info")
        );
        let run = parse(&[
            "--cluster-name=x",
            "--enable-leader-election=False",
            "stray",
        ])
        .unwrap();
        assert!(!run.enable_leader_election);
        assert_eq!(run.not_implemented(), ["stray"]);
        let err = parse(&["--cluster-name=x", "--log-format=yaml"]).unwrap_err();
        assert!(err.to_string().contains("yaml"), "{err}");
    }
}
