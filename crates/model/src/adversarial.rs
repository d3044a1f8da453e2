//! What the property tests share (tests only): the fixed seed and the bounded case counts CI runs
//! them with (19 property tests, 256 or 512 cases each, 8,960 in all: every `property_tests`
//! module and `ingress::json::tests`; about 2 s together in a debug build on 2 cores), the ugly
//! values users write into annotations and specs, and the rule every error message is held to.
//!
//! The rule: an error about a value names where the value sits (the whole annotation key, or the
//! field) and shows the value as [`lb_api::shown::shown`] does: quoted as Rust's `{:?}` quotes
//! (so NUL, bidi controls and the like are visible, not acted on), and past
//! [`lb_api::shown::MAX_SHOWN_VALUE`] quoted characters cut, marked `...` with the value's
//! length: a huge value must not crowd the other errors out of a 1000-character Event. A test
//! checks that the message holds the key and the quoted first characters of the value, and that
//! it stays short however long the value. A failing case prints its input; being from the fixed
//! seed, it comes again on every run until fixed, and is then kept as a unit test.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The seed of every property test: the same cases on every run, on every machine.
pub const SEED: u64 = 0x5eed_0031;

/// A bounded run from the fixed seed, with nothing written to disk.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        // Ugly values refuse most objects: a test of the admitted ones discards many cases.
        max_global_rejects: cases.saturating_mul(16),
        ..Config::default()
    }
}

/// 100 KB: far past any sane annotation, well inside the API server's 256 KB for all of them.
pub const HUGE: usize = 100 * 1024;

/// Values that break parsers: empty, blank, huge, unicode and controls, numbers out of every
/// range, the wrong types, and the JSON users get wrong (trailing commas, duplicate keys, nested
/// wrong types, truncated, nested past any parser's depth limit).
pub fn ugly() -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "",
        " ",
        "\t\n ",
        ",,,",
        "=",
        "a=",
        "=b",
        "a=1,a=2",
        "0",
        "-1",
        "-0",
        "+5",
        "1.5",
        "1e3",
        "65535",
        "65536",
        "2147483648",
        "-2147483649",
        "99999999999999999999999999",
        "NaN",
        "true",
        "True",
        "yes",
        "null",
        "[]",
        "{}",
        "\"quoted\"",
        "é",
        "🦀🚀",
        "مرحبا",
        "\u{202e}evil\u{202c}",
        "a\0b",
        "\u{feff}80",
        "８０",
        "[{\"HTTP\": 80},]",
        "[{\"HTTP\": 80, \"HTTP\": 443}]",
        "[{\"HTTP\": \"80\"}]",
        "[{\"HTTP\": 80.5}]",
        "[{\"HTTP\": -80}]",
        "[{\"HTTP\": 1e400}]",
        "[{\"HTTP\": [80]}]",
        "[{\"HTTP\": {\"port\": 80}}]",
        "[{\"HTTP\": 80}",
        "[{\"HTTP\"",
        "{\"HTTP\": 80}",
        "[[{\"HTTP\": 80}]]",
        "[{\"\u{0}\": 80}]",
        "{\"type\": \"forward\",}",
        "{\"type\": \"forward\", \"type\": \"redirect\"}",
        "{\"type\": 5}",
        "{\"type\": [\"forward\"]}",
        "{\"type\": \"forward\", \"forwardConfig\": []}",
        "{\"type\": \"forward\", \"forwardConfig\": {\"targetGroups\": {}}}",
        "{\"type\": \"forward\", \"forwardConfig\": {\"targetGroups\": [{\"serviceName\": 5}]}}",
        "{\"type\": \"forward\", \"forwardConfig\": {\"targetGroups\": [{\"serviceName\": \"web\", \"servicePort\": 80, \"weight\": 1e9}]}}",
        "{\"type\": \"redirect\", \"redirectConfig\": {\"statusCode\": 301}}",
        "{\"type\": \"fixed-response\", \"fixedResponseConfig\": {\"statusCode\": \"2000\"}}",
        "{\"type\": \"fixed-response\", \"fixedResponseConfig\": {\"statusCode\": \"é00\"}}",
        "[{\"field\": \"host-header\", \"hostHeaderConfig\": {\"values\": \"a\"}}]",
        "[{\"field\": \"source-ip\", \"sourceIpConfig\": {\"values\": [\"10.0.0.0/33\"]}}]",
        "[{\"field\": \"query-string\", \"queryStringConfig\": {\"values\": [{\"key\": 1}]}}]",
        "[{\"field\": null}]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    prop_oneof![
        4 => prop::sample::select(fixed),
        2 => ".{0,40}",
        1 => "[ -~]{0,80}",
        1 => prop::sample::select(vec!['a', '[', '{', ',', '🦀', '\u{202e}', '\0'])
            .prop_map(|c| c.to_string().repeat(HUGE / c.len_utf8())),
        1 => (1usize..2000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        1 => (1usize..2000).prop_map(|depth| "{\"a\":".repeat(depth)),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| format!("{n}{n}")),
    ]
}

