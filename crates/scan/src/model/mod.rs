//! Model files (SC-2): recognised by content, parsed as bytes, never loaded.
//!
//! [`sniff`] decides the format from the first bytes (and the extension only where the
//! format has no magic number), so a pickle renamed `.txt` or `.safetensors` is still
//! walked as a pickle. Each format has its own parser with explicit limits:
//! [`pickle`] (+ [`policy`] for the deny/allow lists), [`zip`] (PyTorch, NumPy `.npz`,
//! Keras `.keras`), [`npy`], [`safetensors`], [`gguf`], [`onnx`]; Keras `.h5` files are
//! searched for Lambda layers in their stored model config. A file that cannot be parsed is
//! reported (`model-unparseable`), never skipped: a scanner that gives up is a bypass.

pub mod gguf;
pub mod npy;
pub mod onnx;
pub mod pickle;
pub mod policy;
pub mod safetensors;
pub mod zip;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::Value;

use crate::finding::{Finding, Severity};
use policy::Verdict;

/// Largest raw pickle (or `.npy`, ONNX) file read into memory.
pub const MAX_PICKLE_FILE: u64 = 4 * 1024 * 1024 * 1024;
/// Bytes of a large raw pickle walked before deciding whether the rest is needed.
pub const PICKLE_PREFIX: u64 = 16 * 1024 * 1024;

fn read_prefix(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(path)?.take(n).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Largest archive member inflated for inspection.
pub const MAX_MEMBER: usize = 512 * 1024 * 1024;
/// Most JSON nodes visited in a Keras config.
const MAX_KERAS_NODES: usize = 10_000_000;
/// Chunk size for streaming searches through HDF5 files.
const H5_CHUNK: usize = 8 * 1024 * 1024;

/// Formats the scanner recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A raw pickle stream (also joblib, legacy PyTorch, dill).
    Pickle,
    /// A zip archive (PyTorch, `.npz`, `.keras`).
    Zip,
    /// A NumPy `.npy` array.
    Npy,
    /// safetensors.
    Safetensors,
    /// GGUF.
    Gguf,
    /// ONNX protobuf.
    Onnx,
    /// HDF5 (legacy Keras `.h5`).
    Hdf5,
}

/// Extensions that promise a pickle: content that is not one is reported.
const PICKLE_EXTS: &[&str] = &[
    "pkl", "pickle", "joblib", "dill", "pt", "pth", "ckpt", "sav", "p",
];
/// Extensions of zip-based model formats.
const ZIP_MODEL_EXTS: &[&str] = &["pt", "pth", "bin", "ckpt", "npz", "keras", "mar", "nemo"];

fn extension(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Recognise a model file from its name, first bytes and size.
pub fn sniff(rel: &str, head: &[u8], size: u64) -> Option<Kind> {
    let ext = extension(rel);
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Kind::Zip);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Some(Kind::Npy);
    }
    if head.starts_with(b"GGUF") {
        return Some(Kind::Gguf);
    }
    if head.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Some(Kind::Hdf5);
    }
    if ext == "safetensors" {
        return Some(Kind::Safetensors);
    }
    if head.get(8) == Some(&b'{')
        && safetensors::header_len(head).is_some_and(|n| n >= 2 && n <= size.saturating_sub(8))
    {
        return Some(Kind::Safetensors);
    }
    if matches!(head, [0x80, 2..=5, ..]) {
        return Some(Kind::Pickle);
    }
    if ext == "onnx" {
        return Some(Kind::Onnx);
    }
    if ext == "gguf" {
        return Some(Kind::Gguf);
    }
    // `.pth` is also Python's site-packages path-configuration text format.
    if ext == "pth" && !head.iter().any(|b| *b == 0 || *b >= 0x80) && !pickle::starts_pickle(head) {
        return None;
    }
    if PICKLE_EXTS.contains(&ext.as_str())
        || (ext == "bin" && pickle::starts_pickle(head) && head.first() == Some(&0x80))
    {
        return Some(Kind::Pickle);
    }
    if ext == "npy" {
        return Some(Kind::Npy);
    }
    if ext == "h5" || ext == "hdf5" || ext == "keras" {
        return Some(Kind::Hdf5);
    }
    None
}

/// True when a text-looking file is in fact a complete protocol-0 pickle.
pub fn is_text_pickle(bytes: &[u8]) -> bool {
    let trimmed = bytes.trim_ascii_end();
    if !trimmed.ends_with(b".") || !pickle::starts_pickle(bytes) || bytes.len() < 4 {
        return false;
    }
    let w = pickle::walk(bytes);
    w.error.is_none() && w.pickles > 0 && w.end >= trimmed.len()
}

