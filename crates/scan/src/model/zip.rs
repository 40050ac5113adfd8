//! A defensive zip reader for model archives (PyTorch `.pt`/`.pth`/`.bin`/`.ckpt`, `.npz`,
//! `.keras`) and OSV databases.
//!
//! Scanners that use a lenient or a strict zip library disagree with the loader about what an
//! archive holds, and attackers live in that gap: a local header whose name differs from the
//! central directory's (CVE-2025-1944), an "encrypted" flag that `zipfile` refuses but
//! PyTorch ignores (CVE-2025-1945), a member edited after zipping so its CRC is wrong
//! (CVE-2025-10156). This reader parses both headers, reports every disagreement as an
//! [`Anomaly`], and reads members the way PyTorch does (central directory offsets, flags
//! ignored). Decompression is bounded: no member inflates past [`MAX_INFLATE`], and
//! implausible compression ratios are reported as zip bombs instead of being inflated.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Most entries read from a central directory.
pub const MAX_ENTRIES: usize = 100_000;
/// Largest central directory read.
pub const MAX_CENTRAL_DIR: u64 = 64 * 1024 * 1024;
/// Most bytes one member may inflate to.
pub const MAX_INFLATE: usize = 512 * 1024 * 1024;
/// Compression ratio above which a large member is reported as a bomb, not inflated.
pub const MAX_RATIO: u64 = 200;
/// Members smaller than this are never called bombs, whatever their ratio.
pub const BOMB_MIN_BYTES: u64 = 16 * 1024 * 1024;
/// Sum of declared uncompressed sizes above which the archive is a bomb.
pub const MAX_TOTAL_UNCOMPRESSED: u64 = 1 << 40;

/// Random access to the bytes of an archive.
pub trait Source {
    /// Total length.
    fn len(&self) -> u64;
    /// True when there are no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Read `len` bytes at `offset` (fewer only at the end).
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>>;
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(<[u8]>::len(self));
        let end = start.saturating_add(len).min(<[u8]>::len(self));
        Ok(self[start..end].to_vec())
    }
}

/// A file as a [`Source`].
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Wrap an open file.
    pub fn new(file: File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset))?;
        let want = u64::try_from(len)
            .unwrap_or(u64::MAX)
            .min(self.len.saturating_sub(offset));
        let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        f.take(want).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

/// One member, as the central directory and its local header describe it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name in the central directory (what `zipfile` and PyTorch list).
    pub name: String,
    /// Name in the local header.
    pub local_name: String,
    /// General-purpose flags (central directory).
    pub flags: u16,
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    /// CRC-32 from the central directory.
    pub crc: u32,
    /// Compressed size.
    pub compressed: u64,
    /// Declared uncompressed size.
    pub uncompressed: u64,
    /// Offset of the local header.
    pub header_offset: u64,
    /// Offset of the member's data.
    pub data_offset: u64,
}

/// Something about the archive that a loader and a scanner may read differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// Local header name differs from the central directory name (CVE-2025-1944).
    NameMismatch {
        /// Central name.
        central: String,
        /// Local name.
        local: String,
    },
    /// Encryption flag set: `zipfile` refuses the member, PyTorch reads it (CVE-2025-1945).
    Encrypted(String),
    /// Compression method other than stored/deflate.
    UnsupportedMethod(String, u16),
    /// Compression ratio or total size of a zip bomb.
    Bomb(String),
    /// Two members' data overlap (a classic bomb construction).
    Overlap(String),
    /// A member name that escapes the extraction directory.
    UnsafeName(String),
    /// The local header is missing or outside the file.
    BadLocalHeader(String),
}

/// A parsed archive.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    /// Members in central-directory order.
    pub entries: Vec<Entry>,
    /// Disagreements found while parsing.
    pub anomalies: Vec<Anomaly>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Parse the central directory and every local header.
