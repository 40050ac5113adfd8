//! Time each PII recognizer family on a prompt, to find the slow one.
fn main() {
    let mut s = String::new();
    while s.len() < 3600 {
        s.push_str("The committee met on a quiet afternoon to review the proposal for the new library wing. ");
    }
    s.push_str(" Please email jane.doe@example.com or call +1 415-555-2671; my card is 4111 1111 1111 1111 and my name is Jane Doe.");
    let d = tollgate_guard::pii::PiiDetector::default();
    let _ = d.detect(&s);
    let t = std::time::Instant::now();
    for _ in 0..200 {
        std::hint::black_box(d.detect(&s));
    }
    println!("detect: {:?}/call", t.elapsed() / 200);
    for (name, f) in tollgate_guard::pii::profile_families() {
        let t = std::time::Instant::now();
        for _ in 0..200 {
            let mut out = Vec::new();
            f(&s, &mut out);
            std::hint::black_box(out);
        }
        println!("{name}: {:?}/call", t.elapsed() / 200);
    }
}
