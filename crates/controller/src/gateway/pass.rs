//! One Gateway's pass: is it ours (its class is), build its ALB from the snapshot, converge it
//! through the pipeline, then write the statuses of the Gateway and of the routes that name it.
//! A Gateway deleted, or no longer of a class of ours, has its ALB removed (bindings first) and
//! its finalizer taken off.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use lb_api::gateway::{ALB_CONTROLLER_NAME, Gateway, HTTPRoute, ListenerSet};
use lb_api::gateway_config::LoadBalancerConfigurationSpec;
use lb_api::keys::gateway::{FINALIZER, STACK_NAME_LABEL, STACK_NAMESPACE_LABEL};
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::deployer::diff::Owner;
use lb_aws::{Certificates, Ec2, ImportedCertificates};
use lb_model::gateway::backends::BackendSnapshot;
use lb_model::gateway::build::{Configurations, GatewayBuild, Snapshot, build_gateway};
use lb_model::gateway::certificates::SecretKey;
use lb_model::gateway::class::{PARAMETERS_GROUP, PARAMETERS_KIND};
use lb_model::gateway::listeners::{CertificateSnapshot, SecretCertificate};
use lb_model::stack::StackKind;

use super::GatewayContext;
use super::certificates::{SecretPem, certificate_arns, delete_stale};
use super::status::{
    Programmed, write_gateway_status, write_listener_set_statuses, write_route_statuses,
};
use crate::stack::error::KubeContext;
use crate::stack::objects::{add_finalizer, remove_finalizer};
use crate::stack::{BindingScope, REPLACEMENT_CHECK, RESYNC, Removed, Served, StackError};

/// The Gateways a route names, directly or through a ListenerSet (for the watch that maps route
/// changes to Gateway passes).
pub fn gateways_of_route(route: &HTTPRoute, sets: &Store<ListenerSet>) -> Vec<ObjectRef<Gateway>> {
    let namespace = route.namespace().unwrap_or_default();
    route
        .spec
        .parent_refs
        .iter()
        .filter_map(|r| {
            let target_namespace = r.namespace.as_deref().unwrap_or(&namespace);
            match r.kind.as_deref().unwrap_or("Gateway") {
                "Gateway" => Some(ObjectRef::new(&r.name).within(target_namespace)),
                "ListenerSet" => {
                    let set = sets.get(&ObjectRef::new(&r.name).within(target_namespace))?;
                    let parent = &set.spec.parent_ref;
                    let parent_namespace = parent.namespace.as_deref().unwrap_or(target_namespace);
                    Some(ObjectRef::new(&parent.name).within(parent_namespace))
                }
                _ => None,
            }
        })
        .collect()
}

/// Where a Gateway's bindings are: every namespace, by the Gateway's labels.
fn binding_scope(gateway: &Gateway) -> BindingScope {
    BindingScope {
        namespace: None,
        selectors: vec![format!(
            "{STACK_NAMESPACE_LABEL}={},{STACK_NAME_LABEL}={}",
            gateway.namespace().unwrap_or_default(),
            gateway.name_any()
        )],
    }
}

#[tracing::instrument(skip_all, fields(gateway = %gateway.key()))]
pub async fn reconcile<L: LoadBalancers, E: Ec2, C: ImportedCertificates + Certificates>(
    gateway: Arc<Gateway>,
    ctx: Arc<GatewayContext<L, E, C>>,
) -> Result<Action, StackError> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    ctx.stores.synced(false).await;
    let ours = ctx
        .caches
        .classes
        .get(&ObjectRef::new(&gateway.spec.gateway_class_name))
        .is_some_and(|class| class.spec.controller_name == ALB_CONTROLLER_NAME);
    let result = if gateway.metadata.deletion_timestamp.is_some() || !ours {
        remove_gateway(&gateway, &ctx).await
    } else {
        converge_gateway(&gateway, &ctx).await
    };
    match &result {
        Ok(_) => ctx.pipeline.succeeded(&gateway.key()),
        Err(_) => ctx.pipeline.forget(&gateway.key()),
    }
    result
}

/// What a Gateway's build reads, owned (the model's [`Snapshot`] borrows it).
struct Read {
    routes: Vec<HTTPRoute>,
    listener_sets: Vec<ListenerSet>,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    backends: BackendSnapshot,
    certificates: CertificateSnapshot,
    /// The certificate and key of each Secret that holds one.
    pems: BTreeMap<SecretKey, SecretPem>,
    arns: BTreeMap<(String, String), String>,
    subnets: Vec<lb_model::service::subnets::Subnet>,
    /// The LoadBalancerConfigurations of the class and of the Gateway, when found.
    class_config: Option<LoadBalancerConfigurationSpec>,
    gateway_config: Option<LoadBalancerConfigurationSpec>,
    /// The account's ACM certificates, read only when a listener finds its own by hostname.
    acm_certificates: Vec<lb_model::ingress::Certificate>,
}

