"""Unit tests of the plugin's pure parts (run by crates/sandbox/tests/python_units.rs)."""

import asyncio
import unittest

from lb_sandbox_aws.dataplane import DataPlane, rule_matches, wildcard
from lb_sandbox_aws.guard import Guard
from lb_sandbox_aws.httpwire import read_body, read_head, response_bytes, status_of
from lb_sandbox_aws.elbv2_patch import _forwarded_groups
from lb_sandbox_aws.targets import matcher_accepts


class Head:
    def __init__(self, headers):
        self.headers = headers

    def get(self, name, default=None):
        return self.headers.get(name.lower(), default)


class Action:
    def __init__(self, data):
        self.data = data


class ForwardedGroupsTest(unittest.TestCase):
    def test_plain_and_weighted_forwards_name_their_groups(self):
        actions = [
            Action({"Type": "forward", "TargetGroupArn": "arn:a"}),
            Action({"Type": "forward", "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": "arn:b", "Weight": 1}, {"TargetGroupArn": "arn:c", "Weight": 0}]}}),
            Action({"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}),
        ]
        self.assertEqual(_forwarded_groups(actions), {"arn:a", "arn:b", "arn:c"})
        self.assertEqual(_forwarded_groups(None), set())


class MatcherTest(unittest.TestCase):
    def test_single_range_and_list(self):
        self.assertTrue(matcher_accepts("200", 200))
        self.assertFalse(matcher_accepts("200", 204))
        self.assertTrue(matcher_accepts("200-399", 302))
        self.assertFalse(matcher_accepts("200-399", 404))
        self.assertTrue(matcher_accepts("200,302", 302))
        self.assertTrue(matcher_accepts("200, 400-499", 404))
        self.assertFalse(matcher_accepts("200,302", 500))


class WildcardTest(unittest.TestCase):
    def test_alb_wildcards(self):
        self.assertTrue(wildcard("/api/*", "/api/orders/1", True))
        self.assertFalse(wildcard("/api/*", "/API/orders", True))
        self.assertTrue(wildcard("/img/?.png", "/img/a.png", True))
        self.assertFalse(wildcard("/img/?.png", "/img/ab.png", True))
        self.assertTrue(wildcard("*.example.com", "Shop.Example.com", False))
        # Regex and fnmatch specials are literal in ALB patterns.
        self.assertTrue(wildcard("/a[1]/+", "/a[1]/+", True))
        self.assertFalse(wildcard("/a[1]", "/a1", True))


class RuleTest(unittest.TestCase):
    def test_every_condition_must_match(self):
        conditions = [
            {"Field": "path-pattern", "Values": ["/api/*"]},
            {"Field": "host-header", "HostHeaderConfig": {"Values": ["shop.example.com"]}},
        ]
        head = Head({})
        self.assertTrue(rule_matches(conditions, "GET", "shop.example.com:80", "/api/x", "", head))
        self.assertFalse(rule_matches(conditions, "GET", "other.example.com", "/api/x", "", head))
        self.assertFalse(rule_matches(conditions, "GET", "shop.example.com", "/web", "", head))

    def test_method_header_query_and_unknown_fields(self):
        head = Head({"x-canary": "yes"})
        self.assertTrue(rule_matches([{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}], "POST", "h", "/", "", head))
        self.assertTrue(rule_matches([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["y*"]}}], "GET", "h", "/", "", head))
        self.assertTrue(rule_matches([{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]}}], "GET", "h", "/", "a=1&v=2", head))
        self.assertFalse(rule_matches([{"Field": "source-ip", "Values": ["10.0.0.0/8"]}], "GET", "h", "/", "", head))


