//! Applying YAML manifests (one or many documents) with server-side apply, for the demo and tests.

use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;

use crate::error::{Context, Result, SandboxError};

pub const FIELD_MANAGER: &str = "lb-sandbox";

/// Applies every document of `yaml`; namespaced objects without a namespace go to
/// `default_namespace`. Returns `kind/name` of each object applied, in order.
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    default_namespace: &str,
) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_yaml_ng::Value::deserialize(document)
            .map_err(|e| SandboxError::Manifest(format!("reading YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject = serde_yaml_ng::from_value(value)
            .map_err(|e| SandboxError::Manifest(format!("not a Kubernetes object: {e}")))?;
        let object = apply_object(client, object, default_namespace).await?;
        applied.push(format!("{}/{}", object.kind.to_lowercase(), object.name));
    }
    Ok(applied)
}

/// An object as it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedObject {
    pub kind: String,
    pub name: String,
    /// None for cluster-scoped kinds.
    pub namespace: Option<String>,
}

/// Applies one object given as a JSON value (a parsed manifest document).
pub async fn apply_value(
    client: &Client,
    value: serde_json::Value,
    default_namespace: &str,
) -> Result<AppliedObject> {
    let object: DynamicObject = serde_json::from_value(value)
        .map_err(|e| SandboxError::Manifest(format!("not a Kubernetes object: {e}")))?;
    apply_object(client, object, default_namespace).await
}

async fn apply_object(
    client: &Client,
    mut object: DynamicObject,
    default_namespace: &str,
) -> Result<AppliedObject> {
    let types = object
        .types
        .clone()
        .ok_or_else(|| SandboxError::Manifest("an object lacks apiVersion/kind".into()))?;
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| {
        SandboxError::Manifest(format!("{}/{}: {e}", types.api_version, types.kind))
    })?;
    let name = object.name_any();
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
        .await
        .context(|| format!("discovering {}", types.kind))?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => {
            let namespace = object
                .metadata
                .namespace
                .get_or_insert_with(|| default_namespace.to_string())
                .clone();
            Api::namespaced_with(client.clone(), &namespace, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .context(|| format!("applying {}/{name}", types.kind))?;
    Ok(AppliedObject {
        kind: types.kind,
        name,
        namespace: object.metadata.namespace,
    })
}