/// Where findings go, with the file they concern.
struct Sink<'a> {
    rel: &'a str,
    out: &'a mut Vec<Finding>,
    /// Severity of structural problems: `Error` for files that claim to be models.
    structural: Severity,
}

impl Sink<'_> {
    fn push(&mut self, rule: &str, severity: Severity, message: String) {
        self.out
            .push(Finding::new("SC-2", rule, severity, self.rel, 1, message));
    }

    fn unparseable(&mut self, what: &str, why: &str) {
        let sev = self.structural;
        self.push(
            "model-unparseable",
            sev,
            format!("{what} could not be parsed ({why}); treat it as unsafe until it is"),
        );
    }
}

/// Check one model file.
pub fn scan_model(path: &Path, rel: &str, kind: Kind, size: u64, out: &mut Vec<Finding>) {
    let mut sink = Sink {
        rel,
        out,
        structural: Severity::Error,
    };
    let read_all = |sink: &mut Sink<'_>| -> Option<Vec<u8>> {
        if size > MAX_PICKLE_FILE {
            sink.push(
                "model-not-inspected",
                Severity::Warning,
                format!("{size} bytes is over the {MAX_PICKLE_FILE}-byte inspection limit"),
            );
            return None;
        }
        match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                sink.unparseable("file", &e.to_string());
                None
            }
        }
    };
    match kind {
        Kind::Pickle => {
            // Legacy PyTorch files keep gigabytes of raw storage after their pickles: walk a
            // prefix first and read the rest only if the pickles run past it.
            if size > PICKLE_PREFIX {
                if let Ok(prefix) = read_prefix(path, PICKLE_PREFIX) {
                    if matches!(decompress(&prefix[..prefix.len().min(16)]), Ok(None)) {
                        let w = pickle::walk(&prefix);
                        let truncated = w.error.as_deref().is_some_and(|e| {
                            e.starts_with("truncated") || e.starts_with("unterminated")
                        });
                        if !truncated {
                            report_walk(&mut sink, &w, "");
                            return;
                        }
                    }
                }
            }
            if let Some(data) = read_all(&mut sink) {
                match decompress(&data) {
                    Ok(Some(inner)) => check_pickle(&mut sink, &inner, ""),
                    Ok(None) => check_pickle(&mut sink, &data, ""),
                    // Recognised but unsupported compressors: reported, as a warning that
                    // still fails the default `--fail-on warning`.
                    Err(why) => sink.push(
                        "model-not-inspected",
                        Severity::Warning,
                        format!("compressed pickle not inspected ({why})"),
                    ),
                }
            }
        }
        Kind::Npy => {
            if let Some(data) = read_all(&mut sink) {
                check_npy(&mut sink, &data, "");
            }
        }
        Kind::Onnx => {
            if let Some(data) = read_all(&mut sink) {
                check_onnx(&mut sink, &data);
            }
        }
        Kind::Safetensors => check_safetensors(&mut sink, path, size),
        Kind::Gguf => check_gguf(&mut sink, path, size),
        Kind::Zip => {
            if !ZIP_MODEL_EXTS.contains(&extension(rel).as_str()) {
                sink.structural = Severity::Warning;
            }
            check_zip(&mut sink, path, rel);
        }
        Kind::Hdf5 => check_h5(&mut sink, path),
    }
}

fn at(member: &str) -> String {
    if member.is_empty() {
        String::new()
    } else {
        format!(" (archive member {member})")
    }
}

/// Largest decompressed size of a compressed pickle (joblib `compress=`).
pub const MAX_DECOMPRESSED: usize = 1024 * 1024 * 1024;