class WeightedForwardTest(unittest.TestCase):
    def test_weights_decide_the_share(self):
        data = {"ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "a", "Weight": 90}, {"TargetGroupArn": "b", "Weight": 10}]}}
        picks = [DataPlane._choose_group(data) for _ in range(2000)]
        share = picks.count("a") / len(picks)
        self.assertTrue(0.8 < share < 0.97, share)
        self.assertEqual(DataPlane._choose_group({"TargetGroupArn": "only"}), "only")
        zero = {"ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "x", "Weight": 0}]}}
        self.assertEqual(DataPlane._choose_group(zero), "x")


class GuardTest(unittest.TestCase):
    def test_only_loopback_and_the_pod_cidr(self):
        guard = Guard("10.244.0.0/16")
        for host in ["127.0.0.1", "::1", "10.244.3.4"]:
            self.assertTrue(guard.allows(host), host)
        for host in ["10.245.0.1", "192.168.1.1", "8.8.8.8", "169.254.169.254", "example.com", ""]:
            self.assertFalse(guard.allows(host), host)


class WireTest(unittest.TestCase):
    def parse(self, raw: bytes):
        async def go():
            reader = asyncio.StreamReader()
            reader.feed_data(raw)
            reader.feed_eof()
            head = await read_head(reader)
            body = await read_body(reader, head, until_eof=True)
            return head, body
        return asyncio.run(go())

    def test_content_length_chunked_and_eof_bodies(self):
        head, body = self.parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
        self.assertEqual((status_of(head), body), ((200, "OK"), b"hello"))
        head, body = self.parse(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        self.assertEqual((status_of(head)[0], body), (201, b"abcde"))
        head, body = self.parse(b"HTTP/1.0 500 Oops\r\n\r\nuntil the end")
        self.assertEqual((status_of(head), body), ((500, "Oops"), b"until the end"))

    def test_response_bytes_frame_the_body(self):
        raw = response_bytes(503, "Service Unavailable", [("X-A", "1")], b"no", close=True)
        self.assertEqual(raw, b"HTTP/1.1 503 Service Unavailable\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")


if __name__ == "__main__":
    unittest.main()


class RoutingLagTest(unittest.TestCase):
    def test_state_at_reads_the_timeline(self):
        from lb_sandbox_aws.targets import HEALTHY, INITIAL, DRAINING, Target

        target = Target("arn", "10.0.0.1", 80)
        target.timeline = [
            {"at": 100.0, "state": INITIAL, "reason": None},
            {"at": 110.0, "state": HEALTHY, "reason": None},
            {"at": 120.0, "state": DRAINING, "reason": None},
        ]
        self.assertIsNone(target.state_at(99.0))
        self.assertEqual(target.state_at(100.0), INITIAL)
        self.assertEqual(target.state_at(115.0), HEALTHY)
        self.assertEqual(target.state_at(125.0), DRAINING)

    def test_pick_routes_by_the_lagged_state(self):
        import time

        from lb_sandbox_aws.targets import DRAINING, HEALTHY, Target, TargetRegistry

        registry = TargetRegistry(None, None, None, None)
        now = time.time()
        old = Target("arn", "10.0.0.1", 80)
        old.timeline = [{"at": now - 30, "state": HEALTHY, "reason": None},
                        {"at": now - 1, "state": DRAINING, "reason": None}]
        old.state = DRAINING
        registry.targets[("arn", old.id, 80)] = old
        self.assertIsNone(registry.pick("arn"), "no lag: a draining target gets nothing")
        registry.routing_lag = 2.0
        self.assertIs(registry.pick("arn"), old, "2 s lag: the balancer has not heard yet")


class PeerArnTest(unittest.TestCase):
    def test_target_group_arns_give_region_account_and_name(self):
        from lb_sandbox_aws.peer import parse_target_group_arn

        arn = "arn:aws:elasticloadbalancing:us-west-2:155642222660:targetgroup/peered-tg/6a4ecf7bfae473c1"
        self.assertEqual(parse_target_group_arn(arn), ("us-west-2", "155642222660", "peered-tg"))
        for bad in ["peered-tg", "arn:aws:iam::155642222660:role/x",
                    "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/app/x/1"]:
            with self.assertRaises(ValueError):
                parse_target_group_arn(bad)
