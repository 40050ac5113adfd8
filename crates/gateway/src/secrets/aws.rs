//! AWS Secrets Manager client: `GetSecretValue`, `PutSecretValue` and `CreateSecret` over the
//! JSON protocol (`POST /` with `X-Amz-Target: secretsmanager.<Operation>`), signed with
//! Signature Version 4 ([`super::sigv4`]).
//!
//! `aws-sm://NAME` is the whole `SecretString`; `aws-sm://NAME#FIELD` parses the
//! `SecretString` as a JSON object (the console's key/value form) and takes one string field.
//! The access key, secret key and optional session token are credential references, read on
//! use and cached; when AWS refuses them (expired session token, rotated key) they are read
//! again and the call is tried once more.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tollgate_store::keystore::Keystore;

use super::config::{
    AwsConfig, DEFAULT_AWS_ACCESS_KEY_ID, DEFAULT_AWS_SECRET_ACCESS_KEY, manager_credential,
};
use super::sigv4::{Request, Signer};
use super::{SecretsError, clip, http_client, read_limited, sensitive, unreachable};
use crate::credential::CredentialSource;

const SERVICE: &str = "aws-sm";
/// Service name in the signature's scope.
pub const SIGNING_NAME: &str = "secretsmanager";
/// Content type of the JSON protocol, version 1.1.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Error types that mean "these credentials are refused": worth reading them again once.
const AUTH_ERRORS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredTokenException",
    "AccessDeniedException",
    "AccessDenied",
];

/// A client of Secrets Manager in one region.
pub struct AwsSecretsManager {
    region: String,
    url: reqwest::Url,
    host: String,
    access_key_id: CredentialSource,
    secret_access_key: CredentialSource,
    session_token: Option<CredentialSource>,
    http: reqwest::Client,
}

impl std::fmt::Debug for AwsSecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecretsManager")
            .field("region", &self.region)
            .field("endpoint", &self.url.as_str())
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One AWS error answer.
struct AwsError {
    status: u16,
    kind: String,
    message: String,
}

impl AwsError {
    fn into_secrets_error(self) -> SecretsError {
        if self.kind == "ResourceNotFoundException" {
            return SecretsError::NotFound;
        }
        if AUTH_ERRORS.contains(&self.kind.as_str()) {
            return SecretsError::Denied {
                service: SERVICE,
                message: format!("{}: {}", self.kind, self.message),
            };
        }
        SecretsError::Status {
            service: SERVICE,
            status: self.status,
            message: format!("{}: {}", self.kind, self.message),
        }
    }
}

