//! The Service reconciler's Kubernetes writes: its finalizer, its status, and the
//! TargetGroupBindings of its stack (server-side applied, labelled with the stack).

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use lb_api::TargetGroupBinding;
use lb_api::keys::service as keys;
use serde_json::json;

use super::error::{KubeContext, ServiceError};

/// The field manager of everything the Service reconciler writes.
const MANAGER: &str = "lb-controller-service";

fn services(client: &Client, service: &Service) -> Api<Service> {
    Api::namespaced(client.clone(), &service.namespace().unwrap_or_default())
}

pub fn has_finalizer(service: &Service) -> bool {
    service.finalizers().iter().any(|f| f == keys::FINALIZER)
}

/// Sets the finalizer list to `finalizers`, only if the Service has not changed meanwhile.
async fn set_finalizers(
    client: &Client,
    service: &Service,
    finalizers: Vec<String>,
) -> Result<(), ServiceError> {
    crate::object_writes::set_finalizers(&services(client, service), service, finalizers)
        .await
        .context(|| format!("updating the finalizers of Service {}", service.name_any()))
}

pub async fn add_finalizer(client: &Client, service: &Service) -> Result<(), ServiceError> {
    let mut finalizers = service.finalizers().to_vec();
    finalizers.push(keys::FINALIZER.to_string());
    set_finalizers(client, service, finalizers).await
}

pub async fn remove_finalizer(client: &Client, service: &Service) -> Result<(), ServiceError> {
    let finalizers = service
        .finalizers()
        .iter()
        .filter(|f| *f != keys::FINALIZER)
        .cloned()
        .collect();
    set_finalizers(client, service, finalizers).await
}

/// Writes `status.loadBalancer` when it differs (None: cleared).
pub async fn set_status(
    client: &Client,
    service: &Service,
    wanted: Option<LoadBalancerStatus>,
) -> Result<(), ServiceError> {
    let current = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.clone())
        .filter(|s| s.ingress.as_ref().is_some_and(|i| !i.is_empty()));
    if current == wanted {
        return Ok(());
    }
    let value = wanted.map_or(json!({"ingress": null}), |s| json!(s));
    services(client, service)
        .patch_status(
            &service.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": value}})),
        )
        .await
        .context(|| format!("writing the status of Service {}", service.name_any()))?;
    Ok(())
}

fn bindings(client: &Client, namespace: &str) -> Api<TargetGroupBinding> {
    Api::namespaced(client.clone(), namespace)
}

/// Creates or updates a binding of the stack.
pub async fn apply_binding(
    client: &Client,
    binding: &TargetGroupBinding,
) -> Result<(), ServiceError> {
    let name = binding.name_any();
    bindings(client, &binding.namespace().unwrap_or_default())
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(binding),
        )
        .await
        .context(|| format!("applying TargetGroupBinding {name}"))?;
    Ok(())
}

/// The bindings labelled as this Service's stack.
pub async fn stack_bindings(
    client: &Client,
    namespace: &str,
    service: &str,
) -> Result<Vec<TargetGroupBinding>, ServiceError> {
    let selector = format!(
        "{}={service},{}={namespace}",
        keys::STACK_NAME_LABEL,
        keys::STACK_NAMESPACE_LABEL
    );
    let list = bindings(client, namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .context(|| format!("listing the TargetGroupBindings of Service {service}"))?;
    Ok(list.items)
}

/// Deletes a binding; its own finalizer deregisters its targets first.
pub async fn delete_binding(
    client: &Client,
    binding: &TargetGroupBinding,
) -> Result<(), ServiceError> {
    let name = binding.name_any();
    match bindings(client, &binding.namespace().unwrap_or_default())
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err).context(|| format!("deleting TargetGroupBinding {name}")),
    }
}
