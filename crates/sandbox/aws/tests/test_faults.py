"""Unit tests of the fault layer and of ELB's idempotent creates (run by
crates/sandbox/tests/python_units.rs)."""

import io
import threading
import time
import unittest

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from lb_sandbox_aws import idempotency
from lb_sandbox_aws.faults import EXEMPT_ACCESS_KEY, Faults, FaultingApp, Rule, call_name

SCOPE = "AWS4-HMAC-SHA256 Credential=testing/20261207/us-west-2/{}/aws4_request, SignedHeaders=host"


def environ(service, body=b"", target=None, key="testing"):
    env = {
        "HTTP_AUTHORIZATION": SCOPE.format(service).replace("testing/", f"{key}/"),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "QUERY_STRING": "",
    }
    if target:
        env["HTTP_X_AMZ_TARGET"] = target
    return env


class CallNameTest(unittest.TestCase):
    def test_query_and_json_protocols_are_named_service_colon_operation(self):
        self.assertEqual(call_name(environ("elasticloadbalancing"), b"Action=CreateRule&Version=2015-12-01"),
                         ("elasticloadbalancing:CreateRule", "testing"))
        self.assertEqual(call_name(environ("acm", target="CertificateManager.ListCertificates"), b"{}"),
                         ("acm:ListCertificates", "testing"))
        self.assertEqual(call_name(environ("ec2", key=EXEMPT_ACCESS_KEY), b"Action=CreateVpc")[1], EXEMPT_ACCESS_KEY)


class RuleTest(unittest.TestCase):
    def test_a_rule_matches_by_service_and_operation_and_stops_after_times(self):
        rule = Rule({"operation": "ec2:*", "kind": "throttle", "times": 1})
        self.assertTrue(rule.matches("ec2:AuthorizeSecurityGroupIngress"))
        self.assertFalse(rule.matches("elasticloadbalancing:CreateRule"))
        rule.injected = 1
        self.assertFalse(rule.matches("ec2:AuthorizeSecurityGroupIngress"))

    def test_mutating_rules_leave_reads_alone_and_bad_rules_are_refused(self):
        rule = Rule({"operation": "*", "kind": "error", "mutating": True})
        self.assertFalse(rule.matches("elasticloadbalancing:DescribeRules"))
        self.assertTrue(rule.matches("elasticloadbalancing:ModifyRule"))
        for bad in ({"kind": "explode"}, {"kind": "error", "share": 2}, "throttle"):
            with self.assertRaises(ValueError):
                Rule(bad)

    def test_a_share_is_picked_by_a_seeded_generator(self):
        def picks():
            faults = Faults()
            faults.set([{"operation": "*", "kind": "error", "share": 0.5}], seed=7)
            return [faults.pick("ec2:CreateTags", 0.0) is not None for _ in range(200)]
        first = picks()
        self.assertEqual(first, picks())
        self.assertTrue(60 < sum(first) < 140, sum(first))


