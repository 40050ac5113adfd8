//! NumPy `.npy` headers: object arrays carry a pickle after the header.
//!
//! `numpy.load(allow_pickle=True)` unpickles the body of an array whose dtype is object
//! (`'|O'`), so such a body is walked like any pickle; plain numeric arrays are data only.

/// Largest header accepted (NumPy itself allows 10 000 bytes by default).
pub const MAX_HEADER: usize = 1024 * 1024;

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The `descr` field, e.g. `<f4` or `|O`.
    pub descr: String,
    /// Offset of the array data (for object arrays: of the pickle).
    pub data_offset: usize,
}

/// Parse the header of an `.npy` file from its first bytes.
pub fn parse(data: &[u8]) -> Result<Header, String> {
    if !data.starts_with(b"\x93NUMPY") {
        return Err("missing NumPy magic".to_owned());
    }
    let major = *data.get(6).ok_or("truncated header")?;
    let (len, start) = match major {
        1 => {
            let b = data.get(8..10).ok_or("truncated header")?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
        }
        2 | 3 => {
            let b = data.get(8..12).ok_or("truncated header")?;
            let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (usize::try_from(n).map_err(|_| "header too large")?, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    if len > MAX_HEADER {
        return Err(format!("header of {len} bytes (limit {MAX_HEADER})"));
    }
    let header = data
        .get(start..start + len)
        .ok_or("header runs past the end of the file")?;
    let text = String::from_utf8_lossy(header);
    let descr = text
        .split("'descr':")
        .nth(1)
        .and_then(|rest| rest.trim_start().strip_prefix('\''))
        .and_then(|rest| rest.split('\'').next())
        .map(str::to_owned);
    let descr = match descr {
        Some(d) => d,
        // Structured dtypes are lists; any object field makes the body a pickle.
        None if text.contains("'descr': [") => {
            if text.contains("'O'") || text.contains("'|O'") {
                "|O".to_owned()
            } else {
                "V".to_owned()
            }
        }
        None => return Err("header has no descr".to_owned()),
    };
    Ok(Header {
        descr,
        data_offset: start + len,
    })
}

impl Header {
    /// True when the body is a pickle.
    pub fn is_object(&self) -> bool {
        self.descr.trim_start_matches(['|', '<', '>', '=']) == "O"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b
    }

    #[test]
    fn object_and_plain_arrays() {
        let h = parse(&npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
        ))
        .unwrap();
        assert!(h.is_object());
        let h = parse(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        ))
        .unwrap();
        assert!(!h.is_object());
    }

    #[test]
    fn malformed_headers() {
        assert!(parse(b"\x93NUMPY").is_err());
        assert!(parse(b"\x93NUMPY\x01\x00\xff\xff{").is_err());
        assert!(parse(&npy("{'shape': (2,)}")).is_err());
        let mut big = b"\x93NUMPY\x02\x00".to_vec();
        big.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&big).unwrap_err().contains("limit"));
    }
}
