//! Ours over the state the upstream controller leaves, measured: what a user switching
//! controllers sees (`helm uninstall` theirs, `helm install` ours, nothing else).
//!
//! 1. Upstream's cluster: its CRDs as its chart installs them (ours are not applied over them, as
//!    `helm install` leaves existing CRDs alone), the IngressClass `alb`, the measured workload,
//!    its pods Ready.
//! 2. Upstream's AWS state: the measured footprint replayed into the emulator with upstream's
//!    calls (`POST /replay`), the names that hash a UID computed for this cluster's objects; every
//!    ready endpoint registered, as upstream had them; a load balancer, target group and security
//!    group of someone else beside them.
//! 3. Upstream's Kubernetes objects: its finalizers on the Ingresses and the Service, their status
//!    hostnames, its TargetGroupBindings (its names, labels, spec and finalizer).
//! 4. Ours starts; for `--watch` it is counted: every AWS call by operation, the mutating ones
//!    apart; then what is in AWS is compared with what was: resources replaced, created, kept.
//! 5. Teardown: the workload's Ingresses and Service deleted; ours removes everything it adopted
//!    (finalizers released, nothing left in AWS but the VPC's default group) and nothing foreign.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use lb_api::{TargetGroupBinding, TargetType};
use lb_model::service::objects::binding_object;
use lb_model::stack::{Stack, StackKind};
use lb_sandbox::aws::elb_setup;
use lb_sandbox::{Sandbox, SandboxConfig, manifests};
use serde_json::{Value, json};

use super::{CLUSTER, WORKLOAD_YAML, compare, fixture, model};
use crate::call_counts;
use crate::harness::{HarnessError, HarnessOptions, install_crds_from, start_controller_with};

#[derive(clap::Args, Debug, Clone)]
pub struct TakeoverOptions {
    /// How long ours runs over upstream's state while its calls are counted.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub watch: Duration,
    /// Leave out step 5 (deleting the workload and checking what ours removes).
    #[arg(long)]
    pub no_teardown: bool,
}

impl Default for TakeoverOptions {
    fn default() -> Self {
        Self {
            watch: Duration::from_secs(60),
            no_teardown: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Sandbox(#[from] lb_sandbox::SandboxError),
    #[error("Kubernetes API error while {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("AWS error while {context}: {message}")]
    Aws { context: String, message: String },
    #[error("{0}")]
    Setup(String),
}

fn kube_error(context: impl Into<String>) -> impl FnOnce(kube::Error) -> TakeoverError {
    let context = context.into();
    move |source| TakeoverError::Kube { context, source }
}

fn aws_error<E: std::fmt::Display>(context: impl Into<String>) -> impl FnOnce(E) -> TakeoverError {
    let context = context.into();
    move |e| TakeoverError::Aws {
        context,
        message: e.to_string(),
    }
}

/// What ours did over upstream's state.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub watched: Duration,
    /// Every AWS call ours made while watched, by operation.
    pub calls: BTreeMap<&'static str, u64>,
    /// Load balancers, target groups and security groups upstream left: how many there were, and
    /// which ours replaced (gone, or another ARN or ID under the name).
    pub upstream_resources: usize,
    pub replaced: Vec<String>,
    /// Resources that exist after that did not before (leaked or new).
    pub created: Vec<String>,
    /// Every field of what exists that changed (the footprint compared before and after).
    pub changed: Vec<String>,
    /// TargetGroupBindings: upstream's, and those that exist after.
    pub bindings_before: BTreeSet<String>,
    pub bindings_after: BTreeSet<String>,
    pub teardown: Option<Teardown>,
}

#[derive(Debug, Clone, Default)]
pub struct Teardown {
    pub took: Duration,
    /// Load balancers, target groups and security groups left (the VPC's default group aside).
    pub left_in_aws: Vec<String>,
    /// Ingresses, Services and bindings still there (a finalizer not released).
    pub left_in_kubernetes: Vec<String>,
    /// Someone else's resources gone.
    pub foreign_lost: Vec<String>,
}

impl Report {
    /// The calls that changed AWS, by operation.
    pub fn mutating(&self) -> BTreeMap<&'static str, u64> {
        call_counts::mutating_calls(&self.calls)
    }

    pub fn mutating_total(&self) -> u64 {
        call_counts::mutating(&self.calls)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |items: &[String]| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        let calls = |calls: &BTreeMap<&'static str, u64>| {
            if calls.is_empty() {
                "none".to_string()
            } else {
                call_counts::describe(calls)
            }
        };
        writeln!(
            f,
            "| takeover of upstream's state ({} s watched) | |",
            self.watched.as_secs()
        )?;
        writeln!(f, "|---|---|")?;
        writeln!(
            f,
            "| mutating AWS calls | {} ({}) |",
            self.mutating_total(),
            calls(&self.mutating())
        )?;
        writeln!(f, "| every AWS call | {} |", calls(&self.calls))?;
        writeln!(
            f,
            "| upstream's resources kept (same ARN, same name) | {} of {} |",
            self.upstream_resources - self.replaced.len(),
            self.upstream_resources
        )?;
        writeln!(f, "| replaced | {} |", list(&self.replaced))?;
        writeln!(f, "| created (leaked or new) | {} |", list(&self.created))?;
        writeln!(f, "| fields changed in AWS | {} |", list(&self.changed))?;
        writeln!(
            f,
            "| TargetGroupBindings | upstream's {}, after {} |",
            self.bindings_before.len(),
            if self.bindings_after == self.bindings_before {
                "the same".to_string()
            } else {
                format!("{:?}", self.bindings_after)
            }
        )?;
        if let Some(teardown) = &self.teardown {
            writeln!(
                f,
                "| teardown: took | {:.1} s |",
                teardown.took.as_secs_f64()
            )?;
            writeln!(
                f,
                "| teardown: left in AWS | {} |",
                list(&teardown.left_in_aws)
            )?;
            writeln!(
                f,
                "| teardown: left in Kubernetes | {} |",
                list(&teardown.left_in_kubernetes)
            )?;
            writeln!(
                f,
                "| teardown: someone else's resources lost | {} |",
                list(&teardown.foreign_lost)
            )?;
        }
        Ok(())
    }
}

