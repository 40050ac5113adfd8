//! safetensors header validation on arbitrary headers and file sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_scan::model::safetensors;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, header) = data.split_at(8);
    let mut s = [0u8; 8];
    s.copy_from_slice(size);
    let _ = safetensors::header_len(data);
    let _ = safetensors::validate(header, u64::from_le_bytes(s));
});
