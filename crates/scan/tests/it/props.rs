//! Parsers never panic on arbitrary or mutated input.

use proptest::prelude::*;
use tollgate_scan::model::{gguf, npy, onnx, pickle, safetensors, zip};

/// A valid pickle that imports `posix.system`, to mutate.
const PICKLE: &[u8] = b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";

fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut b = base.to_vec();
    for (i, v) in edits {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] = *v;
        }
    }
    b.truncate(cut.min(b.len()));
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pickle_walker_total(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let w = pickle::walk(&bytes);
        prop_assert!(w.end <= bytes.len());
    }

    #[test]
    fn pickle_walker_on_mutations(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), cut in 0usize..64) {
        let _ = pickle::walk(&mutate(PICKLE, &edits, cut));
    }

    #[test]
    fn zip_reader_total(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(a) = zip::parse(&bytes[..]) {
            for e in &a.entries {
                let _ = zip::read_entry(&bytes[..], e, 1 << 16);
            }
        }
    }

    #[test]
    fn zip_reader_on_prefixed_garbage(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
        // An end-of-central-directory record pointing anywhere.
        let mut b = tail.clone();
        b.extend_from_slice(b"PK\x05\x06\0\0\0\0\x03\0\x03\0\x50\0\0\0\0\0\0\0\0\0");
        let _ = zip::parse(&b[..]);
    }

    #[test]
    fn safetensors_validator_total(header in "\\PC{0,200}", size in any::<u64>()) {
        let _ = safetensors::validate(header.as_bytes(), size);
    }

    #[test]
    fn gguf_reader_total(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut b = b"GGUF\x03\0\0\0".to_vec();
        b.extend_from_slice(&bytes);
        let g = gguf::read(&b[..], b.len() as u64);
        let _ = g.problems;
    }

    #[test]
    fn npy_and_onnx_total(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut b = b"\x93NUMPY".to_vec();
        b.extend_from_slice(&bytes);
        let _ = npy::parse(&b);
        let _ = onnx::external_locations(&bytes);
    }
}

#[test]
fn mutated_pickle_keeps_finding_the_import_until_it_is_cut() {
    let w = pickle::walk(PICKLE);
    assert!(w.error.is_none(), "{:?}", w.error);
    assert_eq!(w.imports[0].module, "posix");
}
