//! The Ingress reconciler's Kubernetes writes: group finalizers, status hostnames, and the
//! TargetGroupBindings of a group's stack (server-side applied, labelled with the group).

use k8s_openapi::api::networking::v1::{
    Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus,
};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use lb_api::TargetGroupBinding;
use lb_model::ingress::GroupId;
use serde_json::json;

use super::error::{IngressError, KubeContext};

/// The field manager of everything the Ingress reconciler writes.
const MANAGER: &str = "lb-controller-ingress";

fn ingresses(client: &Client, ingress: &Ingress) -> Api<Ingress> {
    Api::namespaced(client.clone(), &ingress.namespace().unwrap_or_default())
}

/// Sets the finalizer list, only if the Ingress has not changed meanwhile.
async fn set_finalizers(
    client: &Client,
    ingress: &Ingress,
    finalizers: Vec<String>,
) -> Result<(), IngressError> {
    crate::object_writes::set_finalizers(&ingresses(client, ingress), ingress, finalizers)
        .await
        .context(|| format!("updating the finalizers of Ingress {}", ingress.name_any()))
}

pub async fn add_finalizer(
    client: &Client,
    ingress: &Ingress,
    finalizer: &str,
) -> Result<(), IngressError> {
    if ingress.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let mut finalizers = ingress.finalizers().to_vec();
    finalizers.push(finalizer.to_string());
    set_finalizers(client, ingress, finalizers).await
}

pub async fn remove_finalizer(
    client: &Client,
    ingress: &Ingress,
    finalizer: &str,
) -> Result<(), IngressError> {
    if !ingress.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let finalizers = ingress
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    set_finalizers(client, ingress, finalizers).await
}

/// Writes `status.loadBalancer` (the ALB's DNS name and listener ports) when it differs; None
/// clears it.
pub async fn set_status(
    client: &Client,
    ingress: &Ingress,
    dns_name: Option<&str>,
) -> Result<(), IngressError> {
    let wanted = dns_name.map(|hostname| IngressLoadBalancerStatus {
        ingress: Some(vec![IngressLoadBalancerIngress {
            hostname: Some(hostname.to_string()),
            ..IngressLoadBalancerIngress::default()
        }]),
    });
    let current = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.clone())
        .filter(|s| s.ingress.as_ref().is_some_and(|i| !i.is_empty()));
    if current == wanted {
        return Ok(());
    }
    let value = wanted.map_or(json!({"ingress": null}), |s| json!(s));
    ingresses(client, ingress)
        .patch_status(
            &ingress.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": value}})),
        )
        .await
        .context(|| format!("writing the status of Ingress {}", ingress.name_any()))?;
    Ok(())
}

/// Creates or updates a binding of the group's stack.
pub async fn apply_binding(
    client: &Client,
    binding: &TargetGroupBinding,
) -> Result<(), IngressError> {
    let name = binding.name_any();
    let api: Api<TargetGroupBinding> =
        Api::namespaced(client.clone(), &binding.namespace().unwrap_or_default());
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(binding),
    )
    .await
    .context(|| format!("applying TargetGroupBinding {name}"))?;
    Ok(())
}

/// The group's bindings ([`GroupId::binding_selectors`]), in every namespace (a group spans
/// namespaces).
pub async fn group_bindings(
    client: &Client,
    group: &GroupId,
) -> Result<Vec<TargetGroupBinding>, IngressError> {
    let api: Api<TargetGroupBinding> = Api::all(client.clone());
    let mut found: Vec<TargetGroupBinding> = Vec::new();
    for selector in group.binding_selectors() {
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .context(|| {
                format!(
                    "listing the TargetGroupBindings of group {}",
                    group.stack_id()
                )
            })?;
        found.extend(list.items);
    }
    Ok(found)
}

/// Deletes a binding; its own finalizer deregisters its targets first.
pub async fn delete_binding(
    client: &Client,
    binding: &TargetGroupBinding,
) -> Result<(), IngressError> {
    let name = binding.name_any();
    let api: Api<TargetGroupBinding> =
        Api::namespaced(client.clone(), &binding.namespace().unwrap_or_default());
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err).context(|| format!("deleting TargetGroupBinding {name}")),
    }
}
