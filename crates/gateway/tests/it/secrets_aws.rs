//! `aws-sm://` references against moto's Secrets Manager: plain and JSON secrets, the errors a
//! user can meet, rotation, writes, and SigV4 signatures checked by moto's IAM emulation.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tollgate_gateway::credential::CredentialRef;

use crate::secret_servers::{Moto, TEST_AWS_KEYS, backends, secret_file, source};

fn section(endpoint: &str, dir: &std::path::Path, keys: (&str, &str)) -> String {
    format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
        secret_file(dir, "key-id", keys.0),
        secret_file(dir, "secret-key", keys.1),
    )
}

#[tokio::test]
async fn plain_and_json_secrets_and_their_errors() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    moto.sm(
        "CreateSecret",
        json!({"Name": "prod/openai", "SecretString": "sk-aws-plain"}),
    )
    .await;
    moto.sm(
        "CreateSecret",
        json!({"Name": "prod/llm", "SecretString": "{\"openai\":\"sk-aws-json\",\"n\":1}"}),
    )
    .await;
    moto.sm(
        "CreateSecret",
        json!({"Name": "prod/broken", "SecretString": "{\"openai\": sk-aws-broken"}),
    )
    .await;
    moto.sm(
        "CreateSecret",
        json!({"Name": "prod/binary", "SecretBinary": "c2stYmluYXJ5"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let b = backends(&section(&moto.addr, dir.path(), TEST_AWS_KEYS));

    let plain = source("aws-sm://prod/openai", &b);
    assert_eq!(plain.get().await.unwrap().expose_secret(), "sk-aws-plain");
    assert!(!format!("{plain:?} {b:?}").contains("sk-aws"));
    assert_eq!(
        source("aws-sm://prod/llm#openai", &b)
            .get()
            .await
            .unwrap()
            .expose_secret(),
        "sk-aws-json"
    );

    let err = |r: &'static str| {
        let b = b.clone();
        async move { source(r, &b).get().await.unwrap_err().to_string() }
    };
    let e = err("aws-sm://prod/llm#anthropic").await;
    assert!(
        e.contains("aws-sm://prod/llm#anthropic") && e.contains("no field \"anthropic\""),
        "{e}"
    );
    let e = err("aws-sm://prod/llm#n").await;
    assert!(e.contains("not a string"), "{e}");
    let e = err("aws-sm://prod/broken#openai").await;
    assert!(e.contains("not valid JSON"), "{e}");
    assert!(!e.contains("sk-aws-broken"), "{e}");
    let e = err("aws-sm://prod/openai#field").await;
    assert!(e.contains("not valid JSON"), "{e}");
    assert!(!e.contains("sk-aws-plain"), "{e}");
    let e = err("aws-sm://prod/unknown").await;
    assert!(e.contains("aws-sm://prod/unknown: secret not found"), "{e}");
    let e = err("aws-sm://prod/binary").await;
    assert!(e.contains("binary"), "{e}");

    // Missing credentials for AWS: the error names the reference of the missing key.
    let none = backends(
        "[aws]\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"file:///nonexistent/aws-key-id\"\nsecret_access_key = \"file:///nonexistent/aws-secret\"\n",
    );
    let e = source("aws-sm://prod/openai", &none)
        .get()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("file:///nonexistent/aws-key-id"), "{e}");
}

#[tokio::test]
async fn rotated_secret_is_served_after_invalidate_and_writes_merge_fields() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let b = backends(&section(&moto.addr, dir.path(), TEST_AWS_KEYS));
    let write = |r: &str, v: &str| {
        let (b, r, v) = (
            b.clone(),
            CredentialRef::parse(r).unwrap(),
            SecretString::from(v.to_owned()),
        );
        async move { b.write(&r, &v).await }
    };

    // Writing a secret that does not exist creates it.
    write("aws-sm://rotating", "sk-v1").await.unwrap();
    let src = source("aws-sm://rotating", &b);
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-v1");
    write("aws-sm://rotating", "sk-v2").await.unwrap();
    assert_eq!(
        src.get().await.unwrap().expose_secret(),
        "sk-v1",
        "cached within the TTL"
    );
    src.invalidate();
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-v2");

    // Rotation outside tollgate is picked up too.
    moto.sm(
        "PutSecretValue",
        json!({"SecretId": "rotating", "SecretString": "sk-v3"}),
    )
    .await;
    src.invalidate();
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-v3");

    // #FIELD writes keep the other fields; a new secret starts as a one-field object.
    moto.sm(
        "CreateSecret",
        json!({"Name": "team", "SecretString": "{\"openai\":\"a\",\"note\":\"keep\"}"}),
    )
    .await;
    write("aws-sm://team#openai", "b").await.unwrap();
    let v = moto.sm("GetSecretValue", json!({"SecretId": "team"})).await;
    let stored: serde_json::Value =
        serde_json::from_str(v["SecretString"].as_str().unwrap()).unwrap();
    assert_eq!(stored, json!({"openai": "b", "note": "keep"}));
    write("aws-sm://fresh#k", "c").await.unwrap();
    assert_eq!(
        source("aws-sm://fresh#k", &b)
            .get()
            .await
            .unwrap()
            .expose_secret(),
        "c"
    );

    // A #FIELD write never overwrites a secret that is not a JSON object.
    let e = write("aws-sm://rotating#k", "x")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not valid JSON"), "{e}");
    src.invalidate();
    assert_eq!(src.get().await.unwrap().expose_secret(), "sk-v3");
}

/// moto checks signatures once IAM authentication is switched on: a request signed with the
/// right key is served, one signed with a wrong secret key is refused with a clear error.
#[tokio::test]
async fn signatures_are_accepted_by_moto_iam_authentication() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    let iam = |body: String| {
        let moto = &moto;
        async move {
            let (s, t) = moto.call("iam", None, form, &body, TEST_AWS_KEYS).await;
            assert_eq!(s, 200, "{body}: {t}");
            t
        }
    };
    iam("Action=CreateUser&UserName=tollgate&Version=2010-05-08".into()).await;
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22secretsmanager%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
    iam(format!(
        "Action=PutUserPolicy&UserName=tollgate&PolicyName=sm&PolicyDocument={policy}&Version=2010-05-08"
    ))
    .await;
    let created = iam("Action=CreateAccessKey&UserName=tollgate&Version=2010-05-08".into()).await;
    let between = |open: &str, close: &str| {
        let start = created.find(open).unwrap() + open.len();
        created[start..start + created[start..].find(close).unwrap()].to_owned()
    };
    let key_id = between("<AccessKeyId>", "</AccessKeyId>");
    let secret = between("<SecretAccessKey>", "</SecretAccessKey>");
    moto.sm(
        "CreateSecret",
        json!({"Name": "signed", "SecretString": "sk-signed"}),
    )
    .await;
    // From now on every request must carry a valid signature of a known key.
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/reset-auth", moto.addr))
        .body("0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let good = backends(&section(&moto.addr, dir.path(), (&key_id, &secret)));
    assert_eq!(
        source("aws-sm://signed", &good)
            .get()
            .await
            .unwrap()
            .expose_secret(),
        "sk-signed"
    );
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = backends(&section(
        &moto.addr,
        bad_dir.path(),
        (&key_id, "not-the-secret-key"),
    ));
    let e = source("aws-sm://signed", &bad)
        .get()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused tollgate's credentials"), "{e}");
    assert!(
        !e.contains("not-the-secret-key") && !e.contains(&secret),
        "{e}"
    );
}
