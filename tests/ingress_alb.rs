//! Ingress -> ALB on the sandbox, with the seeds' Ingresses (examples/ingress-alb/): the 2048 game
//! becomes an ALB whose rule forwards to an ip target group, HTTP through the data plane reaches
//! the pods, a restart changes nothing, and deleting the Ingress removes it all and nothing else;
//! the canary splits 50/50 and follows a change to 90/10, and a broken group member is left out
//! while the others keep serving; the SSL redirect answers 301 on HTTP and serves HTTPS over TLS;
//! upstream's documented examples work unchanged. Group membership: tests/ingress_groups.rs.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use lb_aws::Operation;
use lb_lab::harness::{ControllerHandle, start_controller};
use lb_sandbox::aws::ListenerInfo;
use lb_sandbox::aws::elb_setup;
use lb_sandbox::testing::*;
use lb_sandbox::{Sandbox, http_client, manifests};
use serde_json::json;

async fn listener(sandbox: &Sandbox, dns_name: &str, port: u16) -> ListenerInfo {
    let aws = sandbox.aws().unwrap();
    eventually(
        "the data plane's listener",
        Duration::from_secs(10),
        || async {
            let listeners = aws.control().listeners().await.ok()?;
            listeners
                .into_iter()
                .find(|l| l.dns_name == dns_name && l.port == port)
        },
    )
    .await
}

/// `count` GETs through `listener`: the answers by pod name prefix (the Deployment), `other` for
/// answers that are not 200 from a pod.
async fn answers(
    sandbox: &Sandbox,
    listener: &ListenerInfo,
    count: usize,
    prefixes: &[&str],
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..count {
        let response = http_client::get(
            &sandbox.guard(),
            listener.local_address,
            "/",
            Duration::from_secs(5),
        )
        .await;
        let body = response
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| String::from_utf8_lossy(&r.body).to_string())
            .unwrap_or_default();
        let pod = body
            .split_whitespace()
            .find_map(|w| w.strip_prefix("pod="))
            .unwrap_or_default();
        let who = prefixes
            .iter()
            .find(|p| pod.starts_with(*p))
            .map_or("other", |p| p);
        *counts.entry(who.to_string()).or_default() += 1;
    }
    counts
}

