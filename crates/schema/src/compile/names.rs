//! Name rules of the schema language (SpiceDB's `namespace` and `relation` name regexes).

/// One segment: `[a-z][a-z0-9_]{1,62}[a-z0-9]`.
fn is_valid_segment(text: &str) -> bool {
    let bytes = text.as_bytes();
    let n_bytes = bytes.len();
    if !(3..=64).contains(&n_bytes) {
        return false;
    }
    let last = bytes[n_bytes - 1];
    bytes[0].is_ascii_lowercase()
        && bytes[1..n_bytes - 1]
            .iter()
            .all(|&byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
}

/// A relation or permission name: `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`.
pub(crate) fn is_valid_relation_name(text: &str) -> bool {
    is_valid_segment(text)
}

/// A definition name, optionally prefixed:
/// `^([a-z][a-z0-9_]{1,62}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$`.
pub(crate) fn is_valid_definition_name(text: &str) -> bool {
    text.split('/').all(is_valid_segment)
}

/// The help line for an invalid name.
pub(crate) const NAME_RULES_HELP: &str = "names are 3 to 64 characters long, use lowercase letters, digits and `_`, start with a letter and end with a letter or digit";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_names_follow_the_regex() {
        for good in ["abc", "a_1", "viewer", &"a".repeat(64)] {
            assert!(is_valid_relation_name(good), "{good}");
        }
        for bad in ["ab", "Abc", "ab_", "1ab", "a-b", "", &"a".repeat(65)] {
            assert!(!is_valid_relation_name(bad), "{bad}");
        }
    }

    #[test]
    fn definition_names_allow_prefixes() {
        assert!(is_valid_definition_name("user"));
        assert!(is_valid_definition_name("some_tenant/team/user"));
        assert!(!is_valid_definition_name("someTenant/foo"));
        assert!(!is_valid_definition_name("tenant/fo"));
        assert!(!is_valid_definition_name("/user"));
        assert!(!is_valid_definition_name("user/"));
    }
}
