//! The admin API's role × endpoint matrix (AC-3): every cell is allowed or denied exactly as
//! the RBAC table says, every denial is audited, and data-plane keys are not admin
//! credentials.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_gateway::admin::rbac::Role;
use tollgate_gateway::admin::{ENDPOINTS, method_of};
use tollgate_store::AdminCredential;
use tollgate_store::key::{new_admin_credential, random_base62};

use crate::harness::Harness;

async fn credential(h: &Harness, role: Role) -> String {
    let secret = new_admin_credential();
    let text = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    h.store
        .admins
        .insert_admin(&AdminCredential {
            id: format!("adm_{}", random_base62(12)),
            hash: h.hasher.hash_text(&text),
            name: format!("{role:?}"),
            role: role.as_str().to_owned(),
            created_at: tollgate_store::now(),
        })
        .await
        .unwrap();
    text
}

fn body_for(path: &str) -> Option<Value> {
    match path {
        "/admin/v1/keys" => Some(json!({"name": "matrix"})),
        "/admin/v1/admins" => Some(json!({"name": "matrix", "role": "auditor"})),
        "/admin/v1/killswitches" => {
            Some(json!({"kind": "key", "target": "key_matrix", "reason": "drill"}))
        }
        _ => None,
    }
}

/// The audit records of the last ten minutes, once everything queued is written.
async fn recent_records(h: &Harness) -> Vec<tollgate_store::audit::AuditRecord> {
    h.gw.audit.flush().await;
    h.gw.store
        .audit
        .records_between(
            chrono::Utc::now() - chrono::Duration::minutes(10),
            chrono::Utc::now() + chrono::Duration::minutes(1),
            None,
            100_000,
        )
        .await
        .unwrap()
}

async fn denied_admin_records(h: &Harness) -> usize {
    recent_records(h)
        .await
        .iter()
        .filter(|r| r.kind == "admin" && r.body.contains("\"outcome\":\"denied\""))
        .count()
}

#[tokio::test]
async fn every_role_and_endpoint_cell_is_allowed_or_denied_as_the_table_says() {
    let h = Harness::start().await;
    let mut creds = HashMap::new();
    for role in Role::ALL {
        creds.insert(role, credential(&h, role).await);
    }
    let mut denials = 0;
    let mut cells = 0;
    for e in ENDPOINTS {
        let path = e
            .path
            .replace("{id}", "does_not_exist")
            .replace("{kind}", "key")
            .replace("{target}", "does_not_exist");
        for role in Role::ALL {
            cells += 1;
            let method = Method::from_bytes(method_of(e).as_str().as_bytes()).unwrap();
            let mut rb = h
                .client
                .request(method, format!("{}{path}", h.url))
                .bearer_auth(&creds[&role]);
            if let Some(b) = body_for(e.path).filter(|_| e.method == "POST") {
                rb = rb.json(&b);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            if role.allows(e.permission) {
                assert!(
                    ![401, 403].contains(&status),
                    "{} {} as {}: {status}",
                    e.method,
                    e.path,
                    role.as_str()
                );
                // A handler answered (every one answers JSON), not the router's bare 404 or
                // 405 for a table entry it does not serve.
                let text = r.text().await.unwrap();
                assert!(
                    serde_json::from_str::<Value>(&text).is_ok(),
                    "{} {} as {}: {status} {text:?}: is the endpoint routed?",
                    e.method,
                    e.path,
                    role.as_str()
                );
            } else {
                assert_eq!(status, 403, "{} {} as {}", e.method, e.path, role.as_str());
                let body: Value = r.json().await.unwrap();
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains(role.as_str())
                );
                denials += 1;
            }
        }
    }
    assert!(cells >= ENDPOINTS.len() * Role::ALL.len());
    assert!(denials > 0);
    assert_eq!(
        denied_admin_records(&h).await,
        denials,
        "every denial is audited"
    );
}

