//! ONNX models: external-data locations that escape the model directory.
//!
//! A tensor stored outside the model names its file in `external_data["location"]`; ONNX
//! before 1.16 joined that path without checking it (CVE-2024-27318, CVE-2022-25882), so
//! `../../etc/passwd` or an absolute path read any file the loader could. The protobuf is
//! walked along the schema (Model → Graph → nodes, initializers, subgraphs → Tensor), with
//! a depth limit, never through a generated parser.

/// Deepest nesting of subgraphs followed.
pub const MAX_DEPTH: usize = 32;
/// Most fields visited in one file.
pub const MAX_FIELDS: usize = 10_000_000;

struct Walker {
    fields: usize,
    locations: Vec<String>,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The message kinds whose fields are followed.
#[derive(Clone, Copy)]
enum Msg {
    Model,
    Graph,
    Node,
    Attribute,
    Tensor,
    Sparse,
    Entry,
    Function,
}

impl Walker {
    /// Walk `b` as message `kind`; returns the entry's (key, value) for `Msg::Entry`.
    fn walk(
        &mut self,
        b: &[u8],
        kind: Msg,
        depth: usize,
    ) -> Result<Option<(String, String)>, String> {
        if depth > MAX_DEPTH {
            return Err("graphs nested too deep".to_owned());
        }
        let mut pos = 0;
        let (mut key, mut value) = (String::new(), String::new());
        while pos < b.len() {
            self.fields += 1;
            if self.fields > MAX_FIELDS {
                return Err(format!("more than {MAX_FIELDS} protobuf fields"));
            }
            let tag = varint(b, &mut pos).ok_or("truncated field tag")?;
            let (field, wire) = (tag >> 3, tag & 7);
            match wire {
                0 => {
                    varint(b, &mut pos).ok_or("truncated varint")?;
                }
                1 => {
                    pos = pos
                        .checked_add(8)
                        .filter(|p| *p <= b.len())
                        .ok_or("truncated fixed64")?
                }
                5 => {
                    pos = pos
                        .checked_add(4)
                        .filter(|p| *p <= b.len())
                        .ok_or("truncated fixed32")?
                }
                2 => {
                    let len = varint(b, &mut pos).ok_or("truncated length")?;
                    let len = usize::try_from(len).map_err(|_| "length too large")?;
                    let end = pos
                        .checked_add(len)
                        .filter(|e| *e <= b.len())
                        .ok_or("length past the end")?;
                    let sub = &b[pos..end];
                    pos = end;
                    let next = match (kind, field) {
                        (Msg::Model, 7) | (Msg::Attribute, 6) | (Msg::Attribute, 11) => {
                            Some(Msg::Graph)
                        }
                        (Msg::Model, 25) => Some(Msg::Function),
                        (Msg::Function, 7) | (Msg::Graph, 1) => Some(Msg::Node),
                        (Msg::Node, 5) => Some(Msg::Attribute),
                        (Msg::Graph, 5)
                        | (Msg::Attribute, 5)
                        | (Msg::Attribute, 10)
                        | (Msg::Sparse, 1)
                        | (Msg::Sparse, 2) => Some(Msg::Tensor),
                        (Msg::Graph, 15) | (Msg::Attribute, 22) | (Msg::Attribute, 23) => {
                            Some(Msg::Sparse)
                        }
                        (Msg::Tensor, 13) => Some(Msg::Entry),
                        (Msg::Entry, 1) => {
                            key = String::from_utf8_lossy(sub).into_owned();
                            None
                        }
                        (Msg::Entry, 2) => {
                            value = String::from_utf8_lossy(sub).into_owned();
                            None
                        }
                        _ => None,
                    };
                    if let Some(next) = next {
                        if let Some((k, v)) = self.walk(sub, next, depth + 1)? {
                            if k == "location" {
                                self.locations.push(v);
                            }
                        }
                    }
                }
                w => return Err(format!("unsupported wire type {w}")),
            }
        }
        Ok(matches!(kind, Msg::Entry).then_some((key, value)))
    }
}

/// External-data locations of every tensor in a serialized `ModelProto`.
pub fn external_locations(model: &[u8]) -> Result<Vec<String>, String> {
    let mut w = Walker {
        fields: 0,
        locations: Vec::new(),
    };
    w.walk(model, Msg::Model, 0)?;
    Ok(w.locations)
}

/// True when `location` leaves the model's directory: absolute, a drive, or `..`.
pub fn escapes(location: &str) -> bool {
    let l = location.replace('\\', "/");
    l.starts_with('/')
        || l.as_bytes().get(1) == Some(&b':')
        || l.split('/').any(|seg| seg == "..")
        || l.starts_with('~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    fn field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut b = varint_bytes((num << 3) | 2);
        b.extend(varint_bytes(payload.len() as u64));
        b.extend_from_slice(payload);
        b
    }

    fn model_with(location: &str) -> Vec<u8> {
        let entry = [field(1, b"location"), field(2, location.as_bytes())].concat();
        let tensor = field(13, &entry);
        let graph = field(5, &tensor);
        field(7, &graph)
    }

    #[test]
    fn finds_external_locations() {
        assert_eq!(
            external_locations(&model_with("../../etc/passwd")).unwrap(),
            ["../../etc/passwd"]
        );
        assert!(escapes("../../etc/passwd"));
        assert!(escapes("/etc/passwd"));
        assert!(escapes("C:\\Windows\\x"));
        assert!(!escapes("weights.bin"));
        assert!(!escapes("data/weights.bin"));
    }

    #[test]
    fn malformed_protobuf_is_an_error() {
        assert!(external_locations(&[0x3a, 0xff]).is_err());
        assert!(external_locations(&[0xff; 11]).is_err());
    }

    #[test]
    fn subgraph_depth_is_bounded() {
        // Graph → node → attribute.g → graph …, deeper than the limit.
        let mut graph = field(5, &field(13, &field(1, b"location")));
        for _ in 0..MAX_DEPTH {
            let attr = field(6, &graph);
            let node = field(5, &attr);
            graph = field(1, &node);
        }
        let e = external_locations(&field(7, &graph)).unwrap_err();
        assert!(e.contains("deep"), "{e}");
    }

    #[test]
    fn field_count_is_bounded() {
        // MAX_FIELDS + 1 varint fields (tag 8 = field 1, wire 0) in the model message.
        let many = [0x08u8, 0x00].repeat(MAX_FIELDS + 1);
        let e = external_locations(&many).unwrap_err();
        assert!(e.contains("fields"), "{e}");
    }
}