/// joblib and friends write zlib or gzip streams: inflate them (bounded) so the pickle
/// inside is walked. `Ok(None)` when the data is not compressed; `Err` for compressors
/// that are recognised but not supported here (bz2, xz, lz4), so the file is reported.
pub fn decompress(data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    use miniz_oxide::inflate::{decompress_to_vec_with_limit, decompress_to_vec_zlib_with_limit};
    let too_big =
        |e: miniz_oxide::inflate::DecompressError| format!("inflate failed: {:?}", e.status);
    match data {
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => {
            decompress_to_vec_zlib_with_limit(data, MAX_DECOMPRESSED)
                .map(Some)
                .map_err(too_big)
        }
        [0x1f, 0x8b, 8, flags, ..] => {
            let mut pos = 10usize;
            let field = |pos: usize| {
                data.get(pos..pos + 2)
                    .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            };
            if flags & 4 != 0 {
                pos += 2 + field(pos).ok_or("truncated gzip header")?;
            }
            for bit in [8u8, 16] {
                if flags & bit != 0 {
                    let rest = data.get(pos..).ok_or("truncated gzip header")?;
                    pos += rest
                        .iter()
                        .position(|b| *b == 0)
                        .ok_or("truncated gzip header")?
                        + 1;
                }
            }
            if flags & 2 != 0 {
                pos += 2;
            }
            let body = data.get(pos..).ok_or("truncated gzip header")?;
            decompress_to_vec_with_limit(body, MAX_DECOMPRESSED)
                .map(Some)
                .map_err(too_big)
        }
        [b'B', b'Z', b'h', ..] => Err("bzip2-compressed; decompress it to inspect".to_owned()),
        [0xfd, b'7', b'z', b'X', b'Z', ..] => {
            Err("xz-compressed; decompress it to inspect".to_owned())
        }
        [0x04, 0x22, 0x4d, 0x18, ..] => Err("lz4-compressed; decompress it to inspect".to_owned()),
        _ => Ok(None),
    }
}

/// Walk a pickle and report its imports.
fn check_pickle(sink: &mut Sink<'_>, data: &[u8], member: &str) {
    let w = pickle::walk(data);
    report_walk(sink, &w, member);
}

fn report_walk(sink: &mut Sink<'_>, w: &pickle::Walk, member: &str) {
    let mut seen = BTreeSet::new();
    for i in &w.imports {
        let target = format!("{}.{}", i.module.trim(), i.name.trim());
        if !seen.insert(target.clone()) {
            continue;
        }
        match policy::classify(&i.module, &i.name) {
            Verdict::Dangerous => sink.push(
                "pickle-dangerous-import",
                Severity::Error,
                format!("pickle imports {target}, which can run code or touch files when loaded{}", at(member)),
            ),
            Verdict::Unknown => sink.push(
                "pickle-unknown-import",
                Severity::Warning,
                format!("pickle imports {target}, which is not on the known-safe list; review it before loading{}", at(member)),
            ),
            Verdict::Safe => {}
        }
    }
    if !w.unresolved.is_empty() {
        sink.push(
            "pickle-obfuscated-import",
            Severity::Error,
            format!("pickle builds an import from computed strings ({} time(s)), a way to hide what it runs{}", w.unresolved.len(), at(member)),
        );
    }
    if !w.extensions.is_empty() {
        sink.push(
            "pickle-extension-import",
            Severity::Warning,
            format!("pickle imports through the copyreg extension registry, which cannot be checked statically{}", at(member)),
        );
    }
    if let Some(e) = &w.error {
        if w.pickles == 0 {
            let what = if member.is_empty() {
                "pickle".to_owned()
            } else {
                format!("pickle in {member}")
            };
            sink.unparseable(&what, e);
        }
    }
}

fn check_npy(sink: &mut Sink<'_>, data: &[u8], member: &str) {
    match npy::parse(data) {
        Ok(h) if h.is_object() => {
            let body = data.get(h.data_offset..).unwrap_or_default();
            check_pickle(sink, body, member);
        }
        Ok(_) => {}
        Err(e) => {
            let what = if member.is_empty() {
                ".npy array".to_owned()
            } else {
                format!(".npy array {member}")
            };
            sink.unparseable(&what, &e);
        }
    }
}

fn check_onnx(sink: &mut Sink<'_>, data: &[u8]) {
    match onnx::external_locations(data) {
        Ok(locations) => {
            for l in locations.iter().filter(|l| onnx::escapes(l)) {
                sink.push(
                    "onnx-external-data-escape",
                    Severity::Error,
                    format!("tensor data location {l:?} points outside the model directory (CVE-2024-27318)"),
                );
            }
        }
        Err(e) => sink.unparseable("ONNX model", &e),
    }
}

