//! safetensors header validation.
//!
//! The format is safe only if the header is: an 8-byte little-endian length, that many bytes
//! of JSON mapping tensor names to `{dtype, shape, data_offsets}`, then one contiguous byte
//! buffer. Loaders that trust a bad header read out of bounds, alias tensors or allocate
//! absurd sizes; the checks below are those of the reference implementation
//! (`safetensors::tensor::Metadata::validate`), each reported with the tensor it concerns.

use serde_json::Value;

/// Largest header accepted (the reference implementation's limit).
pub const MAX_HEADER: u64 = 100 * 1024 * 1024;
/// Most tensors in one header.
pub const MAX_TENSORS: usize = 1_000_000;
/// Most dimensions of one tensor.
pub const MAX_RANK: usize = 64;

/// Bits per element of each dtype.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        _ => return None,
    })
}

/// Header length and size of the header that follows, read from the first 8 bytes.
pub fn header_len(head: &[u8]) -> Option<u64> {
    let b: [u8; 8] = head.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Validate a header given the file size; returns every problem found (empty = valid).
pub fn validate(header: &[u8], file_size: u64) -> Vec<String> {
    validate_with(header, file_size, MAX_TENSORS)
}

fn validate_with(header: &[u8], file_size: u64, max_tensors: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let n = header.len() as u64;
    let buffer = file_size.saturating_sub(8).saturating_sub(n);
    let v: Value = match std::str::from_utf8(header)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(s.trim_end_matches(' ')).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return vec![format!("header is not valid JSON: {e}")],
    };
    let Some(map) = v.as_object() else {
        return vec!["header is not a JSON object".to_owned()];
    };
    if map.len() > max_tensors {
        return vec![format!("{} tensors (limit {max_tensors})", map.len())];
    }
    let mut spans: Vec<(u64, u64, &str)> = Vec::new();
    for (name, t) in map {
        if name == "__metadata__" {
            if !t
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
            {
                problems.push("__metadata__ must map strings to strings".to_owned());
            }
            continue;
        }
        let dtype = t.get("dtype").and_then(Value::as_str).unwrap_or("");
        let Some(bits) = dtype_bits(dtype) else {
            problems.push(format!("{name}: unknown dtype {dtype:?}"));
            continue;
        };
        let shape: Option<Vec<u64>> = t
            .get("shape")
            .and_then(Value::as_array)
            .filter(|a| a.len() <= MAX_RANK)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let Some(shape) = shape else {
            problems.push(format!(
                "{name}: shape must be a list of non-negative integers"
            ));
            continue;
        };
        let offsets: Option<Vec<u64>> = t
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let Some([begin, end]) = offsets
            .as_deref()
            .and_then(|o| <[u64; 2]>::try_from(o).ok())
        else {
            problems.push(format!("{name}: data_offsets must be [begin, end]"));
            continue;
        };
        if end < begin {
            problems.push(format!("{name}: data_offsets end before they begin"));
            continue;
        }
        if end > buffer {
            problems.push(format!(
                "{name}: data_offsets [{begin}, {end}] beyond the {buffer}-byte data buffer"
            ));
        }
        let elements = shape.iter().try_fold(1u64, |a, d| a.checked_mul(*d));
        let bytes = elements
            .and_then(|e| e.checked_mul(bits))
            .map(|b| b.div_ceil(8));
        if bytes != Some(end - begin) {
            problems.push(format!(
                "{name}: shape {shape:?} of {dtype} needs {} bytes but data_offsets span {}",
                bytes.map_or("too many".to_owned(), |b| b.to_string()),
                end - begin
            ));
        }
        spans.push((begin, end, name));
    }
    spans.sort_unstable();
    let mut expected = 0u64;
    for (begin, end, name) in &spans {
        if *begin < expected {
            problems.push(format!("{name}: data overlaps the previous tensor"));
        } else if *begin > expected {
            problems.push(format!(
                "{name}: gap of {} bytes before it in the data buffer",
                begin - expected
            ));
        }
        expected = expected.max(*end);
    }
    if problems.is_empty() && expected != buffer {
        problems.push(format!(
            "tensors cover {expected} bytes but the data buffer holds {buffer}"
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> (Vec<u8>, u64) {
        let h = header.as_bytes().to_vec();
        let size = 8 + h.len() as u64 + data as u64;
        (h, size)
    }

    #[test]
    fn valid_header_has_no_problems() {
        let (h, size) = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}"#,
            8,
        );
        assert!(validate(&h, size).is_empty());
    }

    #[test]
    fn each_defect_is_reported() {
        for (header, data, needle) in [
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]"#,
                8,
                "JSON",
            ),
            (
                r#"{"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}"#,
                8,
                "dtype",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
                "needs 12",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}}"#,
                8,
                "beyond",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
                "overlaps",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
                "gap",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
                8,
                "shape",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#,
                8,
                "too many",
            ),
            (r#"[1,2]"#, 0, "object"),
        ] {
            let (h, size) = file(header, data);
            let p = validate(&h, size);
            assert!(p.iter().any(|x| x.contains(needle)), "{header}: {p:?}");
        }
    }

    #[test]
    fn deep_json_nesting_is_rejected_not_overflowed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (h, size) = file(&deep, 0);
        assert!(!validate(&h, size).is_empty());
    }

    #[test]
    fn tensor_count_limit() {
        let (h, size) = file(
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
            2,
        );
        assert!(validate_with(&h, size, 2).is_empty());
        assert!(validate_with(&h, size, 1)[0].contains("limit"));
    }

    #[test]
    fn rank_limit() {
        let shape = vec!["1"; MAX_RANK + 1].join(",");
        let header = format!(r#"{{"a":{{"dtype":"U8","shape":[{shape}],"data_offsets":[0,1]}}}}"#);
        let (h, size) = file(&header, 1);
        assert!(validate(&h, size).iter().any(|p| p.contains("shape")));
    }
}
