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
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use lb_api::{TargetGroupBinding, TargetType};
use lb_model::service::objects::binding_object;
use lb_model::stack::{Stack, StackKind};
use lb_sandbox::{Sandbox, SandboxConfig, manifests};
use serde_json::{Value, json};

use super::{CLUSTER, WORKLOAD_YAML, compare, fixture, model};
use crate::call_counts;
use crate::harness::{HarnessError, HarnessOptions, start_controller_with};

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
    /// The calls that change AWS, by operation.
    pub mutating: BTreeMap<&'static str, u64>,
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
    pub fn mutating_total(&self) -> u64 {
        self.mutating.values().sum()
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
            calls(&self.mutating)
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
    };
    // 1. Upstream's cluster.
    install_upstream_crds(&client).await?;
    manifests::apply_yaml(&client, WORKLOAD_YAML, "default").await?;
    wait_for_workload(&client).await?;
    // 2. Upstream's AWS state.
    let stacks = live_stacks(&client).await?;
    let footprint = fixture();
    let renames = renames(&footprint, &stacks);
    let replayed = aws.control().replay(&footprint, &renames).await?;
    register_targets(&client, &elb, &stacks, &replayed).await?;
    let foreign = Foreign::create(&inventory).await?;
    // 3. Upstream's Kubernetes objects.
    upstream_objects(&client, &elb, &stacks, &replayed).await?;
    let before = aws.control().footprint(CLUSTER).await?;
    let arns_before = ours_and_upstreams(inventory.list().await?, &foreign);
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
    let after = aws.control().footprint(CLUSTER).await?;
    let arns_after = ours_and_upstreams(inventory.list().await?, &foreign);
    let mut report = Report {
        watched: started.elapsed(),
        mutating: calls
            .iter()
            .filter(|(op, _)| {
                lb_aws::Operation::ALL
                    .iter()
                    .any(|o| o.as_str() == **op && o.is_mutating())
            })
            .map(|(op, n)| (*op, *n))
            .collect(),
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
        report.teardown = Some(teardown(&client, &inventory, &foreign).await?);
    }
    controller.stop().await;
    Ok(report)
}

/// `inventory` without someone else's resources.
fn ours_and_upstreams(
    mut inventory: BTreeMap<String, String>,
    foreign: &Foreign,
) -> BTreeMap<String, String> {
    inventory.retain(|name, _| !foreign.is(name));
    inventory
}

/// The CRDs as upstream's chart installs them: ours are field for field upstream's, but for the
/// status, where upstream's TargetGroupBinding has only `observedGeneration` (and so no HEALTH
/// column). Nothing of ours may need more than that.
pub fn upstream_crds() -> Vec<CustomResourceDefinition> {
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

async fn install_upstream_crds(client: &Client) -> Result<(), TakeoverError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in upstream_crds() {
        api.create(&PostParams::default(), &crd)
            .await
            .map_err(kube_error("installing upstream's CRDs"))?;
    }
    let class = include_str!("../../../../config/ingress-class/alb.yaml");
    manifests::apply_yaml(client, class, "default").await?;
    crate::harness::wait_for_crds(client).await?;
    Ok(())
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
async fn live_stacks(client: &Client) -> Result<Vec<Stack>, TakeoverError> {
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
    model::stacks(&workload, CLUSTER).map_err(TakeoverError::Setup)
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
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
        let selector = format!("kubernetes.io/service-name={service}");
        let list = slices
            .list(&ListParams::default().labels(&selector))
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
        let selected = ready_pods_selected(client, namespace, service).await?;
        if endpoints.len() == selected || Instant::now() > deadline {
            return Ok(endpoints);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many Ready pods `service` selects.
async fn ready_pods_selected(
    client: &Client,
    namespace: &str,
    service: &str,
) -> Result<usize, TakeoverError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let selector = services
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
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_error("listing pods"))?;
    Ok(list
        .items
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count())
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
                .into_iter()
                .map(|(address, port)| TargetDescription::builder().id(address).port(port).build())
                .collect::<Vec<_>>();
            let arn = arn_of(replayed, "target_groups", &binding.name)?;
            elb.register_targets()
                .target_group_arn(&arn)
                .set_targets(Some(targets))
                .send()
                .await
                .map_err(aws_error(format!("registering the targets of {arn}")))?;
        }
    }
    Ok(())
}

