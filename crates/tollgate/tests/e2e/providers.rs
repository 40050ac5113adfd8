//! `tollgate providers` (DP-4): the review table, its verdict and exit code; and the running
//! gateway refusing what the reviews do not allow.

use serde_json::{Value, json};
use tollgate_testkit::MockUpstream;

use crate::server::{Server, cli, create_key, project, review_toml};

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

/// A config with a current review, one expiring in 10 days, the echo provider, and `more`.
fn config(more: &str) -> String {
    let expiring = review_toml().replace(
        &format!("expires = {}", day(305)),
        &format!("expires = {}", day(10)),
    );
    format!(
        "[providers.openai]\nkind = \"openai\"\napi_key = \"keystore://openai\"\n[providers.openai.review]\n{}\n\n[providers.anthropic]\nkind = \"anthropic\"\napi_key = \"keystore://anthropic\"\n[providers.anthropic.review]\n{expiring}\n\n[providers.echo]\nkind = \"echo\"\n{more}",
        review_toml()
    )
}

#[test]
fn providers_lists_reviews_and_fails_on_unreviewed_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config("")).unwrap();
    let (code, out, err) = cli(dir.path(), &["providers"], None);
    assert_eq!(code, 0, "{out}{err}");
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("PASS:") && first.contains("1 expire(s) within 30 days"),
        "{out}"
    );
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {out}"))
            .to_owned()
    };
    let openai = row("openai");
    for want in [
        "ok",
        "public, internal, confidential",
        "30d",
        "us,eu",
        "security-team@example.com",
    ] {
        assert!(openai.contains(want), "{want} in {openai}");
    }
    assert!(row("anthropic").contains("expires in 10 days"), "{out}");
    assert!(row("echo").contains("none needed"), "{out}");
    let expiring = out.split("Expiring within 30 days:").nth(1).unwrap();
    assert!(
        expiring.contains(&format!("anthropic: expires {} (in 10 days)", day(10))),
        "{out}"
    );

    // An unreviewed and an expired provider fail the check, named in the verdict.
    let stale = review_toml().replace(
        &format!("expires = {}", day(305)),
        &format!("expires = {}", day(-1)),
    );
    std::fs::write(
        &path,
        config(&format!(
            "\n[providers.legacy]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\n[providers.stale]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[providers.stale.review]\n{stale}\n"
        )),
    )
    .unwrap();
    let (code, out, err) = cli(dir.path(), &["providers"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with(
            "FAIL: 2 of 5 providers may not receive data (DP-4); unreviewed: \"legacy\"; review expired: \"stale\"."
        ),
        "{out}"
    );
    assert!(row_in(&out, "legacy").contains("UNREVIEWED"), "{out}");
    assert!(
        row_in(&out, "stale").contains(&format!("EXPIRED {}", day(-1))),
        "{out}"
    );
    assert!(
        out.contains("add [providers.legacy.review]"),
        "says what to do: {out}"
    );

    let (code, out, _) = cli(dir.path(), &["providers", "--json"], None);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["unreviewed"], json!(["legacy"]));
    assert_eq!(v["expired"], json!(["stale"]));
    assert_eq!(v["expiring"], json!(["anthropic"]));
    let openai = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap();
    assert_eq!(openai["status"], "ok");
    assert_eq!(openai["review"]["dpa_signed"], true);
    assert_eq!(
        openai["review"]["data_classes"],
        json!(["public", "internal", "confidential"])
    );

    // A broken review is a config error (exit 2) naming its line.
    std::fs::write(
        &path,
        config("").replace(
            &format!("reviewed_on = {}", day(-60)),
            "reviewed_on = \"last spring\"",
        ),
    )
    .unwrap();
    let (code, _, err) = cli(dir.path(), &["providers"], None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 problem(s)")
            && err.contains(
                "line 6: providers.openai.review.reviewed_on: \"last spring\" is not a date"
            )
            && err.contains("providers.anthropic.review.reviewed_on"),
        "{err}"
    );
}

fn row_in(out: &str, name: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_refuses_what_reviews_do_not_allow() {
    let mock = MockUpstream::start().await.unwrap();
    let (dir, path) = project(&mock);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{text}\n[providers.unreviewed]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"keystore://mock\"\n[routes.unreviewed]\ntargets = [{{ provider = \"unreviewed\", model = \"gpt-mock\" }}]\n",
            mock.openai_base()
        ),
    )
    .unwrap();
    let d = dir.path();
    let (key, _) = create_key(d, &[]);
    let (pii_key, pii_id) = create_key(d, &["--data-class", "pii"]);
    let (code, _, err) = cli(
        d,
        &["keys", "create", "--name", "x", "--data-class", "secret"],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("public, internal, confidential, pii, phi"),
        "{err}"
    );
    let (_, out, _) = cli(d, &["keys", "show", &pii_id, "--json"], None);
    let shown: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(shown["data_class"], "pii");

    let server = Server::start(d, &[]);
    let chat = |key: &str, model: &str| {
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", server.url))
            .bearer_auth(key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(chat(&key, "gpt").await.unwrap().status(), 200);
    let before = mock.requests().len();
    // The unreviewed provider and a pii key (the project's providers stop at confidential)
    // are refused before anything is sent.
    for (k, model, why) in [
        (
            &key,
            "unreviewed",
            "provider \"unreviewed\" has not been reviewed",
        ),
        (
            &pii_key,
            "gpt",
            "provider \"oa\" is not approved for data class \"pii\" (approved: public, internal, confidential)",
        ),
    ] {
        let r = chat(k, model).await.unwrap();
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
    }
    assert_eq!(
        mock.requests().len(),
        before,
        "nothing reached the provider"
    );
    let line = server.wait_for_line(|l| {
        l.contains("\"error_class\":\"policy\"") && l.contains("\"data_class\":\"pii\"")
    });
    assert!(line.contains("policy_skips"), "{line}");
    // The echo provider needs no review, whatever the class.
    assert_eq!(chat(&pii_key, "echo").await.unwrap().status(), 200);
    // And `tollgate providers` names the unreviewed one.
    let (code, out, _) = cli(d, &["providers"], None);
    assert_eq!(code, 1);
    assert!(out.contains("unreviewed: \"unreviewed\""), "{out}");
}