pub fn parse(src: &(impl Source + ?Sized)) -> Result<Archive, String> {
    let len = src.len();
    let tail_len = len.min(65_557);
    let tail = src
        .read_at(len - tail_len, tail_len as usize)
        .map_err(|e| e.to_string())?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(0x0605_4b50))
        .ok_or("no end-of-central-directory record (not a zip, or truncated)")?;
    let e = &tail[eocd..];
    let mut count = u64::from(u16_at(e, 10).ok_or("short EOCD")?);
    let mut cd_size = u64::from(u32_at(e, 12).ok_or("short EOCD")?);
    let mut cd_offset = u64::from(u32_at(e, 16).ok_or("short EOCD")?);
    if count == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
        // ZIP64: the locator sits right before the EOCD.
        let loc = eocd.checked_sub(20).ok_or("ZIP64 locator missing")?;
        if u32_at(&tail, loc) != Some(0x0706_4b50) {
            return Err("ZIP64 locator missing".to_owned());
        }
        let z_off = u64_at(&tail, loc + 8).ok_or("short ZIP64 locator")?;
        let z = src.read_at(z_off, 56).map_err(|e| e.to_string())?;
        if u32_at(&z, 0) != Some(0x0606_4b50) {
            return Err("ZIP64 end record missing".to_owned());
        }
        count = u64_at(&z, 32).ok_or("short ZIP64 record")?;
        cd_size = u64_at(&z, 40).ok_or("short ZIP64 record")?;
        cd_offset = u64_at(&z, 48).ok_or("short ZIP64 record")?;
    }
    if count > MAX_ENTRIES as u64 {
        return Err(format!("{count} entries (limit {MAX_ENTRIES})"));
    }
    if cd_size > MAX_CENTRAL_DIR || cd_offset.checked_add(cd_size).is_none_or(|end| end > len) {
        return Err("central directory outside the file".to_owned());
    }
    let cd = src
        .read_at(cd_offset, cd_size as usize)
        .map_err(|e| e.to_string())?;
    let mut archive = Archive::default();
    let mut p = 0usize;
    let mut total: u64 = 0;
    for _ in 0..count {
        if u32_at(&cd, p) != Some(0x0201_4b50) {
            return Err("corrupt central directory entry".to_owned());
        }
        let short = || "short central directory entry".to_owned();
        let flags = u16_at(&cd, p + 8).ok_or_else(short)?;
        let method = u16_at(&cd, p + 10).ok_or_else(short)?;
        let crc = u32_at(&cd, p + 16).ok_or_else(short)?;
        let mut compressed = u64::from(u32_at(&cd, p + 20).ok_or_else(short)?);
        let mut uncompressed = u64::from(u32_at(&cd, p + 24).ok_or_else(short)?);
        let nlen = usize::from(u16_at(&cd, p + 28).ok_or_else(short)?);
        let elen = usize::from(u16_at(&cd, p + 30).ok_or_else(short)?);
        let clen = usize::from(u16_at(&cd, p + 32).ok_or_else(short)?);
        let mut header_offset = u64::from(u32_at(&cd, p + 42).ok_or_else(short)?);
        let name_bytes = cd.get(p + 46..p + 46 + nlen).ok_or_else(short)?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = cd
            .get(p + 46 + nlen..p + 46 + nlen + elen)
            .ok_or_else(short)?;
        zip64_extra(
            extra,
            &mut uncompressed,
            &mut compressed,
            &mut header_offset,
        );
        p += 46 + nlen + elen + clen;

        total = total.saturating_add(uncompressed);
        let local = src.read_at(header_offset, 30).map_err(|e| e.to_string())?;
        if u32_at(&local, 0) != Some(0x0403_4b50) {
            archive
                .anomalies
                .push(Anomaly::BadLocalHeader(name.clone()));
            continue;
        }
        let lnlen = u16_at(&local, 26).map_or(0, usize::from);
        let lelen = u16_at(&local, 28).map_or(0, u64::from);
        let local_name_bytes = src
            .read_at(header_offset + 30, lnlen)
            .map_err(|e| e.to_string())?;
        let local_name = String::from_utf8_lossy(&local_name_bytes).into_owned();
        let data_offset = header_offset + 30 + lnlen as u64 + lelen;
        if local_name != name {
            archive.anomalies.push(Anomaly::NameMismatch {
                central: name.clone(),
                local: local_name.clone(),
            });
        }
        if flags & 1 != 0 {
            archive.anomalies.push(Anomaly::Encrypted(name.clone()));
        }
        if method != 0 && method != 8 {
            archive
                .anomalies
                .push(Anomaly::UnsupportedMethod(name.clone(), method));
        }
        if uncompressed > BOMB_MIN_BYTES && uncompressed / compressed.max(1) > MAX_RATIO {
            archive.anomalies.push(Anomaly::Bomb(name.clone()));
        }
        if name.starts_with('/') || name.split(['/', '\\']).any(|s| s == "..") || name.contains(':')
        {
            archive.anomalies.push(Anomaly::UnsafeName(name.clone()));
        }
        if data_offset
            .checked_add(compressed)
            .is_none_or(|end| end > len)
        {
            archive
                .anomalies
                .push(Anomaly::BadLocalHeader(name.clone()));
        }
        archive.entries.push(Entry {
            name,
            local_name,
            flags,
            method,
            crc,
            compressed,
            uncompressed,
            header_offset,
            data_offset,
        });
    }
    if total > MAX_TOTAL_UNCOMPRESSED {
        archive
            .anomalies
            .push(Anomaly::Bomb(format!("{total} bytes in total")));
    }
    let mut spans: Vec<(u64, u64, &str)> = archive
        .entries
        .iter()
        .map(|e| {
            (
                e.header_offset,
                e.data_offset + e.compressed,
                e.name.as_str(),
            )
        })
        .collect();
    spans.sort_unstable();
    let overlaps: Vec<String> = spans
        .windows(2)
        .filter(|w| w[1].0 < w[0].1)
        .map(|w| w[1].2.to_owned())
        .collect();
    archive
        .anomalies
        .extend(overlaps.into_iter().map(Anomaly::Overlap));
    Ok(archive)
}

