//! `tollgate admins` (AC-3) on the store and through a gateway's admin API: a person gets a
//! credential with one role, loses it when revoked, and the last owner cannot be revoked.

use serde_json::Value;
use tollgate_testkit::MockUpstream;

use crate::audit::{admin_cli, project};
use crate::remote::{json_of, remote};
use crate::server::Server;

fn ids_and_states(list: &Value) -> Vec<(String, String, String)> {
    list["admins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["role"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_credentials_are_issued_listed_and_revoked_on_the_store_and_over_the_api() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let owner = p.owner.as_str();
    let cli = |token: Option<&str>, args: &[&str]| admin_cli(&p.dir, token, args);

    // The owner issues an auditor's credential, shown once.
    let (code, out, err) = cli(
        Some(owner),
        &[
            "admins", "create", "--name", "Ada", "--role", "auditor", "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let created = json_of(&out);
    let auditor = created["credential"].as_str().unwrap().to_owned();
    let auditor_id = created["id"].as_str().unwrap().to_owned();
    assert!(auditor.starts_with("tg_admin_"), "{out}");
    // Not a role, or no credential: exit 2 with the reason.
    let (code, _, err) = cli(
        Some(owner),
        &["admins", "create", "--name", "x", "--role", "app"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown admin role"), "{err}");
    let (code, _, err) = cli(None, &["admins", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("TOLLGATE_ADMIN_TOKEN"), "{err}");
    // An auditor may not manage admins.
    let (code, _, err) = cli(Some(&auditor), &["admins", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("role auditor"), "{err}");

    let (code, out, err) = cli(Some(owner), &["admins", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let list = json_of(&out);
    assert!(!out.contains(&auditor), "never the credential");
    let rows = ids_and_states(&list);
    assert_eq!(rows.len(), 2, "{out}");
    let owner_id = rows.iter().find(|r| r.1 == "owner").unwrap().0.clone();
    assert!(rows.contains(&(auditor_id.clone(), "auditor".into(), "active".into())));
    let (code, out, err) = cli(Some(owner), &["admins", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("2 active admin credential(s), 2 in all"),
        "{out}"
    );

    // The only owner stays; the auditor goes, and its credential stops working.
    let (code, _, err) = cli(Some(owner), &["admins", "revoke", &owner_id]);
    assert_eq!(code, 2);
    assert!(err.contains("last active owner"), "{err}");
    let (code, out, err) = cli(Some(owner), &["admins", "revoke", &auditor_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Revoked admin credential"), "{out}");
    let (code, _, err) = cli(Some(&auditor), &["audit", "show", "req_nothing"]);
    assert_eq!(code, 2);
    assert!(err.contains("not valid"), "{err}");
    let (code, _, err) = cli(Some(owner), &["admins", "revoke", &auditor_id]);
    assert_eq!(code, 2);
    assert!(err.contains("already revoked"), "{err}");

    // The same through a running gateway, with no store at hand.
    let server = Server::start(&p.dir, &[]);
    let (code, out, err) = remote(
        &server.url,
        owner,
        &[
            "admins",
            "create",
            "--name",
            "on call",
            "--role",
            "incident-responder",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let responder_id = json_of(&out)["id"].as_str().unwrap().to_owned();
    let (code, out, err) = remote(&server.url, owner, &["admins", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows = ids_and_states(&json_of(&out));
    assert!(rows.contains(&(auditor_id.clone(), "auditor".into(), "revoked".into())));
    assert!(rows.contains(&(
        responder_id.clone(),
        "incident-responder".into(),
        "active".into()
    )));
    let (code, _, err) = remote(&server.url, owner, &["admins", "revoke", &owner_id]);
    assert_eq!(code, 2);
    assert!(err.contains("last active owner"), "{err}");
    let (code, _, err) = remote(&server.url, owner, &["admins", "revoke", &responder_id]);
    assert_eq!(code, 0, "{err}");

    // Every action is in the trail, and the trail still verifies.
    let (code, out, err) = cli(None, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}
