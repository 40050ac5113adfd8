//! The work of the gateway's default input guards on the `input_guards` benchmark's request
//! (a system prompt and a 4 KB user prompt), repeated `N` times, for instruction counts that
//! a loaded machine cannot disturb:
//!
//! ```text
//! cargo build --release -p tollgate-guard --example input_guards_profile
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/examples/input_guards_profile 100
//! ```
//!
//! counts only the 100 measured requests (the first, which builds the lazily compiled rule
//! sets and lexicons, is not counted: it runs with everything on before collection). A second
//! argument picks one part: `injection` (normalise, features, rules, model), `pii`,
//! `secrets`, or `all` (the default, which also masks what was found); `english` instead
//! scans 1 MiB of plain English prose (the `pii` bench's text) for PII and credentials,
//! `N` times, for the throughput goal.
//!
//! Instructions per request (`all`, `N` = 100, the count divided by 100): 930k at first,
//! 771k (injection 378k, PII 270k, credentials 104k), then 622k (injection 321k: the model
//! sums weights while tokenizing, with a memo of recent tokens, instead of building a
//! feature bag; PII 246k; credentials 35.5k: anchor bytes found with `memchr3` instead of an
//! Aho-Corasick pass without prefilter, and a value-run test that probes every 16th byte).
//! `english`: 91.6M instructions per MiB before the last step, 68.2M after. Then 594k: the
//! tokenizer keeps its buffer zeroed past the token, so the word memo compares three words
//! instead of padding a copy (`memset`, `memcpy`) and calling `memcmp` for every token.
//! 622k again after lower-case names and countries after a cue (`pii::names`, +27k for
//! the cue test on every lower-case word) and a per-thread word memo that is not zeroed per
//! text (its `calloc` had to `memset` 10 KiB whenever the allocator reused a chunk).
#![expect(clippy::unwrap_used, reason = "a profiling driver may unwrap")]

use std::hint::black_box;

use tollgate_guard::injection::{InjectionDetector, PreparedText, Source};
use tollgate_guard::mask::{Action, Masker, Span};
use tollgate_guard::pii::PiiDetector;
use tollgate_guard::secret::find_secrets;

/// The user prompt of `crates/gateway/benches/input_guards.rs`.
fn prompt_4k() -> String {
    const PARA: &str = "The committee met on a quiet afternoon to review the proposal for the new library wing. \
Members discussed the budget, the schedule and the choice of materials, and agreed that the reading rooms \
should face the garden. After a long debate about lighting and heating, the group decided to ask for two \
more estimates before the next meeting. ";
    let mut s = String::new();
    while s.len() < 3700 {
        s.push_str(PARA);
    }
    s.push_str("Please summarise this for Jane Doe (jane.doe@example.com, +1 415-555-2671).");
    s
}

/// The parts to run, from the command line.
#[derive(Clone, Copy)]
struct Parts {
    injection: bool,
    secrets: bool,
    pii: bool,
    mask: bool,
}

/// One measured request. Not inlined, so that
/// `valgrind --tool=callgrind --toggle-collect='*measured*'` counts exactly these calls.
#[inline(never)]
fn measured(
    parts: Parts,
    injection: &InjectionDetector,
    pii: &PiiDetector,
    texts: [&str; 2],
) -> usize {
    run_once(parts, injection, pii, texts)
}

/// One request's input guards.
#[inline(always)]
fn run_once(
    parts: Parts,
    injection: &InjectionDetector,
    pii: &PiiDetector,
    texts: [&str; 2],
) -> usize {
    let mut total = 0;
    if parts.injection {
        // The gateway scores user messages only (not the system prompt).
        let prepared = PreparedText::new(black_box(texts[1]));
        let v = injection.score_prepared(&prepared, Source::User);
        total += v.rules.len() + usize::from(v.score > 0.5);
    }
    let mut masker = Masker::new([0; 32]);
    for text in texts {
        let secrets = if parts.secrets {
            find_secrets(black_box(text))
        } else {
            Vec::new()
        };
        let found = if parts.pii {
            pii.detect(black_box(text))
        } else {
            Vec::new()
        };
        total += secrets.len() + found.len();
        if parts.mask && !found.is_empty() {
            let spans: Vec<Span<'_>> = found
                .iter()
                .map(|d| Span {
                    start: d.start,
                    end: d.end,
                    label: d.kind.label(),
                    action: Action::Token,
                })
                .collect();
            total += masker.apply(text, &spans).text.len();
        }
    }
    total
}

/// The prose of `benches/pii.rs`, repeated to `bytes`.
fn english(bytes: usize) -> String {
    const PARA: &str = "The committee met on a quiet afternoon to review the proposal for the new library wing. \
Members discussed the budget, the schedule and the choice of materials, and agreed that the reading rooms \
should face the garden. Several people asked whether the old catalogue could be kept, and the architect \
explained how the shelves would be arranged so that children and older readers could both reach them. \
After a long debate about lighting and heating, the group decided to ask for two more estimates before \
the next meeting, and to invite the public to comment on the plans. ";
    let mut s = String::with_capacity(bytes + PARA.len());
    while s.len() < bytes {
        s.push_str(PARA);
    }
    s.truncate(bytes);
    s
}

/// One scan of plain English for PII and credentials (see `english`).
#[inline(never)]
fn measured_english(pii: &PiiDetector, text: &str) -> usize {
    pii.detect(black_box(text)).len() + find_secrets(black_box(text)).len()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(100, |a| a.parse().unwrap());
    let part = args.get(2).map_or("all", String::as_str);
    if part == "english" {
        let pii = PiiDetector::default();
        let text = english(1 << 20);
        let mut total = pii.detect("warm up Jane Doe 2020-01-01 sk-").len();
        for _ in 0..n {
            total += measured_english(&pii, &text);
        }
        println!("{total}");
        return;
    }
    let all = part == "all";
    let parts = Parts {
        injection: all || part == "injection",
        secrets: all || part == "secrets",
        pii: all || part == "pii",
        mask: all,
    };
    let user = prompt_4k();
    let system = "You are helpful.";
    let injection = InjectionDetector::new().unwrap();
    let pii = PiiDetector::default();
    // One call first compiles the lazily built rule sets and lexicons.
    let everything = Parts {
        injection: true,
        secrets: true,
        pii: true,
        mask: true,
    };
    let mut total = run_once(everything, &injection, &pii, [system, &user]);
    for _ in 0..n {
        total += measured(parts, &injection, &pii, [system, &user]);
    }
    println!("{total}");
}