fn zip64_extra(extra: &[u8], uncompressed: &mut u64, compressed: &mut u64, offset: &mut u64) {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = u16_at(extra, i).unwrap_or(0);
        let size = usize::from(u16_at(extra, i + 2).unwrap_or(0));
        if id == 0x0001 {
            let mut j = i + 4;
            for field in [uncompressed, compressed, offset] {
                if *field == 0xffff_ffff {
                    if let Some(v) = u64_at(extra, j) {
                        *field = v;
                    }
                    j += 8;
                }
            }
            return;
        }
        i += 4 + size;
    }
}

/// Why a member could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Larger than `limit` once inflated.
    TooLarge,
    /// Corrupt data or an unsupported method.
    Corrupt(String),
}

/// Read (and inflate) one member, at most `limit` bytes of output. Flags are ignored, as
/// PyTorch ignores them.
pub fn read_entry(
    src: &(impl Source + ?Sized),
    entry: &Entry,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let limit = limit.min(MAX_INFLATE);
    match entry.method {
        0 => {
            if entry.compressed > limit as u64 {
                return Err(ReadError::TooLarge);
            }
            src.read_at(entry.data_offset, entry.compressed as usize)
                .map_err(|e| ReadError::Corrupt(e.to_string()))
        }
        8 => {
            // Compressed input can be at most a little larger than the output limit.
            if entry.compressed > (limit as u64).saturating_mul(2).saturating_add(1024) {
                return Err(ReadError::TooLarge);
            }
            let raw = src
                .read_at(entry.data_offset, entry.compressed as usize)
                .map_err(|e| ReadError::Corrupt(e.to_string()))?;
            miniz_oxide::inflate::decompress_to_vec_with_limit(&raw, limit).map_err(|e| {
                if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput {
                    ReadError::TooLarge
                } else {
                    ReadError::Corrupt(format!("inflate failed: {:?}", e.status))
                }
            })
        }
        m => Err(ReadError::Corrupt(format!("compression method {m}"))),
    }
}

