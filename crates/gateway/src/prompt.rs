//! Prompts as versioned objects (checklist DO-3, DO-4).
//!
//! A [`Prompt`] is a system template and message templates with `{{variables}}`, model
//! parameters and the route it runs on. Its versions live in the store
//! ([`tollgate_store::prompt`]); the `staging` and `production` environments each point at a
//! version. Every instance reloads the deployed versions every [`REFRESH_INTERVAL`] into
//! [`Prompts`], so a promotion or rollback reaches all of them within a second.
//!
//! A client asks for a prompt with `"model": "prompt:NAME"`. Keys of the staging environment
//! (`tg_test_`) get the staging version, production keys (`tg_live_`) the production one.
//! Variables come from a top-level `"variables": {…}` object (removed before the request goes
//! upstream) or from the [`VARIABLES_HEADER`] header holding a JSON object; the body wins
//! where both name a variable. [`Prompts::apply`] renders the templates, puts the prompt's
//! system text and messages before the client's, sets the prompt's parameters and replaces
//! `model` with the prompt's route; from there the request takes the normal path (key scope,
//! guards, limits, upstream). The audit record names the prompt and version
//! (`prompt: "NAME@vN"`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tollgate_store::key::Environment;
use tollgate_store::prompt::{Deployed, Deployment, PromptEnv, PromptVersion};

use crate::error::GatewayError;
use crate::wire::WireFormat;

/// How often the deployed versions are reloaded from the store.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(400);
/// Prefix of `model` that names a prompt instead of a route.
pub const MODEL_PREFIX: &str = "prompt:";
/// Header that may carry the variables as a JSON object.
pub const VARIABLES_HEADER: &str = "x-tollgate-prompt-variables";
/// Largest canonical prompt, in bytes.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;
/// Most message templates in one prompt.
pub const MAX_MESSAGES: usize = 64;
/// Most distinct variables in one prompt, and in one request.
pub const MAX_VARIABLES: usize = 64;
/// Largest value of one variable, in bytes.
pub const MAX_VARIABLE_BYTES: usize = 32 * 1024;
/// Largest [`VARIABLES_HEADER`] value, in bytes.
pub const MAX_VARIABLES_HEADER_BYTES: usize = 16 * 1024;
/// Longest prompt name.
pub const MAX_NAME_LEN: usize = 64;

/// `[governance]`: who may promote what.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// Refuse a promotion by the author of the version being promoted (four-eyes rule).
    #[serde(default)]
    pub four_eyes: bool,
}

/// One message template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplate {
    /// `user` or `assistant` (system text goes in [`Prompt::system`]).
    pub role: String,
    /// Text with `{{variables}}`.
    pub content: String,
}

/// Model parameters a prompt fixes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Most output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

/// A prompt: what `tollgate prompts push` reads (YAML, TOML or JSON) and the store keeps as
/// canonical JSON ([`Prompt::canonical`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// Name clients use after `prompt:` (1-64 of `a-z 0-9 _ - .`).
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Route (model alias) the rendered request goes to.
    pub route: String,
    /// System template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Message templates, put before the client's messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MessageTemplate>,
    /// Model parameters; they replace the client's.
    #[serde(default)]
    pub params: Params,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Split a template into text and `{{ name }}` pieces.
