//! All input guards of a default route together, as the gateway runs them on a request:
//! injection and content scoring, then PII and credential masking, on a 4 KB prompt.
//! Goal (issue 3): <= 50 µs median on one core.
//!
//! Measured on the shared 2-vCPU development VM (load average about 4 from other builds, so
//! an upper bound): 71-74 µs median, later 83-86 µs on a quiet VM. Instruction counts are
//! steadier: the same work, run by `crates/guard/examples/input_guards_profile.rs` under
//! callgrind, went from 930k to 771k and then 622k instructions per request (injection
//! 423k -> 378k -> 321k, PII 376k -> 270k -> 246k, credentials 112k -> 104k -> 35.5k). The
//! goal needs about 420k. What is left: the injection tokenizer and feature hashing (about
//! 220k, fused with the model sum now), the name tokenizer (about 100k, 25 instructions a
//! byte), the combined rule regex (30k) and payload decoding (41k). At 622k the bench read
//! 84, 88 and 111 µs median in three runs at load average 3.2 (other builds running), so
//! wall time on this VM does not yet show the cut; the instruction counts are the figure.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    reason = "criterion_group! generates undocumented items; a bench may unwrap"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use tollgate_gateway::config::GuardsConfig;
use tollgate_gateway::guards::checks::CheckReport;
use tollgate_gateway::guards::{GuardSet, InputReport};
use tollgate_gateway::wire::WireFormat;
use tollgate_guard::mask::Masker;

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

/// A 4 KB prompt with no repeated paragraph: benign prompts of the shared injection test
/// set, joined. `prompt_4k` repeats one paragraph, which flatters any per-word memo; this one
/// has the vocabulary spread of real traffic. `None` where `../shared/eval` is absent.
fn varied_prompt_4k() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/eval/injection/slabs_test.jsonl");
    let text = std::fs::read_to_string(&path).ok()?;
    let mut s = String::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).ok()?;
        if v["label"] == 0 {
            s.push_str(v["text"].as_str()?);
            s.push_str(". ");
        }
        if s.len() >= 3700 {
            break;
        }
    }
    s.push_str("Please summarise this for Jane Doe (jane.doe@example.com, +1 415-555-2671).");
    Some(s)
}

fn chat(prompt: String) -> Map<String, Value> {
    json!({"model": "m", "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": prompt}]})
        .as_object()
        .cloned()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let guards = GuardSet::build(&GuardsConfig::default(), None).unwrap();
    let mut cases = vec![("all_input_guards_4KiB_prompt", chat(prompt_4k()))];
    match varied_prompt_4k() {
        Some(p) => cases.push(("all_input_guards_4KiB_varied_prompt", chat(p))),
        None => eprintln!("../shared/eval is absent: skipping the varied-prompt case"),
    }
    for (name, body) in cases {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut body = body.clone();
                let mut report = CheckReport::default();
                let _ = guards
                    .checks
                    .check_input(WireFormat::OpenAi, &body, &mut report);
                let mut masker = Masker::new([0; 32]);
                let mut input = InputReport::default();
                let _ = guards.mask_chat(WireFormat::OpenAi, &mut body, &mut masker, &mut input);
                black_box((body, report, input))
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
