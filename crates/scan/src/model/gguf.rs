//! GGUF header, metadata and tensor-info validation, and chat templates that execute code.
//!
//! llama.cpp-based loaders have had overflows on crafted lengths and counts, so every length
//! is checked against the bytes left in the file before it is used. The chat template is a
//! Jinja2 program that Python runtimes (llama-cpp-python before 0.2.72, CVE-2024-34359)
//! rendered without a sandbox; templates reaching for Python internals are reported.

use std::io::Read;

/// Most metadata entries.
pub const MAX_KV: u64 = 1_000_000;
/// Most tensors.
pub const MAX_TENSORS: u64 = 1_000_000;
/// Longest string (tokenizer vocabularies are arrays of short strings).
pub const MAX_STRING: u64 = 64 * 1024 * 1024;
/// Most elements in one array.
pub const MAX_ARRAY: u64 = 50_000_000;
/// Most dimensions of a tensor.
pub const MAX_DIMS: u32 = 8;
/// Deepest nesting of arrays.
pub const MAX_DEPTH: usize = 4;

/// Markers of Jinja2 server-side template injection: Python object internals and
/// functions that lead to them.
const SSTI_MARKERS: &[&str] = &[
    "__class__",
    "__globals__",
    "__builtins__",
    "__subclasses__",
    "__mro__",
    "__base__",
    "__init__",
    "__import__",
    "__getattribute__",
    "__dict__",
    "\\x5f\\x5f",
    "popen",
    "subprocess",
    "os.system",
    "eval(",
    "exec(",
    "lipsum",
    "cycler",
    "joiner",
    "_templatereference__context",
    "|attr(",
    "| attr(",
    "import os",
];

/// Result of reading a GGUF header.
#[derive(Debug, Default, Clone)]
pub struct Gguf {
    /// Format version.
    pub version: u32,
    /// Chat templates found (`tokenizer.chat_template*`).
    pub chat_templates: Vec<(String, String)>,
    /// Structural problems (empty = valid).
    pub problems: Vec<String>,
}

struct Reader<R> {
    r: R,
    pos: u64,
    size: u64,
    v1: bool,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, String> {
        if n > self.size.saturating_sub(self.pos) {
            return Err(format!(
                "length {n} at byte {} runs past the end of the file",
                self.pos
            ));
        }
        let mut buf = vec![0u8; usize::try_from(n).map_err(|_| "length too large")?];
        self.r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        self.pos += n;
        Ok(buf)
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n > self.size.saturating_sub(self.pos) {
            return Err(format!(
                "length {n} at byte {} runs past the end of the file",
                self.pos
            ));
        }
        let copied = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        if copied != n {
            return Err("truncated".to_owned());
        }
        self.pos += n;
        Ok(())
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }
    /// Counts and lengths are u32 in version 1, u64 later.
    fn count(&mut self) -> Result<u64, String> {
        if self.v1 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.count()?;
        if n > MAX_STRING {
            return Err(format!(
                "string length {n} over the {MAX_STRING}-byte limit"
            ));
        }
        Ok(String::from_utf8_lossy(&self.bytes(n)?).into_owned())
    }
    fn skip_string(&mut self) -> Result<(), String> {
        let n = self.count()?;
        if n > MAX_STRING {
            return Err(format!(
                "string length {n} over the {MAX_STRING}-byte limit"
            ));
        }
        self.skip(n)
    }
    fn skip_value(&mut self, ty: u32, depth: usize) -> Result<(), String> {
        match ty {
            0 | 1 | 7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => self.skip_string(),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err("arrays nested too deep".to_owned());
                }
                let inner = self.u32()?;
                let n = self.count()?;
                if n > MAX_ARRAY {
                    return Err(format!("array of {n} elements over the limit"));
                }
                match fixed_size(inner) {
                    Some(sz) => self.skip(n.checked_mul(sz).ok_or("array size overflows")?),
                    None => (0..n).try_for_each(|_| self.skip_value(inner, depth + 1)),
                }
            }
            t => Err(format!("unknown metadata value type {t}")),
        }
    }
}

fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// (elements per block, bytes per block) of the ggml tensor types.
fn block(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),
        1 | 30 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 36),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        16 => (256, 66),
        17 => (256, 74),
        18 => (256, 98),
        19 => (256, 50),
        20 => (32, 18),
        21 => (256, 110),
        22 => (256, 82),
        23 => (256, 136),
        24 => (1, 1),
        25 => (1, 2),
        26 => (1, 4),
        27 | 28 => (1, 8),
        29 => (256, 56),
        34 => (256, 54),
        35 => (256, 66),
        _ => return None,
    })
}

/// Read and validate a GGUF header from `r` (positioned at the start of a `size`-byte file).
pub fn read(r: impl Read, size: u64) -> Gguf {
    let mut out = Gguf::default();
    let mut rd = Reader {
        r,
        pos: 0,
        size,
        v1: false,
    };
    if let Err(e) = read_inner(&mut rd, &mut out) {
        out.problems.push(e);
    }
    out
}

