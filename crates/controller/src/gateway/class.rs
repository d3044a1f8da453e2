//! GatewayClasses of ours: accepted (or refused for their parameters), with the features
//! supported, at their generation. Classes of other controllers are left alone.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use lb_api::gateway::{ALB_CONTROLLER_NAME, GatewayClass};
use lb_model::gateway::class::{PARAMETERS_GROUP, PARAMETERS_KIND, Parameters, class_status};
use serde_json::json;

use super::{GatewayContext, MANAGER};
use crate::stack::StackError;
use crate::stack::error::KubeContext;

pub async fn reconcile<L, E, C>(
    class: Arc<GatewayClass>,
    ctx: Arc<GatewayContext<L, E, C>>,
) -> Result<Action, StackError> {
    if !ctx.leadership.is_leader() || class.spec.controller_name != ALB_CONTROLLER_NAME {
        return Ok(Action::await_change());
    }
    let parameters = parameters(&class, &ctx).await?;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut status = class_status(&class, parameters, &now);
    // Written only when it says something new: the times of an unchanged condition stay.
    let previous = class.status.clone().unwrap_or_default();
    let same = |a: &lb_api::gateway::GatewayClassStatus,
                b: &lb_api::gateway::GatewayClassStatus| {
        a.supported_features == b.supported_features
            && a.conditions.len() == b.conditions.len()
            && a.conditions.iter().zip(&b.conditions).all(|(x, y)| {
                (
                    x.type_.as_str(),
                    x.status.as_str(),
                    x.reason.as_str(),
                    &x.message,
                    x.observed_generation,
                ) == (
                    y.type_.as_str(),
                    y.status.as_str(),
                    y.reason.as_str(),
                    &y.message,
                    y.observed_generation,
                )
            })
    };
    if same(&status, &previous) {
        return Ok(Action::await_change());
    }
    status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    let api: Api<GatewayClass> = Api::all(ctx.client.clone());
    api.patch_status(
        &class.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "status": status,
        })),
    )
    .await
    .context(|| format!("writing the status of GatewayClass {}", class.name_any()))?;
    Ok(Action::await_change())
}

/// What the class's `parametersRef` finds.
async fn parameters<L, E, C>(
    class: &GatewayClass,
    ctx: &GatewayContext<L, E, C>,
) -> Result<Parameters, StackError> {
    let Some(reference) = &class.spec.parameters_ref else {
        return Ok(Parameters::None);
    };
    let (Some(namespace), true) = (
        &reference.namespace,
        reference.group == PARAMETERS_GROUP && reference.kind == PARAMETERS_KIND,
    ) else {
        // Refused for what it names, whatever exists.
        return Ok(Parameters::Found);
    };
    let kind = GroupVersionKind::gvk(PARAMETERS_GROUP, "v1", PARAMETERS_KIND);
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &ApiResource::from_gvk(&kind));
    match api.get_opt(&reference.name).await {
        Ok(Some(_)) => Ok(Parameters::Found),
        Ok(None) => Ok(Parameters::Missing),
        // No such kind served (its CRD is not installed): nothing of it exists.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Parameters::Missing),
        Err(err) => {
            Err(err).context(|| format!("reading {PARAMETERS_KIND} {namespace}/{}", reference.name))
        }
    }
}

pub fn retry<L, E, C>(
    class: Arc<GatewayClass>,
    err: &StackError,
    _ctx: Arc<GatewayContext<L, E, C>>,
) -> Action {
    tracing::warn!(class = %class.name_any(), reason = err.reason(), "gatewayclass reconcile failed: {err}");
    Action::requeue(std::time::Duration::from_secs(5))
}
