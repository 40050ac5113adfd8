//! A pickle opcode walker (protocols 0–5) that resolves imported callables without running
//! anything.
//!
//! Unpickling executes: `GLOBAL`/`STACK_GLOBAL`/`INST` import any callable and `REDUCE`,
//! `OBJ`, `NEWOBJ`, `BUILD` call it. The walker simulates just enough of the stack and memo to
//! know, for each import, the module and name — including `STACK_GLOBAL` whose strings come
//! from the memo — and hands them to [`super::policy`]. Streams of several pickles (legacy
//! PyTorch files, a payload hidden in a second pickle) are walked one after another.
//!
//! joblib writes raw array bytes *between* opcodes, right after a `NumpyArrayWrapper` is
//! built; the walker tracks the wrapper's `shape` and `dtype` so it can skip exactly those
//! bytes (and walk the nested pickle joblib writes for object arrays).

use std::collections::HashMap;

/// Most opcodes walked in one file; a real model's pickle has far fewer.
pub const MAX_OPS: usize = 50_000_000;
/// Deepest simulated stack.
pub const MAX_STACK: usize = 1_000_000;
/// Most memo entries kept.
pub const MAX_MEMO: usize = 1_000_000;
/// Longest newline-terminated argument (protocol 0 strings, `GLOBAL` names).
pub const MAX_LINE: usize = 64 * 1024;
/// Most pickles walked back to back in one stream.
pub const MAX_PICKLES: usize = 64;
/// Deepest nesting of joblib object arrays (a pickle inside a pickle).
pub const MAX_NESTING: usize = 4;
/// Elements kept in a simulated tuple (only short tuples matter: shapes, dtype args).
const MAX_TUPLE: usize = 64;

/// One import found in a pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Module, e.g. `posix`.
    pub module: String,
    /// Name in the module, possibly dotted (`Popen`, `IMAP4_stream`).
    pub name: String,
    /// Byte offset of the opcode.
    pub offset: usize,
}

/// What a walk produced.
#[derive(Debug, Default, Clone)]
pub struct Walk {
    /// Every import, in order.
    pub imports: Vec<Import>,
    /// Imports whose module or name could not be resolved statically (obfuscation).
    pub unresolved: Vec<usize>,
    /// Uses of the extension registry (`EXT1/2/4`), which imports by number.
    pub extensions: Vec<usize>,
    /// Number of pickles in the stream.
    pub pickles: usize,
    /// Where the last pickle ended (after `STOP`).
    pub end: usize,
    /// Why the walk stopped early, if it did; `None` when every pickle ended with `STOP`.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Mark,
    Str(String),
    Int(i64),
    Tuple(Vec<Val>),
    /// A global, by index into `Walk::imports`.
    Global(usize),
    /// `numpy.dtype(code, …)`.
    Dtype(String),
    /// An object built from a joblib `NumpyArrayWrapper`.
    Wrapper,
    Other,
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Val>,
    memo: HashMap<u64, Val>,
    ops: usize,
    /// `shape` and `dtype` seen in the state dict of the wrapper being built.
    pending_array: Option<(Option<Vec<i64>>, Option<String>)>,
    depth: usize,
}

/// Walk every pickle in `data`, starting at offset 0.
pub fn walk(data: &[u8]) -> Walk {
    walk_nested(data, 0)
}

fn walk_nested(data: &[u8], depth: usize) -> Walk {
    let mut out = Walk::default();
    let mut pos = 0;
    while pos < data.len() && out.pickles < MAX_PICKLES {
        if out.pickles > 0 && !starts_pickle(&data[pos..]) {
            // Legacy PyTorch files append raw tensor storage after their pickles.
            break;
        }
        let mut m = Machine {
            data,
            pos,
            stack: Vec::new(),
            memo: HashMap::new(),
            ops: 0,
            pending_array: None,
            depth,
        };
        match m.run(&mut out) {
            Ok(()) => {
                out.pickles += 1;
                pos = m.pos;
                out.end = pos;
            }
            Err(e) => {
                out.error = Some(format!("{e} at byte {}", m.pos));
                break;
            }
        }
    }
    out
}

