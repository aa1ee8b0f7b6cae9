//! Finds the source lines of YAML items. The YAML decoder gives no positions, so items are
//! located by searching the raw text for them, in order, below the key they belong to.

/// The lines of a file.
pub(crate) struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lines {
            lines: text.lines().collect(),
        }
    }

    /// The 0-based index of the first line at or after `from` whose text (without its
    /// indentation and a leading quote or `- `) starts with `key` followed by `:`.
    pub(crate) fn key(&self, key: &str, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&idx| {
            let line = self.lines[idx].trim_start();
            let line = line.strip_prefix("- ").unwrap_or(line);
            let line = line
                .strip_prefix('"')
                .or_else(|| line.strip_prefix('\''))
                .unwrap_or(line);
            line.strip_prefix(key).is_some_and(|rest| {
                let rest = rest.trim_start_matches(['"', '\'']);
                rest.trim_start().starts_with(':')
            })
        })
    }

    /// The 0-based index of the first line at or after `from` containing `needle`.
    pub(crate) fn find(&self, needle: &str, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&idx| self.lines[idx].contains(needle))
    }

    /// The 0-based index of the first line below `from` that is not blank: where a block
    /// scalar's content starts.
    pub(crate) fn content_after(&self, from: usize) -> usize {
        (from + 1..self.lines.len())
            .find(|&idx| !self.lines[idx].trim().is_empty())
            .unwrap_or(from + 1)
    }

    /// Whether the value of the key on line `idx` starts on a later line (a block scalar or
    /// nothing after the colon).
    pub(crate) fn value_on_next_lines(&self, idx: usize) -> bool {
        let line = self.lines.get(idx).copied().unwrap_or_default();
        let Some((_, value)) = line.split_once(':') else {
            return true;
        };
        let value = value.trim();
        value.is_empty() || value.starts_with('|') || value.starts_with('>')
    }
}

/// A 0-based index as a 1-based line number.
pub(crate) fn line_number(idx: usize) -> u32 {
    u32::try_from(idx + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_are_found_in_order() {
        let text = "schema: |\n  definition user {}\nassertions:\n  assertTrue:\n    - \"a#b@c:d\"\n    - 'a#b@c:d with {}'\nvalidation:\n  \"doc:x#view\":\n    - x\n";
        let lines = Lines::new(text);
        assert_eq!(lines.key("assertions", 0), Some(2));
        assert_eq!(lines.key("assertTrue", 2), Some(3));
        assert_eq!(lines.find("a#b@c:d", 4), Some(4));
        assert_eq!(lines.find("a#b@c:d", 5), Some(5));
        assert_eq!(lines.key("doc:x#view", 6), Some(7));
        assert!(lines.value_on_next_lines(0));
        assert_eq!(lines.content_after(0), 1);
        assert_eq!(line_number(0), 1);
    }
}