fn mutating_calls(controller: &ControllerHandle) -> Vec<(&'static str, u64)> {
    Operation::ALL
        .iter()
        .filter(|op| op.is_mutating() && !matches!(op, Operation::RegisterTargets))
        .map(|op| (op.as_str(), controller.calls.count(*op)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2048_game_gets_an_alb_that_reaches_its_pods_and_goes_with_the_ingress() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let mut controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let elb = elb_setup::client(aws).await;
    // Someone else's load balancer, without our tags: it must survive everything below.
    elb_setup::application_load_balancer(&elb, aws, "not-ours")
        .await
        .unwrap();

    let yaml = std::fs::read_to_string("examples/ingress-alb/game-2048.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let dns_name = eventually(
        "the ALB's hostname in the Ingress status",
        Duration::from_secs(60),
        || common::ingress_hostname(&client, "game-2048", "ingress-2048"),
    )
    .await;
    let described = elb.describe_load_balancers().send().await.unwrap();
    let alb = described
        .load_balancers()
        .iter()
        .find(|l| l.dns_name() == Some(dns_name.as_str()))
        .expect("the ALB of the status");
    assert_eq!(alb.r#type(), Some(&LoadBalancerTypeEnum::Application));
    assert_eq!(alb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    let alb_arn = alb.load_balancer_arn().unwrap().to_string();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&alb_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    let http = &listeners.listeners()[0];
    assert_eq!(
        (http.port(), http.protocol().map(|p| p.as_str())),
        (Some(80), Some("HTTP"))
    );
    let rules = elb
        .describe_rules()
        .listener_arn(http.listener_arn().unwrap())
        .send()
        .await
        .unwrap();
    let rule = rules
        .rules()
        .iter()
        .find(|r| r.is_default() != Some(true))
        .expect("the path's rule");
    assert_eq!(rule.priority(), Some("1"));
    let group_arn = common::forwarded_to(&rule.actions()[0]).unwrap();
    let groups = elb
        .describe_target_groups()
        .target_group_arns(&group_arn)
        .send()
        .await
        .unwrap();
    let group = &groups.target_groups()[0];
    assert_eq!(group.target_type().map(|t| t.as_str()), Some("ip"));
    assert_eq!(group.protocol().map(|p| p.as_str()), Some("HTTP"));

    // HTTP through the ALB reaches the game's pods, once their targets are healthy.
    let http = listener(&sandbox, &dns_name, 80).await;
    eventually(
        "requests through the ALB answered by the pods",
        Duration::from_secs(60),
        || async {
            let counts = answers(&sandbox, &http, 10, &["game-2048/deployment-2048-"]).await;
            (counts.get("game-2048/deployment-2048-") == Some(&10)).then_some(())
        },
    )
    .await;
    let reasons = common::event_reasons(&client, "game-2048", "ingress-2048").await;
    assert!(
        reasons.iter().any(|(r, _)| r == "SuccessfullyReconciled"),
        "{reasons:?}"
    );

    // A restarted controller finds everything converged: describes only.
    controller = controller
        .restart(&sandbox, Duration::from_millis(200))
        .await
        .expect("controller restarts");
    eventually(
        "the restarted controller's first look at the group",
        Duration::from_secs(30),
        || async { (controller.calls.count(Operation::DescribeRules) > 0).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mutating_calls(&controller), [], "no change after a restart");

    // Deleting the Ingress removes the ALB and all it owned; the foreign one stays.
    Api::<Ingress>::namespaced(client.clone(), "game-2048")
        .delete("ingress-2048", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the ALB gone and the Ingress with it",
        Duration::from_secs(60),
        || async {
            let gone = Api::<Ingress>::namespaced(client.clone(), "game-2048")
                .get_opt("ingress-2048")
                .await
                .unwrap()
                .is_none();
            (gone && common::load_balancer_count(&elb).await == 1).then_some(())
        },
    )
    .await;
    let groups = elb.describe_target_groups().send().await.unwrap();
    assert_eq!(groups.target_groups().len(), 0, "its target group went too");
    controller.stop().await;
    sandbox.shutdown().await;
}

/// Requests sent through `listener` one after another until `stop`: (sent, failed), a failure
/// being any answer but a 200 from a pod, or none.
async fn load(
    guard: lb_sandbox::DestinationGuard,
    listener: ListenerInfo,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (usize, Vec<String>) {
    let mut sent = 0;
    let mut failed = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        sent += 1;
        let response =
            http_client::get(&guard, listener.local_address, "/", Duration::from_secs(10)).await;
        match response {
            Ok(r) if r.status == 200 => {}
            Ok(r) => failed.push(format!("{} {}", r.status, String::from_utf8_lossy(&r.body))),
            Err(err) => failed.push(err.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (sent, failed)
}

/// The 2048 game's rule moves from its ip target group to an instance one (ELB cannot change a
/// target group's type) while requests flow: the new group is made and registered, warmed up at
/// weight 0 until a target is healthy, and only then takes the traffic; the old group goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_target_group_replaced_under_load_loses_no_request() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let elb = elb_setup::client(aws).await;
    let yaml = std::fs::read_to_string("examples/ingress-alb/game-2048.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let dns_name = eventually(
        "the ALB's hostname in the Ingress status",
        Duration::from_secs(60),
        || common::ingress_hostname(&client, "game-2048", "ingress-2048"),
    )
    .await;
    let http = listener(&sandbox, &dns_name, 80).await;
    eventually(
        "requests through the ALB answered by the pods",
        Duration::from_secs(60),
        || async {
            let counts = answers(&sandbox, &http, 10, &["game-2048/deployment-2048-"]).await;
            (counts.get("game-2048/deployment-2048-") == Some(&10)).then_some(())
        },
    )
    .await;
    let groups = elb.describe_target_groups().send().await.unwrap();
    let [old] = groups.target_groups() else {
        panic!("one target group: {groups:?}")
    };
    let old = old.target_group_arn().unwrap().to_string();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = tokio::spawn(load(sandbox.guard(), http.clone(), stop.clone()));
    Api::<Ingress>::namespaced(client.clone(), "game-2048")
        .patch(
            "ingress-2048",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "alb.ingress.kubernetes.io/target-type": "instance",
            }}})),
        )
        .await
        .unwrap();
    let new = eventually(
        "the rule on an instance target group alone, the ip one gone",
        Duration::from_secs(120),
        || async {
            let described = elb.describe_load_balancers().send().await.ok()?;
            let alb = described
                .load_balancers()
                .first()?
                .load_balancer_arn()?
                .to_string();
            let listeners = elb
                .describe_listeners()
                .load_balancer_arn(alb)
                .send()
                .await
                .ok()?;
            let listener = listeners.listeners().first()?.listener_arn()?.to_string();
            let rules = elb
                .describe_rules()
                .listener_arn(listener)
                .send()
                .await
                .ok()?;
            let rule = rules
                .rules()
                .iter()
                .find(|r| r.is_default() != Some(true))?;
            let current = common::forwarded_to(&rule.actions()[0])?;
            let old_gone = elb
                .describe_target_groups()
                .target_group_arns(&old)
                .send()
                .await
                .is_err();
            (current != old && old_gone).then_some(current)
        },
    )
    .await;
    let groups = elb
        .describe_target_groups()
        .target_group_arns(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups.target_groups()[0].target_type().map(|t| t.as_str()),
        Some("instance")
    );
    // The new group carries traffic for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, failed) = traffic.await.unwrap();
    assert!(sent > 50, "{sent} requests sent");
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    controller.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_splits_as_weighted_follows_new_weights_and_survives_a_broken_member() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let yaml = std::fs::read_to_string("examples/ingress-alb/canary.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let dns_name = eventually(
        "the ALB's hostname in the Ingress status",
        Duration::from_secs(60),
        || common::ingress_hostname(&client, "default", "traffic-split"),
    )
    .await;
    assert!(dns_name.starts_with("traffic-split-"), "{dns_name}");
    let http = listener(&sandbox, &dns_name, 80).await;
    let prefixes = ["default/ng-canary-", "default/ng-"];
    eventually(
        "both Services answering through the ALB",
        Duration::from_secs(60),
        || async {
            let counts = answers(&sandbox, &http, 20, &prefixes).await;
            (!counts.contains_key("other") && counts.len() == 2).then_some(())
        },
    )
    .await;
    let counts = answers(&sandbox, &http, 1000, &prefixes).await;
    let canary = counts.get("default/ng-canary-").copied().unwrap_or(0);
    let primary = counts.get("default/ng-").copied().unwrap_or(0);
    assert_eq!(canary + primary, 1000, "{counts:?}");
    assert!((450..=550).contains(&canary), "50% +- 5%: {counts:?}");

    // 90/10: one annotation change, followed.
    let weighted = r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"ng","servicePort":80,"weight":90},{"serviceName":"ng-canary","servicePort":80,"weight":10}]}}"#;
    let ingresses = Api::<Ingress>::namespaced(client.clone(), "default");
    ingresses
        .patch(
            "traffic-split",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "alb.ingress.kubernetes.io/actions.weighted-routing": weighted,
            }}})),
        )
        .await
        .unwrap();
    eventually("the split at 90/10", Duration::from_secs(30), || async {
        let counts = answers(&sandbox, &http, 1000, &prefixes).await;
        let canary = counts.get("default/ng-canary-").copied().unwrap_or(0);
        (50..=150).contains(&canary).then_some(())
    })
    .await;

    // A member with a broken action joins the group: it is named and left out; traffic goes on.
    let broken: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "broken", "namespace": "default", "annotations": {
            "alb.ingress.kubernetes.io/group.name": "traffic-split",
            "alb.ingress.kubernetes.io/actions.oops": "{\"type\": \"forward\"",
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [{
            "path": "/oops", "pathType": "Prefix",
            "backend": {"service": {"name": "oops", "port": {"name": "use-annotation"}}}}]}}]},
    }))
    .unwrap();
    // The validating webhook refuses it at once, naming the annotation and its value.
    let refused = ingresses
        .create(&Default::default(), &broken)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains(
            "vingress.elbv2.k8s.aws\" denied the request: annotation alb.ingress.kubernetes.io/actions.oops: "
        ),
        "{refused}"
    );
    // Without the webhook (webhookConfig.disableIngressValidation), the reconciler isolates it.
    drop_ingress_validation(&client).await;
    // The apiserver learns of the changed configuration through its own watch, so the
    // webhook may still answer for a moment: retry while it does.
    eventually(
        "the broken member admitted once the webhook is gone",
        Duration::from_secs(30),
        || async {
            match ingresses.create(&Default::default(), &broken).await {
                Ok(_) => Some(()),
                Err(error) if error.to_string().contains("vingress.elbv2.k8s.aws") => None,
                Err(error) => panic!("creating the broken member: {error}"),
            }
        },
    )
    .await;
    let warning = eventually(
        "a Warning naming the broken annotation",
        Duration::from_secs(30),
        || async {
            common::event_reasons(&client, "default", "broken")
                .await
                .into_iter()
                .find(|(reason, _)| reason == "FailedBuildModel")
        },
    )
    .await;
    assert!(
        warning
            .1
            .starts_with("annotation alb.ingress.kubernetes.io/actions.oops: "),
        "{warning:?}"
    );
    let counts = answers(&sandbox, &http, 50, &prefixes).await;
    assert_eq!(counts.get("other"), None, "{counts:?}");
    assert_eq!(
        common::ingress_hostname(&client, "default", "broken").await,
        None
    );
    controller.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssl_redirect_answers_301_on_http_and_serves_https_and_certificates_are_found_by_host()
{
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let seeded = aws.seeded().clone();
    let game = std::fs::read_to_string("examples/ingress-alb/game-2048.yaml").unwrap();
    manifests::apply_yaml(&client, &game, "default")
        .await
        .unwrap();
    let redirect = std::fs::read_to_string("examples/ingress-alb/ssl-redirect.yaml")
        .unwrap()
        .replace("${CERTIFICATE_ARN}", &seeded.certificate_arn);
    manifests::apply_yaml(&client, &redirect, "default")
        .await
        .unwrap();
    let dns_name = eventually(
        "the ALB's hostname in the Ingress status",
        Duration::from_secs(60),
        || common::ingress_hostname(&client, "game-2048", "ingress-2048"),
    )
    .await;

    // HTTP answers a redirect to HTTPS on 443, path and query kept; it is reported, not followed.
    let http = listener(&sandbox, &dns_name, 80).await;
    let response = eventually("a redirect on HTTP", Duration::from_secs(30), || async {
        http_client::get_for_host(
            &sandbox.guard(),
            http.local_address,
            "game.example.com",
            "/tile?x=1",
            Duration::from_secs(5),
        )
        .await
        .ok()
        .filter(|r| r.status == 301)
    })
    .await;
    assert_eq!(
        response.location.as_deref(),
        Some("https://game.example.com:443/tile?x=1")
    );
    // HTTPS terminates TLS with the certificate and reaches the pods.
    let https = listener(&sandbox, &dns_name, 443).await;
    assert_eq!(https.protocol, "HTTPS");
    let answered = eventually(
        "HTTPS answered by a pod",
        Duration::from_secs(60),
        || async {
            let response = common::tls_get(
                &sandbox,
                https.local_address,
                &seeded.certificate_ca_pem,
                "game.example.com",
                "/",
            )
            .await;
            response
                .contains("pod=game-2048/deployment-2048-")
                .then_some(response)
        },
    )
    .await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    // An HTTPS listener without certificate-arn: ACM's certificate that covers the host is used.
    let shop: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "shop", "namespace": "game-2048", "annotations": {
            "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTPS\": 8443}]",
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"host": "shop.example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "service-2048", "port": {"number": 80}}}}]}}]},
    }))
    .unwrap();
    Api::<Ingress>::namespaced(client.clone(), "game-2048")
        .create(&Default::default(), &shop)
        .await
        .unwrap();
    let shop_dns = eventually("the shop ALB's hostname", Duration::from_secs(60), || {
        common::ingress_hostname(&client, "game-2048", "shop")
    })
    .await;
    let elb = elb_setup::client(aws).await;
    let shop_arn = common::load_balancer_arn(&elb, &shop_dns).await;
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&shop_arn)
        .send()
        .await
        .unwrap();
    let certificate = listeners.listeners()[0].certificates()[0].certificate_arn();
    assert_eq!(certificate, Some(seeded.certificate_arn.as_str()));
    assert_eq!(controller.calls.count(Operation::ListCertificates), 1);
    controller.stop().await;
    sandbox.shutdown().await;
}