#[tokio::test]
async fn without_an_admin_credential_the_admin_api_is_401() {
    let h = Harness::start().await;
    let r = h
        .client
        .get(format!("{}/admin/v1/keys", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A data-plane key is not an admin credential.
    let r = h
        .client
        .get(format!("{}/admin/v1/keys", h.url))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(denied_admin_records(&h).await, 2);
}

#[tokio::test]
async fn an_admin_creates_a_key_that_works_on_the_data_plane_and_revokes_it() {
    let h = Harness::start().await;
    let admin = credential(&h, Role::Admin).await;
    let r = h
        .client
        .post(format!("{}/admin/v1/keys", h.url))
        .bearer_auth(&admin)
        .json(&json!({"name": "svc", "team": "qa", "models": ["gpt"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    let chat = |k: String| {
        h.client
            .post(format!("{}/v1/chat/completions", h.url))
            .bearer_auth(k)
            .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(chat(key.clone()).await.unwrap().status(), 200);
    let listed: Value = h
        .client
        .get(format!("{}/admin/v1/keys", h.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.to_string().contains(&id));
    assert!(!listed.to_string().contains(&key), "keys are never listed");
    let r = h
        .client
        .post(format!("{}/admin/v1/keys/{id}/revoke", h.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut refused = false;
    for _ in 0..30 {
        if chat(key.clone()).await.unwrap().status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "revocation through the admin API reaches the data plane"
    );
    // An admin cannot mint an owner.
    let r = h
        .client
        .post(format!("{}/admin/v1/admins", h.url))
        .bearer_auth(&admin)
        .json(&json!({"name": "x", "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Bad input is a clear 400, not a panic.
    let r = h
        .client
        .post(format!("{}/admin/v1/keys", h.url))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_and_its_roles() {
    let h = Harness::start().await;
    let doc: Value = h
        .client
        .get(format!("{}/admin/v1/openapi.json", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for e in ENDPOINTS {
        let op = &doc["paths"][e.path][e.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {}", e.method, e.path);
        assert!(op["x-tollgate-roles"].is_array());
    }
    assert_eq!(
        doc["paths"]["/admin/v1/audit/records"]["delete"]["x-tollgate-roles"],
        json!([])
    );
}

#[tokio::test]
async fn admin_credentials_are_listed_and_revoked_and_the_last_owner_cannot_be() {
    let h = Harness::start().await;
    let owner = credential(&h, Role::Owner).await;
    let admin = credential(&h, Role::Admin).await;
    let call = |method: Method, path: String, token: String| {
        let rb = h
            .client
            .request(method, format!("{}{path}", h.url))
            .bearer_auth(token);
        async move {
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let list = || call(Method::GET, "/admin/v1/admins".into(), admin.clone());
    let revoke = |id: &str, token: &str| {
        call(
            Method::POST,
            format!("/admin/v1/admins/{id}/revoke"),
            token.to_owned(),
        )
    };
    // An admin issues an auditor's credential; the list shows roles and states, never a
    // credential.
    let r = h
        .client
        .post(format!("{}/admin/v1/admins", h.url))
        .bearer_auth(&admin)
        .json(&json!({"name": "Ada (audit)", "role": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let auditor = created["credential"].as_str().unwrap().to_owned();
    let auditor_id = created["id"].as_str().unwrap().to_owned();
    let (status, listed) = list().await;
    assert_eq!(status, 200);
    let admins = listed["admins"].as_array().unwrap();
    assert_eq!(admins.len(), 3);
    let row = admins
        .iter()
        .find(|a| a["id"] == auditor_id.as_str())
        .unwrap();
    assert_eq!(row["role"], "auditor");
    assert_eq!(row["name"], "Ada (audit)");
    assert_eq!(row["state"], "active");
    assert!(
        !listed.to_string().contains(&auditor),
        "never the credential"
    );
    let owner_id = admins.iter().find(|a| a["role"] == "owner").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let whoami = |token: String| call(Method::GET, "/admin/v1/whoami".into(), token);
    assert_eq!(whoami(auditor.clone()).await.0, 200);

    // Revoked, the credential stops working at once.
    assert_eq!(revoke(&auditor_id, &admin).await.0, 200);
    assert_eq!(whoami(auditor.clone()).await.0, 401);
    let (status, body) = revoke(&auditor_id, &admin).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(revoke("adm_nobody", &admin).await.0, 404);
    let (_, listed) = list().await;
    assert!(
        listed["admins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == auditor_id.as_str() && a["state"] == "revoked")
    );

    // An admin cannot revoke an owner; the only owner cannot revoke itself.
    assert_eq!(revoke(&owner_id, &admin).await.0, 403);
    let (status, body) = revoke(&owner_id, &owner).await;
    assert_eq!(status, 409);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("last active owner"),
        "{body}"
    );
    assert_eq!(whoami(owner.clone()).await.0, 200);
    // With a second owner it can.
    let r = h
        .client
        .post(format!("{}/admin/v1/admins", h.url))
        .bearer_auth(&owner)
        .json(&json!({"name": "second owner", "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(revoke(&owner_id, &owner).await.0, 200);
    assert_eq!(whoami(owner.clone()).await.0, 401);

    // Bad input is a clear 400.
    let r = h
        .client
        .post(format!("{}/admin/v1/admins", h.url))
        .bearer_auth(&admin)
        .json(&json!({"name": "  ", "role": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Every step is in the audit trail, refusals included.
    let recs = recent_records(&h).await;
    let revokes: Vec<&str> = recs
        .iter()
        .filter(|r| r.body.contains("\"action\":\"admins.revoke\""))
        .map(|r| r.body.as_str())
        .collect();
    assert_eq!(revokes.len(), 6, "{revokes:#?}");
    assert!(revokes.iter().any(|b| b.contains("last owner")));
}
