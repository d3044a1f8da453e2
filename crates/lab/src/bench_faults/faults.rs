//! The faults of the matrix: what each one is, and how it is put on and taken off.

use std::time::Duration;

use lb_sandbox::aws::{FaultKind, FaultRule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// No fault: the reference row.
    None,
    /// Half of every ELB and EC2 call answered `Throttling` / `RequestLimitExceeded` for 40 s.
    Throttle,
    /// 30 % of every AWS call answered 500 for 40 s.
    ServerErrors,
    /// Every AWS call 2 s late for 40 s.
    Latency,
    /// The answer of the first call of each create operation lost (the work done, the client
    /// times out and retries).
    LostAnswers,
    /// The AWS endpoint answers nothing for 45 s.
    AwsOutage,
    /// kube-apiserver stopped, down 10 s, started again.
    ApiserverRestart,
    /// etcd stopped (SIGSTOP) for 20 s.
    EtcdPause,
    /// The controller killed (SIGKILL) in an Ingress group's pass, after its first CreateRule.
    KillIngressPass,
    /// The controller killed in a Service's pass, after its CreateLoadBalancer.
    KillServicePass,
    /// The controller killed in a binding's pass, after a RegisterTargets.
    KillBindingPass,
    /// The Lease taken by another holder in a Service's pass, after its CreateLoadBalancer.
    LeaseLost,
    /// The pod webhook unreachable for 30 s while the Deployment rolls.
    WebhookDown,
}

/// How a fault ends.
pub enum Ending {
    /// After this long.
    After(Duration),
    /// When the endpoint paused itself after the triggering call (the point of a kill).
    AtTrigger,
}

impl Fault {
    pub fn all() -> Vec<Fault> {
        use clap::ValueEnum;
        Fault::value_variants().to_vec()
    }

    pub fn slug(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    pub fn description(self) -> &'static str {
        match self {
            Fault::None => "no fault (reference)",
            Fault::Throttle => "50 % of ELB and EC2 calls throttled, 40 s",
            Fault::ServerErrors => "30 % of AWS calls answered 500, 40 s",
            Fault::Latency => "every AWS call 2 s late, 40 s",
            Fault::LostAnswers => {
                "the answer of the first call of each create lost (done in AWS; the client times out after 10 s and retries)"
            }
            Fault::AwsOutage => "AWS endpoint answers nothing, 45 s",
            Fault::ApiserverRestart => "kube-apiserver stopped, down 10 s, restarted",
            Fault::EtcdPause => "etcd paused (SIGSTOP), 20 s",
            Fault::KillIngressPass => {
                "controller SIGKILLed in an Ingress group's pass, after its first CreateRule"
            }
            Fault::KillServicePass => {
                "controller SIGKILLed in a Service's pass, after CreateLoadBalancer"
            }
            Fault::KillBindingPass => {
                "controller SIGKILLed in a binding's pass, after a RegisterTargets"
            }
            Fault::LeaseLost => {
                "Lease taken by another holder in a Service's pass, after CreateLoadBalancer"
            }
            Fault::WebhookDown => "pod webhook unreachable, 30 s, while the Deployment rolls",
        }
    }

    /// The emulator's fault rules while the fault is on.
    pub fn aws_rules(self) -> Vec<FaultRule> {
        let pause_after = |operation: &str| {
            vec![
                FaultRule::new(
                    &format!("elasticloadbalancing:{operation}"),
                    FaultKind::Pause,
                )
                .times(1),
            ]
        };
        match self {
            Fault::Throttle => vec![
                FaultRule::new("elasticloadbalancing:*", FaultKind::Throttle).share(0.5),
                FaultRule::new("ec2:*", FaultKind::Throttle).share(0.5),
            ],
            Fault::ServerErrors => vec![FaultRule::new("*", FaultKind::Error).share(0.3)],
            Fault::Latency => vec![FaultRule::new("*", FaultKind::Latency).seconds(2.0)],
            Fault::LostAnswers => [
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:AddTags",
                "ec2:CreateSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
            ]
            .iter()
            .map(|operation| FaultRule::new(operation, FaultKind::Lose).times(1))
            .collect(),
            Fault::KillIngressPass => pause_after("CreateRule"),
            Fault::KillServicePass | Fault::LeaseLost => pause_after("CreateLoadBalancer"),
            Fault::KillBindingPass => pause_after("RegisterTargets"),
            Fault::None
            | Fault::AwsOutage
            | Fault::ApiserverRestart
            | Fault::EtcdPause
            | Fault::WebhookDown => Vec::new(),
        }
    }

    pub fn ending(self) -> Ending {
        match self {
            Fault::None => Ending::After(Duration::ZERO),
            Fault::Throttle | Fault::ServerErrors | Fault::Latency => {
                Ending::After(Duration::from_secs(40))
            }
            Fault::LostAnswers => Ending::After(Duration::from_secs(60)),
            Fault::AwsOutage => Ending::After(Duration::from_secs(45)),
            Fault::ApiserverRestart => Ending::After(Duration::from_secs(10)),
            Fault::EtcdPause => Ending::After(Duration::from_secs(20)),
            Fault::WebhookDown => Ending::After(Duration::from_secs(30)),
            Fault::KillIngressPass
            | Fault::KillServicePass
            | Fault::KillBindingPass
            | Fault::LeaseLost => Ending::AtTrigger,
        }
    }

    /// Whether the rolling update must lose no request: an AWS API fault, a control-plane fault
    /// or a controller crash leaves the load balancers serving. Not so a pod webhook that is
    /// unreachable: the pods created meanwhile have no readiness gate (the chart's
    /// `podMutatorWebhookConfig.failurePolicy` is `Ignore`, as upstream's), so nothing holds the
    /// rollout for the load balancer.
    pub fn must_lose_no_request(self) -> bool {
        self != Fault::WebhookDown
    }

    pub fn kills_the_controller(self) -> bool {
        matches!(
            self,
            Fault::KillIngressPass | Fault::KillServicePass | Fault::KillBindingPass
        )
    }
}
