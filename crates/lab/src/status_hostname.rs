//! The load balancer hostname the controller writes in a Service's or an Ingress's status, and
//! waiting for many objects to have one (the benchmarks' "created -> hostname").

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;

use crate::bench::BenchError;

pub trait StatusHostname {
    /// `status.loadBalancer.ingress[0].hostname`, once the load balancer exists.
    fn status_hostname(&self) -> Option<String>;
}

impl StatusHostname for Service {
    fn status_hostname(&self) -> Option<String> {
        let first = self
            .status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?
            .first()?;
        first.hostname.clone()
    }
}

impl StatusHostname for Ingress {
    fn status_hostname(&self) -> Option<String> {
        let first = self
            .status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?
            .first()?;
        first.hostname.clone()
    }
}

/// Waits (up to 600 s) until `count` objects of `api` have a hostname in their status.
pub async fn wait_for_hostnames<K>(api: &Api<K>, count: usize) -> Result<(), BenchError>
where
    K: StatusHostname + kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = api.list(&Default::default()).await?;
        let with = list
            .items
            .iter()
            .filter(|o| o.status_hostname().is_some())
            .count();
        if with >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stuck(format!(
                "{count} objects still lack a hostname after 600 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
