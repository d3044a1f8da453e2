//! Which VPC the cluster is in, when `--aws-vpc-id` does not say, found as upstream finds it:
//! the one VPC whose tags are all of `--aws-vpc-tags`, else the VPC of the instance the
//! controller runs on, from instance metadata (IMDS: the primary interface's MAC, then its VPC).
//! A values file written for upstream's chart rarely names the VPC (the EKS guide adds `vpcId`
//! only where pods cannot reach IMDS), so this is what makes such an install reconcile.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::calls::{AwsCalls, Operation, timed};
use crate::ec2::tag_filters;
use crate::error::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum VpcError {
    #[error("finding the VPC tagged {tags:?}: {source}")]
    Describe {
        tags: BTreeMap<String, String>,
        #[source]
        source: AwsError,
    },
    #[error("--aws-vpc-tags {tags:?}: {found} VPCs have these tags; exactly one must")]
    NotOne {
        tags: BTreeMap<String, String>,
        found: usize,
    },
    #[error(
        "instance metadata (IMDS) did not tell the VPC: {0}; set --aws-vpc-id (values: vpcId) or --aws-vpc-tags (vpcTags)"
    )]
    Metadata(String),
}

/// The VPC: by `tags` when there are any, else from instance metadata (the SDK's endpoint, which
/// follows `AWS_EC2_METADATA_SERVICE_ENDPOINT` and the profile).
pub async fn discover_vpc(
    config: &aws_config::SdkConfig,
    calls: &Arc<AwsCalls>,
    tags: &BTreeMap<String, String>,
) -> Result<String, VpcError> {
    if !tags.is_empty() {
        return by_tags(config, calls, tags).await;
    }
    from_metadata(None).await
}

async fn by_tags(
    config: &aws_config::SdkConfig,
    calls: &Arc<AwsCalls>,
    tags: &BTreeMap<String, String>,
) -> Result<String, VpcError> {
    let client = aws_sdk_ec2::Client::new(config);
    let request = client
        .describe_vpcs()
        .set_filters(Some(tag_filters(tags).collect()));
    let output = timed(calls, Operation::DescribeVpcs, request.send())
        .await
        .map_err(|source| VpcError::Describe {
            tags: tags.clone(),
            source,
        })?;
    match output.vpcs() {
        [vpc] => Ok(vpc.vpc_id().unwrap_or_default().to_string()),
        found => Err(VpcError::NotOne {
            tags: tags.clone(),
            found: found.len(),
        }),
    }
}

async fn from_metadata(endpoint: Option<&str>) -> Result<String, VpcError> {
    let mut builder = aws_config::imds::Client::builder();
    if let Some(endpoint) = endpoint {
        builder = builder
            .endpoint(endpoint)
            .map_err(|e| VpcError::Metadata(e.to_string()))?;
    }
    let client = builder.build();
    let get = |path: String| {
        let client = client.clone();
        async move {
            client
                .get(path)
                .await
                .map(|value| value.as_ref().trim().to_string())
                .map_err(|e| VpcError::Metadata(e.to_string()))
        }
    };
    let mac = get("/latest/meta-data/mac".to_string()).await?;
    get(format!(
        "/latest/meta-data/network/interfaces/macs/{mac}/vpc-id"
    ))
    .await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A stand-in for instance metadata on loopback: IMDSv2's token, then the two reads.
    async fn fake_imds() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut buffer = vec![0u8; 4096];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).to_string();
                let body = if request.starts_with("PUT /latest/api/token") {
                    "token"
                } else if request.contains("/meta-data/mac ") {
                    "0e:aa:bb:cc:dd:ee"
                } else if request.contains("/macs/0e:aa:bb:cc:dd:ee/vpc-id ") {
                    "vpc-0123456789abcdef0"
                } else {
                    ""
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn the_vpc_comes_from_instance_metadata() {
        let endpoint = fake_imds().await;
        assert_eq!(
            from_metadata(Some(&endpoint)).await.expect("found"),
            "vpc-0123456789abcdef0"
        );
    }
}
