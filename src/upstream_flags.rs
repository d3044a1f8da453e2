//! Upstream's flags this controller accepts but does not act on: a Deployment written for the
//! upstream controller starts unchanged, and the flags it sets here are named once in a startup
//! warning (never refused, never silently ignored). Values are checked as upstream checks them
//! (a duration is a Go duration, a count a number), so a typo still stops the start.

use clap::ArgAction;

use crate::feature_gates::parse_bool;

/// Upstream's bool flags: `--flag` or `--flag=true|false` (pflag's forms).
fn bool_value(value: &str) -> Result<String, String> {
    parse_bool(value)
        .map(|b| b.to_string())
        .ok_or_else(|| format!("{value:?}: expected true or false"))
}

fn int_value(value: &str) -> Result<String, String> {
    value
        .parse::<i64>()
        .map(|n| n.to_string())
        .map_err(|_| format!("{value:?}: expected a number"))
}

/// Go's `time.ParseDuration`: `90s`, `1h30m`, `1000s`, `0`.
fn duration_value(value: &str) -> Result<String, String> {
    let valid = value == "0"
        || (!value.is_empty() && {
            let mut rest = value.trim_start_matches(['+', '-']);
            let mut any = false;
            loop {
                let digits = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                if digits == 0 {
                    break rest.is_empty() && any;
                }
                let after = &rest[digits..];
                let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
                    .into_iter()
                    .filter(|u| after.starts_with(u))
                    .max_by_key(|u| u.len());
                let Some(unit) = unit else { break false };
                rest = &after[unit.len()..];
                any = true;
            }
        });
    valid
        .then(|| value.to_string())
        .ok_or_else(|| format!("{value:?}: expected a duration such as 90s or 10h"))
}

fn text_value(value: &str) -> Result<String, String> {
    Ok(value.to_string())
}

/// Declares the flags and lists those given. Each is `(field, flag, parser, is_bool)`.
macro_rules! upstream_only {
    ($( $(#[$doc:meta])* $field:ident, $flag:literal, $parser:ident, $bool:literal; )*) => {
        #[derive(clap::Args, Debug, Default)]
        pub struct UpstreamOnly {
            $(
                $(#[$doc])*
                #[arg(
                    long = $flag,
                    value_parser = $parser,
                    num_args = if $bool { 0..=1 } else { 1..=1 },
                    require_equals = $bool,
                    default_missing_value = if $bool { Some("true") } else { None },
                    action = ArgAction::Append,
                    hide = true,
                )]
                pub $field: Vec<String>,
            )*
        }

        impl UpstreamOnly {
            /// `--flag=value` for every one given, in declaration order.
            pub fn given(&self) -> Vec<String> {
                let mut given = Vec::new();
                $(
                    for value in &self.$field {
                        given.push(format!("--{}={}", $flag, value));
                    }
                )*
                given
            }
        }
    };
}

upstream_only! {
    /// Concurrency and pacing of upstream's reconcilers (this one paces itself).
    ingress_max_concurrent_reconciles, "ingress-max-concurrent-reconciles", int_value, false;
    service_max_concurrent_reconciles, "service-max-concurrent-reconciles", int_value, false;
    targetgroupbinding_max_concurrent_reconciles, "targetgroupbinding-max-concurrent-reconciles", int_value, false;
    targetgroupbinding_max_exponential_backoff_delay, "targetgroupbinding-max-exponential-backoff-delay", duration_value, false;
    targetgroupbinding_requeue_duration, "targetgroupbinding-requeue-duration", duration_value, false;
    gateway_class_max_concurrent_reconciles, "gateway-class-max-concurrent-reconciles", int_value, false;
    alb_gateway_max_concurrent_reconciles, "alb-gateway-max-concurrent-reconciles", int_value, false;
    nlb_gateway_max_concurrent_reconciles, "nlb-gateway-max-concurrent-reconciles", int_value, false;
    globalaccelerator_max_concurrent_reconciles, "globalaccelerator-max-concurrent-reconciles", int_value, false;
    globalaccelerator_max_exponential_backoff_delay, "globalaccelerator-max-exponential-backoff-delay", duration_value, false;
    lb_stabilization_monitor_interval, "lb-stabilization-monitor-interval", duration_value, false;
    sync_period, "sync-period", duration_value, false;
    /// AWS client settings.
    aws_vpc_tag_key, "aws-vpc-tag-key", text_value, false;
    aws_api_throttle, "aws-api-throttle", text_value, false;
    aws_max_retries, "aws-max-retries", int_value, false;
    /// Security-group and target behaviour not built yet.
    max_targets_per_target_group, "max-targets-per-target-group", int_value, false;
    enable_endpoint_slices, "enable-endpoint-slices", bool_value, true;
    enable_pod_readiness_gate_inject, "enable-pod-readiness-gate-inject", bool_value, true;
    quic_environment_variable_name, "quic-environment-variable-name", text_value, false;
    required_secrets_label, "required-secrets-label", text_value, false;
    /// Ingress behaviour not built yet.
    disable_ingress_class_annotation, "disable-ingress-class-annotation", bool_value, true;
    disable_ingress_group_name_annotation, "disable-ingress-group-name-annotation", bool_value, true;
    tolerate_non_existent_backend_service, "tolerate-non-existent-backend-service", bool_value, true;
    tolerate_non_existent_backend_action, "tolerate-non-existent-backend-action", bool_value, true;
    allowed_certificate_authority_arns, "allowed-certificate-authority-arns", text_value, false;
    default_pca_arn, "default-pca-arn", text_value, false;
    enable_waf, "enable-waf", bool_value, true;
    enable_wafv2, "enable-wafv2", bool_value, true;
    enable_shield, "enable-shield", bool_value, true;
    /// Runtime settings upstream's controller-runtime takes.
    leader_election_lease_duration, "leader-election-lease-duration", duration_value, false;
    kube_ca_pem_filepath, "kube-ca-pem-filepath", text_value, false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for good in ["0", "90s", "1000s", "10h0m0s", "1h30m", "1.5h", "300ms"] {
            assert!(duration_value(good).is_ok(), "{good}");
        }
        for bad in ["10", "10x", "", "s", "1h30"] {
            assert!(duration_value(bad).is_err(), "{bad}");
        }
    }
}
