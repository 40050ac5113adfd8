//! The zip reader must return on any archive: no panic, no read or inflate past its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_scan::model::zip;

fuzz_target!(|data: &[u8]| {
    if let Ok(archive) = zip::parse(data) {
        for entry in &archive.entries {
            if let Ok(bytes) = zip::read_entry(data, entry, 1 << 20) {
                assert!(bytes.len() <= 1 << 20);
                let _ = zip::crc_ok(entry, &bytes);
            }
        }
    }
});
