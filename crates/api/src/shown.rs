//! How every message of the project shows a value a user wrote: quoted, so that NUL, bidi
//! controls and other invisible characters show as escapes instead of acting on the reader's
//! terminal, and cut when long, so that one huge value (a 100 KB paste) cannot crowd the rest of
//! an Event, a status or an admission denial out. Here, in the lowest crate, because the CRD
//! types' own checks write such messages too.

/// The most of a value a message shows, in characters as quoted.
pub const MAX_SHOWN_VALUE: usize = 100;

/// `value` quoted as `{:?}` quotes it, and past [`MAX_SHOWN_VALUE`] quoted characters cut, the
/// cut marked with the value's length.
pub fn shown(value: &str) -> String {
    let mut budget = MAX_SHOWN_VALUE;
    let mut end = value.len();
    for (at, c) in value.char_indices() {
        // `{:?}` on a str escapes as `char::escape_debug`, except that it leaves `'` alone.
        let width = if c == '\'' {
            1
        } else {
            c.escape_debug().count()
        };
        if width > budget {
            end = at;
            break;
        }
        budget -= width;
    }
    if end == value.len() {
        format!("{value:?}")
    } else {
        let length = value.chars().count();
        format!("{:?}... ({length} characters)", &value[..end])
    }
}

/// A name or an ARN shown bare when it is a plain one (at most 253 letters, digits and
/// `-._/:@+=,`), and as [`shown`] when not: names inside JSON annotations and ARNs in specs are
/// checked by no one before the message.
pub fn shown_name(name: &str) -> String {
    let plain = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/:@+=,".contains(c));
    if plain { name.to_string() } else { shown(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_their_controls_escaped_and_long_ones_cut() {
        assert_eq!(shown("web"), "\"web\"");
        assert_eq!(shown("a\0b\u{202e}"), "\"a\\0b\\u{202e}\"");
        assert_eq!(shown("it's"), "\"it's\"");
        let long = "é".repeat(150);
        assert_eq!(
            shown(&long),
            format!("\"{}\"... (150 characters)", "é".repeat(MAX_SHOWN_VALUE))
        );
        // The cut counts the escapes: 100 quoted characters, whatever the value is made of.
        let nuls = "\0".repeat(80);
        assert_eq!(
            shown(&nuls),
            format!(
                "\"{}\"... (80 characters)",
                "\\0".repeat(MAX_SHOWN_VALUE / 2)
            )
        );
    }

    #[test]
    fn plain_names_and_arns_are_bare_others_quoted() {
        let arn = "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/web/abc";
        assert_eq!(shown_name(arn), arn);
        assert_eq!(shown_name("shop/web"), "shop/web");
        assert_eq!(shown_name("we b"), "\"we b\"");
        assert!(shown_name(&"a".repeat(300)).ends_with("... (300 characters)"));
    }
}
