//! The `[secrets]` section of `tollgate.toml`: where Vault / OpenBao and AWS Secrets Manager
//! are, and how tollgate authenticates to them.
//!
//! ```toml
//! [secrets.vault]
//! address = "https://vault.internal:8200"
//! auth = "approle"
//! role_id = "file:///run/secrets/vault-role-id"
//! secret_id = "file:///run/secrets/vault-secret-id"
//!
//! [secrets.aws]
//! region = "eu-west-1"
//! ```
//!
//! Every credential here is a reference (`file://`, `env:`, `keystore://`); a literal is an
//! error naming its line, like a literal `api_key`.

use serde::Deserialize;
use toml::Spanned;

use crate::config::{Problem, Warning, line_of};
use crate::credential::CredentialRef;

/// Default mount of the AppRole auth method.
pub const DEFAULT_APPROLE_MOUNT: &str = "approle";
/// Default reference of the AWS access key id (the AWS SDKs' variable).
pub const DEFAULT_AWS_ACCESS_KEY_ID: &str = "env:AWS_ACCESS_KEY_ID";
/// Default reference of the AWS secret access key (the AWS SDKs' variable).
pub const DEFAULT_AWS_SECRET_ACCESS_KEY: &str = "env:AWS_SECRET_ACCESS_KEY";
/// Longest Vault namespace, AppRole mount or AWS region accepted.
pub const MAX_SETTING_LEN: usize = 128;

/// Secrets managers that credential references may point into.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// HashiCorp Vault or OpenBao, for `vault://MOUNT/PATH#FIELD` references.
    pub vault: Option<VaultConfig>,
    /// AWS Secrets Manager, for `aws-sm://NAME[#FIELD]` references.
    pub aws: Option<AwsConfig>,
}

/// How tollgate logs in to Vault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuthKind {
    /// A token read from `token` (e.g. a file kept fresh by Vault Agent).
    #[default]
    Token,
    /// AppRole: `role_id` and `secret_id` are exchanged for a token, again when it expires.
    Approle,
}

/// `[secrets.vault]`: a Vault or OpenBao server with the KV version 2 engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Server address, e.g. `https://vault.internal:8200`.
    pub address: String,
    /// `token` (default) or `approle`.
    #[serde(default)]
    pub auth: VaultAuthKind,
    /// Reference to the token (with `auth = "token"`), e.g. `file:///run/secrets/vault-token`.
    pub token: Option<Spanned<String>>,
    /// Reference to the AppRole role id (with `auth = "approle"`).
    pub role_id: Option<Spanned<String>>,
    /// Reference to the AppRole secret id (with `auth = "approle"`).
    pub secret_id: Option<Spanned<String>>,
    /// Where the AppRole method is mounted (default `approle`).
    pub approle_mount: Option<String>,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
}

/// `[secrets.aws]`: AWS Secrets Manager in one region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region, e.g. `eu-west-1`.
    pub region: String,
    /// Endpoint URL instead of the region's public one (VPC endpoints, emulators).
    pub endpoint: Option<String>,
    /// Reference to the access key id (default `env:AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<Spanned<String>>,
    /// Reference to the secret access key (default `env:AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<Spanned<String>>,
    /// Reference to a session token, for temporary credentials.
    pub session_token: Option<Spanned<String>>,
}

impl VaultConfig {
    /// The AppRole mount, default filled in.
    pub fn approle_mount(&self) -> &str {
        self.approle_mount
            .as_deref()
            .unwrap_or(DEFAULT_APPROLE_MOUNT)
    }
}

impl AwsConfig {
    /// The endpoint URL, the region's public endpoint by default, without a trailing slash.
    pub fn endpoint(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_owned(),
            None => format!("https://secretsmanager.{}.amazonaws.com", self.region),
        }
    }
}