fn read_inner<R: Read>(rd: &mut Reader<R>, out: &mut Gguf) -> Result<(), String> {
    if rd.bytes(4)? != b"GGUF" {
        return Err("missing GGUF magic".to_owned());
    }
    out.version = rd.u32()?;
    if !(1..=3).contains(&out.version) {
        return Err(format!("unsupported GGUF version {}", out.version));
    }
    rd.v1 = out.version == 1;
    let tensors = rd.count()?;
    let kvs = rd.count()?;
    if tensors > MAX_TENSORS {
        return Err(format!("{tensors} tensors (limit {MAX_TENSORS})"));
    }
    if kvs > MAX_KV {
        return Err(format!("{kvs} metadata entries (limit {MAX_KV})"));
    }
    let mut alignment = 32u64;
    for _ in 0..kvs {
        let key = rd.string()?;
        let ty = rd.u32()?;
        if key.starts_with("tokenizer.chat_template") && ty == 8 {
            let t = rd.string()?;
            out.chat_templates.push((key, t));
        } else if key == "general.alignment" && ty == 4 {
            alignment = u64::from(rd.u32()?);
            if alignment == 0 || !alignment.is_power_of_two() {
                return Err(format!(
                    "general.alignment {alignment} is not a power of two"
                ));
            }
        } else {
            rd.skip_value(ty, 0)?;
        }
    }
    let mut infos = Vec::new();
    for _ in 0..tensors {
        let name = rd.string()?;
        let dims = rd.u32()?;
        if dims > MAX_DIMS {
            return Err(format!(
                "tensor {name}: {dims} dimensions (limit {MAX_DIMS})"
            ));
        }
        let mut elements = 1u64;
        for _ in 0..dims {
            let d = rd.u64()?;
            elements = elements
                .checked_mul(d)
                .ok_or_else(|| format!("tensor {name}: element count overflows"))?;
        }
        let ty = rd.u32()?;
        let offset = rd.u64()?;
        infos.push((name, elements, ty, offset));
    }
    let data_start = rd.pos.div_ceil(alignment).saturating_mul(alignment);
    for (name, elements, ty, offset) in infos {
        if offset % alignment != 0 {
            out.problems.push(format!(
                "tensor {name}: offset {offset} not aligned to {alignment}"
            ));
        }
        let bytes = block(ty).map(|(per, sz)| elements.div_ceil(per).saturating_mul(sz));
        let end = data_start
            .checked_add(offset)
            .and_then(|s| s.checked_add(bytes.unwrap_or(0)));
        if end.is_none_or(|e| e > rd.size) {
            out.problems
                .push(format!("tensor {name}: data runs past the end of the file"));
        }
        if bytes.is_none() {
            out.problems
                .push(format!("tensor {name}: unknown tensor type {ty}"));
        }
    }
    Ok(())
}

/// The first injection marker in a chat template, if any.
pub fn template_marker(template: &str) -> Option<&'static str> {
    let lower = template.to_ascii_lowercase();
    SSTI_MARKERS.iter().copied().find(|m| lower.contains(m))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A v3 GGUF with one string KV and no tensors.
    pub fn build(key: &str, value: &str) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&(key.len() as u64).to_le_bytes());
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&(value.len() as u64).to_le_bytes());
        b.extend_from_slice(value.as_bytes());
        b
    }

    fn parse(b: &[u8]) -> Gguf {
        read(b, b.len() as u64)
    }

    #[test]
    fn template_is_extracted_and_judged() {
        let g = parse(&build(
            "tokenizer.chat_template",
            "{% for m in messages %}{{ m.content }}{% endfor %}",
        ));
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        assert_eq!(template_marker(&g.chat_templates[0].1), None);
        let bad =
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}";
        assert_eq!(template_marker(bad), Some("__globals__"));
    }

    #[test]
    fn huge_lengths_and_counts_are_problems() {
        let mut b = build("k", "v");
        // String length of the value: claim u64::MAX.
        let at = b.len() - 1 - 8;
        b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!parse(&b).problems.is_empty());
        let mut c = build("k", "v");
        c[8..16].copy_from_slice(&(MAX_TENSORS + 1).to_le_bytes());
        assert!(parse(&c).problems[0].contains("tensors"));
        let mut d = build("k", "v");
        d[16..24].copy_from_slice(&(MAX_KV + 1).to_le_bytes());
        assert!(parse(&d).problems[0].contains("metadata"));
    }

    #[test]
    fn truncation_anywhere_is_a_problem_not_a_panic() {
        let b = build("tokenizer.chat_template", "hello");
        for cut in 0..b.len() {
            assert!(!parse(&b[..cut]).problems.is_empty(), "cut {cut}");
        }
    }

    fn header(tensors: u64, kvs: u64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&tensors.to_le_bytes());
        b.extend_from_slice(&kvs.to_le_bytes());
        b
    }

    #[test]
    fn array_length_and_tensor_rank_are_bounded() {
        let mut b = header(0, 1);
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'k');
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&(MAX_ARRAY + 1).to_le_bytes());
        assert!(parse(&b).problems.iter().any(|p| p.contains("elements")));
        let mut t = header(1, 0);
        t.extend_from_slice(&1u64.to_le_bytes());
        t.push(b't');
        t.extend_from_slice(&(MAX_DIMS + 1).to_le_bytes());
        assert!(parse(&t).problems.iter().any(|p| p.contains("dimensions")));
    }

    #[test]
    fn nested_arrays_are_bounded() {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'k');
        b.extend_from_slice(&9u32.to_le_bytes());
        for _ in 0..MAX_DEPTH + 2 {
            b.extend_from_slice(&9u32.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
        }
        assert!(parse(&b).problems.iter().any(|p| p.contains("nested")));
    }
}
