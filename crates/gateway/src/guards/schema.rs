//! Structured-output validation (MG-1): an answer to a request with
//! `response_format: json_schema` (or a route's own schema) must be JSON that validates; with
//! `json_object` it must be a JSON object. A failing answer is re-asked once with the
//! validation error, then replaced by the route's safe fallback message or refused (MG-3).

use serde_json::{Map, Value};

use crate::wire::WireFormat;

/// Longest streamed answer text kept for validation: beyond it a streamed structured answer
/// cannot be validated and is refused at its end.
pub const MAX_STREAM_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Most validation errors quoted back to the model in a re-ask.
const MAX_ERRORS_QUOTED: usize = 3;

/// What an answer must be.
pub enum Expectation {
    /// Any JSON object.
    Object,
    /// JSON valid against a schema.
    Schema(Box<jsonschema::Validator>),
}

impl std::fmt::Debug for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Object => f.write_str("Expectation::Object"),
            Self::Schema(_) => f.write_str("Expectation::Schema"),
        }
    }
}

/// Compile a schema, with a message that names the problem.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| format!("invalid JSON Schema: {e}"))
}

/// What this request's answer must satisfy: the route's schema first, then the request's
/// `response_format` (OpenAI format only; Anthropic has none).
pub fn expectation(
    format: WireFormat,
    body: &Map<String, Value>,
    route_schema: Option<&Value>,
) -> Result<Option<Expectation>, String> {
    if let Some(s) = route_schema {
        return compile(s).map(|v| Some(Expectation::Schema(Box::new(v))));
    }
    if format != WireFormat::OpenAi {
        return Ok(None);
    }
    let rf = body.get("response_format");
    match rf.and_then(|r| r.get("type")).and_then(Value::as_str) {
        Some("json_object") => Ok(Some(Expectation::Object)),
        Some("json_schema") => match rf
            .and_then(|r| r.get("json_schema"))
            .and_then(|j| j.get("schema"))
        {
            Some(schema) => compile(schema).map(|v| Some(Expectation::Schema(Box::new(v)))),
            None => Ok(Some(Expectation::Object)),
        },
        _ => Ok(None),
    }
}

/// The JSON inside an answer: the whole text, or a fenced ```json block, as models often add.
fn extract_json(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Some(v);
    }
    let inner = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))?
        .trim_end();
    let inner = inner.strip_suffix("```")?;
    serde_json::from_str(inner.trim()).ok()
}

/// Check an answer; `Err` says what is wrong, for the log and for a re-ask.
pub fn check(expect: &Expectation, text: &str) -> Result<(), String> {
    let Some(v) = extract_json(text) else {
        return Err("the answer is not valid JSON".to_owned());
    };
    match expect {
        Expectation::Object => {
            if v.is_object() {
                Ok(())
            } else {
                Err("the answer is JSON but not an object".to_owned())
            }
        }
        Expectation::Schema(validator) => {
            let errors: Vec<String> = validator
                .iter_errors(&v)
                .take(MAX_ERRORS_QUOTED)
                .map(|e| format!("at {}: {}", e.instance_path(), e))
                .collect();
            if errors.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "the answer does not match the schema: {}",
                    errors.join("; ")
                ))
            }
        }
    }
}

/// Append the failed answer and a correction to the conversation, for one re-ask.
pub fn add_reask(format: WireFormat, body: &mut Map<String, Value>, answer: &str, problem: &str) {
    let correction = format!(
        "Your previous answer was rejected: {problem}. Answer again with only the JSON, no other text."
    );
    let _ = format;
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        messages.push(serde_json::json!({"role": "assistant", "content": answer}));
        messages.push(serde_json::json!({"role": "user", "content": correction}));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn response_format_schema_is_enforced() {
        let b = body(
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}}),
        );
        let e = expectation(WireFormat::OpenAi, &b, None).unwrap().unwrap();
        assert!(check(&e, r#"{"city": "Paris"}"#).is_ok());
        assert!(check(&e, "```json\n{\"city\": \"Paris\"}\n```").is_ok());
        let err = check(&e, r#"{"town": "Paris"}"#).unwrap_err();
        assert!(err.contains("city"), "{err}");
        assert!(check(&e, "Paris").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn json_object_and_route_schema() {
        let b = body(json!({"response_format": {"type": "json_object"}}));
        let e = expectation(WireFormat::OpenAi, &b, None).unwrap().unwrap();
        assert!(check(&e, "{}").is_ok());
        assert!(check(&e, "[1]").is_err());
        let route = json!({"type": "array"});
        let e = expectation(WireFormat::Anthropic, &Map::new(), Some(&route))
            .unwrap()
            .unwrap();
        assert!(check(&e, "[1]").is_ok());
        assert!(expectation(WireFormat::OpenAi, &Map::new(), Some(&json!({"type": 12}))).is_err());
        assert!(
            expectation(WireFormat::OpenAi, &Map::new(), None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reask_appends_the_answer_and_the_problem() {
        let mut b = body(json!({"messages": [{"role": "user", "content": "q"}]}));
        add_reask(WireFormat::OpenAi, &mut b, "oops", "not JSON");
        assert_eq!(b["messages"].as_array().unwrap().len(), 3);
        assert!(
            b["messages"][2]["content"]
                .as_str()
                .unwrap()
                .contains("not JSON")
        );
    }
}