fn check_safetensors(sink: &mut Sink<'_>, path: &Path, size: u64) {
    let Ok(mut f) = File::open(path) else {
        sink.unparseable("safetensors file", "cannot open");
        return;
    };
    let mut head = [0u8; 8];
    if f.read_exact(&mut head).is_err() {
        sink.push(
            "safetensors-invalid",
            Severity::Error,
            "file shorter than the 8-byte header length".to_owned(),
        );
        return;
    }
    if matches!(head, [0x80, 2..=5, ..]) || pickle::starts_pickle(&head) && head[0] == b'(' {
        sink.push(
            "model-format-mismatch",
            Severity::Error,
            "named .safetensors but holds a pickle, which runs code when loaded".to_owned(),
        );
        drop(f);
        if size <= MAX_PICKLE_FILE {
            if let Ok(data) = std::fs::read(path) {
                check_pickle(sink, &data, "");
            }
        }
        return;
    }
    let n = u64::from_le_bytes(head);
    if n > size.saturating_sub(8) {
        sink.push(
            "safetensors-invalid",
            Severity::Error,
            format!("header length {n} runs past the end of the {size}-byte file"),
        );
        return;
    }
    if n > safetensors::MAX_HEADER {
        sink.push(
            "safetensors-invalid",
            Severity::Error,
            format!(
                "header length {n} over the {}-byte limit",
                safetensors::MAX_HEADER
            ),
        );
        return;
    }
    let mut header = vec![0u8; n as usize];
    if f.read_exact(&mut header).is_err() {
        sink.unparseable("safetensors header", "truncated");
        return;
    }
    let problems = safetensors::validate(&header, size);
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        sink.push(
            "safetensors-invalid",
            Severity::Error,
            format!(
                "invalid header: {}{}",
                shown.join("; "),
                if problems.len() > 3 { "; …" } else { "" }
            ),
        );
    }
}

fn check_gguf(sink: &mut Sink<'_>, path: &Path, size: u64) {
    let Ok(f) = File::open(path) else {
        sink.unparseable("GGUF file", "cannot open");
        return;
    };
    let g = gguf::read(BufReader::with_capacity(1 << 20, f), size);
    if !g.problems.is_empty() {
        let shown: Vec<&str> = g.problems.iter().take(3).map(String::as_str).collect();
        sink.push(
            "gguf-invalid",
            Severity::Error,
            format!("invalid GGUF: {}", shown.join("; ")),
        );
    }
    for (key, template) in &g.chat_templates {
        if let Some(marker) = gguf::template_marker(template) {
            sink.push(
                "gguf-chat-template-code",
                Severity::Error,
                format!("{key} reaches Python internals ({marker:?}): template injection runs code in unsandboxed renderers (CVE-2024-34359)"),
            );
        }
    }
}

fn check_h5(sink: &mut Sink<'_>, path: &Path) {
    let Ok(mut f) = File::open(path) else {
        sink.unparseable("HDF5 file", "cannot open");
        return;
    };
    let finder = memchr::memmem::Finder::new(b"\"Lambda\"");
    let mut buf = vec![0u8; H5_CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                sink.unparseable("HDF5 file", &e.to_string());
                return;
            }
        };
        carry.extend_from_slice(&buf[..n]);
        for pos in finder.find_iter(&carry) {
            let before = &carry[pos.saturating_sub(24)..pos];
            if memchr::memmem::find(before, b"class_name").is_some() {
                sink.push(
                    "keras-lambda-layer",
                    Severity::Error,
                    "Keras model config has a Lambda layer: its marshalled Python code runs on load (CVE-2024-3660)".to_owned(),
                );
                return;
            }
        }
        // Keep a tail so a marker split across chunks is still seen.
        let keep = carry.len().saturating_sub(64);
        carry.drain(..keep);
    }
}