impl Read {
    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            routes: &self.routes,
            listener_sets: &self.listener_sets,
            namespace_labels: &self.namespace_labels,
            backends: &self.backends,
            certificates: &self.certificates,
            certificate_arns: &self.arns,
            subnets: &self.subnets,
            configurations: Configurations {
                class: self.class_config.as_ref(),
                gateway: self.gateway_config.as_ref(),
            },
            acm_certificates: &self.acm_certificates,
        }
    }
}

/// Whether an HTTPS listener (the Gateway's or a ListenerSet's) names no certificate, so that
/// ACM is asked for one covering its hostname.
fn needs_acm(gateway: &Gateway, listener_sets: &[ListenerSet]) -> bool {
    let sets = lb_model::gateway::listener_sets::naming(gateway, listener_sets);
    let listeners = gateway
        .spec
        .listeners
        .iter()
        .chain(sets.iter().flat_map(|s| s.spec.listeners.iter()));
    listeners.into_iter().any(|l| {
        l.protocol == "HTTPS"
            && l.hostname.is_some()
            && l.tls.as_ref().is_none_or(|t| t.certificate_refs.is_empty())
    })
}

/// The routes, namespaces, Services and grants from the caches; the certificate Secrets and the
/// VPC's subnets read.
async fn read<L: LoadBalancers, E: Ec2, C: ImportedCertificates + Certificates>(
    gateway: &Gateway,
    ctx: &GatewayContext<L, E, C>,
) -> Result<Read, StackError> {
    let grants: Vec<_> = ctx
        .caches
        .grants
        .state()
        .iter()
        .map(|g| (**g).clone())
        .collect();
    let services = ctx.stores.services.state();
    let listener_sets: Vec<ListenerSet> = ctx
        .caches
        .listener_sets
        .state()
        .iter()
        .map(|s| (**s).clone())
        .collect();
    let (judged, pems) = certificate_secrets(gateway, &listener_sets, ctx).await?;
    let acm_certificates = match needs_acm(gateway, &listener_sets) {
        true => ctx
            .acm
            .certificates()
            .await
            .map_err(|source| StackError::Discovery {
                what: "ACM certificates",
                source,
            })?,
        false => Vec::new(),
    };
    Ok(Read {
        listener_sets,
        routes: ctx
            .caches
            .routes
            .state()
            .iter()
            .map(|r| (**r).clone())
            .collect(),
        namespace_labels: ctx
            .stores
            .namespaces
            .state()
            .iter()
            .map(|n| (n.name_any(), n.labels().clone()))
            .collect(),
        backends: BackendSnapshot {
            services: services
                .iter()
                .map(|s| {
                    (
                        (s.namespace().unwrap_or_default(), s.name_any()),
                        (**s).clone(),
                    )
                })
                .collect(),
            grants: grants.clone(),
            target_group_configs: ctx
                .caches
                .target_group_configs
                .state()
                .iter()
                .map(|c| (**c).clone())
                .collect(),
        },
        certificates: CertificateSnapshot {
            secrets: judged,
            grants,
        },
        pems,
        arns: BTreeMap::new(),
        subnets: ctx.pipeline.subnets().await?,
        class_config: class_configuration(gateway, ctx),
        gateway_config: gateway_configuration(gateway, ctx),
        acm_certificates,
    })
}