/// Runs the whole takeover on a sandbox of its own.
pub async fn run(options: TakeoverOptions) -> Result<Report, TakeoverError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let outcome = takeover(&sandbox, &options).await;
    sandbox.shutdown().await;
    outcome
}

async fn takeover(sandbox: &Sandbox, options: &TakeoverOptions) -> Result<Report, TakeoverError> {
    let client = sandbox.client();
    let aws = sandbox
        .aws()
        .ok_or_else(|| TakeoverError::Setup("the sandbox runs without AWS".into()))?;
    let config = aws.sdk_config().await;
    let elb = Elb::new(&config);
    let inventory = Inventory {
        elb: elb.clone(),
        ec2: aws_sdk_ec2::Client::new(&config),
        vpc: aws.seeded().vpc_id.clone(),
        subnets: aws.seeded().subnets.values().cloned().collect(),
        environment: [
            aws.seeded().cluster_security_group_id.clone(),
            aws.seeded().frontend_security_group_id.clone(),
        ]
        .into(),
    };
    // 1. Upstream's cluster.
    install_crds_from(&client, &upstream_crds()).await?;
    manifests::apply_yaml(&client, WORKLOAD_YAML, "default").await?;
    wait_for_workload(&client).await?;
    // 2. Upstream's AWS state.
    let (workload, stacks) = live_stacks(&client).await?;
    let footprint = fixture();
    let renames = renames(&footprint, &stacks);
    let replayed = aws.control().replay(&footprint, &renames).await?;
    register_targets(&client, &elb, &stacks, &replayed).await?;
    create_foreign(&inventory).await?;
    // 3. Upstream's Kubernetes objects.
    upstream_objects(&client, &elb, &workload, &stacks, &replayed).await?;
    let before = aws.control().footprint().await?;
    let arns_before = ours_and_upstreams(inventory.list().await?);
    let bindings_before = binding_names(&client).await?;
    // 4. Ours.
    let controller = start_controller_with(
        sandbox,
        HarnessOptions {
            install_crds: false,
            ..HarnessOptions::default()
        },
    )
    .await?;
    // From the controller's first call: its counter is its own, made with it.
    let counted = vec![0; lb_aws::Operation::ALL.len()];
    let started = Instant::now();
    tokio::time::sleep(options.watch).await;
    let calls = call_counts::since(&controller.calls, &counted);
    let after = aws.control().footprint().await?;
    let arns_after = ours_and_upstreams(inventory.list().await?);
    let mut report = Report {
        watched: started.elapsed(),
        calls,
        upstream_resources: arns_before.len(),
        replaced: arns_before
            .iter()
            .filter(|(name, id)| arns_after.get(*name) != Some(*id))
            .map(|(name, _)| name.clone())
            .collect(),
        created: arns_after
            .keys()
            .filter(|name| !arns_before.contains_key(*name))
            .cloned()
            .collect(),
        changed: compare::differences(&compare::canonical(&before), &compare::canonical(&after)),
        bindings_before,
        bindings_after: binding_names(&client).await?,
        teardown: None,
    };
    // 5. Teardown.
    if !options.no_teardown {
        report.teardown = Some(teardown(&client, &inventory).await?);
    }
    controller.stop().await;
    Ok(report)
}