/// Look for Lambda layers (and other code-carrying layers) in a Keras `config.json`.
fn check_keras_config(sink: &mut Sink<'_>, data: &[u8], member: &str) {
    let v: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            sink.unparseable(&format!("Keras {member}"), &e.to_string());
            return;
        }
    };
    let mut stack = vec![&v];
    let mut visited = 0usize;
    let mut reported = BTreeSet::new();
    while let Some(node) = stack.pop() {
        visited += 1;
        if visited > MAX_KERAS_NODES {
            sink.unparseable(&format!("Keras {member}"), "config too large");
            return;
        }
        match node {
            Value::Object(map) => {
                let class = map.get("class_name").and_then(Value::as_str).unwrap_or("");
                if (class == "Lambda" || class == "__lambda__")
                    && reported.insert("lambda".to_owned())
                {
                    sink.push(
                        "keras-lambda-layer",
                        Severity::Error,
                        format!("Keras model has a Lambda layer: its marshalled Python code runs on load (CVE-2024-3660){}", at(member)),
                    );
                }
                // Keras 3 imports `module.class_name` from the config (CVE-2025-1550 abused
                // this to reach arbitrary callables even in safe mode).
                if let Some(module) = map.get("module").and_then(Value::as_str) {
                    let target = format!("{module}.{class}");
                    let keras_own = ["keras", "tf_keras", "tensorflow", "builtins"]
                        .iter()
                        .any(|k| module == *k || module.starts_with(&format!("{k}.")));
                    let verdict = policy::classify(module, class);
                    if verdict == Verdict::Dangerous && reported.insert(target.clone()) {
                        sink.push(
                            "keras-dangerous-module",
                            Severity::Error,
                            format!("Keras config imports {target}, which can run code or touch files on load (CVE-2025-1550){}", at(member)),
                        );
                    } else if !keras_own
                        && verdict == Verdict::Unknown
                        && reported.insert(target.clone())
                    {
                        sink.push(
                            "keras-custom-object",
                            Severity::Warning,
                            format!("Keras config imports custom object {target}; it runs that module's code on load{}", at(member)),
                        );
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
}

fn check_zip(sink: &mut Sink<'_>, path: &Path, rel: &str) {
    let src = match File::open(path).and_then(zip::FileSource::new) {
        Ok(s) => s,
        Err(e) => {
            sink.unparseable("archive", &e.to_string());
            return;
        }
    };
    let archive = match zip::parse(&src) {
        Ok(a) => a,
        Err(e) => {
            sink.unparseable("archive", &e);
            return;
        }
    };
    let sev = sink.structural;
    for a in &archive.anomalies {
        let (rule, msg) = match a {
            zip::Anomaly::NameMismatch { central, local } => (
                "zip-name-mismatch",
                format!(
                    "member {central:?} is named {local:?} in its local header; loaders and scanners may read different files (CVE-2025-1944)"
                ),
            ),
            zip::Anomaly::Encrypted(n) => (
                "zip-flag-bits",
                format!(
                    "member {n:?} has the encryption flag set: Python's zipfile refuses it but PyTorch loads it (CVE-2025-1945)"
                ),
            ),
            zip::Anomaly::UnsupportedMethod(n, m) => (
                "zip-unsupported-method",
                format!("member {n:?} uses compression method {m}"),
            ),
            zip::Anomaly::Bomb(n) => (
                "zip-bomb",
                format!("{n:?} declares an implausible uncompressed size (zip bomb)"),
            ),
            zip::Anomaly::Overlap(n) => (
                "zip-overlapping-members",
                format!("member {n:?} overlaps another member's data"),
            ),
            zip::Anomaly::UnsafeName(n) => (
                "zip-path-traversal",
                format!("member name {n:?} escapes the extraction directory"),
            ),
            zip::Anomaly::BadLocalHeader(n) => (
                "zip-bad-local-header",
                format!("member {n:?} has no valid local header or runs past the end"),
            ),
        };
        sink.push(rule, sev, msg);
    }
    let keras = extension(rel) == "keras";
    for entry in &archive.entries {
        let name = entry.name.to_ascii_lowercase();
        let pickle_name = name.ends_with(".pkl")
            || name.ends_with(".pickle")
            || name.ends_with(".p")
            || name.ends_with("data.pkl");
        let npy_name = name.ends_with(".npy");
        let config = keras && name.ends_with(".json");
        // Peek at stored members cheaply; deflated ones must be inflated anyway.
        let head = if entry.method == 0 {
            src.read_at_head(entry)
        } else if entry.uncompressed <= MAX_MEMBER as u64 {
            None
        } else {
            Some(Vec::new())
        };
        let looks = |h: &[u8]| matches!(h, [0x80, 2..=5, ..]) || h.starts_with(b"\x93NUMPY");
        if !(pickle_name || npy_name || config) && head.as_deref().is_some_and(|h| !looks(h)) {
            continue;
        }
        let data = match zip::read_entry(&src, entry, MAX_MEMBER) {
            Ok(d) => d,
            Err(zip::ReadError::TooLarge) => {
                if pickle_name {
                    sink.push(
                        "model-not-inspected",
                        Severity::Warning,
                        format!(
                            "member {} is over the {MAX_MEMBER}-byte inspection limit",
                            entry.name
                        ),
                    );
                }
                continue;
            }
            Err(zip::ReadError::Corrupt(e)) => {
                sink.unparseable(&format!("archive member {}", entry.name), &e);
                continue;
            }
        };
        if !(pickle_name || npy_name || config || looks(&data)) {
            continue;
        }
        if !zip::crc_ok(entry, &data) {
            sink.push(
                "zip-bad-crc",
                sev,
                format!("member {:?} does not match its CRC: edited after the archive was written (CVE-2025-10156)", entry.name),
            );
        }
        if config {
            check_keras_config(sink, &data, &entry.name);
        } else if data.starts_with(b"\x93NUMPY") {
            check_npy(sink, &data, &entry.name);
        } else {
            check_pickle(sink, &data, &entry.name);
        }
    }
}

impl zip::FileSource {
    fn read_at_head(&self, entry: &zip::Entry) -> Option<Vec<u8>> {
        use zip::Source as _;
        self.read_at(entry.data_offset, 16).ok()
    }
}

#[cfg(test)]
mod tests;
