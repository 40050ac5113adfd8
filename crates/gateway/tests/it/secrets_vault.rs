//! `vault://` references against a real OpenBao dev server: token and AppRole auth, the
//! errors a user can meet, rotation, writes.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tollgate_gateway::credential::CredentialRef;

use crate::secret_servers::{BAO_ROOT_TOKEN, Bao, backends, secret_file, source};

const OPENAI: &str = "vault://secret/tollgate/openai#api_key";

fn token_section(addr: &str, token_ref: &str) -> String {
    format!("[vault]\naddress = \"{addr}\"\nauth = \"token\"\ntoken = \"{token_ref}\"\n")
}

#[tokio::test]
async fn token_auth_reads_a_field_and_errors_name_the_reference_only() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put(
        "tollgate/openai",
        json!({"api_key": "sk-vault-first", "org": "o-1"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let b = backends(&token_section(
        &bao.addr,
        &secret_file(dir.path(), "token", &format!("{BAO_ROOT_TOKEN}\n")),
    ));

    let src = source(OPENAI, &b);
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-vault-first");
    assert!(!format!("{src:?} {b:?}").contains("sk-vault"));

    let e = source("vault://secret/tollgate/openai#nope", &b)
        .get()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("vault://secret/tollgate/openai#nope") && e.contains("no field \"nope\""),
        "{e}"
    );
    assert!(!e.contains("sk-vault"), "{e}");

    let e = source("vault://secret/tollgate/missing#api_key", &b)
        .get()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("secret not found"), "{e}");

    let e = source("vault://nomount/x#api_key", &b)
        .get()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("vault://nomount/x#api_key"), "{e}");

    // A token Vault does not know: refused, re-read once, refused again; never echoed.
    let bad = backends(&token_section(
        &bao.addr,
        &secret_file(dir.path(), "bad", "hvs.not-a-real-token"),
    ));
    let e = source(OPENAI, &bad).get().await.unwrap_err().to_string();
    assert!(e.contains("refused tollgate's credentials"), "{e}");
    assert!(!e.contains("not-a-real-token"), "{e}");

    // A token file that is missing is a credential error naming that file's reference.
    let missing = backends(&token_section(&bao.addr, "file:///nonexistent/vault-token"));
    let e = source(OPENAI, &missing)
        .get()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("file:///nonexistent/vault-token"), "{e}");

    // A server that is not there: a clear transport error, no panic.
    let gone = backends(&token_section(
        "http://127.0.0.1:9",
        &secret_file(dir.path(), "t2", BAO_ROOT_TOKEN),
    ));
    let e = source(OPENAI, &gone).get().await.unwrap_err().to_string();
    assert!(e.contains("cannot reach vault"), "{e}");
}

#[tokio::test]
async fn rotated_secret_is_served_after_invalidate_and_writes_keep_other_fields() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put(
        "tollgate/openai",
        json!({"api_key": "sk-old", "org": "o-1"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let b = backends(&token_section(
        &bao.addr,
        &secret_file(dir.path(), "token", BAO_ROOT_TOKEN),
    ));
    let src = source(OPENAI, &b);
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-old");

    // Rotation by tollgate itself (the path key rotation will use): one field changes.
    let r = CredentialRef::parse(OPENAI).unwrap();
    b.write(&r, &SecretString::from("sk-new".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        bao.get("tollgate/openai").await,
        json!({"api_key": "sk-new", "org": "o-1"})
    );
    assert_eq!(
        src.get().await.unwrap().expose_secret(),
        "sk-old",
        "cached within the TTL"
    );
    src.invalidate();
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-new");

    // Rotation by someone else, straight in Vault.
    bao.put("tollgate/openai", json!({"api_key": "sk-external"}))
        .await;
    src.invalidate();
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-external");

    // Writing to a path that does not exist yet creates the secret.
    let fresh = CredentialRef::parse("vault://secret/tollgate/rotated/k1#value").unwrap();
    b.write(&fresh, &SecretString::from("vk-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        bao.get("tollgate/rotated/k1").await,
        json!({"value": "vk-1"})
    );
    assert_eq!(
        source("vault://secret/tollgate/rotated/k1#value", &b)
            .get()
            .await
            .unwrap()
            .expose_secret(),
        "vk-1"
    );
}

#[tokio::test]
async fn namespace_setting_reads_inside_the_namespace() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    use reqwest::Method;
    bao.root(Method::POST, "sys/namespaces/team-a", None).await;
    bao.root_in(
        Some("team-a"),
        Method::POST,
        "sys/mounts/kv",
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    bao.root_in(
        Some("team-a"),
        Method::POST,
        "kv/data/llm",
        Some(json!({"data": {"api_key": "sk-in-namespace"}})),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", BAO_ROOT_TOKEN);
    let with_ns = backends(&format!(
        "{}namespace = \"team-a\"\n",
        token_section(&bao.addr, &token)
    ));
    assert_eq!(
        source("vault://kv/llm#api_key", &with_ns)
            .get()
            .await
            .unwrap()
            .expose_secret(),
        "sk-in-namespace"
    );
    let without = backends(&token_section(&bao.addr, &token));
    assert!(
        source("vault://kv/llm#api_key", &without)
            .get()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn approle_logs_in_and_logs_in_again_when_the_token_is_used_up() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put("tollgate/openai", json!({"api_key": "sk-approle"}))
        .await;
    bao.put("tollgate/anthropic", json!({"api_key": "sk-ant-approle"}))
        .await;
    // Each token may be used twice: the third read must log in again.
    let (role_id, secret_id) = bao.approle("tollgate", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let section = format!(
        "[vault]\naddress = \"{}\"\nauth = \"approle\"\nrole_id = \"{}\"\nsecret_id = \"{}\"\n",
        bao.addr,
        secret_file(dir.path(), "role", &role_id),
        secret_file(dir.path(), "secret", &secret_id),
    );
    let b = backends(&section);
    let openai = source(OPENAI, &b);
    let anthropic = source("vault://secret/tollgate/anthropic#api_key", &b);
    for round in 0..3 {
        openai.invalidate();
        anthropic.invalidate();
        assert_eq!(
            openai.get().await.unwrap().expose_secret(),
            "sk-approle",
            "round {round}"
        );
        assert_eq!(
            anthropic.get().await.unwrap().expose_secret(),
            "sk-ant-approle",
            "round {round}"
        );
    }

    // A wrong secret id: a clear login error that does not repeat it.
    let wrong = format!(
        "[vault]\naddress = \"{}\"\nauth = \"approle\"\nrole_id = \"{}\"\nsecret_id = \"{}\"\n",
        bao.addr,
        secret_file(dir.path(), "role2", &role_id),
        secret_file(
            dir.path(),
            "secret2",
            "00000000-0000-0000-0000-000000000000"
        ),
    );
    let e = source(OPENAI, &backends(&wrong))
        .get()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("AppRole login failed"), "{e}");
    assert!(!e.contains("00000000-0000"), "{e}");
    assert!(!e.contains(&role_id), "{e}");
}
