//! A bounded parser for Server-Sent Events (the WHATWG `text/event-stream` format) as spoken
//! by OpenAI and Anthropic streams, and the encoder for what we send back.
//!
//! Upstream bytes are untrusted: an upstream that never sends a newline must not make us
//! buffer without end, so a line or event above [`MAX_EVENT_BYTES`] is an error. Bytes are
//! decoded only once a whole line is buffered, so a UTF-8 character split across network
//! chunks is reassembled instead of corrupted.

use bytes::{Bytes, BytesMut};

/// Largest single event (all its `data:` lines together) accepted from an upstream.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// One event: optional `event:` name and the joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// A data-only event.
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            event: None,
            data: data.into(),
        }
    }

    /// A named event.
    pub fn named(event: &str, data: impl Into<String>) -> Self {
        Self {
            event: Some(event.to_owned()),
            data: data.into(),
        }
    }

    /// Wire encoding of this event, ready to send to a client.
    pub fn encode(&self) -> Bytes {
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(e) = &self.event {
            out.push_str("event: ");
            out.push_str(e);
            out.push('\n');
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// Why an event stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line or event exceeded [`MAX_EVENT_BYTES`].
    #[error("upstream stream event exceeds {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    /// A line was not valid UTF-8.
    #[error("upstream stream is not valid UTF-8")]
    Utf8,
}

/// Incremental parser: feed it chunks, take complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    event: Option<String>,
    data: String,
    has_data: bool,
    skip_lf: bool,
}

impl SseParser {
    /// A fresh parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one chunk; complete events are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.buf.extend_from_slice(chunk);
        loop {
            // A CR at the end of the previous chunk may be followed by LF in this one.
            if self.skip_lf {
                if self.buf.is_empty() {
                    break;
                }
                if self.buf[0] == b'\n' {
                    let _ = self.buf.split_to(1);
                }
                self.skip_lf = false;
            }
            let Some(pos) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.buf.len() > MAX_EVENT_BYTES {
                    return Err(SseError::TooLarge);
                }
                break;
            };
            let line = self.buf.split_to(pos);
            let terminator = self.buf.split_to(1);
            if terminator[0] == b'\r' {
                self.skip_lf = true;
            }
            let line = std::str::from_utf8(&line).map_err(|_| SseError::Utf8)?;
            self.line(line, out)?;
        }
        Ok(())
    }

    /// End of input: dispatch a final event that lacked its blank line (lenient, as browsers).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if !self.buf.is_empty() {
            let rest = self.buf.split();
            let line = std::str::from_utf8(&rest)
                .map_err(|_| SseError::Utf8)?
                .to_owned();
            self.line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT_BYTES {
                    return Err(SseError::TooLarge);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out)?;
        }
        p.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn parses_openai_and_anthropic_shapes() {
        let ev = parse_all(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]).unwrap();
        assert_eq!(
            ev,
            vec![SseEvent::data("{\"a\":1}"), SseEvent::data("[DONE]")]
        );
        let ev =
            parse_all(&[b"event: message_start\ndata: {}\n\n: ping\n\nevent: ping\ndata: {}\n\n"])
                .unwrap();
        assert_eq!(
            ev,
            vec![
                SseEvent::named("message_start", "{}"),
                SseEvent::named("ping", "{}")
            ]
        );
    }

    #[test]
    fn handles_any_split_and_line_ending() {
        let whole = "event: x\r\ndata: héllo\r\ndata: world\r\n\r\ndata:no-space\n\n";
        let want = vec![
            SseEvent::named("x", "héllo\nworld"),
            SseEvent::data("no-space"),
        ];
        let bytes = whole.as_bytes();
        for i in 0..bytes.len() {
            let (a, b) = bytes.split_at(i);
            assert_eq!(parse_all(&[a, b]).unwrap(), want, "split at {i}");
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_all(&bytewise).unwrap(), want);
    }

    #[test]
    fn unterminated_final_event_is_dispatched() {
        assert_eq!(
            parse_all(&[b"data: last"]).unwrap(),
            vec![SseEvent::data("last")]
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(
            parse_all(&[b"data: \xff\xfe\n\n"]).unwrap_err(),
            SseError::Utf8
        );
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(parse_all(&[&big]).unwrap_err(), SseError::TooLarge);
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let line = format!("data: {}\n", "b".repeat(MAX_EVENT_BYTES / 2));
        p.feed(line.as_bytes(), &mut out).unwrap();
        assert_eq!(
            p.feed(line.as_bytes(), &mut out).unwrap_err(),
            SseError::TooLarge
        );
        // Junk fields and lines without colons are ignored.
        assert!(
            parse_all(&[b"garbage\nid: 3\nretry: x\n\n"])
                .unwrap()
                .is_empty()
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..16)) {
            let mut p = SseParser::new();
            let mut out = Vec::new();
            for c in &chunks {
                if p.feed(c, &mut out).is_err() {
                    return Ok(());
                }
            }
            let _ = p.finish(&mut out);
        }

        #[test]
        fn events_survive_any_chunking(datas in proptest::collection::vec("[^\r\n]{0,40}", 1..6), cut in 0usize..400) {
            let events: Vec<SseEvent> = datas.iter().map(|d| SseEvent::named("e", d.clone())).collect();
            let wire: Vec<u8> = events.iter().flat_map(|e| e.encode().to_vec()).collect();
            let cut = cut.min(wire.len());
            let got = parse_all(&[&wire[..cut], &wire[cut..]]).unwrap();
            proptest::prop_assert_eq!(got, events);
        }
    }

    #[test]
    fn encode_round_trips() {
        let e = SseEvent::named("content_block_delta", "line1\nline2");
        assert_eq!(parse_all(&[&e.encode()]).unwrap(), vec![e]);
    }
}