impl SecretsConfig {
    /// Why `reference` cannot be resolved with this section, if it cannot.
    pub fn missing_backend(&self, reference: &CredentialRef) -> Option<&'static str> {
        match reference {
            CredentialRef::Vault { .. } if self.vault.is_none() => Some(
                "vault:// references need a [secrets.vault] section with the server's address and how to log in",
            ),
            CredentialRef::AwsSm { .. } if self.aws.is_none() => {
                Some("aws-sm:// references need a [secrets.aws] section with at least the region")
            }
            _ => None,
        }
    }

    /// Check the section; push problems (with lines where known) and warnings.
    pub fn validate(&self, text: &str, problems: &mut Vec<Problem>, warnings: &mut Vec<Warning>) {
        if let Some(v) = &self.vault {
            let at = |f: &str| format!("secrets.vault.{f}");
            check_url(&v.address, &at("address"), problems, warnings);
            type Field<'a> = (&'a str, &'a Option<Spanned<String>>);
            let (auth, wanted, unwanted): (&str, Vec<Field<'_>>, Vec<Field<'_>>) = match v.auth {
                VaultAuthKind::Token => (
                    "token",
                    vec![("token", &v.token)],
                    vec![("role_id", &v.role_id), ("secret_id", &v.secret_id)],
                ),
                VaultAuthKind::Approle => (
                    "approle",
                    vec![("role_id", &v.role_id), ("secret_id", &v.secret_id)],
                    vec![("token", &v.token)],
                ),
            };
            for (name, value) in wanted {
                match value {
                    Some(r) => check_reference(r, &at(name), text, problems, warnings),
                    None => problems.push(Problem {
                        path: at(name),
                        line: None,
                        message: format!(
                            "required with auth = \"{auth}\"; a reference such as \"file:///run/secrets/vault-{}\"",
                            name.replace('_', "-")
                        ),
                    }),
                }
            }
            for (name, value) in unwanted {
                if let Some(r) = value {
                    problems.push(Problem {
                        path: at(name),
                        line: Some(line_of(text, r.span().start)),
                        message: format!("not used with auth = \"{auth}\"; remove it"),
                    });
                }
            }
            if let Some(m) = &v.approle_mount {
                if !valid_path(m) {
                    problems.push(Problem {
                        path: at("approle_mount"),
                        line: None,
                        message: "mount paths use A-Z a-z 0-9 . _ - and '/' between parts".into(),
                    });
                }
            }
            if let Some(ns) = &v.namespace {
                if !valid_path(ns) {
                    problems.push(Problem {
                        path: at("namespace"),
                        line: None,
                        message: "namespaces use A-Z a-z 0-9 . _ - and '/' between parts".into(),
                    });
                }
            }
        }
        if let Some(a) = &self.aws {
            let at = |f: &str| format!("secrets.aws.{f}");
            if a.region.is_empty()
                || a.region.len() > MAX_SETTING_LEN
                || !a
                    .region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                problems.push(Problem {
                    path: at("region"),
                    line: None,
                    message: format!("{:?} is not a region like \"eu-west-1\"", a.region),
                });
            }
            if let Some(e) = &a.endpoint {
                check_url(e, &at("endpoint"), problems, warnings);
                if reqwest::Url::parse(e).is_ok_and(|u| u.path() != "/") {
                    problems.push(Problem {
                        path: at("endpoint"),
                        line: None,
                        message: "give the endpoint without a path, e.g. \"http://127.0.0.1:4566\""
                            .into(),
                    });
                }
            }
            for (name, value) in [
                ("access_key_id", &a.access_key_id),
                ("secret_access_key", &a.secret_access_key),
                ("session_token", &a.session_token),
            ] {
                if let Some(r) = value {
                    check_reference(r, &at(name), text, problems, warnings);
                }
            }
        }
    }
}

/// A reference to a credential *for* a secrets manager: `file://`, `env:` or `keystore://`.
pub(crate) fn manager_credential(s: &str) -> Result<CredentialRef, String> {
    match CredentialRef::parse(s) {
        Ok(CredentialRef::Vault { .. } | CredentialRef::AwsSm { .. }) => Err(
            "a secrets manager's own credential must come from file://, env: or keystore://, not from a secrets manager".into(),
        ),
        Ok(r) => Ok(r),
        Err(e) => Err(e.to_string()),
    }
}

fn check_reference(
    r: &Spanned<String>,
    path: &str,
    text: &str,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) {
    match manager_credential(r.get_ref()) {
        Ok(parsed) => {
            if let Some(w) = parsed.warning() {
                warnings.push(Warning {
                    path: path.to_owned(),
                    message: w,
                });
            }
        }
        Err(message) => problems.push(Problem {
            path: path.to_owned(),
            line: Some(line_of(text, r.span().start)),
            message,
        }),
    }
}

fn check_url(url: &str, path: &str, problems: &mut Vec<Problem>, warnings: &mut Vec<Warning>) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
                problems.push(Problem {
                    path: path.to_owned(),
                    line: None,
                    message: "give the server's base URL only, without user, query or fragment"
                        .into(),
                });
            }
            let local = u
                .host_str()
                .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
            if u.scheme() == "http" && !local {
                warnings.push(Warning {
                    path: path.to_owned(),
                    message: "plain http to a non-local host sends tokens and secrets unencrypted"
                        .into(),
                });
            }
        }
        _ => problems.push(Problem {
            path: path.to_owned(),
            line: None,
            message: format!("{url:?} is not an http(s) URL"),
        }),
    }
}

