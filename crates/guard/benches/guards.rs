//! Criterion benchmarks of the input guards.
fn main() {}
