use std::collections::BTreeMap;

use super::*;

const PREFIX: &str = "example.io/";

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_string()))
        .collect()
}

#[test]
fn lists_are_split_on_commas_trimmed_and_empties_dropped() {
    let map = annotations(&[("l", " a, b,,c ,")]);
    let reader = AnnotationReader::new(&map);
    assert_eq!(
        reader.string_list("example.io/l"),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(reader.string_list("example.io/absent"), None);
}

#[test]
fn a_list_with_nothing_in_it_is_unset() {
    // Before: Some(vec![]), and `subnets: ""` made an ALB with no subnet at all.
    for blank in ["", " ", ",", " , ,"] {
        let map = annotations(&[("l", blank)]);
        let reader = AnnotationReader::new(&map);
        assert_eq!(reader.string_list("example.io/l"), None, "{blank:?}");
    }
}

#[test]
fn maps_need_key_value_pairs_with_distinct_keys() {
    type Pairs = &'static [(&'static str, &'static str)];
    let cases: [(&str, Option<Pairs>); 6] = [
        ("a=1, b = 2", Some(&[("a", "1"), ("b", "2")])),
        ("a=", Some(&[("a", "")])),
        ("a=x=y", Some(&[("a", "x=y")])),
        ("a", None),
        ("=1", None),
        ("a=1,a=2", None),
    ];
    for (raw, expected) in cases {
        let map = annotations(&[("m", raw)]);
        let mut reader = AnnotationReader::new(&map);
        let parsed = reader.string_map("example.io/m");
        let expected: Option<BTreeMap<String, String>> = expected.map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        });
        assert_eq!(parsed, expected, "{raw}");
        assert_eq!(reader.finish().is_ok(), expected.is_some(), "{raw}");
    }
}

#[test]
fn bools_follow_go() {
    for (raw, expected) in [
        ("true", Some(true)),
        ("True", Some(true)),
        ("1", Some(true)),
        (" false ", Some(false)),
        ("F", Some(false)),
        ("yes", None),
        ("", None),
    ] {
        let map = annotations(&[("b", raw)]);
        let mut reader = AnnotationReader::new(&map);
        assert_eq!(reader.bool("example.io/b"), expected, "{raw:?}");
        assert_eq!(reader.finish().is_ok(), expected.is_some(), "{raw:?}");
    }
}

#[test]
fn integers_must_be_whole_and_in_range() {
    for (raw, expected, problem) in [
        ("5", Some(5), None),
        (" 10 ", Some(10), None),
        ("1", None, Some("must be between 2 and 10")),
        ("11", None, Some("must be between 2 and 10")),
        ("2.5", None, Some("is not a whole number")),
        ("ten", None, Some("is not a whole number")),
    ] {
        let map = annotations(&[("n", raw)]);
        let mut reader = AnnotationReader::new(&map);
        assert_eq!(reader.int::<i32>("example.io/n", 2, 10), expected, "{raw}");
        match (reader.finish(), problem) {
            (Ok(()), None) => {}
            (Err(errors), Some(problem)) => assert_eq!(errors.0[0].problem, problem),
            (other, _) => panic!("{raw}: {other:?}"),
        }
    }
}

#[test]
fn every_bad_annotation_is_named_with_its_full_key_and_value() {
    let map = annotations(&[("n", "x"), ("b", "maybe"), ("ok", "3")]);
    let mut reader = AnnotationReader::new(&map);
    reader.int::<i32>("example.io/n", 0, 9);
    reader.bool("example.io/b");
    reader.int::<i32>("example.io/ok", 0, 9);
    let errors = reader.finish().expect_err("two bad values");
    assert_eq!(
        errors.to_string(),
        "annotation example.io/n: \"x\" is not a whole number; \
         annotation example.io/b: \"maybe\" is not a boolean (true or false)"
    );
}

#[test]
fn families_give_the_suffix_after_the_stem() {
    let map = annotations(&[
        ("listener-attributes.TCP-80", "a=1"),
        ("listener-attributes.TLS-443", "b=2"),
        ("other", "x"),
    ]);
    let reader = AnnotationReader::new(&map);
    assert_eq!(
        reader.family("example.io/listener-attributes."),
        vec![
            ("TCP-80".to_string(), "a=1".to_string()),
            ("TLS-443".to_string(), "b=2".to_string())
        ]
    );
}

#[test]
fn one_of_names_the_allowed_values() {
    let map = annotations(&[("s", "public")]);
    let mut reader = AnnotationReader::new(&map);
    let scheme = reader.one_of("example.io/s", "internal, internet-facing", |v| {
        matches!(v, "internal" | "internet-facing").then(|| v.to_string())
    });
    assert_eq!(scheme, None);
    let errors = reader.finish().expect_err("bad scheme");
    assert_eq!(
        errors.0[0].problem,
        "is not one of internal, internet-facing"
    );
}

#[test]
fn a_huge_value_is_shown_cut_and_the_other_errors_still_fit_an_event() {
    // Before: the whole 100 KB value was in the message, and the Event (cut at 1000
    // characters) lost every error after it.
    let huge = "a".repeat(100 * 1024);
    let map = annotations(&[("first", &huge), ("second", "x")]);
    let mut reader = AnnotationReader::new(&map);
    reader.bool("example.io/first");
    reader.bool("example.io/second");
    let message = reader.finish().expect_err("both refused").to_string();
    let event = crate::status::truncate(&message, crate::status::MAX_MESSAGE);
    assert!(event.contains("example.io/first"), "{event}");
    assert!(event.contains("... (102400 characters)"), "{event}");
    assert!(event.contains("example.io/second: \"x\""), "{event}");
}
