//! Which credential rules can match a text: a rule runs only when one of its keywords
//! occurs (case-sensitively).
//!
//! The 44 keywords start with 20 different bytes, most of them common lower-case letters, so
//! no automaton prefilter applies and an Aho-Corasick pass read every byte of a prompt
//! through its automaton (60k instructions on a 4 KB prompt, callgrind). Instead each keyword
//! is tied to its rarest byte from [`ANCHORS`] (`_` of `hf_`, `-` of `sk-`, `A` of `AKIA`);
//! three SIMD `memchr3` passes find those bytes, and only the keywords tied to a byte found
//! are compared, at the offset the byte has in them (19k instructions on that prompt). A
//! keyword with no anchor byte is searched for on its own with `memmem`.

use std::sync::LazyLock;

use memchr::memmem;

/// Anchor bytes, rarest in prose first (a keyword is tied to the first one it contains),
/// searched three at a time.
const ANCHORS: [u8; 9] = [b'~', b'=', b'J', b'_', b':', b'A', b'x', b'-', b'.'];

/// A keyword, the rule it belongs to, and where its anchor byte sits in it.
struct Keyword {
    bytes: &'static [u8],
    rule: usize,
    offset: usize,
}

/// The keywords of every rule, grouped by anchor byte.
struct Index {
    /// Keywords tied to each byte value (empty for bytes that are no anchor).
    by_anchor: Vec<Vec<Keyword>>,
    /// The anchor bytes some keyword is tied to, for the `memchr3` passes.
    anchors: Vec<u8>,
    /// Keywords without an anchor byte, with their rule.
    plain: Vec<(memmem::Finder<'static>, usize)>,
    rules: usize,
}

impl Index {
    fn new(rules: &[&'static [&'static str]]) -> Self {
        let mut by_anchor: Vec<Vec<Keyword>> = (0..256).map(|_| Vec::new()).collect();
        let mut plain = Vec::new();
        for (rule, keywords) in rules.iter().enumerate() {
            for k in keywords.iter().map(|k| k.as_bytes()) {
                let tied = ANCHORS
                    .iter()
                    .find_map(|&a| k.iter().position(|&b| b == a).map(|offset| (a, offset)));
                match tied {
                    Some((a, offset)) => by_anchor[usize::from(a)].push(Keyword {
                        bytes: k,
                        rule,
                        offset,
                    }),
                    None => plain.push((memmem::Finder::new(k), rule)),
                }
            }
        }
        let anchors = ANCHORS
            .iter()
            .copied()
            .filter(|&a| !by_anchor[usize::from(a)].is_empty())
            .collect();
        Self {
            by_anchor,
            anchors,
            plain,
            rules: rules.len(),
        }
    }

    fn rules_in(&self, hay: &[u8]) -> Vec<bool> {
        let mut wanted = vec![false; self.rules];
        for group in self.anchors.chunks(3) {
            let (a, b, c) = match *group {
                [a] => (a, a, a),
                [a, b] => (a, b, b),
                [a, b, c] => (a, b, c),
                _ => continue,
            };
            for at in memchr::memchr3_iter(a, b, c, hay) {
                for k in &self.by_anchor[usize::from(hay[at])] {
                    if at >= k.offset && hay[at - k.offset..].starts_with(k.bytes) {
                        wanted[k.rule] = true;
                    }
                }
            }
        }
        for (finder, rule) in &self.plain {
            if !wanted[*rule] && finder.find(hay).is_some() {
                wanted[*rule] = true;
            }
        }
        wanted
    }
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let keywords: Vec<&'static [&'static str]> =
        super::rules().iter().map(|r| r.keywords).collect();
    Index::new(&keywords)
});

/// Which rules have one of their keywords in `view`, by index into [`super::rules`].
pub(super) fn rules_with_keywords(view: &str) -> Vec<bool> {
    INDEX.rules_in(view.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_keyword_has_an_anchor_byte() {
        // A keyword without one still works (`memmem`), but costs a pass of its own.
        assert!(INDEX.plain.is_empty());
        assert!(INDEX.anchors.len() <= ANCHORS.len());
    }

    #[test]
    fn keywords_without_anchors_and_at_the_edges_are_found() {
        let index = Index::new(&[&["abc"], &["x_y", "zz"], &["_q"]]);
        assert_eq!(index.plain.len(), 2);
        assert_eq!(index.rules_in(b"..abc"), [true, false, false]);
        assert_eq!(index.rules_in(b"x_y"), [false, true, false]);
        assert_eq!(index.rules_in(b"zz_q"), [false, true, true]);
        assert_eq!(index.rules_in(b"_x_"), [false, false, false]);
    }
}