class FaultingAppTest(unittest.TestCase):
    def setUp(self):
        self.ran = []

        def app(env, start_response):
            self.ran.append(env["wsgi.input"].read())
            start_response("200 OK", [])
            return [b"<ok/>"]

        self.faults = Faults()
        self.app = FaultingApp(app, self.faults)

    def call(self, service, body):
        answer = {}
        chunks = self.app(environ(service, body), lambda status, headers: answer.update(status=status))
        return answer["status"], b"".join(chunks)

    def test_throttling_answers_as_each_service_does_without_the_work(self):
        self.faults.set([{"operation": "*", "kind": "throttle"}])
        status, body = self.call("elasticloadbalancing", b"Action=RegisterTargets")
        self.assertEqual(status, "400 Bad Request")
        self.assertIn(b"<Code>Throttling</Code>", body)
        status, body = self.call("ec2", b"Action=AuthorizeSecurityGroupIngress")
        self.assertEqual(status, "503 Service Unavailable")
        self.assertIn(b"RequestLimitExceeded", body)
        self.assertEqual(self.ran, [])

    def test_a_pause_rule_does_the_work_answers_then_pauses_the_endpoint(self):
        self.faults.set([{"operation": "elasticloadbalancing:CreateLoadBalancer", "kind": "pause", "times": 1}])
        status, body = self.call("elasticloadbalancing", b"Action=CreateLoadBalancer&Name=x")
        self.assertEqual((status, body), ("200 OK", b"<ok/>"))
        self.assertEqual(self.ran, [b"Action=CreateLoadBalancer&Name=x"])
        state = self.faults.state()
        self.assertTrue(state["paused"])
        self.assertEqual(state["mutating"][-1]["met"], "pause")
        self.faults.pause(False)
        self.assertFalse(self.faults.state()["paused"])

    def test_a_call_that_waits_out_a_pause_is_logged_with_when_it_arrived(self):
        self.faults.pause(True)
        done = threading.Event()

        def held():
            self.call("elasticloadbalancing", b"Action=CreateRule")
            done.set()
        before = time.time()
        threading.Thread(target=held, daemon=True).start()
        time.sleep(0.3)
        self.assertFalse(done.is_set(), "held while paused")
        self.faults.pause(False)
        self.assertTrue(done.wait(5))
        logged = self.faults.state()["mutating"][-1]
        self.assertEqual(logged["call"], "elasticloadbalancing:CreateRule")
        self.assertLess(logged["arrived"], before + 0.2)
        self.assertGreaterEqual(logged["at"] - logged["arrived"], 0.25)

    def test_a_lost_answer_does_the_work_and_answers_nothing_useful(self):
        self.faults.set([{"operation": "*", "kind": "lose", "seconds": 0}])
        status, body = self.call("elasticloadbalancing", b"Action=CreateRule")
        self.assertEqual(len(self.ran), 1)
        self.assertEqual((status, body), ("500 Internal Server Error", b""))


@mock_aws
class IdempotentCreatesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        idempotency.install()

    def setUp(self):
        ec2 = boto3.client("ec2", region_name="us-west-2")
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24",
                                          AvailabilityZone=f"us-west-2{z}")["Subnet"]["SubnetId"]
                        for i, z in ((1, "a"), (2, "b"))]
        self.elb = boto3.client("elbv2", region_name="us-west-2")

    def test_the_same_create_twice_answers_the_same_resource(self):
        create = lambda: self.elb.create_load_balancer(Name="lb", Subnets=self.subnets)["LoadBalancers"][0]  # noqa: E731
        first, second = create(), create()
        self.assertEqual(first["LoadBalancerArn"], second["LoadBalancerArn"])
        self.assertEqual(len(self.elb.describe_load_balancers()["LoadBalancers"]), 1)
        group = lambda: self.elb.create_target_group(  # noqa: E731
            Name="tg", Protocol="HTTP", Port=80, VpcId=self.vpc, TargetType="ip")["TargetGroups"][0]
        self.assertEqual(group()["TargetGroupArn"], group()["TargetGroupArn"])
        listener = lambda: self.elb.create_listener(  # noqa: E731
            LoadBalancerArn=first["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
        self.assertEqual(listener()["Listeners"][0]["ListenerArn"], listener()["Listeners"][0]["ListenerArn"])
        self.assertEqual(len(self.elb.describe_listeners(LoadBalancerArn=first["LoadBalancerArn"])["Listeners"]), 1)

    def test_the_same_name_with_other_settings_is_a_duplicate(self):
        self.elb.create_load_balancer(Name="lb", Subnets=self.subnets)
        with self.assertRaises(ClientError) as refused:
            self.elb.create_load_balancer(Name="lb", Subnets=self.subnets, Scheme="internal")
        self.assertEqual(refused.exception.response["Error"]["Code"], "DuplicateLoadBalancerName")
        self.elb.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=self.vpc)
        with self.assertRaises(ClientError) as refused:
            self.elb.create_target_group(Name="tg", Protocol="HTTP", Port=8080, VpcId=self.vpc)
        self.assertEqual(refused.exception.response["Error"]["Code"], "DuplicateTargetGroupName")


if __name__ == "__main__":
    unittest.main()
