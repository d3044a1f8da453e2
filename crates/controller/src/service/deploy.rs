//! A Service of ours: its stack built by the model, converged through the pipeline, then its
//! status hostname. Nothing is written to AWS when the model cannot be built (a bad
//! annotation): the error names it and AWS stays as it was.

use k8s_openapi::api::core::v1::Service;
use kube::runtime::events::EventType;
use lb_api::TargetType;
use lb_api::keys::service as keys;
use lb_aws::Ec2;
use lb_aws::deployer::apply::LoadBalancers;

use super::{ServiceContext, binding_scope};
use crate::stack::objects::{add_finalizer, show_hostname};
use crate::stack::{Converged, StackError, StackWrites};

pub async fn deploy<L: LoadBalancers, E: Ec2, W: StackWrites>(
    service: &Service,
    target_type: Option<TargetType>,
    ctx: &ServiceContext<L, E, W>,
) -> Result<Converged, StackError> {
    let pipeline = &ctx.pipeline;
    let subnets = pipeline.subnets().await?;
    let built = lb_model::service::desired(service, target_type, &ctx.cluster, &subnets)?;
    for warning in &built.warnings {
        pipeline
            .writes
            .publish(
                service,
                EventType::Warning,
                "UnsupportedAnnotation",
                warning,
            )
            .await;
    }
    for adapted in &built.adapted {
        pipeline
            .writes
            .publish(service, EventType::Normal, "DefaultAdapted", adapted)
            .await;
    }
    // The finalizer goes on before anything exists in AWS, so nothing can be left behind.
    add_finalizer(&pipeline.writes, service, keys::FINALIZER).await?;
    let converged = pipeline
        .converge(built.stack, &binding_scope(service))
        .await?;
    if let Some(dns_name) = &converged.dns_name {
        show_hostname(&pipeline.writes, service, Some(dns_name)).await?;
    }
    Ok(converged)
}
