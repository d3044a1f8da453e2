//! The Kubernetes objects a stack owns, written the same way for every source: the served
//! object's finalizer and status hostname (an Ingress, a Service), the stack's
//! TargetGroupBindings (server-side applied, found by their labels), and Events. Behind one
//! small trait, [`StackWrites`], so the reconcilers' unit tests record instead of sending.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client, Resource, ResourceExt};
use lb_api::TargetGroupBinding;
use lb_model::status::{MAX_MESSAGE, truncate};
use serde_json::json;

use super::error::{KubeContext, StackError};
use crate::writes::{ClusterWrites, KubeWrites};

/// An object a load balancer is made for: an Ingress, a Service.
pub trait Served:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The hostname in `status.loadBalancer.ingress`, if any.
    fn hostname(&self) -> Option<&str>;

    /// `namespace/name`: the object's key in the backoff and the log.
    fn key(&self) -> String {
        format!(
            "{}/{}",
            self.namespace().unwrap_or_default(),
            self.name_any()
        )
    }
}

impl Served for Service {
    fn hostname(&self) -> Option<&str> {
        let status = self.status.as_ref()?.load_balancer.as_ref()?;
        status.ingress.as_ref()?.first()?.hostname.as_deref()
    }
}

impl Served for Ingress {
    fn hostname(&self) -> Option<&str> {
        let status = self.status.as_ref()?.load_balancer.as_ref()?;
        status.ingress.as_ref()?.first()?.hostname.as_deref()
    }
}

/// Where a stack's bindings are: a namespace (None: every namespace, as a group spans them) and
/// label selectors, any of which finds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingScope {
    pub namespace: Option<String>,
    pub selectors: Vec<String>,
}

/// The Kubernetes writes of the load balancer reconcilers.
pub trait StackWrites: Send + Sync + 'static {
    /// The bindings in `scope`.
    fn bindings(
        &self,
        scope: &BindingScope,
    ) -> impl Future<Output = Result<Vec<TargetGroupBinding>, StackError>> + Send;
    /// Creates or updates a binding of the stack.
    fn apply_binding(
        &self,
        binding: &TargetGroupBinding,
    ) -> impl Future<Output = Result<(), StackError>> + Send;
    /// Deletes a binding (gone already is fine); its own finalizer deregisters its targets.
    fn delete_binding(
        &self,
        binding: &TargetGroupBinding,
    ) -> impl Future<Output = Result<(), StackError>> + Send;
    /// Sets `object`'s finalizers, only if it has not changed meanwhile (its resourceVersion).
    fn set_finalizers<K: Served>(
        &self,
        object: &K,
        finalizers: Vec<String>,
    ) -> impl Future<Output = Result<(), StackError>> + Send;
    /// Writes `status.loadBalancer` with `hostname` (None: cleared).
    fn set_hostname<K: Served>(
        &self,
        object: &K,
        hostname: Option<&str>,
    ) -> impl Future<Output = Result<(), StackError>> + Send;
    /// An Event about `object` (best effort, off the pass).
    fn publish<K: Served>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        message: &str,
    ) -> impl Future<Output = ()> + Send;
}

/// Adds `finalizer` to `object` unless it has it.
pub async fn add_finalizer<W: StackWrites, K: Served>(
    writes: &W,
    object: &K,
    finalizer: &str,
) -> Result<(), StackError> {
    if object.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(finalizer.to_string());
    writes.set_finalizers(object, finalizers).await
}

/// Removes `finalizer` from `object` if it has it.
pub async fn remove_finalizer<W: StackWrites, K: Served>(
    writes: &W,
    object: &K,
    finalizer: &str,
) -> Result<(), StackError> {
    if !object.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let finalizers = object
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    writes.set_finalizers(object, finalizers).await
}

/// Writes the status hostname when it differs from `object`'s.
pub async fn show_hostname<W: StackWrites, K: Served>(
    writes: &W,
    object: &K,
    hostname: Option<&str>,
) -> Result<(), StackError> {
    if object.hostname() == hostname {
        return Ok(());
    }
    writes.set_hostname(object, hostname).await
}

/// [`StackWrites`] through the API server, as field manager `manager`.
#[derive(Clone)]
pub struct KubeStackWrites {
    client: Client,
    manager: &'static str,
    events: KubeWrites,
}

impl KubeStackWrites {
    pub fn new(client: Client, manager: &'static str) -> Self {
        Self {
            events: KubeWrites::new(client.clone()),
            client,
            manager,
        }
    }

    fn api_of<K: Served>(&self, object: &K) -> Api<K> {
        Api::namespaced(self.client.clone(), &object.namespace().unwrap_or_default())
    }
}

fn described<K: Served>(object: &K) -> String {
    format!("{} {}", K::kind(&()), object.name_any())
}

impl StackWrites for KubeStackWrites {
    async fn bindings(&self, scope: &BindingScope) -> Result<Vec<TargetGroupBinding>, StackError> {
        let api: Api<TargetGroupBinding> = match &scope.namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        };
        let mut found: Vec<TargetGroupBinding> = Vec::new();
        for selector in &scope.selectors {
            let list = api
                .list(&ListParams::default().labels(selector))
                .await
                .context(|| format!("listing the TargetGroupBindings labelled {selector}"))?;
            found.extend(list.items);
        }
        Ok(found)
    }

    async fn apply_binding(&self, binding: &TargetGroupBinding) -> Result<(), StackError> {
        let name = binding.name_any();
        let api: Api<TargetGroupBinding> = Api::namespaced(
            self.client.clone(),
            &binding.namespace().unwrap_or_default(),
        );
        api.patch(
            &name,
            &PatchParams::apply(self.manager).force(),
            &Patch::Apply(binding),
        )
        .await
        .context(|| format!("applying TargetGroupBinding {name}"))?;
        Ok(())
    }

    async fn delete_binding(&self, binding: &TargetGroupBinding) -> Result<(), StackError> {
        let name = binding.name_any();
        let api: Api<TargetGroupBinding> = Api::namespaced(
            self.client.clone(),
            &binding.namespace().unwrap_or_default(),
        );
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(err).context(|| format!("deleting TargetGroupBinding {name}")),
        }
    }

    async fn set_finalizers<K: Served>(
        &self,
        object: &K,
        finalizers: Vec<String>,
    ) -> Result<(), StackError> {
        let patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }});
        self.api_of(object)
            .patch(
                &object.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
            .context(|| format!("updating the finalizers of {}", described(object)))?;
        Ok(())
    }

    async fn set_hostname<K: Served>(
        &self,
        object: &K,
        hostname: Option<&str>,
    ) -> Result<(), StackError> {
        let value = match hostname {
            Some(hostname) => json!({"ingress": [{"hostname": hostname}]}),
            None => json!({"ingress": null}),
        };
        self.api_of(object)
            .patch_status(
                &object.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"loadBalancer": value}})),
            )
            .await
            .context(|| format!("writing the status of {}", described(object)))?;
        Ok(())
    }

    /// Queued, not awaited (see [`crate::event_queue::EventQueue`]).
    async fn publish<K: Served>(&self, object: &K, type_: EventType, reason: &str, message: &str) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(message, MAX_MESSAGE)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        self.events.publish(event, object.object_ref(&())).await;
    }
}
