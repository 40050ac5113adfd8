//! Output validation (MG-1) of whole and streamed answers: required and denied patterns,
//! length, credential and PII leakage, exfiltration links, the canary, and content scoring
//! of answers. Split from the input side of [`super`], which owns the route's settings.

use std::sync::LazyLock;

use regex::Regex;
use tollgate_guard::injection::contains_canary;

use tollgate_guard::content::TopicVerdict;

use super::{
    CONTENT_RECHECK_BYTES, CONTENT_WINDOW_BYTES, CheckReport, Checks, LeakAction, PII,
    RequestChecks, Verdict, bounded, leak_worthy,
};
use crate::error::GatewayError;

impl Checks {
    /// Checks that need the whole answer: required patterns.
    pub fn check_complete(&self, text: &str, report: &mut CheckReport) -> Result<(), GatewayError> {
        if self.output.require.iter().any(|r| !r.is_match(text)) {
            report.output.push("require_pattern");
            return Err(GatewayError::blocked(
                "output",
                "an answer missing a required pattern",
            ));
        }
        Ok(())
    }

    /// Validate a complete answer text; `Err` names the guard and the finding.
    pub fn check_output(
        &self,
        text: &str,
        state: &RequestChecks,
        report: &mut CheckReport,
    ) -> Result<(), GatewayError> {
        self.check_output_with(text, state, report, true)
    }

    /// [`Checks::check_output`]; `heavy = false` skips the classifier and the PII scan
    /// (streams run those every few hundred bytes, not on every chunk).
    pub fn check_output_with(
        &self,
        text: &str,
        state: &RequestChecks,
        report: &mut CheckReport,
        heavy: bool,
    ) -> Result<(), GatewayError> {
        if let Some(c) = &state.canary {
            if contains_canary(text, c) {
                report.output.push("canary");
                return Err(GatewayError::blocked(
                    "output",
                    "system prompt leak (canary)",
                ));
            }
        }
        let o = &self.output;
        if o.max_chars.is_some_and(|m| text.chars().count() > m) {
            report.output.push("length");
            return Err(GatewayError::blocked(
                "output",
                "answer longer than the route's max_chars",
            ));
        }
        if heavy {
            let leaked = PII.detect(text).into_iter().any(|d| leak_worthy(d.kind));
            if leaked {
                report.output.push("pii");
                if o.pii_leak == LeakAction::Block {
                    return Err(GatewayError::blocked(
                        "output",
                        "personal data in the answer",
                    ));
                }
            }
        }
        if o.deny.iter().any(|r| r.is_match(text)) {
            report.output.push("deny_pattern");
            return Err(GatewayError::blocked("output", "a denied pattern"));
        }
        if !tollgate_guard::secret::find_secrets(text).is_empty() {
            report.output.push("secret");
            if o.secrets == Verdict::Block {
                return Err(GatewayError::blocked(
                    "output",
                    "a credential in the answer",
                ));
            }
        }
        if has_exfil_link(text, &o.allowed_domains) {
            report.output.push("exfil_link");
            if o.exfil == Verdict::Block {
                return Err(GatewayError::blocked(
                    "output",
                    "a link or image carrying data to an unapproved domain",
                ));
            }
        }
        if let (true, Some(c)) = (heavy, &self.content) {
            let v = c.classifier.classify(&bounded(text));
            let flagged = v.flagged(&c.thresholds);
            if !flagged.is_empty() {
                report.content.extend(flagged.iter().map(|f| f.as_str()));
                if c.verdict == Verdict::Block {
                    return Err(GatewayError::blocked("content", flagged[0].as_str()));
                }
            }
            if let Some(t) = &c.topics {
                match t.check(text) {
                    TopicVerdict::Allowed => {}
                    TopicVerdict::Denied { .. } | TopicVerdict::OffTopic => {
                        report.content.push("off_topic");
                        if c.verdict == Verdict::Block {
                            return Err(GatewayError::blocked("content", "off-topic answer"));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

static LINK: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"(?i)(!?)\[[^\]]{0,200}\]\(\s*(https?://[^\s)]+)|(https?://[^\s<>"')\]]+)"#).ok()
});

/// Markdown images anywhere, and links whose URL carries data (a query string or a long
/// path), to a domain that is not on the route's allow-list: the classic way an injected
/// model leaks conversation data (an image URL is fetched by the client without a click).
pub fn has_exfil_link(text: &str, allowed: &[String]) -> bool {
    let Some(re) = LINK.as_ref() else {
        return false;
    };
    if !text.contains("http") {
        return false;
    }
    for c in re.captures_iter(text) {
        let image = c.get(1).is_some_and(|m| m.as_str() == "!");
        let Some(url) = c.get(2).or_else(|| c.get(3)).map(|m| m.as_str()) else {
            continue;
        };
        let Ok(parsed) = reqwest::Url::parse(url) else {
            continue;
        };
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if allowed
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        {
            continue;
        }
        // Images are fetched without a click, so less data in the URL is enough to matter.
        let (min_query, min_path) = if image { (8, 48) } else { (16, 64) };
        let carries_data =
            parsed.query().is_some_and(|q| q.len() >= min_query) || parsed.path().len() > min_path;
        if carries_data {
            return true;
        }
    }
    false
}

/// Incremental output validation of a stream: keeps a bounded window of emitted text and
/// the held-back tail; re-runs content scoring every [`CONTENT_RECHECK_BYTES`].
#[derive(Debug, Clone)]
pub struct StreamChecker {
    checks: Checks,
    state: RequestChecks,
    window: String,
    since_content: usize,
}

impl StreamChecker {
    /// Whether leaked PII is redacted (`output.pii_leak = "redact"`) rather than flagged or
    /// blocked.
    pub fn redacts(&self) -> bool {
        self.checks.output.pii_leak == LeakAction::Redact
    }

    /// A checker for one stream.
    pub fn new(checks: Checks, state: RequestChecks) -> Self {
        Self {
            checks,
            state,
            window: String::new(),
            since_content: 0,
        }
    }

    /// Check `text` about to be released; `Err` ends the stream.
    pub fn check(
        &mut self,
        text: &str,
        last: bool,
        report: &mut CheckReport,
    ) -> Result<(), GatewayError> {
        self.window.push_str(text);
        self.since_content += text.len();
        if self.window.len() > CONTENT_WINDOW_BYTES * 2 {
            let mut cut = self.window.len() - CONTENT_WINDOW_BYTES;
            while !self.window.is_char_boundary(cut) {
                cut += 1;
            }
            self.window.drain(..cut);
        }
        // Cheap checks on every piece; the classifier and PII scan every few hundred bytes.
        let heavy = last || self.since_content >= CONTENT_RECHECK_BYTES;
        if heavy {
            self.since_content = 0;
        }
        let mut report_here = CheckReport::default();
        let result =
            self.checks
                .check_output_with(&self.window, &self.state, &mut report_here, heavy);
        // A finding seen on one window is seen again on the next: record each kind once.
        for k in report_here.output {
            if !report.output.contains(&k) {
                report.output.push(k);
            }
        }
        for k in report_here.content {
            if !report.content.contains(&k) {
                report.content.push(k);
            }
        }
        result?;
        if last {
            self.checks.check_complete(&self.window, report)?;
        }
        Ok(())
    }
}
