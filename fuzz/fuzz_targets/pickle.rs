//! The pickle walker must return on any input: no panic, no unbounded work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_scan::model::{policy, pickle};

fuzz_target!(|data: &[u8]| {
    let w = pickle::walk(data);
    assert!(w.end <= data.len());
    for i in &w.imports {
        let _ = policy::classify(&i.module, &i.name);
    }
});