/// `inventory` without someone else's resources.
fn ours_and_upstreams(mut inventory: BTreeMap<String, String>) -> BTreeMap<String, String> {
    inventory.retain(|name, _| !is_foreign(name));
    inventory
}

/// The CRDs as upstream's chart installs them: ours are field for field upstream's, but for the
/// status, where upstream's TargetGroupBinding has only `observedGeneration` (and so no HEALTH
/// column). Nothing of ours may need more than that.
fn upstream_crds() -> Vec<CustomResourceDefinition> {
    use kube::core::CustomResourceExt;
    let mut binding = lb_api::target_group_binding_crd();
    for version in &mut binding.spec.versions {
        if let Some(columns) = version.additional_printer_columns.as_mut() {
            columns.retain(|c| !c.json_path.starts_with(".status"));
        }
        let status = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("status"))
            .and_then(|s| s.properties.as_mut());
        if let Some(properties) = status {
            properties.retain(|name, _| name == "observedGeneration");
        }
    }
    vec![binding, lb_api::IngressClassParams::crd()]
}

/// The workload's Deployments, all replicas ready.
async fn wait_for_workload(client: &Client) -> Result<(), TakeoverError> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let deployments: Api<Deployment> = Api::all(client.clone());
        let list = deployments
            .list(&ListParams::default())
            .await
            .map_err(kube_error("listing Deployments"))?;
        let ready = list.items.iter().all(|d| {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            d.status.as_ref().and_then(|s| s.ready_replicas) == Some(want)
        });
        if ready && list.items.len() >= 4 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(TakeoverError::Setup(
                "the workload's pods did not become Ready within 180 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The workload as the cluster has it (its UIDs), built by the model: the names upstream gives
/// this cluster's resources (the footprint test shows the model's names are upstream's).
async fn live_stacks(client: &Client) -> Result<(model::Workload, Vec<Stack>), TakeoverError> {
    let services: Api<Service> = Api::all(client.clone());
    let ingresses: Api<Ingress> = Api::all(client.clone());
    let workload = model::Workload {
        services: services
            .list(&ListParams::default())
            .await
            .map_err(kube_error("listing Services"))?
            .items,
        ingresses: ingresses
            .list(&ListParams::default())
            .await
            .map_err(kube_error("listing Ingresses"))?
            .items,
    };
    let stacks = model::stacks(&workload, CLUSTER).map_err(TakeoverError::Setup)?;
    Ok((workload, stacks))
}

/// The footprint's names that hash a UID (a Service's NLB and security group, every target
/// group) -> this cluster's, matched by their ownership tags.
fn renames(footprint: &Value, stacks: &[Stack]) -> BTreeMap<String, String> {
    let mut renames = BTreeMap::new();
    let tag = |item: &Value, key: &str| item["tags"][key].as_str().map(str::to_string);
    for stack in stacks {
        let (stack_key, resource_key) = (stack.kind.stack_tag(), stack.kind.resource_tag());
        let ours = |item: &Value| tag(item, stack_key).as_deref() == Some(stack.id.as_str());
        for tg in footprint["target_groups"].as_array().into_iter().flatten() {
            let resource = tag(tg, resource_key);
            let mine = stack
                .target_groups
                .iter()
                .find(|t| Some(&t.resource_id) == resource.as_ref());
            if let (true, Some(mine), Some(name)) = (ours(tg), mine, tg["name"].as_str()) {
                renames.insert(name.to_string(), mine.name.clone());
            }
        }
        if stack.kind != StackKind::Service {
            continue;
        }
        for lb in footprint["load_balancers"].as_array().into_iter().flatten() {
            if let (true, Some(name)) = (ours(lb), lb["name"].as_str()) {
                renames.insert(name.to_string(), stack.load_balancer.name.clone());
            }
        }
        for sg in footprint["security_groups"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let (true, Some(name), Some(mine)) = (
                ours(sg),
                sg["name"].as_str(),
                stack.managed_security_group.as_ref(),
            ) {
                renames.insert(name.to_string(), mine.name.clone());
            }
        }
    }
    renames
}

fn arn_of(replayed: &Value, kind: &str, name: &str) -> Result<String, TakeoverError> {
    replayed[kind][name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| TakeoverError::Setup(format!("the replay made no {kind} {name}")))
}

/// The ready endpoints of `service` (address, port), once they are every Ready pod the Service
/// selects: the EndpointSlice controller lists a pod a moment after it turns Ready.
async fn ready_endpoints(
    client: &Client,
    namespace: &str,
    service: &str,
) -> Result<Vec<(String, i32)>, TakeoverError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let pod_selector = services
        .get(service)
        .await
        .map_err(kube_error("reading a Service"))?
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let slice_selector = format!("kubernetes.io/service-name={service}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = slices
            .list(&ListParams::default().labels(&slice_selector))
            .await
            .map_err(kube_error("listing EndpointSlices"))?;
        let mut endpoints = Vec::new();
        for slice in &list.items {
            let port = slice
                .ports
                .iter()
                .flatten()
                .find_map(|p| p.port)
                .unwrap_or_default();
            for endpoint in &slice.endpoints {
                if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(true) {
                    endpoints.extend(endpoint.addresses.iter().map(|a| (a.clone(), port)));
                }
            }
        }
        let selected = pods
            .list(&ListParams::default().labels(&pod_selector))
            .await
            .map_err(kube_error("listing pods"))?
            .items
            .iter()
            .filter(|p| lb_sandbox::testing::is_ready(p))
            .count();
        if endpoints.len() == selected || Instant::now() > deadline {
            return Ok(endpoints);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every ready endpoint of each target group's Service, registered as upstream had them.
async fn register_targets(
    client: &Client,
    elb: &Elb,
    stacks: &[Stack],
    replayed: &Value,
) -> Result<(), TakeoverError> {
    for stack in stacks {
        for binding in &stack.bindings {
            if binding.target_type != TargetType::Ip {
                continue;
            }
            let targets = ready_endpoints(client, &binding.namespace, &binding.service_name)
                .await?
                .iter()
                .map(|(address, port)| elb_setup::target(address, *port))
                .collect();
            let arn = arn_of(replayed, "target_groups", &binding.name)?;
            elb_setup::register(elb, &arn, targets).await?;
        }
    }
    Ok(())
}

/// Upstream's finalizers, statuses and TargetGroupBindings.
async fn upstream_objects(
    client: &Client,
    elb: &Elb,
    workload: &model::Workload,
    stacks: &[Stack],
    replayed: &Value,
) -> Result<(), TakeoverError> {
    let backend = replayed["security_groups"][lb_model::naming::backend_security_group(CLUSTER)]
        .as_str()
        .map(str::to_string);
    let described = elb
        .describe_load_balancers()
        .send()
        .await
        .map_err(aws_error("describing the replayed load balancers"))?;
    for stack in stacks {
        let lb_arn = arn_of(replayed, "load_balancers", &stack.load_balancer.name)?;
        let dns = described
            .load_balancers()
            .iter()
            .find(|l| l.load_balancer_arn() == Some(lb_arn.as_str()))
            .and_then(|l| l.dns_name())
            .unwrap_or_default();
        let status = json!({"status": {"loadBalancer": {"ingress": [{"hostname": dns}]}}});
        match stack.kind {
            StackKind::Service => {
                let (namespace, name) = stack.id.split_once('/').unwrap_or_default();
                let api: Api<Service> = Api::namespaced(client.clone(), namespace);
                mark_upstreams(&api, name, lb_api::keys::service::FINALIZER, &status).await?;
            }
            StackKind::Ingress => {
                for ingress in &workload.ingresses {
                    let group = lb_model::ingress::group::group_of(ingress, None);
                    if group.stack_id() != stack.id {
                        continue;
                    }
                    let api: Api<Ingress> =
                        Api::namespaced(client.clone(), &ingress.namespace().unwrap_or_default());
                    mark_upstreams(&api, &ingress.name_any(), &group.finalizer(), &status).await?;
                }
            }
            // The takeover workload has no Gateway.
            StackKind::AlbGateway => {}
        }
        for binding in &stack.bindings {
            let arn = arn_of(replayed, "target_groups", &binding.name)?;
            let none = lb_model::stack::SourceAddresses::default();
            let mut object =
                binding_object(binding, &binding.name, &arn, backend.as_deref(), &none);
            object.metadata.finalizers = Some(vec![lb_api::keys::FINALIZER.to_string()]);
            let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), &binding.namespace);
            api.create(&PostParams::default(), &object)
                .await
                .map_err(kube_error(format!("creating binding {}", binding.name)))?;
        }
    }
    Ok(())
}

/// Upstream's finalizer and status (its load balancer's hostname) on a Service or an Ingress.
async fn mark_upstreams<K>(
    api: &Api<K>,
    name: &str,
    finalizer: &str,
    status: &Value,
) -> Result<(), TakeoverError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"finalizers": [finalizer]}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_error(format!("adding finalizer {finalizer}")))?;
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map_err(kube_error(format!("writing the status of {name}")))?;
    Ok(())
}

