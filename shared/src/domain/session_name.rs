//! The username part of `${aws:userid}`: an IAM role-session name.
//!
//! IAM only accepts 2–64 characters of `[A-Za-z0-9+=,.@_-]` as a role-session name, so a value
//! outside that set can never be the `<session-name>` half of a real `aws:userid`. Rejecting it
//! up front also keeps IAM wildcards (`*`, `?`), policy-variable syntax (`${`), quotes and the
//! `:` separator out of every tag value and policy this product writes.

use std::fmt;

/// Shortest role-session name IAM accepts.
pub(crate) const MIN_LEN: usize = 2;
/// Longest role-session name IAM accepts.
pub(crate) const MAX_LEN: usize = 64;

/// A validated role-session name, e.g. `tim.malone`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionName(String);

/// Why a candidate username is not a role-session name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSessionName {
    #[error("username is {len} characters; IAM role-session names are {MIN_LEN} to {MAX_LEN}")]
    Length { len: usize },
    #[error(
        "username contains {found:?} at character {position}; only A-Z a-z 0-9 + = , . @ _ - are allowed"
    )]
    Character { found: char, position: usize },
}

impl SessionName {
    pub fn parse(candidate: &str) -> Result<Self, InvalidSessionName> {
        let len = candidate.chars().count();
        if let Some((position, found)) = candidate
            .chars()
            .enumerate()
            .find(|(_, c)| !is_session_name_char(*c))
        {
            return Err(InvalidSessionName::Character {
                found,
                position: position + 1,
            });
        }
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(InvalidSessionName::Length { len });
        }
        Ok(Self(candidate.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_typical_federated_usernames() {
        for ok in [
            "tim.malone",
            "me@dev.com",
            "a_b-c+d=e,f",
            "ab",
            &"x".repeat(64),
        ] {
            assert_eq!(SessionName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_hostile_usernames_with_the_reason() {
        let cases: &[(&str, InvalidSessionName)] = &[
            ("", InvalidSessionName::Length { len: 0 }),
            ("a", InvalidSessionName::Length { len: 1 }),
            (&"a".repeat(65), InvalidSessionName::Length { len: 65 }),
            (
                "tim*",
                InvalidSessionName::Character {
                    found: '*',
                    position: 4,
                },
            ),
            (
                "t?m",
                InvalidSessionName::Character {
                    found: '?',
                    position: 2,
                },
            ),
            (
                "tim malone",
                InvalidSessionName::Character {
                    found: ' ',
                    position: 4,
                },
            ),
            (
                "tim\"x",
                InvalidSessionName::Character {
                    found: '"',
                    position: 4,
                },
            ),
            (
                "${aws:userid}",
                InvalidSessionName::Character {
                    found: '$',
                    position: 1,
                },
            ),
            (
                "AROAX:tim",
                InvalidSessionName::Character {
                    found: ':',
                    position: 6,
                },
            ),
            // Cyrillic 'а' looks like Latin 'a'.
            (
                "tim.mаlone",
                InvalidSessionName::Character {
                    found: 'а',
                    position: 6,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SessionName::parse(input).unwrap_err(),
                *expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(
            SessionName::parse("tim*").unwrap_err().to_string(),
            "username contains '*' at character 4; only A-Z a-z 0-9 + = , . @ _ - are allowed"
        );
        assert_eq!(
            SessionName::parse("a").unwrap_err().to_string(),
            "username is 1 characters; IAM role-session names are 2 to 64"
        );
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_iam_alphabet(s in "\\PC{0,80}") {
            let expected = (2..=64).contains(&s.chars().count())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            prop_assert_eq!(SessionName::parse(&s).is_ok(), expected);
        }
    }
}
