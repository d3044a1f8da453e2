"""Unit tests of the plugin's pure parts (run by crates/sandbox/tests/python_units.rs)."""

import asyncio
import unittest

from lb_sandbox_aws.dataplane import (DataPlane, choose_certificate, hostname, name_matches, rule_matches,
                                      source_ip_matches, wildcard)
from lb_sandbox_aws.guard import Guard
from lb_sandbox_aws.httpwire import read_body, read_head, response_bytes, status_of
from lb_sandbox_aws.elbv2_patch import _accepting_regex_paths, _forwarded_groups, set_rule_priorities
from moto.elbv2.exceptions import DuplicatePriorityError, InvalidConditionValueError, PriorityInUseError
from lb_sandbox_aws.targets import matcher_accepts
from lb_sandbox_aws.network import groups_admit, rule_admits
from lb_sandbox_aws.footprint import upstream_target_rules


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


class Rule:
    def __init__(self, arn, priority, is_default=False):
        self.arn, self.priority, self.is_default, self.listener_arn = arn, priority, is_default, "listener"


class RulesBackend:
    """Just what set_rule_priorities reads: one listener's rules."""

    def __init__(self, rules):
        self.listener = type("Listener", (), {"rules": {r.arn: r for r in rules}})()

    def describe_rules(self, listener_arn, rule_arns):
        return [self.listener.rules[arn] for arn in rule_arns]

    def describe_listeners(self, load_balancer_arn, listener_arns):
        return [self.listener]


class RulePrioritiesTest(unittest.TestCase):
    def setUp(self):
        self.backend = RulesBackend([Rule("a", 1), Rule("b", 2), Rule("c", 3), Rule("d", "default", True)])

    def priorities(self):
        return {arn: rule.priority for arn, rule in self.backend.listener.rules.items()}

    def test_a_swap_is_one_change(self):
        set_rule_priorities(self.backend, [{"RuleArn": "a", "Priority": 2}, {"RuleArn": "b", "Priority": 1}])
        self.assertEqual(self.priorities(), {"a": 2, "b": 1, "c": 3, "d": "default"})
        set_rule_priorities(self.backend, [{"RuleArn": "c", "Priority": 3}])
        self.assertEqual(self.priorities()["c"], 3, "a rule may keep its own priority")

    def test_a_priority_another_rule_keeps_is_in_use(self):
        with self.assertRaises(PriorityInUseError):
            set_rule_priorities(self.backend, [{"RuleArn": "a", "Priority": 3}])
        with self.assertRaises(DuplicatePriorityError):
            set_rule_priorities(self.backend, [{"RuleArn": "a", "Priority": 9}, {"RuleArn": "b", "Priority": 9}])
        self.assertEqual(self.priorities(), {"a": 1, "b": 2, "c": 3, "d": "default"}, "nothing changed")