/// What is in the account: load balancers, target groups and the VPC's security groups, by
/// kind and name -> ARN or ID.
struct Inventory {
    elb: Elb,
    ec2: aws_sdk_ec2::Client,
    vpc: String,
    /// The VPC's subnets (the sandbox seeded them).
    subnets: Vec<String>,
    /// The security groups the sandbox seeded (the cluster's, the frontend of hand-made load
    /// balancers): the environment, nobody's footprint.
    environment: BTreeSet<String>,
}

impl Inventory {
    async fn list(&self) -> Result<BTreeMap<String, String>, TakeoverError> {
        let mut found = BTreeMap::new();
        let mut add = |kind: &str, name: Option<&str>, id: Option<&str>| {
            if let (Some(name), Some(id)) = (name, id) {
                found.insert(inventory_name(kind, name), id.to_string());
            }
        };
        let lbs = self
            .elb
            .describe_load_balancers()
            .send()
            .await
            .map_err(aws_error("listing load balancers"))?;
        for lb in lbs.load_balancers() {
            add(
                LOAD_BALANCER,
                lb.load_balancer_name(),
                lb.load_balancer_arn(),
            );
        }
        let tgs = self
            .elb
            .describe_target_groups()
            .send()
            .await
            .map_err(aws_error("listing target groups"))?;
        for tg in tgs.target_groups() {
            add(TARGET_GROUP, tg.target_group_name(), tg.target_group_arn());
        }
        let sgs = self
            .ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&self.vpc)
                    .build(),
            )
            .send()
            .await
            .map_err(aws_error("listing security groups"))?;
        for sg in sgs.security_groups() {
            if sg
                .group_id()
                .is_some_and(|id| self.environment.contains(id))
            {
                continue;
            }
            let name = sg.group_name().filter(|name| *name != "default");
            add(SECURITY_GROUP, name, sg.group_id());
        }
        Ok(found)
    }
}

