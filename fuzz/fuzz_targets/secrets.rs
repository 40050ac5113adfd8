//! The credential rules on arbitrary text: spans in bounds, on char boundaries, disjoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_guard::secret::find_secrets;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut last = 0;
    for m in find_secrets(text) {
        assert!(m.start >= last && m.end <= text.len());
        assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        last = m.end;
    }
});