async fn converge_gateway<L: LoadBalancers, E: Ec2, C: ImportedCertificates + Certificates>(
    gateway: &Gateway,
    ctx: &GatewayContext<L, E, C>,
) -> Result<Action, StackError> {
    let mut read = read(gateway, ctx).await?;
    let mut built = build_gateway(gateway, read.snapshot(), &ctx.settings);
    // Only the Secrets the build found usable (in reach, granted) are imported; then the
    // listeners are built with their certificates.
    let (arns, stale) = certificates_for(&built, &read, ctx).await?;
    if !arns.is_empty() {
        read.arns = arns;
        built = build_gateway(gateway, read.snapshot(), &ctx.settings);
    }
    let Some(stack) = built.stack.clone() else {
        let problem = built.problem.clone().unwrap_or_default();
        write_gateway_status(
            &ctx.client,
            gateway,
            &built,
            &Programmed::Failed(problem.clone()),
        )
        .await?;
        write_listener_set_statuses(
            &ctx.client,
            gateway,
            &read.listener_sets,
            &built,
            &Programmed::Failed(problem.clone()),
        )
        .await?;
        write_route_statuses(&ctx.client, gateway, &read.routes, &built).await?;
        // Refused (its status says why): nothing to retry until it changes.
        if !built.accepted.status {
            return Ok(Action::await_change());
        }
        return Err(StackError::NoSubnets {
            stack: gateway.key(),
            problem,
        });
    };
    // The finalizer goes on before anything exists in AWS, so nothing can be left behind.
    add_finalizer(&ctx.pipeline.writes, gateway, FINALIZER).await?;
    let converged = ctx.pipeline.converge(stack, &binding_scope(gateway)).await;
    let programmed = match &converged {
        Ok(done) => Programmed::Done(done.dns_name.clone()),
        Err(err) => Programmed::Failed(err.to_string()),
    };
    write_gateway_status(&ctx.client, gateway, &built, &programmed).await?;
    write_listener_set_statuses(
        &ctx.client,
        gateway,
        &read.listener_sets,
        &built,
        &programmed,
    )
    .await?;
    write_route_statuses(&ctx.client, gateway, &read.routes, &built).await?;
    let converged = converged?;
    delete_stale(&ctx.acm, &ctx.imports, &stale).await;
    tracing::info!(steps = converged.steps, hostname = ?converged.dns_name, "reconciled");
    Ok(if !converged.waiting.is_empty() {
        Action::requeue(REPLACEMENT_CHECK)
    } else if waits_for_secret(&built) {
        Action::requeue(SECRET_CHECK)
    } else {
        Action::requeue(RESYNC)
    })
}

/// How soon a Gateway whose listener names a certificate Secret that is missing, malformed or
/// not granted is passed again: Secrets are read, not watched (the controller may only `get`
/// them), so a Secret created after its Gateway is found by the next pass.
const SECRET_CHECK: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether a listener waits for its certificate Secret.
fn waits_for_secret(built: &GatewayBuild) -> bool {
    built.listeners.iter().any(|l| {
        l.verdicts.iter().any(|v| {
            v.type_ == lb_model::gateway::conditions::types::RESOLVED_REFS
                && !v.status
                && matches!(v.reason, "InvalidCertificateRef" | "RefNotPermitted")
        })
    })
}

/// The LoadBalancerConfiguration the Gateway's class names, if it exists.
fn class_configuration<L, E, C>(
    gateway: &Gateway,
    ctx: &GatewayContext<L, E, C>,
) -> Option<LoadBalancerConfigurationSpec> {
    let class = ctx
        .caches
        .classes
        .get(&ObjectRef::new(&gateway.spec.gateway_class_name))?;
    let reference = class.spec.parameters_ref.as_ref()?;
    let ours = reference.group == PARAMETERS_GROUP && reference.kind == PARAMETERS_KIND;
    let key = ObjectRef::new(&reference.name).within(reference.namespace.as_deref()?);
    ours.then(|| ctx.caches.load_balancer_configs.get(&key))
        .flatten()
        .map(|c| c.spec.clone())
}

/// The LoadBalancerConfiguration the Gateway names (in its namespace), if it exists.
fn gateway_configuration<L, E, C>(
    gateway: &Gateway,
    ctx: &GatewayContext<L, E, C>,
) -> Option<LoadBalancerConfigurationSpec> {
    let infrastructure = gateway.spec.infrastructure.as_ref()?;
    let reference = infrastructure.parameters_ref.as_ref()?;
    let ours = reference.group == PARAMETERS_GROUP && reference.kind == PARAMETERS_KIND;
    let key = ObjectRef::new(&reference.name).within(&gateway.namespace().unwrap_or_default());
    ours.then(|| ctx.caches.load_balancer_configs.get(&key))
        .flatten()
        .map(|c| c.spec.clone())
}

/// The certificate Secrets the Gateway's HTTPS listeners (and its ListenerSets') name: as the
/// model judges them, and the certificate and key of those that hold one.
async fn certificate_secrets<L, E, C>(
    gateway: &Gateway,
    listener_sets: &[ListenerSet],
    ctx: &GatewayContext<L, E, C>,
) -> Result<
    (
        BTreeMap<SecretKey, SecretCertificate>,
        BTreeMap<SecretKey, SecretPem>,
    ),
    StackError,