fn valid_path(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SETTING_LEN
        && s.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError, Problem};

    fn problems(text: &str) -> Vec<Problem> {
        match Config::parse(text, Path::new("t.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    const PROVIDER: &str =
        "[providers.o]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n";

    #[test]
    fn vault_and_aws_sections_are_accepted() {
        let text = format!(
            "{PROVIDER}api_key = \"vault://secret/tollgate/openai#api_key\"\n[providers.a]\nkind = \"anthropic\"\napi_key = \"aws-sm://prod/anthropic#key\"\n[secrets.vault]\naddress = \"http://127.0.0.1:8200\"\nauth = \"approle\"\nrole_id = \"file:///run/secrets/role-id\"\nsecret_id = \"keystore://vault-secret-id\"\nnamespace = \"team-a/llm\"\n[secrets.aws]\nregion = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:4566\"\n"
        );
        let (c, w) = Config::parse(&text, Path::new("t.toml")).unwrap();
        // The providers are unreviewed (a DP-4 warning each); nothing else is amiss.
        assert!(w.iter().all(|w| w.path.ends_with(".review")), "{w:?}");
        let v = c.secrets.vault.unwrap();
        assert_eq!(v.auth, super::VaultAuthKind::Approle);
        assert_eq!(v.approle_mount(), "approle");
        assert_eq!(c.secrets.aws.unwrap().endpoint(), "http://127.0.0.1:4566");
    }

    #[test]
    fn managed_references_without_their_section_are_problems_on_their_line() {
        let text = format!(
            "{PROVIDER}api_key = \"vault://secret/openai#api_key\"\n[providers.b]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key = \"aws-sm://openai\"\n"
        );
        let p = problems(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            (p[0].path.as_str(), p[0].line),
            ("providers.o.api_key", Some(4))
        );
        assert!(p[0].message.contains("[secrets.vault]"));
        assert_eq!(
            (p[1].path.as_str(), p[1].line),
            ("providers.b.api_key", Some(8))
        );
        assert!(p[1].message.contains("[secrets.aws]"));
    }

    #[test]
    fn every_problem_of_the_section_is_reported_with_its_location() {
        let text = "[secrets.vault]\naddress = \"vault.internal:8200\"\nauth = \"token\"\nrole_id = \"env:ROLE\"\nnamespace = \"../root\"\napprole_mount = \"a b\"\n[secrets.aws]\nregion = \"EU West\"\nendpoint = \"http://127.0.0.1:4566/sm\"\naccess_key_id = \"AKIA-not-a-reference\"\nsecret_access_key = \"vault://secret/aws#key\"\n";
        let p = problems(text);
        let got: Vec<(&str, Option<usize>)> = p.iter().map(|p| (p.path.as_str(), p.line)).collect();
        for want in [
            ("secrets.vault.address", None),
            ("secrets.vault.token", None),
            ("secrets.vault.role_id", Some(4)),
            ("secrets.vault.namespace", None),
            ("secrets.vault.approle_mount", None),
            ("secrets.aws.region", None),
            ("secrets.aws.endpoint", None),
            ("secrets.aws.access_key_id", Some(10)),
            ("secrets.aws.secret_access_key", Some(11)),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:?}");
        }
        let shown = ConfigError::Invalid {
            path: "t".into(),
            problems: p,
        }
        .to_string();
        assert!(
            !shown.contains("AKIA-not"),
            "a literal must not be echoed: {shown}"
        );
    }

    #[test]
    fn approle_needs_both_ids_and_no_token() {
        let text = "[secrets.vault]\naddress = \"https://vault.example:8200\"\nauth = \"approle\"\ntoken = \"env:VAULT_TOKEN\"\n";
        let p = problems(text);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "secrets.vault.token",
                "secrets.vault.role_id",
                "secrets.vault.secret_id"
            ]
        );
        assert_eq!(p[0].line, Some(4));
    }

    #[test]
    fn plain_http_to_a_remote_manager_and_env_credentials_are_warnings() {
        let text = "[secrets.vault]\naddress = \"http://vault.example:8200\"\ntoken = \"env:VAULT_TOKEN\"\n";
        let (_, w) = Config::parse(text, Path::new("t.toml")).unwrap();
        let paths: Vec<&str> = w.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(paths, ["secrets.vault.address", "secrets.vault.token"]);
    }

    #[test]
    fn unknown_fields_in_the_section_are_refused() {
        let e = Config::parse(
            "[secrets.vault]\naddress = \"http://127.0.0.1:8200\"\ntoken = \"env:T\"\ntokne = \"x\"\n",
            Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tokne") && e.contains("line 4"), "{e}");
        let e = Config::parse("[secrets.gcp]\nproject = \"p\"\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gcp"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_secrets_sections_never_panic(
            address in "\\PC{0,40}", token in "\\PC{0,40}", region in "\\PC{0,20}"
        ) {
            let text = format!(
                "[secrets.vault]\naddress = {address:?}\ntoken = {token:?}\n[secrets.aws]\nregion = {region:?}\nendpoint = {address:?}\n"
            );
            let _ = Config::parse(&text, Path::new("t.toml"));
        }
    }
}