/// Does `data` plausibly begin a pickle? Protocol 2+ start with `PROTO`; protocol 0/1 with
/// one of the opcodes a pickler emits first.
pub fn starts_pickle(data: &[u8]) -> bool {
    matches!(
        data,
        [0x80, 2..=5, ..]
            | [
                b'(' | b']'
                    | b'}'
                    | b')'
                    | b'c'
                    | b'N'
                    | b'I'
                    | b'S'
                    | b'V'
                    | b'F'
                    | b'L'
                    | b'K'
                    | b'J'
                    | b'M'
                    | b'U'
                    | b'X'
                    | b'G',
                ..
            ]
    )
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| format!("truncated: needs {n} more bytes"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn le(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    }

    fn len_arg(&mut self, n: usize) -> Result<usize, String> {
        let v = self.le(n)?;
        usize::try_from(v).map_err(|_| "length does not fit".to_owned())
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let limit = rest.len().min(MAX_LINE);
        let nl = rest[..limit]
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("unterminated line argument")?;
        let s = String::from_utf8_lossy(&rest[..nl]).into_owned();
        self.pos += nl + 1;
        Ok(s)
    }

    fn push(&mut self, v: Val) -> Result<(), String> {
        if self.stack.len() >= MAX_STACK {
            return Err("stack too deep".to_owned());
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Val, String> {
        self.stack.pop().ok_or_else(|| "stack underflow".to_owned())
    }

    fn pop_mark(&mut self) -> Result<Vec<Val>, String> {
        let at = self
            .stack
            .iter()
            .rposition(|v| *v == Val::Mark)
            .ok_or("no MARK on the stack")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&self) -> Result<&Val, String> {
        self.stack
            .last()
            .ok_or_else(|| "stack underflow".to_owned())
    }

    fn memo_put(&mut self, key: u64) -> Result<(), String> {
        let v = self.top()?.clone();
        if self.memo.len() < MAX_MEMO || self.memo.contains_key(&key) {
            self.memo.insert(key, v);
        }
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), String> {
        let v = self.memo.get(&key).cloned().unwrap_or(Val::Other);
        self.push(v)
    }

    fn import(&mut self, out: &mut Walk, module: String, name: String, at: usize) -> Val {
        out.imports.push(Import {
            module,
            name,
            offset: at,
        });
        Val::Global(out.imports.len() - 1)
    }

    fn run(&mut self, out: &mut Walk) -> Result<(), String> {
        loop {
            self.ops += 1;
            if self.ops > MAX_OPS {
                return Err(format!("more than {MAX_OPS} opcodes"));
            }
            let at = self.pos;
            let op = *self.take(1)?.first().ok_or("truncated")?;
            match op {
                b'.' => return Ok(()),
                b'(' => self.push(Val::Mark)?,
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?;
                }
                b'F' | b'L' | b'P' => {
                    self.line()?;
                    self.push(Val::Other)?;
                }
                b'I' => {
                    let l = self.line()?;
                    let v = l.trim().parse::<i64>().map_or(Val::Other, Val::Int);
                    self.push(v)?;
                }
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.push(Val::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.le(1)?;
                    self.push(Val::Int(v as i64))?;
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.push(Val::Int(v as i64))?;
                }
                b'N' | b')' | b']' | b'}' | 0x88 | 0x89 | 0x8f | 0x97 => {
                    let v = if op == b')' {
                        Val::Tuple(Vec::new())
                    } else {
                        Val::Other
                    };
                    self.push(v)?;
                }
                b'Q' => {
                    self.pop()?;
                    self.push(Val::Other)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.reduce(out, &func, &args);
                    self.push(v)?;
                }
                b'S' => {
                    let l = self.line()?;
                    let s = l.trim().trim_matches(['\'', '"']).to_owned();
                    self.push(Val::Str(s))?;
                }
                b'V' => {
                    let l = self.line()?;
                    self.push(Val::Str(l))?;
                }
                b'T' | b'X' | b'B' => {
                    let n = self.len_arg(4)?;
                    let s = self.take(n)?;
                    let v = if op == b'B' {
                        Val::Other
                    } else {
                        Val::Str(String::from_utf8_lossy(s).into_owned())
                    };
                    self.push(v)?;
                }
                b'U' | b'C' | 0x8c => {
                    let n = self.len_arg(1)?;
                    let s = self.take(n)?;
                    let v = if op == b'C' {
                        Val::Other
                    } else {
                        Val::Str(String::from_utf8_lossy(s).into_owned())
                    };
                    self.push(v)?;
                }
                0x8d | 0x8e | 0x96 => {
                    let n = self.len_arg(8)?;
                    let s = self.take(n)?;
                    let v = if op == 0x8d {
                        Val::Str(String::from_utf8_lossy(s).into_owned())
                    } else {
                        Val::Other
                    };
                    self.push(v)?;
                }
                0x8a => {
                    let n = self.len_arg(1)?;
                    self.take(n)?;
                    self.push(Val::Other)?;
                }
                0x8b => {
                    let n = self.len_arg(4)?;
                    self.take(n)?;
                    self.push(Val::Other)?;
                }
                b'G' => {
                    self.take(8)?;
                    self.push(Val::Other)?;
                }
                b'a' => {
                    self.pop()?;
                }
                b'b' => {
                    self.pop()?;
                    if *self.top()? == Val::Wrapper {
                        self.skip_joblib_array(out)?;
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let v = self.import(out, module, name, at);
                    self.push(v)?;
                }
                b'i' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.pop_mark()?;
                    self.import(out, module, name, at);
                    self.push(Val::Other)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let v = match (module, name) {
                        (Val::Str(m), Val::Str(n)) => self.import(out, m, n, at),
                        _ => {
                            out.unresolved.push(at);
                            Val::Other
                        }
                    };
                    self.push(v)?;
                }
                b'd' | b'l' | 0x91 => {
                    self.pop_mark()?;
                    self.push(Val::Other)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(tuple(items))?;
                }
                b'e' | 0x90 => {
                    self.pop_mark()?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.note_state(&items);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.note_state(&[k, v]);
                }
                b'o' => {
                    let items = self.pop_mark()?;
                    let v = match items.first() {
                        Some(Val::Global(_)) | Some(_) => Val::Other,
                        None => return Err("OBJ without a class".to_owned()),
                    };
                    self.push(v)?;
                }
                0x81 => {
                    self.pop()?;
                    let cls = self.pop()?;
                    let v = self.new_object(out, &cls);
                    self.push(v)?;
                }
                0x92 => {
                    self.pop()?;
                    self.pop()?;
                    let cls = self.pop()?;
                    let v = self.new_object(out, &cls);
                    self.push(v)?;
                }
                0x85 => {
                    let a = self.pop()?;
                    self.push(Val::Tuple(vec![a]))?;
                }
                0x86 => {
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.push(Val::Tuple(vec![a, b]))?;
                }
                0x87 => {
                    let c = self.pop()?;
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.push(Val::Tuple(vec![a, b, c]))?;
                }
                b'g' => {
                    let l = self.line()?;
                    let k = l.trim().parse::<u64>().map_err(|_| "bad GET index")?;
                    self.memo_get(k)?;
                }
                b'h' => {
                    let k = self.le(1)?;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.le(4)?;
                    self.memo_get(k)?;
                }
                b'p' => {
                    let l = self.line()?;
                    let k = l.trim().parse::<u64>().map_err(|_| "bad PUT index")?;
                    self.memo_put(k)?;
                }
                b'q' => {
                    let k = self.le(1)?;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.le(4)?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                0x80 => {
                    let proto = self.le(1)?;
                    if proto > 5 {
                        return Err(format!("unsupported protocol {proto}"));
                    }
                }
                0x95 => {
                    self.take(8)?;
                }
                0x82..=0x84 => {
                    let n = match op {
                        0x82 => 1,
                        0x83 => 2,
                        _ => 4,
                    };
                    self.take(n)?;
                    out.extensions.push(at);
                    self.push(Val::Other)?;
                }
                0x98 => {}
                other => return Err(format!("unknown opcode 0x{other:02x}")),
            }
        }
    }

    fn global_name<'w>(out: &'w Walk, v: &Val) -> Option<(&'w str, &'w str)> {
        match v {
            Val::Global(i) => out
                .imports
                .get(*i)
                .map(|g| (g.module.as_str(), g.name.as_str())),
            _ => None,
        }
    }

    fn reduce(&self, out: &Walk, func: &Val, args: &Val) -> Val {
        match (Self::global_name(out, func), args) {
            (Some(("numpy", "dtype")), Val::Tuple(a)) => match a.first() {
                Some(Val::Str(code)) => Val::Dtype(code.clone()),
                _ => Val::Other,
            },
            _ => Val::Other,
        }
    }

    fn new_object(&mut self, out: &Walk, cls: &Val) -> Val {
        match Self::global_name(out, cls) {
            Some((m, "NumpyArrayWrapper")) if m.starts_with("joblib") => {
                self.pending_array = Some((None, None));
                Val::Wrapper
            }
            _ => Val::Other,
        }
    }

    /// Key/value pairs set into a dict: remember a wrapper's `shape` and `dtype`.
    fn note_state(&mut self, items: &[Val]) {
        let Some((shape, dtype)) = self.pending_array.as_mut() else {
            return;
        };
        for pair in items.chunks(2) {
            match pair {
                [Val::Str(k), Val::Tuple(dims)] if k == "shape" => {
                    *shape = dims
                        .iter()
                        .map(|d| match d {
                            Val::Int(i) => Some(*i),
                            _ => None,
                        })
                        .collect();
                }
                [Val::Str(k), Val::Dtype(code)] if k == "dtype" => *dtype = Some(code.clone()),
                _ => {}
            }
        }
    }

    /// After `BUILD` of a joblib wrapper: skip alignment padding and the raw array bytes, or
    /// walk the nested pickle of an object array.
    fn skip_joblib_array(&mut self, out: &mut Walk) -> Result<(), String> {
        let Some((shape, dtype)) = self.pending_array.take() else {
            return Ok(());
        };
        let (Some(shape), Some(dtype)) = (shape, dtype) else {
            return Err("joblib array without shape or dtype".to_owned());
        };
        // Padding: one length byte then that many 0xff bytes, aligning the array to 16.
        if let Some(&pad) = self.data.get(self.pos) {
            let pad = usize::from(pad);
            let fill = self.data.get(self.pos + 1..self.pos + 1 + pad);
            if pad < 16 && fill.is_some_and(|f| f.iter().all(|b| *b == 0xff)) {
                self.pos += 1 + pad;
            }
        }
        // Object arrays pickle their dtype as `O8` (or `|O`): the data is a nested pickle.
        if dtype
            .trim_start_matches(['|', '<', '>', '='])
            .starts_with('O')
        {
            if self.depth >= MAX_NESTING {
                return Err("joblib object arrays nested too deep".to_owned());
            }
            let nested = walk_nested(&self.data[self.pos..], self.depth + 1);
            let base = self.pos;
            for mut i in nested.imports.into_iter() {
                i.offset += base;
                out.imports.push(i);
            }
            out.unresolved
                .extend(nested.unresolved.iter().map(|o| o + base));
            if let Some(e) = nested.error {
                return Err(format!("nested object array: {e}"));
            }
            // One pickle per object array; joblib writes nothing else in between.
            self.pos = base + nested.end;
            return Ok(());
        }
        let item = itemsize(&dtype).ok_or_else(|| format!("unknown joblib dtype {dtype:?}"))?;
        let count = shape
            .iter()
            .try_fold(1u64, |acc, d| {
                u64::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
            })
            .ok_or("bad joblib array shape")?;
        let bytes = count
            .checked_mul(item)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or("joblib array too large")?;
        self.take(bytes)?;
        Ok(())
    }
}

fn tuple(items: Vec<Val>) -> Val {
    if items.len() > MAX_TUPLE {
        Val::Other
    } else {
        Val::Tuple(items)
    }
}

/// Bytes per item of a NumPy dtype string (`f8`, `<i4`, `U10`, `S5`, `?`).
fn itemsize(code: &str) -> Option<u64> {
    let c = code.trim_start_matches(['|', '<', '>', '=']);
    let (kind, digits) = c.split_at(c.find(|ch: char| ch.is_ascii_digit()).unwrap_or(c.len()));
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    match kind {
        "?" | "b1" => Some(1),
        "b" | "B" => Some(1),
        "f" | "i" | "u" | "c" | "S" | "a" | "V" | "m" | "M" if n > 0 => Some(n),
        "U" if n > 0 => n.checked_mul(4),
        "e" => Some(2),
        "d" => Some(8),
        "l" | "q" => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(w: &Walk) -> Vec<String> {
        w.imports
            .iter()
            .map(|i| format!("{}.{}", i.module, i.name))
            .collect()
    }

    #[test]
    fn protocol_0_global_and_reduce() {
        let w = walk(b"cos\nsystem\n(S'id'\ntR.");
        assert_eq!(names(&w), ["os.system"]);
        assert_eq!(w.pickles, 1);
        assert!(w.error.is_none());
    }

    #[test]
    fn stack_global_from_memo() {
        // PROTO 4, 'posix' MEMOIZE, 'system' MEMOIZE, STACK_GLOBAL, then again via BINGET.
        let mut p = vec![0x80, 4, 0x8c, 5];
        p.extend_from_slice(b"posix");
        p.extend_from_slice(&[0x94, 0x8c, 6]);
        p.extend_from_slice(b"system");
        p.extend_from_slice(&[0x94, 0x93, b'h', 0, b'h', 1, 0x93, b'0', b'.']);
        let w = walk(&p);
        assert_eq!(names(&w), ["posix.system", "posix.system"]);
        assert!(w.error.is_none(), "{:?}", w.error);
    }

    #[test]
    fn unresolvable_stack_global_is_recorded() {
        let w = walk(&[0x80, 4, b'N', b'N', 0x93, b'.']);
        assert_eq!(w.unresolved.len(), 1);
    }

    #[test]
    fn second_pickle_is_walked() {
        let w = walk(b"N.cos\nsystem\n.");
        assert_eq!(w.pickles, 2);
        assert_eq!(names(&w), ["os.system"]);
    }

    #[test]
    fn trailing_raw_data_after_a_pickle_is_not_an_error() {
        let w = walk(b"N.\x00\x01\x02garbage");
        assert_eq!(w.pickles, 1);
        assert!(w.error.is_none());
    }

    #[test]
    fn malformed_inputs_report_errors_without_panicking() {
        for bad in [
            &b"\x80\x04\x8c\xff"[..], // string length past the end
            &b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff"[..], // huge 8-byte length
            &b"\x80\x04R."[..],       // underflow
            &b"cos\nsys"[..],         // unterminated line
            &b"\x80\x04\xff"[..],     // unknown opcode
            &b"\x80\x09."[..],        // unknown protocol
            &b"(((((((((("[..],       // truncated, no STOP
        ] {
            assert!(walk(bad).error.is_some(), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut p = vec![b'('; MAX_STACK + 10];
        p.push(b'.');
        let w = walk(&p);
        assert!(w.error.is_some_and(|e| e.contains("stack too deep")));
    }

    #[test]
    fn long_line_is_bounded() {
        let mut p = b"S'".to_vec();
        p.extend(std::iter::repeat_n(b'a', MAX_LINE + 1));
        p.extend_from_slice(b"'\n.");
        assert!(walk(&p).error.is_some());
    }

    #[test]
    fn op_count_is_bounded() {
        // N, 0 (push, pop) pairs: cheap ops that would otherwise run forever on a huge file.
        let mut p = Vec::new();
        for _ in 0..(MAX_OPS / 2 + 1) {
            p.extend_from_slice(b"N0");
        }
        p.push(b'.');
        assert!(walk(&p).error.is_some_and(|e| e.contains("opcodes")));
    }

    #[test]
    fn memo_is_bounded() {
        let mut p = vec![0x80, 4, b'N'];
        p.extend(std::iter::repeat_n(0x94, MAX_MEMO + 5));
        p.push(b'.');
        let w = walk(&p);
        assert!(w.error.is_none());
    }

    /// SHORT_BINUNICODE of `s`.
    fn su(s: &str) -> Vec<u8> {
        let mut v = vec![0x8c, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn joblib_raw_array_bytes_are_skipped_and_the_rest_walked() {
        let mut p = vec![0x80, 4, b'}', b'('];
        p.extend(su("coef"));
        p.extend(su("joblib.numpy_pickle"));
        p.extend(su("NumpyArrayWrapper"));
        p.extend([0x93, b')', 0x81, b'}', b'(']);
        p.extend(su("shape"));
        p.extend([b'K', 4, 0x85]);
        p.extend(su("dtype"));
        p.extend(su("numpy"));
        p.extend(su("dtype"));
        p.push(0x93);
        p.extend(su("f8"));
        p.extend([0x89, 0x88, 0x87, b'R', b'(', b'K', 3]);
        p.extend(su("<"));
        p.extend([b'N', b'N', b'N', b'K', 0, b't', b'b', b'u', b'b']);
        // joblib's alignment padding, then 4 float64 values of raw bytes (with opcodes in them).
        p.push(3);
        p.extend([0xff; 3]);
        p.extend(b"R.cos\nsystem\n...................");
        p.extend(su("z"));
        p.extend(b"cposix\nsystem\n");
        p.extend(su("id"));
        p.extend([0x85, b'R', b'u', b'.']);
        let w = walk(&p);
        assert!(w.error.is_none(), "{:?}", w.error);
        assert_eq!(
            names(&w),
            [
                "joblib.numpy_pickle.NumpyArrayWrapper",
                "numpy.dtype",
                "posix.system"
            ]
        );
    }

    #[test]
    fn pickle_count_is_bounded() {
        let many = b"N.".repeat(MAX_PICKLES + 10);
        let w = walk(&many);
        assert_eq!(w.pickles, MAX_PICKLES);
    }

    #[test]
    fn itemsizes() {
        assert_eq!(itemsize("<f8"), Some(8));
        assert_eq!(itemsize("f4"), Some(4));
        assert_eq!(itemsize("<U3"), Some(12));
        assert_eq!(itemsize("|b1"), Some(1));
        assert_eq!(itemsize("zz"), None);
    }
}