> {
    let mut judged = BTreeMap::new();
    let mut pems = BTreeMap::new();
    for key in secrets_named(gateway, listener_sets) {
        if judged.contains_key(&key) {
            continue;
        }
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &key.0);
        let secret = api
            .get_opt(&key.1)
            .await
            .context(|| format!("reading Secret {}/{}", key.0, key.1))?;
        if let Some(secret) = secret {
            let (verdict, pem) = judge(&secret);
            if let Some(pem) = pem {
                pems.insert(key.clone(), pem);
            }
            judged.insert(key, verdict);
        }
    }
    Ok((judged, pems))
}

/// The Secrets a Gateway's listeners, and those of the ListenerSets naming it, name, by
/// (namespace, name).
fn secrets_named(gateway: &Gateway, listener_sets: &[ListenerSet]) -> Vec<SecretKey> {
    let own = std::iter::once((
        gateway.namespace().unwrap_or_default(),
        &gateway.spec.listeners,
    ));
    let sets = lb_model::gateway::listener_sets::naming(gateway, listener_sets)
        .into_iter()
        .map(|s| (s.namespace().unwrap_or_default(), &s.spec.listeners));
    own.chain(sets)
        .flat_map(|(namespace, listeners)| {
            listeners
                .iter()
                .filter_map(|l| l.tls.as_ref())
                .flat_map(|tls| tls.certificate_refs.iter())
                .map(move |r| {
                    (
                        r.namespace.clone().unwrap_or_else(|| namespace.clone()),
                        r.name.clone(),
                    )
                })
        })
        .collect()
}

/// A Secret holds a certificate when `tls.crt` and `tls.key` are PEM.
fn judge(secret: &Secret) -> (SecretCertificate, Option<SecretPem>) {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let pem = |text: &Option<String>, label: &str| {
        text.as_ref()
            .is_some_and(|t| t.contains("-----BEGIN ") && t.contains(label))
    };
    let (certificate, key) = (text("tls.crt"), text("tls.key"));
    match (
        pem(&certificate, "CERTIFICATE-----"),
        pem(&key, "PRIVATE KEY-----"),
    ) {
        (true, true) => {
            let pem = SecretPem {
                certificate: certificate.unwrap_or_default(),
                key: key.unwrap_or_default(),
            };
            (SecretCertificate::Valid, Some(pem))
        }
        (false, _) => (
            SecretCertificate::Malformed("tls.crt is not a PEM certificate".into()),
            None,
        ),
        (_, false) => (
            SecretCertificate::Malformed("tls.key is not a PEM private key".into()),
            None,
        ),
    }
}

/// The ACM certificates of the Secrets the build found usable (imported as needed), and the
/// imports to delete after the pass.
async fn certificates_for<L, E, C: ImportedCertificates>(
    built: &GatewayBuild,
    read: &Read,
    ctx: &GatewayContext<L, E, C>,
) -> Result<(BTreeMap<SecretKey, String>, Vec<String>), StackError> {
    let usable: BTreeMap<SecretKey, SecretPem> = built
        .listeners
        .iter()
        .flat_map(|l| l.certificates.iter())
        .filter_map(|key| Some((key.clone(), read.pems.get(key)?.clone())))
        .collect();
    if usable.is_empty() {
        return Ok((BTreeMap::new(), Vec::new()));
    }
    let named_anywhere: BTreeSet<SecretKey> = ctx
        .caches
        .gateways
        .state()
        .iter()
        .flat_map(|g| secrets_named(g, &read.listener_sets))
        .collect();
    certificate_arns(
        &ctx.acm,
        &ctx.imports,
        &ctx.settings.cluster,
        &usable,
        &named_anywhere,
    )
    .await
}

/// The Gateway is gone, or no longer of a class of ours: its ALB goes (bindings first), then
/// its finalizer.
async fn remove_gateway<L: LoadBalancers, E: Ec2, C: ImportedCertificates>(
    gateway: &Gateway,
    ctx: &GatewayContext<L, E, C>,
) -> Result<Action, StackError> {
    if !gateway.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let owner = Owner {
        cluster: ctx.settings.cluster.clone(),
        kind: StackKind::AlbGateway,
        stack_id: gateway.key(),
    };
    match ctx.pipeline.remove(&owner, &binding_scope(gateway)).await? {
        Removed::Draining => Ok(Action::requeue(REPLACEMENT_CHECK)),
        Removed::Gone { steps } => {
            tracing::info!(steps, "removed");
            remove_finalizer(&ctx.pipeline.writes, gateway, FINALIZER).await?;
            Ok(Action::await_change())
        }
    }
}

/// The pipeline's retry policy, as kube-runtime calls it.
pub fn retry<L, E, C>(
    gateway: Arc<Gateway>,
    err: &StackError,
    ctx: Arc<GatewayContext<L, E, C>>,
) -> Action {
    ctx.pipeline.retry(gateway.as_ref(), err)
}
