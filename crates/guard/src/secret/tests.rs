//! Tests of the credential rules: formats, placeholders, escapes, checksums, totality.

use super::*;

fn rules_of(text: &str) -> Vec<&'static str> {
    find_secrets(text).into_iter().map(|m| m.rule).collect()
}

#[test]
fn every_rule_compiles() {
    assert_eq!(rules().len(), RULES.len());
    assert_eq!(ASSIGNMENT_RES.len(), 5);
}

#[test]
fn finds_openai_project_key() {
    let key = format!(
        "sk-proj-{}",
        "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3"
    );
    let text = format!("api_key = \"{key}\"");
    let found = find_secrets(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, "openai-api-key");
    assert_eq!(&text[found[0].start..found[0].end], key);
}

#[test]
fn finds_key_inside_json_escaped_string() {
    let text = r#"{"k": "{\"key\": \"AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x\"}"}"#;
    assert_eq!(find_secrets(text)[0].rule, "google-api-key");
}

#[test]
fn finds_key_after_escaped_newline() {
    // gitleaks misses this: in raw JSON, `\nhf_` has no word boundary before `hf_`.
    let text = r#"{"text": ["token:\nhf_Q2w3E4r5T6y7U8i9O0pAsDfGhJkLzXcVbN\n"]}"#;
    assert_eq!(rules_of(text), ["huggingface-token"]);
}

#[test]
fn placeholders_are_not_secrets() {
    for text in [
        "sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "AKIAIOSFODNN7EXAMPLE",
        "your-api-key",
        "hf_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "AKIAAAAAAAAAAAAAAAAA",
        "OPENAI_API_KEY=${OPENAI_API_KEY}",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "token = 'abcdefghijklmnop1234'",
    ] {
        assert!(find_secrets(text).is_empty(), "{text}");
    }
}

#[test]
fn hashes_uuids_and_identifiers_under_key_names_are_quiet() {
    for text in [
        "CACHE_KEY = \"9dd4e461268c8034f5c8564e155c67a6\"",
        "MODEL_SHA256 = \"8e8ee3e16a9924b12f0fdef1212bf0355eb9cbea442da2479e60e2fd154240df\"",
        "request_key = \"8d46ecc4-e9d7-4536-b335-9a91834bd79c\"",
        "os_task_key = \"sk-learn-classifier-v2-pipeline-config\"",
        "max_tokens = 4096",
        "public_key = \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\"",
        "pub const InheritNewDefaultKey: X509RequestInheritOptions = 1i32;",
        "pub credentials: MI_UserCredentials_0,",
        "\"Win32_Security_Credentials\",\n\"Win32_System_LibraryLoader\",",
        ".header(\"sec-websocket-key\", \"6D69KGBOr4Re+Nj6zx9aQA==\")",
        "CachingSha2Password,",
        "RegEnumKey = win32api.RegEnumKey",
        "fn from(key: PrivatePkcs1KeyDer<'a>) -> Self {",
        "\"Url\": \"http://calc.example/c.html?key=cloudformation/7870825a-xmpl-4def-92e7\"",
        "\"ImportToken\": \"import-token-5ott6ho5nts7bbcg\",",
        "key: X25519PrivateKey | None",
        "\"OAuth2ClientAuth\", \"AUTODETECT_SIGV4\"",
        "\"PrivateKey\": \"-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIABAKCAQEAqKpRgnn6yq26U3yt5YFZquyukfRjbMXDcNOK4rMCxDR...\"",
        "\"AWS::ApiGateway::ApiKey\": \"48205d4ffd7feba3\",",
        "\"NextToken\": \"eyJDdXN0b21lckFjY291bnRJZCI6IjI3MDIwNTQwMjg0NSIs\"",
        "\"nextPageToken\": \"AAAAKgAAAAEAAAAAAAAAA1Gp1BelJq+PmHvAnDxJYbup8\"",
        "\"S3Key\": \"867139942017-EntitiesDetection-ab9887877365fe70\"",
        "SecretArn=\"arn:aws:secretsmanager:us-west-2:123456789123:secret:proxy-Abc123Def456Ghi\"",
        "from cryptography import Ed25519PrivateKey, Ed25519PublicKey",
        "\"LocalConsolePassword\": \"PassWordMustBeAtLeast6Chars.\"",
        "api_key = settings.OPENAI_API_KEY2",
    ] {
        assert!(find_secrets(text).is_empty(), "{text}");
    }
}