impl AwsSecretsManager {
    /// A client for a validated `[secrets.aws]` section; `keystore` resolves `keystore://`
    /// references to the keys.
    pub fn from_config(cfg: &AwsConfig, keystore: Option<Keystore>) -> Result<Self, String> {
        let source = |name: &str, r: Option<&str>, default: &str| {
            let parsed =
                manager_credential(r.unwrap_or(default)).map_err(|e| format!("{name}: {e}"))?;
            Ok::<_, String>(CredentialSource::new(parsed, keystore.clone()))
        };
        let access_key_id = source(
            "access_key_id",
            cfg.access_key_id.as_ref().map(|s| s.get_ref().as_str()),
            DEFAULT_AWS_ACCESS_KEY_ID,
        )?;
        let secret_access_key = source(
            "secret_access_key",
            cfg.secret_access_key.as_ref().map(|s| s.get_ref().as_str()),
            DEFAULT_AWS_SECRET_ACCESS_KEY,
        )?;
        let session_token = match &cfg.session_token {
            Some(r) => Some(source("session_token", Some(r.get_ref()), "")?),
            None => None,
        };
        let url = reqwest::Url::parse(&cfg.endpoint())
            .map_err(|e| format!("endpoint {:?}: {e}", cfg.endpoint()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(format!("endpoint {:?} has no host", cfg.endpoint())),
        };
        if url.path() != "/" {
            return Err(format!(
                "endpoint {:?} must not have a path",
                cfg.endpoint()
            ));
        }
        Ok(Self {
            region: cfg.region.clone(),
            url,
            host,
            access_key_id,
            secret_access_key,
            session_token,
            http: http_client()?,
        })
    }

    /// The secret `name` (name or ARN): its whole `SecretString`, or with `field` one string
    /// field of the JSON object it holds.
    pub async fn get_secret(
        &self,
        name: &str,
        field: Option<&str>,
    ) -> Result<SecretString, SecretsError> {
        let secret = self.get_secret_string(name).await?;
        match field {
            None => Ok(secret),
            Some(field) => {
                let object = parse_object(&secret)?;
                match object.get(field) {
                    Some(Value::String(s)) => Ok(SecretString::from(s.clone())),
                    Some(_) => Err(SecretsError::Malformed(format!(
                        "field {field:?} of the SecretString is not a string"
                    ))),
                    None => Err(SecretsError::FieldMissing(field.to_owned())),
                }
            }
        }
    }

    /// Store `value` as the secret `name` (with `field`: as that field of its JSON object,
    /// keeping the other fields). A secret that does not exist is created.
    pub async fn put_secret(
        &self,
        name: &str,
        field: Option<&str>,
        value: &SecretString,
    ) -> Result<(), SecretsError> {
        let new = match field {
            None => SecretString::from(value.expose_secret().to_owned()),
            Some(field) => {
                let mut object = match self.get_secret_string(name).await {
                    Ok(current) => parse_object(&current)?,
                    Err(SecretsError::NotFound) => serde_json::Map::new(),
                    Err(e) => return Err(e),
                };
                object.insert(
                    field.to_owned(),
                    Value::String(value.expose_secret().to_owned()),
                );
                SecretString::from(Value::Object(object).to_string())
            }
        };
        let token = uuid::Uuid::new_v4().to_string();
        let put = self
            .call(
                "PutSecretValue",
                &json!({
                    "SecretId": name,
                    "SecretString": new.expose_secret(),
                    "ClientRequestToken": token,
                }),
            )
            .await;
        match put {
            Err(SecretsError::NotFound) => self
                .call(
                    "CreateSecret",
                    &json!({
                        "Name": name,
                        "SecretString": new.expose_secret(),
                        "ClientRequestToken": token,
                    }),
                )
                .await
                .map(drop),
            other => other.map(drop),
        }
    }

    async fn get_secret_string(&self, name: &str) -> Result<SecretString, SecretsError> {
        let doc = self
            .call("GetSecretValue", &json!({ "SecretId": name }))
            .await?;
        match doc.get("SecretString") {
            Some(Value::String(s)) => Ok(SecretString::from(s.clone())),
            _ if doc.get("SecretBinary").is_some() => Err(SecretsError::Malformed(
                "the secret is binary (SecretBinary); store the key as a SecretString".into(),
            )),
            _ => Err(SecretsError::Malformed(
                "the answer has no SecretString".into(),
            )),
        }
    }

    /// One signed call; refused credentials are read again and the call tried once more.
    async fn call(&self, operation: &str, body: &Value) -> Result<Value, SecretsError> {
        let payload = body.to_string().into_bytes();
        let mut retried = false;
        loop {
            match self.send(operation, &payload).await? {
                Ok(doc) => return Ok(doc),
                Err(e) if !retried && AUTH_ERRORS.contains(&e.kind.as_str()) => {
                    tracing::warn!(
                        error = %e.kind,
                        "AWS refused tollgate's credentials; reading them again"
                    );
                    self.access_key_id.invalidate();
                    self.secret_access_key.invalidate();
                    if let Some(t) = &self.session_token {
                        t.invalidate();
                    }
                    retried = true;
                }
                Err(e) => return Err(e.into_secrets_error()),
            }
        }
    }

    /// Send one request: `Err` for transport and credential problems, `Ok(Err)` for an AWS
    /// error answer.
    async fn send(
        &self,
        operation: &str,
        payload: &[u8],
    ) -> Result<Result<Value, AwsError>, SecretsError> {
        let cred = |e: crate::credential::CredentialError| SecretsError::Credential(e.to_string());
        let key_id = self.access_key_id.get().await.map_err(cred)?;
        let secret = self.secret_access_key.get().await.map_err(cred)?;
        let session = match &self.session_token {
            Some(t) => Some(t.get().await.map_err(cred)?),
            None => None,
        };
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let target = format!("secretsmanager.{operation}");
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", CONTENT_TYPE),
            ("host", &self.host),
            ("x-amz-date", &amz_date),
            ("x-amz-target", &target),
        ];
        if let Some(s) = &session {
            headers.push(("x-amz-security-token", s.expose_secret()));
        }
        let signer = Signer {
            access_key_id: key_id.expose_secret(),
            secret_access_key: &secret,
            region: &self.region,
            service: SIGNING_NAME,
            amz_date: &amz_date,
        };
        let authorization = signer.authorization(&Request {
            method: "POST",
            path: "/",
            headers: &headers,
            payload,
        });
        let mut rb = self
            .http
            .post(self.url.clone())
            .header("authorization", sensitive(&authorization))
            .body(payload.to_vec());
        for (name, value) in &headers {
            rb = rb.header(*name, sensitive(value));
        }
        let resp = rb.send().await.map_err(|e| unreachable(SERVICE, &e))?;
        let status = resp.status().as_u16();
        let body = read_limited(resp, SERVICE).await?;
        let doc: Option<Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            return doc
                .map(Ok)
                .ok_or_else(|| SecretsError::Malformed("the answer is not valid JSON".into()));
        }
        Ok(Err(aws_error(status, doc.as_ref(), &xml_error_code(&body))))
    }
}

