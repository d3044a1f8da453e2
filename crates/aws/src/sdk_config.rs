//! The SDK configuration the controller's clients share: retries and timeouts, the region
//! (`--aws-region`, else the SDK's chain: environment, profile, IMDS) and per-service endpoints
//! (`--aws-api-endpoints`, upstream's `ec2=https://...,elasticloadbalancing=https://...`, for
//! VPC endpoints and private partitions). The clients the controller makes use them; the STS
//! client of the credential chain (IRSA's AssumeRoleWithWebIdentity) follows `AWS_ENDPOINT_URL_STS`
//! and `AWS_STS_REGIONAL_ENDPOINTS` as the SDK reads them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// What the flags say about reaching AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    /// Endpoint URL by the SDK's service id (`Elastic Load Balancing v2`, `EC2`, `ACM`, `STS`).
    pub endpoints: BTreeMap<&'static str, String>,
}

/// The endpoint keys upstream accepts, and the SDK service each one means.
const SERVICES: [(&str, &str); 4] = [
    ("elasticloadbalancing", "Elastic Load Balancing v2"),
    ("ec2", "EC2"),
    ("acm", "ACM"),
    ("sts", "STS"),
];

/// Parses `--aws-api-endpoints`: `service=url` pairs separated by commas.
pub fn parse_endpoints(value: &str) -> Result<BTreeMap<&'static str, String>, String> {
    let mut endpoints = BTreeMap::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, url)) = pair.split_once('=') else {
            return Err(format!("{pair:?}: expected service=url"));
        };
        let Some((_, service)) = SERVICES.iter().find(|(k, _)| *k == key.trim()) else {
            let known: Vec<&str> = SERVICES.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "{key:?}: not a service the controller calls (known: {})",
                known.join(", ")
            ));
        };
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("{pair:?}: the endpoint must be an http(s) URL"));
        }
        endpoints.insert(*service, url.to_string());
    }
    Ok(endpoints)
}

/// The endpoints given by flag, asked by each client as it is built.
#[derive(Debug)]
struct Endpoints(BTreeMap<&'static str, String>);

impl LoadServiceConfig for Endpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != "AWS_ENDPOINT_URL" {
            return None;
        }
        self.0.get(key.service_id()).cloned().or_else(|| {
            // The SDK's own per-service variable still counts for services the flag leaves out
            // (`AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2`, ...).
            let service = key.service_id().replace(' ', "_").to_uppercase();
            std::env::var(format!("AWS_ENDPOINT_URL_{service}")).ok()
        })
    }
}

/// The SDK configuration of the controller: its retries and timeouts (see
/// [`with_controller_retries`]; set on the loader, so the credential chain's clients, IRSA's STS
/// among them, get them too), the region of `settings` and its per-service endpoints.
pub async fn load_sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retries())
        .timeout_config(timeouts());
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let config = loader.load().await;
    if settings.endpoints.is_empty() {
        return config;
    }
    config
        .into_builder()
        .service_config(Endpoints(settings.endpoints.clone()))
        .build()
}

/// `config` with the controller's retries and timeouts: adaptive retries (10 attempts, as
/// upstream's `--aws-max-retries`; after a throttling answer the client also slows its own request
/// rate, so throttling is met by going slower, not by failing) and 10 s per attempt. The lab's
/// in-process controller takes its configuration through here, so its tests meet throttling with
/// the product's retries.
pub fn with_controller_retries(config: aws_config::SdkConfig) -> aws_config::SdkConfig {
    config
        .into_builder()
        .retry_config(retries())
        .timeout_config(timeouts())
        .build()
}

fn retries() -> RetryConfig {
    RetryConfig::adaptive().with_max_attempts(10)
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_secs(10))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_read_by_upstream_keys_and_refused_by_name() {
        let parsed =
            parse_endpoints("ec2=https://ec2.local, elasticloadbalancing=http://127.0.0.1:5000")
                .unwrap();
        assert_eq!(parsed["EC2"], "https://ec2.local");
        assert_eq!(parsed["Elastic Load Balancing v2"], "http://127.0.0.1:5000");
        assert!(parse_endpoints("").unwrap().is_empty());
        let err = parse_endpoints("wafv3=https://x").unwrap_err();
        assert!(
            err.contains("wafv3") && err.contains("elasticloadbalancing"),
            "{err}"
        );
        assert!(parse_endpoints("ec2").unwrap_err().contains("service=url"));
        assert!(
            parse_endpoints("ec2=ftp://x")
                .unwrap_err()
                .contains("http(s)")
        );
    }

    #[test]
    fn a_client_finds_its_endpoint_by_service_id() {
        let endpoints = Endpoints(parse_endpoints("acm=https://acm.local").unwrap());
        let key = |service: &'static str, env: &'static str| {
            ServiceConfigKey::builder()
                .service_id(service)
                .env(env)
                .profile("endpoint_url")
                .build()
                .unwrap()
        };
        assert_eq!(
            endpoints
                .load_config(key("ACM", "AWS_ENDPOINT_URL"))
                .as_deref(),
            Some("https://acm.local")
        );
        assert_eq!(endpoints.load_config(key("EC2", "AWS_ENDPOINT_URL")), None);
        assert_eq!(endpoints.load_config(key("ACM", "AWS_REGION")), None);
    }

    #[test]
    fn the_controller_retries_adaptively_ten_times() {
        let config = with_controller_retries(aws_config::SdkConfig::builder().build());
        let retry = config.retry_config().expect("retry config");
        assert_eq!(retry.mode(), aws_config::retry::RetryMode::Adaptive);
        assert_eq!(retry.max_attempts(), 10);
        assert_eq!(
            config
                .timeout_config()
                .and_then(|t| t.operation_attempt_timeout()),
            Some(Duration::from_secs(10))
        );
    }
}
