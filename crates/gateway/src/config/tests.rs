//! Unit tests of `config`.

use super::*;

fn parse(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
    Config::parse(text, Path::new("tollgate.toml"))
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn empty_config_is_valid_with_defaults() {
    let (c, w) = parse("").unwrap();
    assert_eq!(c.server.listen, DEFAULT_LISTEN);
    assert_eq!(c.server.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert!(w.is_empty());
}

#[test]
fn literal_key_is_an_error_naming_its_line() {
    // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
    let text = "[providers.openai]\nkind = \"openai\"\napi_key = \"sk-proj-aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3\"\n";
    let p = problems(text);
    assert!(p.iter().all(|p| p.line == Some(3)), "{p:?}");
    let shown = ConfigError::Invalid {
        path: "t".into(),
        problems: p,
    }
    .to_string();
    assert!(shown.contains("line 3"), "{shown}");
    assert!(
        !shown.contains("aB3dE5fG7hJ9"),
        "the key must not be echoed: {shown}"
    );
}

#[test]
fn unknown_looking_literal_in_api_key_is_refused() {
    let text = "[providers.x]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key = \"hunter2-not-a-ref\"\n";
    let p = problems(text);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(4));
    assert!(p[0].message.contains("reference"), "{}", p[0].message);
    assert!(!p[0].message.contains("hunter2"));
}

#[test]
fn literal_key_in_unknown_field_is_still_reported() {
    // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
    let text =
        "[server]\nlisten = \"127.0.0.1:1\"\nnope = \"AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x\"\n";
    let p = problems(text);
    assert!(
        p.iter()
            .any(|p| p.message.contains("literal credential") && p.line == Some(3))
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = r#"
[server]
listen = "nowhere"
[providers.az]
kind = "azure"
base_url = "https://x.openai.azure.com"
[routes.gpt]
targets = [{ provider = "missing", model = "" }]
[routes.empty]
targets = []
"#;
    let p = problems(text);
    let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "server.listen",
        "providers.az.api_key",
        "providers.az.api_version",
        "routes.gpt.targets[0].provider",
        "routes.gpt.targets[0].model",
        "routes.empty.targets",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}");
    }
}

#[test]
fn unknown_fields_and_bad_syntax_are_parse_errors_with_location() {
    let e = parse("[server]\nlisten_on = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen_on") && e.contains("line 2"), "{e}");
    let e = parse("[server\n").unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
    let e = parse("[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1/v1\"\nconnect_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("invalid duration"), "{e}");
}

#[test]
fn env_reference_is_accepted_with_a_warning() {
    let text = "[providers.openai]\nkind = \"openai\"\napi_key = \"env:OPENAI_API_KEY\"\n";
    let (_, w) = parse(text).unwrap();
    let w: Vec<_> = w.iter().filter(|w| !w.path.ends_with(".review")).collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "providers.openai.api_key");
}

#[test]
fn credentials_in_headers_are_refused() {
    let text = "[providers.o]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nheaders = { Authorization = \"Bearer abc\" }\n";
    let p = problems(text);
    assert!(p[0].path.contains("headers.Authorization"));
}

#[test]
fn problem_report_reads_well() {
    let text =
        "[server]\nlisten = \"x\"\n[routes.a]\ntargets = [{ provider = \"p\", model = \"m\" }]\n";
    let err = parse(text).unwrap_err().to_string();
    insta::assert_snapshot!(err);
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&s);
    }
}

#[test]
fn providers_outside_the_egress_allow_list_are_refused() {
    let text = "[server]\negress_allow = [\"*.openai.azure.com\", \"127.0.0.1\"]\n[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[providers.b]\nkind = \"openai\"\nbase_url = \"https://llm.attacker.test/v1\"\napi_key = \"env:X\"\n";
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, "providers.b.base_url");
    assert!(p[0].message.contains("egress_allow"));
}

#[test]
fn resilience_defaults_and_overrides() {
    let text = "[providers.o]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\ntotal_timeout = \"90s\"\nmax_retries = 0\n";
    let (c, _) = parse(text).unwrap();
    let r = c.providers["o"].resilience();
    assert_eq!(r.total_timeout, Duration::from_secs(90));
    assert_eq!(r.max_retries, 0);
    assert_eq!(r.connect_timeout, Duration::from_secs(5));
}