/// True when `data` is the content the central directory's CRC describes.
pub fn crc_ok(entry: &Entry, data: &[u8]) -> bool {
    crc32fast::hash(data) == entry.crc
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (central name, local name, flags, data, crc override) of a test member.
    pub type Member<'a> = (&'a str, &'a str, u16, &'a [u8], Option<u32>);

    /// A stored-only zip writer for tests.
    pub fn build(members: &[Member<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, local, flags, data, crc) in members {
            let crc = crc.unwrap_or_else(|| crc32fast::hash(data));
            let off = out.len() as u32;
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0]);
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(local.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(local.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0]);
            central.extend_from_slice(&flags.to_le_bytes());
            central.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn reads_members_and_reports_tricks() {
        let z = build(&[
            ("a/data.pkl", "a/data.pkl", 0, b"N.", None),
            ("a/x", "a/other", 1, b"xyz", Some(1)),
        ]);
        let a = parse(&z[..]).unwrap();
        assert_eq!(a.entries.len(), 2);
        assert_eq!(read_entry(&z[..], &a.entries[0], 1024).unwrap(), b"N.");
        assert!(crc_ok(&a.entries[0], b"N."));
        assert!(!crc_ok(&a.entries[1], b"xyz"));
        assert!(a.anomalies.contains(&Anomaly::Encrypted("a/x".to_owned())));
        assert!(
            a.anomalies
                .iter()
                .any(|x| matches!(x, Anomaly::NameMismatch { .. }))
        );
    }

    #[test]
    fn truncated_and_garbage_inputs_are_errors() {
        let z = build(&[("a", "a", 0, b"hello", None)]);
        for cut in [0, 10, z.len() / 2, z.len() - 1] {
            let _ = parse(&z[..cut]);
        }
        assert!(parse(&b"PK\x03\x04 not really"[..]).is_err());
    }

    #[test]
    fn entry_count_limit() {
        let mut z = build(&[("a", "a", 0, b"x", None)]);
        let n = z.len();
        // Claim more entries than the limit in the EOCD.
        z[n - 12..n - 10].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(parse(&z[..]).is_err());
    }

    #[test]
    fn central_directory_size_limit() {
        let mut z = build(&[("a", "a", 0, b"x", None)]);
        let n = z.len();
        // Claim a central directory larger than the limit.
        z[n - 10..n - 6].copy_from_slice(&((MAX_CENTRAL_DIR + 1) as u32).to_le_bytes());
        assert!(parse(&z[..]).unwrap_err().contains("central directory"));
    }

    #[test]
    fn inflate_is_bounded() {
        let data = vec![0u8; 1 << 20];
        let deflated = miniz_oxide::deflate::compress_to_vec(&data, 6);
        let entry = Entry {
            name: "big".to_owned(),
            local_name: "big".to_owned(),
            flags: 0,
            method: 8,
            crc: 0,
            compressed: deflated.len() as u64,
            uncompressed: data.len() as u64,
            header_offset: 0,
            data_offset: 0,
        };
        assert_eq!(
            read_entry(&deflated[..], &entry, 1000),
            Err(ReadError::TooLarge)
        );
        assert_eq!(
            read_entry(&deflated[..], &entry, 2 << 20).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn bomb_ratio_is_reported() {
        let mut z = build(&[("bomb", "bomb", 0, b"x", None)]);
        // Patch the central directory's uncompressed size to 1 GiB.
        let cd = z.len() - 22 - (46 + 4);
        z[cd + 24..cd + 28].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let a = parse(&z[..]).unwrap();
        assert!(a.anomalies.iter().any(|x| matches!(x, Anomaly::Bomb(_))));
    }
}