const LOAD_BALANCER: &str = "load balancer";
const TARGET_GROUP: &str = "target group";
const SECURITY_GROUP: &str = "security group";

/// A resource as the inventory names it: `<kind> <name>`.
fn inventory_name(kind: &str, name: &str) -> String {
    format!("{kind} {name}")
}

async fn binding_names(client: &Client) -> Result<BTreeSet<String>, TakeoverError> {
    let api: Api<TargetGroupBinding> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_error("listing TargetGroupBindings"))?;
    Ok(list
        .items
        .iter()
        .map(|b| format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any()))
        .collect())
}

/// Someone else's load balancer and target group (another cluster's tags) and security group
/// (untagged), which a takeover and a teardown must leave as they are.
const FOREIGN: &str = "someone-elses";

/// The inventory names of someone else's resources.
fn foreign_names() -> [String; 3] {
    [LOAD_BALANCER, TARGET_GROUP, SECURITY_GROUP].map(|kind| inventory_name(kind, FOREIGN))
}

fn is_foreign(name: &str) -> bool {
    foreign_names().iter().any(|n| n == name)
}

/// Someone else's resources no longer in `inventory`.
fn foreign_lost(inventory: &BTreeMap<String, String>) -> Vec<String> {
    foreign_names()
        .into_iter()
        .filter(|n| !inventory.contains_key(n))
        .collect()
}

