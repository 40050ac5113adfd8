//! PII and credential scanning throughput on plain English text, and latency on a 4 KB
//! prompt. Goals (issue 3): PII + secrets >= 100 MB/s; all input guards on 4 KB <= 50 µs.

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_guard::pii::PiiDetector;

/// English prose without PII: a public-domain-style paragraph repeated to the wanted size.
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

/// A 4 KB prompt with a few identifiers, as an application would send.
fn prompt_4k() -> String {
    let mut s = english(3600);
    s.push_str(" Please email jane.doe@example.com or call +1 415-555-2671; my card is 4111 1111 1111 1111 and my name is Jane Doe.");
    s
}

fn bench(c: &mut Criterion) {
    let det = PiiDetector::default();
    let text = english(1 << 20);
    let _ = det.detect("warm up Jane Doe 2020-01-01");
    let mut g = c.benchmark_group("pii_throughput");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("pii_1MiB_english", |b| {
        b.iter(|| black_box(det.detect(black_box(&text))))
    });
    g.bench_function("secrets_1MiB_english", |b| {
        b.iter(|| black_box(tollgate_guard::secret::find_secrets(black_box(&text))))
    });
    g.finish();
    let p = prompt_4k();
    c.bench_function("pii_and_secrets_4KiB_prompt", |b| {
        b.iter(|| {
            black_box(det.detect(black_box(&p)));
            black_box(tollgate_guard::secret::find_secrets(black_box(&p)));
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