/// The error type of an AWS answer that is not JSON (some front ends answer XML or text).
fn xml_error_code(body: &[u8]) -> String {
    // The query-protocol XML error <Code>…</Code>, which moto and some proxies use.
    let text = String::from_utf8_lossy(body);
    text.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| clip(code))
        .unwrap_or_default()
}

fn aws_error(status: u16, doc: Option<&Value>, xml_code: &str) -> AwsError {
    let text = |k: &str| doc.and_then(|d| d.get(k)).and_then(Value::as_str);
    // `__type` may be qualified: "com.amazonaws.secretsmanager#ResourceNotFoundException".
    let kind = text("__type")
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| (!xml_code.is_empty()).then(|| xml_code.to_owned()))
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = text("message")
        .or_else(|| text("Message"))
        .map(clip)
        .unwrap_or_else(|| "no message".to_owned());
    AwsError {
        status,
        kind: clip(&kind),
        message,
    }
}

/// The `SecretString` as a JSON object. Errors give a position only: serde_json's syntax
/// errors never quote the input, and type errors (which can) are not passed on.
fn parse_object(secret: &SecretString) -> Result<serde_json::Map<String, Value>, SecretsError> {
    match serde_json::from_str::<Value>(secret.expose_secret()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SecretsError::Malformed(
            "the SecretString is JSON but not an object, so #FIELD cannot be taken from it".into(),
        )),
        Err(e) => Err(SecretsError::Malformed(format!(
            "the SecretString is not valid JSON (line {}, column {}), so #FIELD cannot be taken from it",
            e.line(),
            e.column()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn secret_strings_parse_as_objects_without_echoing_them() {
        assert!(parse_object(&secret(r#"{"api_key":"v"}"#)).is_ok());
        for bad in [
            "sk-not-json",
            "[\"sk-in-array\"]",
            "\"sk-string\"",
            "{\"a\": sk-x",
            "",
        ] {
            let e = parse_object(&secret(bad)).unwrap_err().to_string();
            assert!(!e.contains("sk-"), "{e}");
        }
    }

    #[test]
    fn error_types_are_read_from_json_or_xml() {
        let doc = json!({"__type": "com.amazonaws.secretsmanager#ResourceNotFoundException", "message": "gone"});
        let e = aws_error(400, Some(&doc), "");
        assert_eq!(e.kind, "ResourceNotFoundException");
        assert_eq!(e.into_secrets_error(), SecretsError::NotFound);
        let xml = xml_error_code(
            b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>",
        );
        let e = aws_error(403, None, &xml);
        assert_eq!(e.kind, "SignatureDoesNotMatch");
        assert!(matches!(
            e.into_secrets_error(),
            SecretsError::Denied { .. }
        ));
        let e = aws_error(500, None, "");
        assert_eq!(e.kind, "HTTP500");
    }

    #[test]
    fn endpoint_host_keeps_an_explicit_port() {
        let cfg: AwsConfig =
            toml::from_str("region = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:4566\"").unwrap();
        let c = AwsSecretsManager::from_config(&cfg, None).unwrap();
        assert_eq!(c.host, "127.0.0.1:4566");
        let cfg: AwsConfig = toml::from_str("region = \"eu-west-1\"").unwrap();
        let c = AwsSecretsManager::from_config(&cfg, None).unwrap();
        assert_eq!(c.host, "secretsmanager.eu-west-1.amazonaws.com");
        let cfg: AwsConfig =
            toml::from_str("region = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:1/x\"").unwrap();
        assert!(AwsSecretsManager::from_config(&cfg, None).is_err());
    }
}