async fn create_foreign(inventory: &Inventory) -> Result<(), TakeoverError> {
    let (elb, ec2, vpc) = (&inventory.elb, &inventory.ec2, inventory.vpc.as_str());
    let security_group = ec2
        .create_security_group()
        .group_name(FOREIGN)
        .description("not the controller's")
        .vpc_id(vpc)
        .send()
        .await
        .map_err(aws_error("creating a foreign security group"))?
        .group_id()
        .unwrap_or_default()
        .to_string();
    let tag = |key: &str, value: &str| {
        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
    };
    elb.create_target_group()
        .name(FOREIGN)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .tags(tag("elbv2.k8s.aws/cluster", "another-cluster"))
        .tags(tag("ingress.k8s.aws/stack", "store-front"))
        .send()
        .await
        .map_err(aws_error("creating a foreign target group"))?;
    elb.create_load_balancer()
        .name(FOREIGN)
        .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
        .set_subnets(Some(inventory.subnets.clone()))
        .security_groups(&security_group)
        .tags(tag("elbv2.k8s.aws/cluster", "another-cluster"))
        .tags(tag("ingress.k8s.aws/stack", "store-front"))
        .send()
        .await
        .map_err(aws_error("creating a foreign load balancer"))?;
    Ok(())
}

/// Deletes the workload's Ingresses and Services; waits until ours has released them.
async fn teardown(client: &Client, inventory: &Inventory) -> Result<Teardown, TakeoverError> {
    let started = Instant::now();
    let ingresses: Api<Ingress> = Api::all(client.clone());
    for ingress in ingresses
        .list(&ListParams::default())
        .await
        .map_err(kube_error("listing Ingresses"))?
        .items
    {
        let api: Api<Ingress> =
            Api::namespaced(client.clone(), &ingress.namespace().unwrap_or_default());
        api.delete(&ingress.name_any(), &DeleteParams::default())
            .await
            .map_err(kube_error("deleting an Ingress"))?;
    }
    let services: Api<Service> = Api::namespaced(client.clone(), "nlb-demo");
    services
        .delete("svc-nlb-ip-type", &DeleteParams::default())
        .await
        .map_err(kube_error("deleting the NLB Service"))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut outcome = Teardown::default();
    loop {
        outcome.left_in_kubernetes = left_in_kubernetes(client).await?;
        let now = inventory.list().await?;
        outcome.foreign_lost = foreign_lost(&now);
        outcome.left_in_aws = ours_and_upstreams(now).into_keys().collect();
        let done = outcome.left_in_kubernetes.is_empty() && outcome.left_in_aws.is_empty();
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    outcome.took = started.elapsed();
    Ok(outcome)
}

async fn left_in_kubernetes(client: &Client) -> Result<Vec<String>, TakeoverError> {
    let mut left = Vec::new();
    let ingresses: Api<Ingress> = Api::all(client.clone());
    for ingress in ingresses
        .list(&ListParams::default())
        .await
        .map_err(kube_error("listing Ingresses"))?
        .items
    {
        left.push(format!(
            "Ingress {}/{} {:?}",
            ingress.namespace().unwrap_or_default(),
            ingress.name_any(),
            ingress.finalizers()
        ));
    }
    let services: Api<Service> = Api::namespaced(client.clone(), "nlb-demo");
    if let Some(service) = services
        .get_opt("svc-nlb-ip-type")
        .await
        .map_err(kube_error("reading the NLB Service"))?
    {
        left.push(format!(
            "Service nlb-demo/svc-nlb-ip-type {:?}",
            service.finalizers()
        ));
    }
    for binding in binding_names(client).await? {
        left.push(format!("TargetGroupBinding {binding}"));
    }
    Ok(left)
}
