//! Criterion benchmarks of the input guards on a 4 KB English prompt.
//!
//! ```text
//! cargo bench -p tollgate-guard --bench guards
//! ```
//!
//! Medians measured on the development VM (2 vCPUs of an Intel Xeon shared with other
//! agents' builds, load average 2-3.7, so these are upper bounds and move by ±15% between
//! runs): normalise 5-6 µs, injection 33-38 µs, content 36-41 µs, both through one
//! `PreparedText` 40-49 µs (both separately 68-82 µs); feature extraction into a
//! `FeatureBag` (`feature_bag_4kb`) 15-16 µs. Before the tokenizer, multi-head-sum, window
//! and rule-scan changes the same pair measured 67 µs. Interleaved A/B runs of
//! `train_guard --profile 20000` (the same prepared pair in a loop) on the loaded VM: 64 µs of
//! CPU time per call before, 43 µs after.
//!
//! The machine is noisy; instruction counts are not. Per prepared injection + content call on
//! this prompt, `valgrind --tool=callgrind target/release/examples/train_guard --profile N`
//! (N = 100 minus N = 0, divided by 100) counted 1,040,008 instructions before and 602,627
//! after: features 461k -> 268k, both models' sums and windows 379k -> 233k, the combined
//! regex scan 178k -> about 98k (`is_match` first: this prompt matches no rule; a text that
//! matches pays about 178k + its prefix), normalisation 97k -> 73k. Adversarial Unicode
//! (every `e` Cyrillic, a zero-width space after every word) costs 170-179 µs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_guard::content::ContentClassifier;
use tollgate_guard::injection::{InjectionDetector, PreparedText, Source};
use tollgate_guard::normalize::normalize;

/// About 4 KB of ordinary English prose, the size of a typical prompt with context.
fn prompt_4kb() -> String {
    let paragraph = "Our team is planning the migration of the billing service to the new cluster next \
        quarter. Please review the rollout plan below and point out any risks we may have missed, \
        especially around database schema changes, feature flags and the order in which the \
        downstream consumers should be switched over. We also need a short summary for the \
        leadership update on Friday, written in plain language without jargon. ";
    let mut text = String::new();
    while text.len() < 4096 {
        text.push_str(paragraph);
    }
    text.truncate(4096);
    text
}

fn guards(c: &mut Criterion) {
    let text = prompt_4kb();
    let injection = InjectionDetector::new().unwrap();
    let content = ContentClassifier::new().unwrap();
    // Warm the lazily compiled rule sets outside the measurement.
    let _ = injection.score(&text, Source::User);
    let _ = content.classify(&text);

    let mut group = c.benchmark_group("guards");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("normalize_4kb", |b| b.iter(|| normalize(black_box(&text))));
    group.bench_function("injection_4kb", |b| {
        b.iter(|| injection.score(black_box(&text), Source::User))
    });
    group.bench_function("content_4kb", |b| {
        b.iter(|| content.classify(black_box(&text)))
    });
    group.bench_function("injection_plus_content_4kb", |b| {
        b.iter(|| {
            let i = injection.score(black_box(&text), Source::User);
            let c = content.classify(black_box(&text));
            (i, c)
        })
    });
    group.bench_function("prepared_injection_plus_content_4kb", |b| {
        b.iter(|| {
            let prepared = PreparedText::new(black_box(&text));
            let i = injection.score_prepared(&prepared, Source::User);
            let c = content.classify_prepared(&prepared);
            (i, c)
        })
    });
    group.bench_function("injection_rules_4kb", |b| {
        b.iter(|| tollgate_guard::injection::rules::matching(black_box(&text)).count())
    });
    group.bench_function("injection_model_4kb", |b| {
        b.iter(|| {
            let mut out = [0.0f32];
            injection.model().logits(black_box(&text), &mut out);
            out
        })
    });
    group.bench_function("features_only_4kb", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            tollgate_guard::injection::features::for_each_feature(
                black_box(&text),
                18,
                tollgate_guard::injection::SHARED_FAMILIES,
                |bucket, _| acc = acc.wrapping_add(bucket),
            );
            acc
        })
    });
    group.bench_function("feature_bag_4kb", |b| {
        b.iter(|| {
            tollgate_guard::injection::features::FeatureBag::new(
                black_box(&text),
                tollgate_guard::injection::SHARED_BUCKETS_LOG2,
                tollgate_guard::injection::SHARED_FAMILIES,
            )
        })
    });
    group.bench_function("content_lexicon_4kb", |b| {
        b.iter(|| tollgate_guard::content::lexicon::scan(black_box(&text)))
    });
    let unicode = text.replace("e", "е").replace(' ', " \u{200B}");
    group.bench_function("injection_4kb_unicode_tricks", |b| {
        b.iter(|| injection.score(black_box(&unicode), Source::Untrusted))
    });
    group.finish();
}

criterion_group!(benches, guards);
criterion_main!(benches);