#[test]
fn unprefixed_provider_keys_are_found_by_name() {
    assert_eq!(
        rules_of("CO_API_KEY=QbCeLm4SIyVtnYHFRNNAKCTLizyVyleqviqPKrTH"),
        ["cohere-api-key"]
    );
    assert_eq!(
        rules_of("mistral_api_key=\"9SuxM15lEUrHHIVpEKSsT8oNDjRR6fO4\""),
        ["mistral-api-key"]
    );
    assert_eq!(
        rules_of("wandb_api_key: c45807d902fd7bda7a6257a33d245a167d6c3777"),
        ["wandb-api-key"]
    );
    assert_eq!(
        rules_of("AWS_SECRET_ACCESS_KEY=MMRNYRweYm32ZD5jDaxZIRG5wiaHO4dKC9YoSgbD"),
        ["aws-secret-access-key"]
    );
    assert_eq!(
        rules_of("ENDPOINT=https://x.openai.azure.com/\nKEY=8e9e50aec17f5f895f9cedd14a3ca377"),
        ["azure-openai-api-key"]
    );
}

#[test]
fn assignment_shapes_across_languages() {
    let v = "Zq8mN2pL5kR7tW1xY4vB6nM3";
    for text in [
        format!("apiKey := \"{v}\""),
        format!("String mistralApiKey = \"{v}\";"),
        format!("'api_key' => '{v}',"),
        format!("export MISTRAL_API_KEY=\"{v}\""),
        format!("MISTRAL_API_KEY: str = \"{v}\""),
        format!("os.environ[\"MISTRAL_API_KEY\"] = \"{v}\""),
        format!("os.environ.setdefault(\"MISTRAL_API_KEY\", \"{v}\")"),
        format!("env:\n  - name: MISTRAL_API_KEY\n    value: \"{v}\""),
        format!("curl -H 'Authorization: Bearer {v}'"),
        format!("ENV MISTRAL_API_KEY {v}"),
        format!("<MistralApiKey>{v}</MistralApiKey>"),
        format!("$env:MISTRAL_API_KEY = \"{v}\""),
        format!("mistral.api.key={v}"),
        format!("resource \"x\" {{\n  api_key = \"{v}\"\n}}"),
    ] {
        assert_eq!(find_secrets(&text).len(), 1, "{text}");
    }
}

#[test]
fn other_common_service_tokens() {
    for (text, rule) in [
        (
            "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",
            "google-oauth-client-secret",
        ),
        (
            "https://hooks.slack.com/services/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",
            "slack-webhook",
        ),
        ("npm_Zq8mN2pL5kR7tW1xY4vB6nM3aB3dE5fG7hJ9", "npm-token"),
    ] {
        assert_eq!(rules_of(text), [rule], "{text}");
    }
}

#[test]
fn passwords_in_connection_urls() {
    assert_eq!(
        rules_of("DATABASE_URL=postgres://app:Xk93hQz7Lw2p@db.internal:5432/app"),
        ["url-credentials"]
    );
    for quiet in [
        "postgres://postgres:postgres@localhost/db",
        "postgres://user:password@localhost/db",
        "redis://:${REDIS_PASSWORD}@cache:6379",
        "https://user:<token>@example.com",
    ] {
        assert!(find_secrets(quiet).is_empty(), "{quiet}");
    }
}

