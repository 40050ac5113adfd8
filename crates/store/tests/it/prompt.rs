//! Versioned prompts: versions, the deployment log and what the gateways read.

use tollgate_store::StoreError;
use tollgate_store::prompt::{EvalRecord, NewPromptVersion, PromptEnv};

use crate::backend::{TestDb, on_each_backend};

on_each_backend!(prompt_versions_deployments_and_rollback);

fn new<'a>(content: &'a str, author: &'a str) -> NewPromptVersion<'a> {
    NewPromptVersion {
        name: "support",
        content,
        content_hash: "h",
        author,
        diff: "",
        at: tollgate_store::now(),
    }
}

async fn prompt_versions_deployments_and_rollback(db: TestDb) {
    let p = &db.store.prompts;
    assert!(p.deployed_prompts().await.unwrap().is_empty());
    let v1 = p
        .add_prompt_version(&new("{\"a\":1}", "adm_a"))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let v2 = p
        .add_prompt_version(&new("{\"a\":2}", "adm_b"))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // A push points staging at the new version; production is untouched.
    let dep = p.deployed_prompts().await.unwrap();
    assert_eq!(dep.len(), 1);
    assert_eq!((dep[0].env, dep[0].version), (PromptEnv::Staging, 2));
    assert_eq!(dep[0].content, "{\"a\":2}");

    let eval = EvalRecord {
        passed: true,
        report: "{}".into(),
        at: tollgate_store::now(),
    };
    assert!(p.record_prompt_eval("support", 2, &eval).await.unwrap());
    assert!(!p.record_prompt_eval("support", 9, &eval).await.unwrap());
    let got = p.prompt_version("support", 2).await.unwrap().unwrap();
    assert_eq!(got.eval, Some(eval));
    assert_eq!(got.author, "adm_b");
    assert!(p.prompt_version("support", 3).await.unwrap().is_none());

    p.deploy_prompt("support", PromptEnv::Production, 1, "adm_c", "promote")
        .await
        .unwrap();
    let d = p
        .deploy_prompt("support", PromptEnv::Production, 2, "adm_c", "promote")
        .await
        .unwrap();
    assert_eq!(d.seq, 2);
    p.deploy_prompt("support", PromptEnv::Production, 1, "adm_c", "rollback")
        .await
        .unwrap();
    let dep = p.deployed_prompts().await.unwrap();
    assert_eq!(dep.len(), 2);
    let prod = dep.iter().find(|d| d.env == PromptEnv::Production).unwrap();
    assert_eq!(prod.version, 1);
    assert!(matches!(
        p.deploy_prompt("support", PromptEnv::Production, 7, "adm_c", "promote")
            .await,
        Err(StoreError::NoSuchPromptVersion { version: 7, .. })
    ));
    let log = p.prompt_deployments("support").await.unwrap();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(p.prompt_versions("support").await.unwrap().len(), 2);
    assert!(p.prompt_versions("other").await.unwrap().is_empty());
}
