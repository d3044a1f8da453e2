//! AWS STS: assuming the role a TargetGroupBinding names (`iamRoleArnToAssume`, with
//! `assumeRoleExternalId`) to reach a target group in another account.

use std::time::SystemTime;

use aws_credential_types::Credentials;

use crate::calls::{AwsCalls, Operation, timed};
use crate::error::{AwsError, AwsErrorKind};

/// The session name the assumed role's calls carry in CloudTrail.
pub const SESSION_NAME: &str = "lb-controller";
/// How long assumed credentials last (STS's default); they are renewed before they expire.
pub const SESSION_SECONDS: i32 = 3600;

/// A role to assume, and the external ID its trust policy may require.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleToAssume {
    pub role_arn: String,
    pub external_id: Option<String>,
}

/// Assumes `role`; the credentials carry their expiry.
pub async fn assume_role(
    client: &aws_sdk_sts::Client,
    calls: &AwsCalls,
    role: &RoleToAssume,
) -> Result<Credentials, AwsError> {
    let request = client
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(SESSION_NAME)
        .set_external_id(role.external_id.clone())
        .duration_seconds(SESSION_SECONDS)
        .send();
    let result = timed(calls, Operation::AssumeRole, request)
        .await
        .map_err(|err| AwsError {
            message: format!("assuming role {}: {}", role.role_arn, err.message),
            ..err
        });
    let credentials = result?.credentials.ok_or_else(|| {
        AwsError::new(
            Operation::AssumeRole.as_str(),
            AwsErrorKind::Other,
            format!("assuming role {} returned no credentials", role.role_arn),
        )
    })?;
    let expiry = SystemTime::try_from(credentials.expiration).ok();
    Ok(Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key,
        Some(credentials.session_token),
        expiry,
        "lb-controller-assume-role",
    ))
}
