//! Reading annotations into typed values, the way the upstream controller reads them, with every
//! bad value kept as an error that names the whole annotation key and the value.
//!
//! Value syntaxes (upstream's `pkg/annotations`):
//! - string list: `a, b,c` (split on commas, trimmed, empties dropped);
//! - string map: `k1=v1, k2=v2` (each item needs a `=`; a key may not repeat);
//! - bool: `true` / `false` (also Go's `1`, `t`, `T`, `TRUE`, `True` and their negations);
//! - integers in a stated range.
//!
//! A reader does not stop at the first bad annotation: it collects them all, so one Warning can
//! name every annotation the user has to fix, not one per round trip.
//!
//! An error shows the value as [`shown`] does: quoted, and cut when long, so that one huge value
//! (a 100 KB paste) cannot crowd the other errors out of an Event or an admission denial.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// One annotation whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationError {
    /// The full key, prefix included, as the user wrote it.
    pub key: String,
    pub value: String,
    /// What is wrong, as a phrase: "is not a number", "must be between 2 and 10", ...
    pub problem: String,
}

impl fmt::Display for AnnotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A problem may quote a part of the value, or a JSON decoder's message may: cut as long.
        let problem = crate::status::truncate(&self.problem, MAX_SHOWN_PROBLEM);
        write!(
            f,
            "annotation {}: {} {problem}",
            self.key,
            shown(&self.value)
        )
    }
}

/// The most of a problem phrase an error message shows, in characters.
const MAX_SHOWN_PROBLEM: usize = 300;

pub use lb_api::shown::{MAX_SHOWN_VALUE, shown};

/// Every bad annotation of one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AnnotationErrors(pub Vec<AnnotationError>);

impl fmt::Display for AnnotationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

/// An object's annotations, read by their whole keys (each parser spells the keys it reads in
/// full, so a key found by grep leads to its parser).
pub struct AnnotationReader<'a> {
    annotations: &'a BTreeMap<String, String>,
    errors: Vec<AnnotationError>,
}

impl<'a> AnnotationReader<'a> {
    pub fn new(annotations: &'a BTreeMap<String, String>) -> Self {
        Self {
            annotations,
            errors: Vec::new(),
        }
    }

    /// The raw value, when the annotation is present.
    pub fn raw(&self, name: &str) -> Option<&'a str> {
        self.annotations.get(name).map(String::as_str)
    }

    pub fn present(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// Records a bad value of annotation `name`; the caller goes on with the annotation unset.
    pub fn reject(&mut self, name: &str, value: &str, problem: impl Into<String>) {
        self.errors.push(AnnotationError {
            key: name.to_string(),
            value: value.to_string(),
            problem: problem.into(),
        });
    }

    /// A trimmed string; an empty value counts as unset.
    pub fn string(&self, name: &str) -> Option<String> {
        let value = self.raw(name)?.trim();
        (!value.is_empty()).then(|| value.to_string())
    }

    /// A list; one with nothing in it (`""`, `" , "`) counts as unset, as upstream reads it (an
    /// empty list of subnets, security groups or CIDRs would otherwise make a load balancer
    /// without subnets, without security groups, or closed to everyone).
    pub fn string_list(&self, name: &str) -> Option<Vec<String>> {
        self.raw(name)
            .map(split_list)
            .filter(|list| !list.is_empty())
    }

    /// A list of managed prefix list IDs (`pl-` and hex digits), each checked.
    pub fn prefix_lists(&mut self, name: &str) -> Option<Vec<String>> {
        let list = self.string_list(name)?;
        let valid = |id: &String| {
            id.strip_prefix("pl-")
                .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
        };
        if let Some(bad) = list.iter().find(|id| !valid(id)) {
            let problem = format!("{bad:?} is no prefix list ID (pl-...)");
            let raw = self.raw(name).unwrap_or_default().to_string();
            self.reject(name, &raw, problem);
            return None;
        }
        Some(list)
    }

    pub fn string_map(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        let raw = self.raw(name)?;
        match parse_map(raw) {
            Ok(map) => Some(map),
            Err(problem) => {
                self.reject(name, raw, problem);
                None
            }
        }
    }

    pub fn bool(&mut self, name: &str) -> Option<bool> {
        let raw = self.raw(name)?;
        let parsed = parse_bool(raw.trim());
        if parsed.is_none() {
            self.reject(name, raw, "is not a boolean (true or false)");
        }
        parsed
    }

    /// An integer within `min..=max`.
    pub fn int<T>(&mut self, name: &str, min: T, max: T) -> Option<T>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let raw = self.raw(name)?;
        match raw.trim().parse::<T>() {
            Ok(n) if n >= min && n <= max => Some(n),
            Ok(_) => {
                self.reject(name, raw, format!("must be between {min} and {max}"));
                None
            }
            Err(_) => {
                self.reject(name, raw, "is not a whole number");
                None
            }
        }
    }

    /// A value of a closed set, matched as `parse` says (it returns None for anything else).
    pub fn one_of<T>(
        &mut self,
        name: &str,
        allowed: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let raw = self.raw(name)?;
        let parsed = parse(raw.trim());
        if parsed.is_none() {
            self.reject(name, raw, format!("is not one of {allowed}"));
        }
        parsed
    }

    /// The annotations whose key starts with `stem` (keyed families such as
    /// `...listener-attributes.TCP-80`): (suffix after the stem, value).
    pub fn family(&self, stem: &str) -> Vec<(String, String)> {
        self.annotations
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(stem)
                    .map(|suffix| (suffix.to_string(), v.clone()))
            })
            .collect()
    }

    /// The typed values' errors, if any.
    pub fn finish(self) -> Result<(), AnnotationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AnnotationErrors(self.errors))
        }
    }
}

pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `k1=v1,k2=v2`; the problem as a phrase when it is not one.
pub fn parse_map(raw: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for item in split_list(raw) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!(
                "is not a list of key=value pairs ({item:?} has no '=')"
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("has an empty key in {item:?}"));
        }
        if map
            .insert(key.to_string(), value.trim().to_string())
            .is_some()
        {
            return Err(format!("sets {key:?} twice"));
        }
    }
    Ok(map)
}

/// Go's `strconv.ParseBool`, which upstream uses.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[path = "annotations_tests.rs"]
mod tests;
