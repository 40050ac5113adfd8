//! GGUF header, metadata and tensor-info parsing on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_scan::model::gguf;

fuzz_target!(|data: &[u8]| {
    let g = gguf::read(data, data.len() as u64);
    for (_, t) in &g.chat_templates {
        let _ = gguf::template_marker(t);
    }
});