class RegexPathValidationTest(unittest.TestCase):
    def setUp(self):
        self.plain = []
        self.validate = _accepting_regex_paths(lambda _self, condition: self.plain.append(condition))

    def test_regex_values_are_checked_here_and_plain_values_by_moto(self):
        self.validate(None, {"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/api/(v1|v2)/.*$"]}})
        self.assertEqual(self.plain, [])
        self.validate(None, {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}})
        self.assertEqual(len(self.plain), 1)

    def test_bad_regex_values_are_refused(self):
        for config in [{"RegexValues": []}, {"RegexValues": ["^/(open"]}, {"RegexValues": ["x" * 129]},
                       {"RegexValues": ["^/a$"], "Values": ["/a"]}]:
            with self.assertRaises(InvalidConditionValueError, msg=config):
                self.validate(None, {"Field": "path-pattern", "PathPatternConfig": config})


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
        self.assertTrue(rule_matches(conditions, "GET", "shop.example.com:80", "/api/x", "", head, "127.0.0.1"))
        self.assertFalse(rule_matches(conditions, "GET", "other.example.com", "/api/x", "", head, "127.0.0.1"))
        self.assertFalse(rule_matches(conditions, "GET", "shop.example.com", "/web", "", head, "127.0.0.1"))

    def test_method_header_query_and_unknown_fields(self):
        head = Head({"x-canary": "yes"})
        self.assertTrue(rule_matches([{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}], "POST", "h", "/", "", head, ""))
        self.assertTrue(rule_matches([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["y*"]}}], "GET", "h", "/", "", head, ""))
        self.assertTrue(rule_matches([{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]}}], "GET", "h", "/", "a=1&v=2", head, ""))
        self.assertFalse(rule_matches([{"Field": "no-such-field", "Values": ["x"]}], "GET", "h", "/", "", head, ""))

    def test_source_ip_is_the_peer_in_a_cidr(self):
        condition = [{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8", "127.0.0.1/32"]}}]
        self.assertTrue(rule_matches(condition, "GET", "h", "/", "", Head({}), "127.0.0.1"))
        self.assertTrue(rule_matches(condition, "GET", "h", "/", "", Head({}), "10.1.2.3"))
        self.assertFalse(rule_matches(condition, "GET", "h", "/", "", Head({}), "127.0.0.2"))
        # X-Forwarded-For is the client's word, not its address: ELB does not read it.
        forwarded = Head({"x-forwarded-for": "10.1.2.3"})
        self.assertFalse(rule_matches(condition, "GET", "h", "/", "", forwarded, "192.168.1.1"))

    def test_source_ip_blocks(self):
        self.assertTrue(source_ip_matches(["2001:db8::/32"], "2001:db8::1"))
        self.assertFalse(source_ip_matches(["2001:db8::/32"], "10.0.0.1"))
        self.assertTrue(source_ip_matches(["10.0.0.1/8"], "10.9.9.9"), "host bits set: still the block")
        self.assertFalse(source_ip_matches(["not-a-cidr", "10.0.0.0/33"], "10.0.0.1"))
        self.assertTrue(source_ip_matches(["not-a-cidr", "10.0.0.0/8"], "10.0.0.1"))
        self.assertFalse(source_ip_matches(["0.0.0.0/0"], ""), "no peer address matches nothing")

    def test_regex_paths(self):
        def matches(regexes, path):
            condition = [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": regexes}}]
            return rule_matches(condition, "GET", "h", path, "", Head({}), "")

        self.assertTrue(matches(["^/api/v[0-9]+/"], "/api/v2/orders"))
        self.assertFalse(matches(["^/api/v[0-9]+/"], "/api/vX/orders"))
        self.assertFalse(matches(["^/api/v[0-9]+/"], "/API/v2/orders"), "case-sensitive")
        self.assertTrue(matches(["/v[0-9]+/"], "/api/v2/orders"), "unanchored: searched for")
        self.assertFalse(matches(["^/exact$"], "/exact/more"))
        self.assertTrue(matches(["^/a$", "^/b$"], "/b"), "any expression may match")
        # `*` and `?` are regex syntax here, not ALB wildcards.
        self.assertFalse(matches(["^/img/*.png$"], "/img/a.png"))
        self.assertTrue(matches(["^/img/.*\\.png$"], "/img/a.png"))

    def test_host_header_ignores_the_port(self):
        condition = [{"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}]
        self.assertTrue(rule_matches(condition, "GET", "shop.example.com:8443", "/", "", Head({}), ""))
        self.assertEqual(hostname("shop.example.com:8443"), "shop.example.com")
        self.assertEqual(hostname("shop.example.com"), "shop.example.com")
        self.assertEqual(hostname("[::1]:8443"), "[::1]")


class WeightedForwardTest(unittest.TestCase):
    def test_weights_decide_the_share(self):
        data = {"ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "a", "Weight": 90}, {"TargetGroupArn": "b", "Weight": 10}]}}
        picks = [DataPlane._choose_group(data) for _ in range(2000)]
        share = picks.count("a") / len(picks)
        self.assertTrue(0.8 < share < 0.97, share)
        self.assertEqual(DataPlane._choose_group({"TargetGroupArn": "only"}), "only")
        zero = {"ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "x", "Weight": 0}]}}
        self.assertEqual(DataPlane._choose_group(zero), "x")


class Listener:
    def __init__(self, protocol, port):
        self.protocol = protocol
        self.port = port


class RedirectTest(unittest.TestCase):
    def location(self, config, host="shop.example.com:8080", path="/a/b", query="x=1", listener=Listener("HTTP", 80)):
        status, _, headers, _, _ = DataPlane._redirect(config, listener, host, path, query)
        return status, dict(headers)["Location"]

    def test_to_https_keeps_host_path_and_query(self):
        self.assertEqual(self.location({"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}),
                         (301, "https://shop.example.com:443/a/b?x=1"))

    def test_placeholders_come_from_the_request(self):
        config = {"Host": "new.#{host}", "Port": "#{port}", "Path": "/v2/#{path}", "Query": "#{query}&from=#{protocol}",
                  "StatusCode": "HTTP_302"}
        self.assertEqual(self.location(config), (302, "http://new.shop.example.com:80/v2/a/b?x=1&from=http"))
        self.assertEqual(self.location({"Host": "#{host}", "StatusCode": "HTTP_301"}, host="[::1]:8080"),
                         (301, "http://[::1]:80/a/b?x=1"))

    def test_an_empty_query_adds_no_question_mark(self):
        self.assertEqual(self.location({"Path": "/#{path}", "StatusCode": "HTTP_301"}, query="",
                                       listener=Listener("HTTPS", 443)),
                         (301, "https://shop.example.com:443/a/b"))


class CertificateChoiceTest(unittest.TestCase):
    def test_wildcards_cover_exactly_one_label(self):
        self.assertTrue(name_matches("*.example.com", "shop.example.com"))
        self.assertTrue(name_matches("*.Example.com", "SHOP.example.COM."))
        self.assertFalse(name_matches("*.example.com", "a.shop.example.com"))
        self.assertFalse(name_matches("*.example.com", "example.com"))
        self.assertFalse(name_matches("*.example.com", ".example.com"))
        self.assertTrue(name_matches("example.com", "EXAMPLE.com"))
        self.assertFalse(name_matches("example.com", "www.example.com"))

    def test_sni_picks_exact_then_wildcard_else_the_default(self):
        certificates = [
            ("default", ["*.example.com"]),
            ("other", ["other.org", "www.other.org"]),
            ("shop", ["shop.example.com"]),
        ]
        self.assertEqual(choose_certificate("shop.example.com", certificates), "shop", "an exact name beats a wildcard")
        self.assertEqual(choose_certificate("blog.example.com", certificates), "default")
        self.assertEqual(choose_certificate("www.other.org", certificates), "other")
        self.assertEqual(choose_certificate("unknown.net", certificates), "default")
        self.assertEqual(choose_certificate(None, certificates), "default")
        self.assertEqual(choose_certificate("a.b.example.com", certificates), "default")
        wildcard_later = [("default", ["first.net"]), ("a", ["*.example.com"]), ("b", ["*.example.com"])]
        self.assertEqual(choose_certificate("x.example.com", wildcard_later), "a", "in list order")


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

        registry = TargetRegistry(None, None, None, None, None)
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


class FootprintFormTest(unittest.TestCase):
    """The footprint's forms of actions and ingress rules, and the requests replay makes of them."""

    def test_actions_show_target_group_names_in_order_without_order(self):
        from lb_sandbox_aws.footprint import dump_actions

        actions = [
            {"Type": "fixed-response", "Order": 2, "FixedResponseConfig": {"StatusCode": "404"}},
            {"Type": "forward", "Order": 1, "TargetGroupArn": "arn:a", "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": "arn:a", "Weight": 1}, {"TargetGroupArn": "arn:other", "Weight": 2}],
                "TargetGroupStickinessConfig": {"Enabled": False}}},
        ]
        self.assertEqual(dump_actions(actions, {"arn:a": "tg-a"}), [
            {"Type": "forward", "TargetGroupArn": "tg-a", "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": "tg-a", "Weight": 1}, {"TargetGroupArn": "arn:other", "Weight": 2}],
                "TargetGroupStickinessConfig": {"Enabled": False}}},
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}},
        ])

    def test_replayed_forwards_are_upstreams(self):
        from lb_sandbox_aws.footprint import replay_actions

        single = {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "tg-a", "Weight": 1}],
                                                       "TargetGroupStickinessConfig": {"Enabled": False}}}
        weighted = {"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": "tg-a", "Weight": 3}, {"TargetGroupArn": "tg-b", "Weight": 1}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}}
        fixed = {"Type": "fixed-response", "FixedResponseConfig": {"ContentType": "text/plain", "StatusCode": "404"}}
        self.assertEqual(replay_actions([single, fixed, weighted], {"tg-a": "arn:a", "tg-b": "arn:b"}), [
            {"Type": "forward", "Order": 1, "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "arn:a"}]}},
            {**fixed, "Order": 2},
            {"Type": "forward", "Order": 3, "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": "arn:a", "Weight": 3}, {"TargetGroupArn": "arn:b", "Weight": 1}],
                "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}},
        ])

    def test_ingress_rules_and_their_permissions(self):
        from lb_sandbox_aws.footprint import dump_ingress, replay_permissions

        permissions = [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ten"}],
             "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "UserIdGroupPairs": [{"GroupId": "sg-1", "UserId": "1"}], "PrefixListIds": []},
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "1.2.3.4/32"}], "Ipv6Ranges": [], "UserIdGroupPairs": [],
             "PrefixListIds": [{"PrefixListId": "pl-1"}]},
        ]
        rules = dump_ingress(permissions, {"sg-1": "backend"})
        self.assertEqual(rules, [
            {"proto": "-1", "from": None, "to": None, "cidrs": [["1.2.3.4/32", ""]], "groups": [],
             "prefix_lists": [["pl-1", ""]]},
            {"proto": "tcp", "from": 443, "to": 443, "cidrs": [["10.0.0.0/8", "ten"], ["::/0", ""]],
             "groups": [["backend", ""]]},
        ])
        self.assertEqual(replay_permissions(rules, {"backend": "sg-2"}.get), [
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "1.2.3.4/32"}]},
            {"IpProtocol": "-1", "PrefixListIds": [{"PrefixListId": "pl-1"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ten"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": "sg-2"}]},
        ])