/// GETs of `host` + `/` through `listener` until one is answered 200 by a pod whose name starts
/// with `pod_prefix`.
async fn answered_by(sandbox: &Sandbox, listener: &ListenerInfo, host: &str, pod_prefix: &str) {
    eventually(
        &format!("{host} answered by {pod_prefix}*"),
        Duration::from_secs(90),
        || async {
            let response = http_client::get_for_host(
                &sandbox.guard(),
                listener.local_address,
                host,
                "/",
                Duration::from_secs(5),
            )
            .await
            .ok()?;
            let body = String::from_utf8_lossy(&response.body).to_string();
            (response.status == 200 && body.contains(&format!("pod={pod_prefix}"))).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_examples_and_the_seeds_health_check_ingress_work_unchanged() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let elb = elb_setup::client(sandbox.aws().unwrap()).await;
    common::apply_files(
        &client,
        &[
            "examples/upstream-docs/2048_full.yaml",
            "examples/upstream-docs/echoserver.yaml",
            "examples/ingress-alb/health-check.yaml",
        ],
    )
    .await;
    // The legacy class annotation, ip targets.
    let game = eventually("2048's hostname", Duration::from_secs(60), || {
        common::ingress_hostname(&client, "game-2048", "ingress-2048")
    })
    .await;
    let http = listener(&sandbox, &game, 80).await;
    answered_by(&sandbox, &http, &game, "game-2048/deployment-2048-").await;

    // A host rule and instance targets through the NodePort; other hosts get the 404 default.
    let echo = eventually("echoserver's hostname", Duration::from_secs(60), || {
        common::ingress_hostname(&client, "echoserver", "echoserver")
    })
    .await;
    let http = listener(&sandbox, &echo, 80).await;
    answered_by(
        &sandbox,
        &http,
        "echoserver.example.com",
        "echoserver/echoserver-",
    )
    .await;
    let other = http_client::get_for_host(
        &sandbox.guard(),
        http.local_address,
        "other.example.com",
        "/",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(other.status, 404);
    let echo_arn = common::load_balancer_arn(&elb, &echo).await;
    let tags = elb
        .describe_tags()
        .resource_arns(&echo_arn)
        .send()
        .await
        .unwrap();
    let tags: BTreeMap<String, String> = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert_eq!(tags.get("Environment").map(String::as_str), Some("dev"));
    assert_eq!(tags.get("Team").map(String::as_str), Some("test"));
    let groups = elb.describe_target_groups().send().await.unwrap();
    let instance = groups
        .target_groups()
        .iter()
        .find(|g| g.target_type().map(|t| t.as_str()) == Some("instance"))
        .expect("echoserver's instance target group");
    assert_eq!(instance.protocol().map(|p| p.as_str()), Some("HTTP"));

    // The seed's health-check Ingress: its path and codes; its interval of 3 raised to ALB's 5,
    // said in a Warning.
    let django = eventually("django-ingress's hostname", Duration::from_secs(60), || {
        common::ingress_hostname(&client, "default", "django-ingress")
    })
    .await;
    let groups = elb.describe_target_groups().send().await.unwrap();
    let check = groups
        .target_groups()
        .iter()
        .find(|g| g.health_check_path() == Some("/logistics/health"))
        .expect("the seed's health check");
    assert_eq!(check.matcher().and_then(|m| m.http_code()), Some("200-301"));
    assert_eq!(check.health_check_interval_seconds(), Some(5));
    let warning = eventually("the interval Warning", Duration::from_secs(30), || async {
        common::event_reasons(&client, "default", "django-ingress")
            .await
            .into_iter()
            .find(|(reason, _)| reason == "AnnotationWarning")
    })
    .await;
    assert!(
        warning.1.contains("healthcheck-interval-seconds"),
        "{warning:?}"
    );
    let http = listener(&sandbox, &django, 80).await;
    answered_by(&sandbox, &http, &django, "default/django-").await;
    controller.stop().await;
    sandbox.shutdown().await;
}

/// Removes the Ingress validating webhook, as `webhookConfig.disableIngressValidation` does.
async fn drop_ingress_validation(client: &kube::Client) {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let api: kube::Api<ValidatingWebhookConfiguration> = kube::Api::all(client.clone());
    let mut configuration = api.get("lb-controller-webhook").await.unwrap();
    if let Some(webhooks) = configuration.webhooks.as_mut() {
        webhooks.retain(|w| w.name != lb_api::keys::webhooks::VALIDATE_INGRESS_NAME);
    }
    configuration.metadata.managed_fields = None;
    api.replace("lb-controller-webhook", &Default::default(), &configuration)
        .await
        .unwrap();
}
