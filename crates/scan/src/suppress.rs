//! Line bookkeeping and inline suppressions (`tollgate:ignore`).
//!
//! A finding on a line that carries `tollgate:ignore`, or right after a line that carries
//! `tollgate:ignore-next-line`, is dropped. Whole files and folders are excluded with
//! `.tollgateignore` (gitignore syntax), handled by the walker.

/// Marker that suppresses findings on its own line.
pub const IGNORE_MARKER: &str = "tollgate:ignore";
/// Marker that suppresses findings on the following line.
pub const IGNORE_NEXT_MARKER: &str = "tollgate:ignore-next-line";

/// Byte offsets of line starts, for O(log n) offset → line lookups.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index the lines of `text`.
    pub fn new(text: &[u8]) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self { starts }
    }

    /// 1-based line of byte offset `pos`.
    pub fn line_of(&self, pos: usize) -> usize {
        match self.starts.binary_search(&pos) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// The text of 1-based `line` (without its newline); empty when out of range.
    pub fn line_text<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let Some(&start) = self.starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self.starts.get(line).map_or(text.len(), |e| e - 1);
        text.get(start..end.max(start)).unwrap_or("")
    }

    /// True when findings on `line` are suppressed by an inline marker.
    pub fn suppressed(&self, text: &str, line: usize) -> bool {
        let here = self.line_text(text, line);
        if here.contains(IGNORE_MARKER) && !here.contains(IGNORE_NEXT_MARKER) {
            return true;
        }
        line > 1 && self.line_text(text, line - 1).contains(IGNORE_NEXT_MARKER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_markers() {
        let text = "a\n# tollgate:ignore-next-line\nb\nc # tollgate:ignore\nd";
        let idx = LineIndex::new(text.as_bytes());
        assert_eq!(idx.line_of(0), 1);
        assert_eq!(idx.line_of(2), 2);
        assert_eq!(idx.line_text(text, 5), "d");
        assert!(!idx.suppressed(text, 1));
        assert!(!idx.suppressed(text, 2));
        assert!(idx.suppressed(text, 3));
        assert!(idx.suppressed(text, 4));
        assert!(!idx.suppressed(text, 5));
        assert_eq!(idx.line_text(text, 99), "");
    }
}