/// Upstream's finalizers, statuses and TargetGroupBindings.
async fn upstream_objects(
    client: &Client,
    elb: &Elb,
    stacks: &[Stack],
    replayed: &Value,
) -> Result<(), TakeoverError> {
    let backend = replayed["security_groups"][lb_model::naming::backend_security_group(CLUSTER)]
        .as_str()
        .map(str::to_string);
    for stack in stacks {
        let lb_arn = arn_of(replayed, "load_balancers", &stack.load_balancer.name)?;
        let described = elb
            .describe_load_balancers()
            .load_balancer_arns(&lb_arn)
            .send()
            .await
            .map_err(aws_error("describing a replayed load balancer"))?;
        let dns = described
            .load_balancers()
            .first()
            .and_then(|l| l.dns_name())
            .unwrap_or_default()
            .to_string();
        let status = json!({"status": {"loadBalancer": {"ingress": [{"hostname": dns}]}}});
        match stack.kind {
            StackKind::Service => {
                let (namespace, name) = stack.id.split_once('/').unwrap_or_default();
                let api: Api<Service> = Api::namespaced(client.clone(), namespace);
                finalize(&api, name, lb_api::keys::service::FINALIZER).await?;
                api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .map_err(kube_error("writing a Service's status"))?;
            }
            StackKind::Ingress => {
                let ingresses: Api<Ingress> = Api::all(client.clone());
                let list = ingresses
                    .list(&ListParams::default())
                    .await
                    .map_err(kube_error("listing Ingresses"))?;
                for ingress in &list.items {
                    let group = lb_model::ingress::group::group_of(ingress, None);
                    if group.stack_id() != stack.id {
                        continue;
                    }
                    let api: Api<Ingress> =
                        Api::namespaced(client.clone(), &ingress.namespace().unwrap_or_default());
                    finalize(&api, &ingress.name_any(), &group.finalizer()).await?;
                    api.patch_status(
                        &ingress.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&status),
                    )
                    .await
                    .map_err(kube_error("writing an Ingress's status"))?;
                }
            }
        }
        for binding in &stack.bindings {
            let arn = arn_of(replayed, "target_groups", &binding.name)?;
            let mut object = binding_object(binding, &arn, backend.as_deref());
            object.metadata.finalizers = Some(vec![lb_api::keys::FINALIZER.to_string()]);
            let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), &binding.namespace);
            api.create(&PostParams::default(), &object)
                .await
                .map_err(kube_error(format!("creating binding {}", binding.name)))?;
        }
    }
    Ok(())
}

async fn finalize<K>(api: &Api<K>, name: &str, finalizer: &str) -> Result<(), TakeoverError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"finalizers": [finalizer]}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_error(format!("adding finalizer {finalizer}")))?;
    Ok(())
}

/// What is in the account: load balancers, target groups and the VPC's security groups, by
/// kind and name -> ARN or ID.
struct Inventory {
    elb: Elb,
    ec2: aws_sdk_ec2::Client,
    vpc: String,
}

impl Inventory {
    async fn list(&self) -> Result<BTreeMap<String, String>, TakeoverError> {
        let mut found = BTreeMap::new();
        let lbs = self
            .elb
            .describe_load_balancers()
            .send()
            .await
            .map_err(aws_error("listing load balancers"))?;
        for lb in lbs.load_balancers() {
            if let (Some(name), Some(arn)) = (lb.load_balancer_name(), lb.load_balancer_arn()) {
                found.insert(format!("load balancer {name}"), arn.to_string());
            }
        }
        let tgs = self
            .elb
            .describe_target_groups()
            .send()
            .await
            .map_err(aws_error("listing target groups"))?;
        for tg in tgs.target_groups() {
            if let (Some(name), Some(arn)) = (tg.target_group_name(), tg.target_group_arn()) {
                found.insert(format!("target group {name}"), arn.to_string());
            }
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
            if let (Some(name), Some(id)) = (sg.group_name(), sg.group_id())
                && name != "default"
            {
                found.insert(format!("security group {name}"), id.to_string());
            }
        }
        Ok(found)
    }
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
/// (untagged), which a takeover and a teardown must leave as they are; by inventory name.
struct Foreign {
    names: [String; 3],
}

impl Foreign {
    const NAME: &'static str = "someone-elses";

    async fn create(inventory: &Inventory) -> Result<Self, TakeoverError> {
        let (elb, ec2, vpc) = (&inventory.elb, &inventory.ec2, inventory.vpc.as_str());
        let security_group = ec2
            .create_security_group()
            .group_name(Self::NAME)
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
            .name(Self::NAME)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
            .tags(tag("elbv2.k8s.aws/cluster", "another-cluster"))
            .tags(tag("ingress.k8s.aws/stack", "store-front"))
            .send()
            .await
            .map_err(aws_error("creating a foreign target group"))?;
        let subnets = ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(vpc)
                    .build(),
            )
            .send()
            .await
            .map_err(aws_error("listing subnets"))?
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_id().map(str::to_string))
            .collect::<Vec<_>>();
        elb.create_load_balancer()
            .name(Self::NAME)
            .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
            .set_subnets(Some(subnets))
            .security_groups(&security_group)
            .tags(tag("elbv2.k8s.aws/cluster", "another-cluster"))
            .tags(tag("ingress.k8s.aws/stack", "store-front"))
            .send()
            .await
            .map_err(aws_error("creating a foreign load balancer"))?;
        Ok(Self {
            names: ["load balancer", "target group", "security group"]
                .map(|kind| format!("{kind} {}", Self::NAME)),
        })
    }

    fn is(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Those no longer in `inventory`.
    fn lost(&self, inventory: &BTreeMap<String, String>) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| !inventory.contains_key(*n))
            .cloned()
            .collect()
    }
}

/// Deletes the workload's Ingresses and Services; waits until ours has released them.
async fn teardown(
    client: &Client,
    inventory: &Inventory,
    foreign: &Foreign,
) -> Result<Teardown, TakeoverError> {
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
        outcome.left_in_aws = now.keys().filter(|n| !foreign.is(n)).cloned().collect();
        outcome.foreign_lost = foreign.lost(&now);
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