#[test]
fn tollgate_keys_need_a_valid_checksum() {
    let body = "tg_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123";
    let mut n = u64::from(crc32(body.as_bytes()));
    let mut sum = [b'0'; 6];
    for s in sum.iter_mut().rev() {
        *s = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let key = format!("{body}{}", std::str::from_utf8(&sum).unwrap());
    assert_eq!(rules_of(&key), ["tollgate-key"]);
    let typo = format!("{body}zzzzzz");
    assert!(find_secrets(&typo).is_empty());
}

proptest::proptest! {
    #[test]
    fn matches_are_ordered_disjoint_char_ranges(text in "\\PC{0,300}") {
        let found = find_secrets(&text);
        let mut last_end = 0;
        for m in &found {
            proptest::prop_assert!(m.start >= last_end && m.start < m.end && m.end <= text.len());
            proptest::prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            last_end = m.end;
        }
    }

    #[test]
    fn escape_neutral_view_keeps_offsets(text in "[a-z\\\\\"nrt/ é]{0,200}") {
        proptest::prop_assert_eq!(escape_neutral(&text).len(), text.len());
    }

    #[test]
    fn redaction_never_shows_more_than_the_prefix(value in "[A-Za-z0-9_-]{12,80}") {
        let r = redact(&value);
        proptest::prop_assert!(!r.contains(&value[6..]));
    }
}

#[test]
fn pem_keys_need_a_body_and_service_accounts_are_named() {
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----");
    assert_eq!(rules_of(&pem), ["private-key"]);
    let doc = "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----";
    assert!(find_secrets(doc).is_empty());
    let prose = "/// An ASCII blob that starts with `-----BEGIN PRIVATE KEY-----`.\n/// It is parsed with the pkcs8 crate and then validated for use.";
    assert!(find_secrets(prose).is_empty());
    let commented = format!("//! -----BEGIN RSA PRIVATE KEY-----\n//! {body}\n");
    assert_eq!(rules_of(&commented), ["private-key"]);
    let sa = format!(
        "{{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n\"}}"
    );
    assert_eq!(rules_of(&sa), ["gcp-service-account"]);
}

#[test]
fn public_anon_jwts_are_not_secrets() {
    // {"alg":"HS256","typ":"JWT"} . {"role":"anon","iss":"supabase"} . signature
    let anon = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImlzcyI6InN1cGFiYXNlIn0.dGhpc2lzYXNpZ25hdHVyZXRoYXRpc2xvbmc";
    assert!(find_secrets(anon).is_empty());
    // {"role":"service_role"}
    let service = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.dGhpc2lzYXNpZ25hdHVyZXRoYXRpc2xvbmc";
    assert_eq!(rules_of(service), ["jwt"]);
}

#[test]
fn crc32_matches_the_ieee_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn ordinary_text_is_quiet() {
    assert!(find_secrets("the task is to summarise the skills of our team").is_empty());
}

#[test]
fn redaction_hides_the_body() {
    let r = redact("sk-ant-api03-abcdefghijkl");
    assert!(r.starts_with("sk-ant"));
    assert!(!r.contains("abcdefghijkl"));
}

/// The rules whose keywords `contains` finds: what the one-pass keyword search must agree with.
fn rules_by_contains(view: &str) -> Vec<bool> {
    rules()
        .iter()
        .map(|r| r.keywords.iter().any(|k| view.contains(k)))
        .collect()
}

// The one-pass keyword search reports one of several overlapping keywords ("sk-" inside
// "sk-ant-"); each rule whose keyword occurs must still run.
#[test]
fn keyword_search_sees_overlapping_keywords() {
    for text in [
        "",
        "plain prose without any of them",
        "sk-ant-",
        "task-sk-ant-api03",
        "xsk-or-v1 sk-proj- T3BlbkFJ",
        "hooks.slack.com/services https://x",
        "AKIAASIA ghp_gho_ github_pat_",
        "é sk-\u{301}ant- ключ pypi-AgE",
        "-----BEGIN RSA PRIVATE KEY-----",
    ] {
        assert_eq!(
            rules_with_keywords(text),
            rules_by_contains(text),
            "{text:?}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn keyword_search_agrees_with_contains(parts in proptest::collection::vec(
        proptest::sample::select(vec![
            "sk-", "ant-", "sk-ant-", "proj-", "or-", "T3Blbk", "FJ", "hf_", "api_", "org_",
            "AKIA", "gh", "p_", "://", "eyJ", "x", "o", "SG.", "é", " ", "Q~", "_live_", "rk",
        ]),
        0..24,
    )) {
        let text = parts.concat();
        proptest::prop_assert_eq!(rules_with_keywords(&text), rules_by_contains(&text));
    }
}