/// Values that mean something to some annotation, so that a map of them gets past the first
/// check into the later ones (and into the group and stack builders).
pub fn plausible() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "80",
        "443",
        "8080",
        "5",
        "10",
        "30",
        "true",
        "false",
        "ip",
        "instance",
        "internal",
        "internet-facing",
        "ipv4",
        "dualstack",
        "HTTP",
        "HTTPS",
        "TCP",
        "ssl",
        "GRPC",
        "traffic-port",
        "/healthz",
        "200-299",
        "shop",
        "web",
        "a=b,c=d",
        "subnet-a,subnet-b",
        "sg-1",
        "pl-0123abcd",
        "10.0.0.0/8, 192.168.0.0/16",
        "10.0.0.5",
        "ELBSecurityPolicy-2016-08",
        "arn:aws:acm:us-west-2:1:certificate/x",
        "[{\"HTTP\": 80}]",
        "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
        "{\"type\": \"fixed-response\", \"fixedResponseConfig\": {\"statusCode\": \"200\"}}",
        "{\"type\": \"forward\", \"forwardConfig\": {\"targetGroups\": [{\"serviceName\": \"web\", \"servicePort\": 80, \"weight\": 1}, {\"serviceName\": \"api\", \"servicePort\": \"80\", \"weight\": 1}]}}",
        "{\"Type\": \"redirect\", \"RedirectConfig\": {\"Protocol\": \"HTTPS\", \"Port\": \"443\", \"StatusCode\": \"HTTP_301\"}}",
        "[{\"field\": \"http-header\", \"httpHeaderConfig\": {\"httpHeaderName\": \"x\", \"values\": [\"1\"]}}]",
    ])
    .prop_map(str::to_string)
}

/// A value users might write: sound or ugly.
pub fn value() -> impl Strategy<Value = String> {
    prop_oneof![1 => plausible(), 2 => ugly()]
}

/// How a message quotes the start of `value`: `{:?}` of its first characters, without the
/// closing quote (the message may cut the value there).
pub fn quoted_start(value: &str) -> String {
    // 8 characters quote to at most 80 (`\u{10ffff}` each): within what a message shows whole.
    let start: String = value.chars().take(8).collect();
    let quoted = format!("{start:?}");
    quoted[..quoted.len() - 1].to_string()
}

/// The first characters of `text`, for a failure's message.
pub fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The rule of the module's documentation, for one message about `value` at `key`: it names the
/// key, shows the start of the value, and stays short.
pub fn names(message: &str, key: &str, value: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        message.contains(key),
        "{key} not named in {}",
        clip(message)
    );
    prop_assert!(
        message.contains(&quoted_start(value)),
        "value {} not shown in {}",
        quoted_start(value),
        clip(message)
    );
    prop_assert!(
        message.chars().count() <= key.chars().count() + 600,
        "a message of {} characters about a value of {}: {}",
        message.chars().count(),
        value.chars().count(),
        clip(message)
    );
    Ok(())
}

/// Kubernetes' rule for the name part of a qualified name (a finalizer's, a condition type's):
/// 1 to 63 letters, digits, `-`, `_` and `.`, alphanumeric at both ends.
pub fn qualified_name_part(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && edge(name.chars().next())
        && edge(name.chars().last())
}