fn pieces(t: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("a `{{` is never closed with `}}`".to_owned());
        };
        let name = after[..close].trim();
        if !valid_var(name) {
            return Err(format!(
                "`{{{{{}}}}}` is not a variable name (use letters, digits and _)",
                &after[..close]
            ));
        }
        out.push(Piece::Var(name));
        rest = &after[close + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

fn valid_var(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// Whether `name` is an acceptable prompt name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

fn render(t: &str, vars: &BTreeMap<String, String>, missing: &mut BTreeSet<String>) -> String {
    let mut out = String::with_capacity(t.len());
    // Templates were checked when the prompt was loaded; an unparsable one renders as is.
    match pieces(t) {
        Ok(ps) => {
            for p in ps {
                match p {
                    Piece::Text(s) => out.push_str(s),
                    Piece::Var(v) => match vars.get(v) {
                        Some(val) => out.push_str(val),
                        None => {
                            missing.insert(v.to_owned());
                        }
                    },
                }
            }
        }
        Err(_) => out.push_str(t),
    }
    out
}

impl Prompt {
    /// Every problem with this prompt, each naming where it is; empty when it is valid.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !valid_name(&self.name) {
            p.push(format!(
                "name {:?}: use 1-{MAX_NAME_LEN} characters of a-z 0-9 _ - .",
                self.name
            ));
        }
        if self.route.trim().is_empty() || self.route.starts_with(MODEL_PREFIX) {
            p.push("route: name the route (model alias) the prompt runs on".to_owned());
        }
        if self.system.is_none() && self.messages.is_empty() {
            p.push("a prompt needs a `system` template or `messages`".to_owned());
        }
        if self.messages.len() > MAX_MESSAGES {
            p.push(format!(
                "messages: {} templates, at most {MAX_MESSAGES}",
                self.messages.len()
            ));
        }
        if let Some(s) = &self.system {
            if let Err(e) = pieces(s) {
                p.push(format!("system: {e}"));
            }
        }
        for (i, m) in self.messages.iter().enumerate() {
            if !matches!(m.role.as_str(), "user" | "assistant") {
                p.push(format!(
                    "messages[{i}].role {:?}: use \"user\" or \"assistant\" (system text goes in `system`)",
                    m.role
                ));
            }
            if let Err(e) = pieces(&m.content) {
                p.push(format!("messages[{i}].content: {e}"));
            }
        }
        let v = self.variables();
        if v.len() > MAX_VARIABLES {
            p.push(format!("{} variables, at most {MAX_VARIABLES}", v.len()));
        }
        let pr = &self.params;
        if pr.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            p.push("params.temperature: between 0 and 2".to_owned());
        }
        if pr.top_p.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            p.push("params.top_p: between 0 and 1".to_owned());
        }
        if pr.max_tokens == Some(0) {
            p.push("params.max_tokens: at least 1".to_owned());
        }
        if self.canonical().len() > MAX_PROMPT_BYTES {
            p.push(format!(
                "the prompt is larger than {MAX_PROMPT_BYTES} bytes"
            ));
        }
        p
    }

    /// The variables its templates use.
    pub fn variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let texts = self
            .system
            .iter()
            .chain(self.messages.iter().map(|m| &m.content));
        for t in texts {
            for piece in pieces(t).unwrap_or_default() {
                if let Piece::Var(v) = piece {
                    out.insert(v.to_owned());
                }
            }
        }
        out
    }

    /// Canonical JSON (pretty, fields in a fixed order): what is stored, hashed and diffed.
    pub fn canonical(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parse stored canonical JSON.
    pub fn from_json(text: &str) -> Result<Self, String> {
        if text.len() > MAX_PROMPT_BYTES {
            return Err(format!("larger than {MAX_PROMPT_BYTES} bytes"));
        }
        let p: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let problems = p.validate();
        if problems.is_empty() {
            Ok(p)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Hex SHA-256 of canonical content.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// A unified-style line diff of `old` → `new` (`-`/`+`/` ` prefixed lines); empty when equal.
/// Quadratic in the line counts, which [`MAX_PROMPT_BYTES`] keeps small.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a == b {
        return String::new();
    }
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

/// The version `env` points at now, from a prompt's deployment log.
pub fn deployed_version(log: &[Deployment], env: PromptEnv) -> Option<i64> {
    log.iter()
        .filter(|d| d.env == env)
        .max_by_key(|d| d.seq)
        .map(|d| d.version)
}

/// How people name a stored version's subject, and the command that evaluates it: prompts by
/// name, route versions (stored as `route:ALIAS`) as "route ALIAS".
pub fn subject_of(stored: &str) -> (String, String) {
    match stored.strip_prefix(crate::rollout::STORE_PREFIX) {
        Some(alias) => (
            format!("route {alias}"),
            format!("tollgate routes test {alias} --suite SUITE"),
        ),
        None => (
            stored.to_owned(),
            format!("tollgate prompts test {stored} --suite SUITE"),
        ),
    }
}

/// Why `approver` may not promote `v` (a prompt or a route version), if they may not: it was
/// never evaluated, it failed its evaluation, or (with the four-eyes rule) the approver wrote
/// it.
pub fn promotion_refusal(v: &PromptVersion, approver: &str, four_eyes: bool) -> Option<String> {
    let ((name, test), n) = (subject_of(&v.name), v.version);
    match &v.eval {
        None => Some(format!(
            "{name} v{n} has not been evaluated; run `{test}` first"
        )),
        Some(e) if !e.passed => Some(format!(
            "{name} v{n} failed its evaluation ({}); fix it and push a new version",
            e.at.to_rfc3339()
        )),
        Some(_) if four_eyes && v.author == approver => Some(format!(
            "four-eyes rule ([governance] four_eyes): {approver} wrote {name} v{n} and may not also approve it"
        )),
        Some(_) => None,
    }
}

/// What a rollback of production does: `(in force now, version to restore)`, the latter
/// being `to`, else the newest version ever in production older than the one in force.
pub fn rollback_target(
    name: &str,
    log: &[Deployment],
    to: Option<i64>,
) -> Result<(i64, i64), String> {
    let Some(now) = deployed_version(log, PromptEnv::Production) else {
        return Err(format!("{name} has no production version to roll back"));
    };
    let target = match to {
        Some(v) => v,
        None => log
            .iter()
            .filter(|d| d.env == PromptEnv::Production && d.version < now)
            .map(|d| d.version)
            .max()
            .ok_or_else(|| {
                format!(
                    "{name} v{now} is the first production version; there is nothing to roll back to (name one with --to)"
                )
            })?,
    };
    if target == now {
        return Err(format!("{name} v{now} is already in production"));
    }
    Ok((now, target))
}

/// The environment a key's requests resolve prompts in.
pub fn env_of(key: Environment) -> PromptEnv {
    match key {
        Environment::Staging => PromptEnv::Staging,
        Environment::Production => PromptEnv::Production,
    }
}

/// A deployed version, parsed.
#[derive(Debug)]
pub struct Active {
    /// Version number.
    pub version: i64,
    /// The prompt.
    pub prompt: Prompt,
}

/// What [`Prompts::apply`] did, for the context and the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Prompt name.
    pub name: String,
    /// Version used.
    pub version: i64,
}

impl Applied {
    /// `NAME@vN`.
    pub fn label(&self) -> String {
        format!("{}@v{}", self.name, self.version)
    }
}

/// The deployed versions, as of the last refresh.
#[derive(Debug, Default)]
pub struct Prompts {
    active: RwLock<HashMap<(String, PromptEnv), Arc<Active>>>,
}

impl Prompts {
    /// Replace the snapshot with `list`. A version already loaded is kept as parsed; one that
    /// does not parse is left out (and logged), so a bad row never stops the others.
    pub fn load(&self, list: &[Deployed]) {
        let old = self.active.read().clone();
        let mut next = HashMap::with_capacity(list.len());
        for d in list {
            if d.name.starts_with(crate::rollout::STORE_PREFIX) {
                continue;
            }
            let k = (d.name.clone(), d.env);
            if let Some(a) = old.get(&k).filter(|a| a.version == d.version) {
                next.insert(k, a.clone());
                continue;
            }
            match Prompt::from_json(&d.content) {
                Ok(prompt) => {
                    next.insert(
                        k,
                        Arc::new(Active {
                            version: d.version,
                            prompt,
                        }),
                    );
                }
                Err(e) => tracing::warn!(
                    prompt = %d.name,
                    version = d.version,
                    env = d.env.as_str(),
                    error = %e,
                    "stored prompt version does not parse; not serving it"
                ),
            }
        }
        *self.active.write() = next;
    }

    /// The version deployed for `name` in `env`.
    pub fn get(&self, name: &str, env: PromptEnv) -> Option<Arc<Active>> {
        self.active.read().get(&(name.to_owned(), env)).cloned()
    }

    /// If `body` asks for `prompt:NAME`, render that prompt in `env` into it (see the module
    /// docs); `Ok(None)` for a plain model.
    pub fn apply(
        &self,
        env: PromptEnv,
        format: WireFormat,
        headers: &HeaderMap,
        body: &mut Map<String, Value>,
    ) -> Result<Option<Applied>, GatewayError> {
        let Some(name) = body
            .get("model")
            .and_then(Value::as_str)
            .and_then(|m| m.strip_prefix(MODEL_PREFIX))
            .map(str::to_owned)
        else {
            if body.contains_key("variables") {
                return Err(GatewayError::bad_request(
                    "`variables` is only accepted with `\"model\": \"prompt:NAME\"`",
                ));
            }
            return Ok(None);
        };
        let Some(active) = self.get(&name, env) else {
            let mut e = GatewayError::model_not_found(&format!("{MODEL_PREFIX}{name}"));
            e.message = format!(
                "no version of prompt {name:?} is deployed in {} (prompts are pushed to staging with `tollgate prompts push` and promoted with `tollgate prompts promote`)",
                env.as_str()
            );
            return Err(e);
        };
        let vars = variables(headers, body.remove("variables"))?;
        let p = &active.prompt;
        let mut missing = BTreeSet::new();
        let system = p.system.as_ref().map(|s| render(s, &vars, &mut missing));
        let msgs: Vec<Value> = p
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": render(&m.content, &vars, &mut missing)}))
            .collect();
        if !missing.is_empty() {
            return Err(GatewayError::bad_request(format!(
                "prompt {name} v{} needs the variables {}; pass them in a top-level `variables` object or the {VARIABLES_HEADER} header",
                active.version,
                missing.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let client = match body.remove("messages") {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(GatewayError::bad_request("`messages` must be an array")),
        };
        let mut messages = Vec::with_capacity(msgs.len() + client.len() + 1);
        match format {
            WireFormat::OpenAi => {
                if let Some(s) = system {
                    messages.push(json!({"role": "system", "content": s}));
                }
            }
            WireFormat::Anthropic => {
                if let Some(s) = system {
                    let merged = match body.remove("system") {
                        None => Value::String(s),
                        Some(Value::String(c)) => Value::String(format!("{s}\n\n{c}")),
                        Some(Value::Array(mut blocks)) => {
                            blocks.insert(0, json!({"type": "text", "text": s}));
                            Value::Array(blocks)
                        }
                        Some(_) => {
                            return Err(GatewayError::bad_request(
                                "`system` must be a string or an array of blocks",
                            ));
                        }
                    };
                    body.insert("system".into(), merged);
                }
            }
        }
        messages.extend(msgs);
        messages.extend(client);
        body.insert("messages".into(), Value::Array(messages));
        let pr = &p.params;
        if let Some(t) = pr.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(t) = pr.top_p {
            body.insert("top_p".into(), json!(t));
        }
        if let Some(t) = pr.max_tokens {
            body.insert("max_tokens".into(), json!(t));
        }
        if let Some(s) = &pr.stop {
            let field = match format {
                WireFormat::OpenAi => "stop",
                WireFormat::Anthropic => "stop_sequences",
            };
            body.insert(field.into(), json!(s));
        }
        body.insert("model".into(), Value::String(p.route.clone()));
        Ok(Some(Applied {
            name,
            version: active.version,
        }))
    }
}

/// The request's variables: the header's object, then the body's over it.
fn variables(
    headers: &HeaderMap,
    body: Option<Value>,
) -> Result<BTreeMap<String, String>, GatewayError> {
    let mut out = BTreeMap::new();
    let mut take = |v: Value, from: &str| -> Result<(), GatewayError> {
        let Value::Object(m) = v else {
            return Err(GatewayError::bad_request(format!(
                "{from} must be a JSON object of variable names to values"
            )));
        };
        for (k, v) in m {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(GatewayError::bad_request(format!(
                        "{from}: variable {k:?} must be a string, number or boolean"
                    )));
                }
            };
            if text.len() > MAX_VARIABLE_BYTES {
                return Err(GatewayError::bad_request(format!(
                    "{from}: variable {k:?} is longer than {MAX_VARIABLE_BYTES} bytes"
                )));
            }
            out.insert(k, text);
        }
        if out.len() > MAX_VARIABLES {
            return Err(GatewayError::bad_request(format!(
                "more than {MAX_VARIABLES} variables"
            )));
        }
        Ok(())
    };
    if let Some(h) = headers.get(VARIABLES_HEADER) {
        if h.len() > MAX_VARIABLES_HEADER_BYTES {
            return Err(GatewayError::bad_request(format!(
                "{VARIABLES_HEADER} is longer than {MAX_VARIABLES_HEADER_BYTES} bytes"
            )));
        }
        let v: Value = h
            .to_str()
            .ok()
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| {
                GatewayError::bad_request(format!("{VARIABLES_HEADER} must hold a JSON object"))
            })?;
        take(v, VARIABLES_HEADER)?;
    }
    if let Some(v) = body {
        take(v, "`variables`")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> Prompt {
        Prompt {
            name: "support".into(),
            description: String::new(),
            route: "gpt".into(),
            system: Some("You help {{ customer }} with {{product}}.".into()),
            messages: vec![MessageTemplate {
                role: "user".into(),
                content: "Ticket: {{ticket}}".into(),
            }],
            params: Params {
                temperature: Some(0.2),
                max_tokens: Some(100),
                ..Params::default()
            },
        }
    }

    fn deployed(p: &Prompt, env: PromptEnv, version: i64) -> Deployed {
        Deployed {
            name: p.name.clone(),
            env,
            version,
            content: p.canonical(),
        }
    }

    #[test]
    fn a_prompt_renders_into_the_request_and_names_its_route() {
        let s = Prompts::default();
        s.load(&[deployed(&prompt(), PromptEnv::Production, 3)]);
        let mut body = serde_json::from_value::<Map<String, Value>>(json!({
            "model": "prompt:support",
            "variables": {"customer": "Ada", "product": "tollgate", "ticket": 42},
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 1.5,
        }))
        .unwrap();
        let a = s
            .apply(
                PromptEnv::Production,
                WireFormat::OpenAi,
                &HeaderMap::new(),
                &mut body,
            )
            .unwrap()
            .unwrap();
        assert_eq!(a.label(), "support@v3");
        assert_eq!(body["model"], "gpt");
        assert!(!body.contains_key("variables"));
        assert_eq!(body["temperature"], 0.2);
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "You help Ada with tollgate."},
                {"role": "user", "content": "Ticket: 42"},
                {"role": "user", "content": "hi"},
            ])
        );
        // Staging has no version: not found, with the environment named.
        let mut body =
            serde_json::from_value::<Map<String, Value>>(json!({"model": "prompt:support"}))
                .unwrap();
        let e = s
            .apply(
                PromptEnv::Staging,
                WireFormat::OpenAi,
                &HeaderMap::new(),
                &mut body,
            )
            .unwrap_err();
        assert!(e.message.contains("staging"), "{}", e.message);
    }

    #[test]
    fn missing_variables_are_a_clear_400() {
        let s = Prompts::default();
        s.load(&[deployed(&prompt(), PromptEnv::Staging, 1)]);
        let mut headers = HeaderMap::new();
        headers.insert(VARIABLES_HEADER, r#"{"customer": "Ada"}"#.parse().unwrap());
        let mut body =
            serde_json::from_value::<Map<String, Value>>(json!({"model": "prompt:support"}))
                .unwrap();
        let e = s
            .apply(
                PromptEnv::Staging,
                WireFormat::Anthropic,
                &headers,
                &mut body,
            )
            .unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("product, ticket"), "{}", e.message);
        headers.insert(VARIABLES_HEADER, "not json".parse().unwrap());
        assert!(
            s.apply(
                PromptEnv::Staging,
                WireFormat::Anthropic,
                &headers,
                &mut body
            )
            .is_err()
        );
    }

    #[test]
    fn invalid_prompts_report_every_problem() {
        let mut p = prompt();
        p.name = "Bad Name".into();
        p.system = Some("Hello {{ who".into());
        p.messages[0].role = "system".into();
        p.params.temperature = Some(3.0);
        let problems = p.validate();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(Prompt::from_json("{\"name\": 1}").is_err());
    }

    #[test]
    fn diffs_show_removed_and_added_lines() {
        assert_eq!(line_diff("a\nb\n", "a\nb\n"), "");
        assert_eq!(line_diff("a\nb\nc", "a\nx\nc"), "  a\n- b\n+ x\n  c\n");
    }
}