class SecurityRule:
    """The fields of moto's SecurityGroupRule that enforcement reads."""

    def __init__(self, protocol, from_port=None, to_port=None, cidr=None, group=None, prefix_list=None):
        self.ip_protocol = protocol
        self.prefix_list_id = prefix_list
        self.from_port, self.to_port = from_port, to_port
        self.cidr_ipv4 = cidr
        self.cidr_ipv6 = None
        self.source_group = {"GroupId": group} if group else {}


class Group:
    def __init__(self, *rules):
        self.ingress_rules = list(rules)


class RuleAdmitsTest(unittest.TestCase):
    def test_a_group_rule_admits_the_load_balancer_groups_on_its_ports(self):
        rule = SecurityRule("tcp", 80, 8080, group="sg-backend")
        self.assertTrue(rule_admits(rule, "tcp", 8080, {"sg-backend"}, None))
        self.assertFalse(rule_admits(rule, "tcp", 8081, {"sg-backend"}, None))
        self.assertFalse(rule_admits(rule, "udp", 80, {"sg-backend"}, None))
        self.assertFalse(rule_admits(rule, "tcp", 80, {"sg-other"}, "10.0.0.1"))

    def test_all_traffic_from_itself_admits_only_itself(self):
        rule = SecurityRule("-1", group="sg-cluster")
        self.assertTrue(rule_admits(rule, "udp", 53, {"sg-cluster"}, None))
        self.assertFalse(rule_admits(rule, "tcp", 80, {"sg-backend"}, "10.0.0.1"))

    def test_every_address_of_the_load_balancer_must_be_admitted_by_some_rule(self):
        per_subnet = Group(SecurityRule("tcp", 8080, 8080, cidr="10.0.0.0/24"),
                           SecurityRule("tcp", 8080, 8080, cidr="10.0.1.0/24"))
        self.assertTrue(groups_admit([per_subnet], "tcp", 8080, set(), ["10.0.0.250", "10.0.1.250"]))
        self.assertFalse(groups_admit([per_subnet], "tcp", 8080, set(), ["10.0.0.250", "10.0.2.250"]))
        self.assertFalse(groups_admit([per_subnet], "tcp", 8081, set(), ["10.0.0.250"]))
        self.assertFalse(groups_admit([per_subnet], "tcp", 8080, set(), []))

    def test_a_prefix_list_rule_admits_the_addresses_of_its_entries(self):
        listed = Group(SecurityRule("tcp", 80, 80, prefix_list="pl-0abc"))
        entries = {"pl-0abc": ["203.0.113.0/24"]}.get
        self.assertTrue(groups_admit([listed], "tcp", 80, set(), ["203.0.113.10"], lambda i: entries(i, [])))
        self.assertFalse(groups_admit([listed], "tcp", 80, set(), ["198.51.100.1"], lambda i: entries(i, [])))


class UpstreamTargetRulesTest(unittest.TestCase):
    def test_one_range_per_protocol_over_ports_and_health_check_ports(self):
        footprint = {"target_groups": [
            {"Protocol": "HTTP", "Port": 80, "HealthCheckPort": "traffic-port"},
            {"Protocol": "TCP", "Port": 8080, "HealthCheckPort": "9000"},
            {"Protocol": "UDP", "Port": 53, "HealthCheckPort": "8053"},
        ]}
        self.assertEqual(upstream_target_rules(footprint), [("tcp", 80, 9000), ("udp", 53, 8053)])
