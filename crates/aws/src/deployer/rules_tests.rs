use std::collections::BTreeMap;

use lb_model::stack::{Condition, TargetGroupRef, WeightedTargetGroup};

use super::*;

fn rule(path: &str, target: &str) -> Rule {
    Rule {
        conditions: vec![Condition::PathPattern {
            values: vec![path.into()],
            regex: false,
        }],
        action: Action::forward_to(target),
        tags: BTreeMap::from([("owner".to_string(), "us".to_string())]),
    }
}

/// What ELB holds for `rule` at `priority`: target groups by ARN.
fn existing(rule: &Rule, priority: u32) -> ExistingRule {
    let action = resolve(&rule.action, |id| Some(format!("arn:{id}"))).expect("resolves");
    ExistingRule {
        arn: format!("arn:rule/{priority}"),
        priority,
        rule: Rule {
            action,
            ..rule.clone()
        },
    }
}

fn steps(desired: &[Rule], have: &[ExistingRule]) -> Vec<Step> {
    let mut steps = Vec::new();
    rule_steps(
        80,
        desired,
        have,
        |r| r.rule.tags.get("owner").map(String::as_str) == Some("us"),
        |id| Some(format!("arn:{id}")),
        &mut steps,
    );
    steps
}

fn five() -> Vec<Rule> {
    (1..=5).map(|i| rule(&format!("/p{i}"), "tg")).collect()
}

fn converged(rules: &[Rule]) -> Vec<ExistingRule> {
    rules
        .iter()
        .zip(1u32..)
        .map(|(r, p)| existing(r, p))
        .collect()
}

#[test]
fn a_converged_listener_takes_no_call() {
    let rules = five();
    assert_eq!(steps(&rules, &converged(&rules)), []);
}

#[test]
fn a_fresh_listener_creates_its_rules_at_1_to_n() {
    let rules = five();
    let created: Vec<Step> = (0..5)
        .map(|i| Step::CreateRule {
            port: 80,
            index: i,
            priority: u32::try_from(i).expect("small") + 1,
        })
        .collect();
    assert_eq!(steps(&rules, &[]), created);
}

#[test]
fn changing_one_path_is_one_modify() {
    let rules = five();
    let have = converged(&rules);
    let mut changed = rules.clone();
    changed[2] = rule("/changed", "tg");
    assert_eq!(
        steps(&changed, &have),
        [Step::ModifyRule {
            arn: "arn:rule/3".into(),
            port: 80,
            index: 2
        }]
    );
}

#[test]
fn adding_at_the_end_is_one_create_and_in_the_middle_shifts_what_follows_in_one_call() {
    let rules = five();
    let have = converged(&rules);
    let mut appended = rules.clone();
    appended.push(rule("/p6", "tg"));
    assert_eq!(
        steps(&appended, &have),
        [Step::CreateRule {
            port: 80,
            index: 5,
            priority: 6
        }]
    );
    let mut inserted = rules.clone();
    inserted.insert(1, rule("/new", "tg"));
    assert_eq!(
        steps(&inserted, &have),
        [
            Step::SetRulePriorities {
                priorities: (2..=5).map(|p| (format!("arn:rule/{p}"), p + 1)).collect()
            },
            Step::CreateRule {
                port: 80,
                index: 1,
                priority: 2
            },
        ]
    );
}

#[test]
fn removing_a_rule_is_one_delete_and_gaps_stay() {
    let rules = five();
    let have = converged(&rules);
    let mut removed = rules.clone();
    removed.remove(1);
    assert_eq!(
        steps(&removed, &have),
        [Step::DeleteRule {
            arn: "arn:rule/2".into()
        }]
    );
}

#[test]
fn a_weight_change_is_one_modify() {
    let weighted = |a: i32, b: i32| Rule {
        action: Action::Forward {
            target_groups: vec![
                WeightedTargetGroup {
                    target_group: TargetGroupRef::Stack("ng".into()),
                    weight: Some(a),
                },
                WeightedTargetGroup {
                    target_group: TargetGroupRef::Stack("canary".into()),
                    weight: Some(b),
                },
            ],
            stickiness_seconds: None,
        },
        ..rule("/*", "unused")
    };
    let have = converged(&[weighted(50, 50)]);
    assert_eq!(steps(&[weighted(50, 50)], &have), []);
    assert_eq!(
        steps(&[weighted(90, 10)], &have),
        [Step::ModifyRule {
            arn: "arn:rule/1".into(),
            port: 80,
            index: 0
        }]
    );
}

#[test]
fn rules_not_ours_are_untouched_and_their_priorities_avoided() {
    let mut foreign = existing(&rule("/theirs", "x"), 2);
    foreign.rule.tags.clear();
    let rules = vec![rule("/a", "tg"), rule("/b", "tg")];
    assert_eq!(
        steps(&rules, &[foreign]),
        [
            Step::CreateRule {
                port: 80,
                index: 0,
                priority: 1
            },
            Step::CreateRule {
                port: 80,
                index: 1,
                priority: 3
            },
        ]
    );
}

#[test]
fn a_rule_waiting_for_its_target_group_is_rewritten_once_it_exists() {
    let rules = vec![rule("/a", "new-tg")];
    let have = vec![existing(&rule("/a", "old-tg"), 1)];
    assert_eq!(
        steps(&rules, &have),
        [Step::ModifyRule {
            arn: "arn:rule/1".into(),
            port: 80,
            index: 0
        }]
    );
}

#[test]
fn priorities_keep_the_longest_increasing_run() {
    let none = BTreeSet::new();
    assert_eq!(
        assign(&[Some(5), Some(1), Some(2), Some(3)], &none),
        [1, 2, 3, 4]
    );
    assert_eq!(assign(&[Some(10), None, Some(20)], &none), [10, 11, 20]);
    assert_eq!(assign(&[Some(3), Some(1), Some(2)], &none), [1, 2, 3]);
    assert_eq!(assign(&[None, None], &BTreeSet::from([1, 2])), [3, 4]);
    assert_eq!(assign(&[Some(MAX_PRIORITY), None], &none), [1, 2]);
}
