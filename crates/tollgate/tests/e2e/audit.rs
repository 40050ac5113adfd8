//! The audit trail end to end (DP-2, DP-3): the real binary is killed under load and every
//! response it returned still has its record; the CLI names a tampered record; reading the
//! trail needs an audit role; retention deletes payloads but not what a legal hold keeps.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{MOCK_KEY, MockUpstream};

use crate::server::{BIN, Server, cli, create_key};

/// A project made by `tollgate init`, with its config replaced by one routing to the mock.
pub(crate) struct Project {
    _tmp: tempfile::TempDir,
    /// The project directory (config in it, data in `tollgate-data/` below it).
    pub(crate) dir: PathBuf,
    /// The bootstrap owner credential `init` printed.
    pub(crate) owner: String,
}

impl Project {
    fn data(&self) -> PathBuf {
        self.dir.join("tollgate-data")
    }

    /// This gateway's chain id (kept in the data directory once the server has started).
    fn instance(&self) -> String {
        std::fs::read_to_string(self.data().join("instance.id"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// A copy of the whole project (config, database, master key) to tamper with.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self._tmp.path().join(name);
        let ok = Command::new("cp")
            .arg("-r")
            .arg(&self.dir)
            .arg(&to)
            .status()
            .unwrap();
        assert!(ok.success());
        to
    }
}

/// `tollgate init`, then a config with the mock as provider, `extra` appended.
pub(crate) fn project(mock: &MockUpstream, extra: &str) -> Project {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = cli(tmp.path(), &["init", "proj"], None);
    assert_eq!(code, 0, "{err}");
    let owner = out
        .lines()
        .skip_while(|l| !l.contains("It is shown only this once:"))
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("init prints the credential after its notice")
        .to_owned();
    assert!(owner.starts_with("tg_admin_"), "{out}");
    let dir = tmp.path().join("proj");
    let config = format!(
        r#"
[storage]
data_dir = "tollgate-data"

[providers.oa]
kind = "openai"
base_url = "{openai}"
api_key = "keystore://mock"
retry_backoff = "5ms"
[providers.oa.review]
{review}

[routes.gpt]
targets = [{{ provider = "oa", model = "gpt-mock" }}]

[routes.audited]
targets = [{{ provider = "oa", model = "gpt-mock" }}]
[routes.audited.audit]
prompts = true
completions = true
{extra}
"#,
        openai = mock.openai_base(),
        review = crate::server::review_toml(),
    );
    std::fs::write(dir.join("tollgate.toml"), config).unwrap();
    let (code, _, err) = cli(
        &dir,
        &["secrets", "set", "mock"],
        Some(&format!("{MOCK_KEY}\n")),
    );
    assert_eq!(code, 0, "{err}");
    Project {
        _tmp: tmp,
        dir,
        owner,
    }
}

/// Run a CLI command with `TOLLGATE_ADMIN_TOKEN` set to `token` in the child only (or
/// removed from it): (exit code, stdout, stderr).
pub(crate) fn admin_cli(cwd: &Path, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("TOLLGATE_ADMIN_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tollgate audit verify --json` (plus `extra`): (exit code, report).
fn verify_json(cwd: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["audit", "verify", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = cli(cwd, &args, None);
    assert!(code == 0 || code == 1, "verify failed to run: {err}");
    (code, serde_json::from_str(&out).unwrap())
}

/// The report of one chain in a `verify --json` report.
fn chain<'a>(report: &'a Value, instance: &str) -> &'a Value {
    report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["instance"] == instance)
        .unwrap_or_else(|| panic!("no chain {instance} in {report}"))
}

/// Every record `audit export` prints.
fn export(cwd: &Path, token: &str) -> Vec<Value> {
    let (code, out, err) = admin_cli(cwd, Some(token), &["audit", "export", "--format", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `audit show REQ --json` as the owner.
fn show_json(cwd: &Path, token: &str, id: &str) -> Value {
    let (code, out, err) = admin_cli(cwd, Some(token), &["audit", "show", id, "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The payload of `kind` in a `show --json` document.
fn payload<'a>(doc: &'a Value, kind: &str) -> Option<&'a Value> {
    doc["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind)
}

/// SIGTERM the server and wait (bounded) for it to exit.
pub(crate) fn stop(server: &mut Server) -> ExitStatus {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "tollgate did not stop on SIGTERM: {:?}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run SQL against the database with Python's sqlite3 module (as someone with write access
/// to the file, but not the master key, would); prints the number of rows changed.
pub(crate) fn tamper(db: &Path, sql: &str) -> u64 {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.executescript(sys.argv[2])\n\
             print(c.total_changes)\n\
             c.close()\n",
        )
        .arg(db)
        .arg(sql)
        .output()
        .expect("python3 is needed to tamper with the database");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// One chat call: (status, request id, body).
pub(crate) async fn chat(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    model: &str,
    text: &str,
) -> (u16, String, String) {
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    (status, id, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_no_record_of_a_returned_response() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let (key, _) = create_key(&p.dir, &[]);
    let mut server = Server::start(&p.dir, &[]);

    // Eight clients in a loop, half of them streaming. A response counts once it has been
    // read to its end: the whole body, or a stream's final `[DONE]` event.
    let completed = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
    let refused = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let client = reqwest::Client::new();
    let hard_stop = Instant::now() + Duration::from_secs(6);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (client, url, key) = (client.clone(), server.url.clone(), key.clone());
        let (completed, refused) = (completed.clone(), refused.clone());
        let stream = t % 2 == 1;
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < hard_stop {
                n += 1;
                let text = format!("load {t}/{n}");
                let sent = client
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(&key)
                    .timeout(Duration::from_secs(5))
                    .json(&json!({"model": "gpt", "stream": stream, "messages": [{"role": "user", "content": text}]}))
                    .send()
                    .await;
                let Ok(r) = sent else { return };
                let status = r.status().as_u16();
                let id = r
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let Ok(body) = r.bytes().await else { return };
                let body = String::from_utf8_lossy(&body);
                let whole = if stream {
                    body.contains("data: [DONE]")
                } else {
                    body.contains(&text)
                };
                match (status, whole) {
                    (200, true) => completed.lock().unwrap().push((id, stream)),
                    // Cut off by the kill: never returned in full, so nothing is promised.
                    (200, false) => return,
                    _ => refused.lock().unwrap().push((status, id)),
                }
            }
        }));
    }
    // Kill mid-load once a good number of responses are out (bounded either way).
    let kill_by = Instant::now() + Duration::from_secs(3);
    while completed.lock().unwrap().len() < 300 && Instant::now() < kill_by {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().unwrap(); // SIGKILL: no shutdown, no final checkpoint
    server.child.wait().unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("load tasks end once the server is gone")
            .unwrap();
    }
    let completed = completed.lock().unwrap().clone();
    let streamed = completed.iter().filter(|(_, s)| *s).count();
    assert!(streamed >= 5, "too few streams before the kill: {streamed}");
    let streams: HashSet<String> = completed
        .iter()
        .filter(|(_, s)| *s)
        .map(|(id, _)| id.clone())
        .collect();
    let completed: Vec<String> = completed.into_iter().map(|(id, _)| id).collect();
    assert!(
        refused.lock().unwrap().is_empty(),
        "{:?}",
        refused.lock().unwrap()
    );
    assert!(
        completed.len() >= 20,
        "too little load before the kill: {}",
        completed.len()
    );

    // The chain verifies as it was left.
    let (code, out, err) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("PASS"), "{out}");

    // Every response the clients received has its record, and says it was a 200.
    let records = export(&p.dir, &p.owner);
    let mut by_ref = std::collections::HashMap::new();
    let mut positions = HashSet::new();
    for r in &records {
        assert!(
            positions.insert((r["instance"].to_string(), r["seq"].as_u64().unwrap())),
            "export repeats a record: {r}"
        );
        by_ref.insert(r["ref_id"].as_str().unwrap().to_owned(), r);
    }
    let missing: Vec<_> = completed
        .iter()
        .filter(|id| !by_ref.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} returned responses have no audit record: {:?}",
        missing.len(),
        completed.len(),
        &missing[..missing.len().min(5)]
    );
    for id in &completed {
        assert_eq!(by_ref[id]["record"]["status"], 200, "{}", by_ref[id]);
        assert_eq!(
            by_ref[id]["record"]["stream"],
            streams.contains(id),
            "{}",
            by_ref[id]
        );
        assert_eq!(by_ref[id]["instance"], p.instance());
    }
    // The export holds every record, the chains' own count (its own admin record included).
    let (code, report) = verify_json(&p.dir, &[]);
    assert_eq!(code, 0, "{report}");
    let total: u64 = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["records"].as_u64().unwrap())
        .sum();
    assert_eq!(records.len() as u64, total);

    // The same data directory serves again and the chain continues.
    let before = chain(&report, &p.instance())["last_seq"].as_u64().unwrap();
    let mut server = Server::start(&p.dir, &[]);
    let client = reqwest::Client::new();
    let mut after_restart = Vec::new();
    for i in 0..3 {
        let (status, id, _) = chat(&client, &server.url, &key, "gpt", &format!("again {i}")).await;
        assert_eq!(status, 200);
        after_restart.push(id);
    }
    let status = stop(&mut server);
    assert!(status.success(), "{status}: {:?}", server.output());
    let (code, out, _) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("PASS"), "{out}");
    let (_, report) = verify_json(&p.dir, &[]);
    let gw = chain(&report, &p.instance());
    assert_eq!(gw["last_seq"].as_u64().unwrap(), before + 3, "{gw}");
    assert_eq!(
        gw["unsigned_tail"], 0,
        "a graceful stop signs the head: {gw}"
    );
    let refs: HashSet<String> = export(&p.dir, &p.owner)
        .iter()
        .map(|r| r["ref_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &after_restart {
        assert!(refs.contains(id), "{id} has no record after the restart");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_a_modified_or_deleted_record_and_a_checkpoint_catches_truncation() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let (key, _) = create_key(&p.dir, &[]);
    let mut server = Server::start(&p.dir, &[]);
    let client = reqwest::Client::new();
    for i in 0..6 {
        let (status, _, _) = chat(&client, &server.url, &key, "gpt", &format!("n{i}")).await;
        assert_eq!(status, 200);
    }
    assert!(stop(&mut server).success());
    let instance = p.instance();
    let (code, out, _) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("PASS"), "{out}");

    // (a) One record's body edited: verify fails and names it.
    let a = p.copy("modified");
    let changed = tamper(
        &a.join("tollgate-data/tollgate.db"),
        &format!(
            "UPDATE audit_records SET body = replace(body, '\"status\":200', '\"status\":500') \
             WHERE instance = '{instance}' AND seq = 3;"
        ),
    );
    assert_eq!(changed, 1);
    let (code, out, _) = cli(&a, &["audit", "verify"], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL"), "{out}");
    assert!(out.contains("first bad record: seq 3"), "{out}");
    assert!(out.contains("modified"), "{out}");
    let (_, report) = verify_json(&a, &[]);
    assert_eq!(chain(&report, &instance)["problem"]["seq"], 3, "{report}");

    // (b) A record in the middle deleted: verify fails and names the gap.
    let b = p.copy("deleted");
    let changed = tamper(
        &b.join("tollgate-data/tollgate.db"),
        &format!("DELETE FROM audit_records WHERE instance = '{instance}' AND seq = 4;"),
    );
    assert_eq!(changed, 1);
    let (code, out, _) = cli(&b, &["audit", "verify"], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("first bad record: seq 4"), "{out}");
    assert!(out.contains("missing"), "{out}");

    // (c) The last records cut off after a checkpoint was saved elsewhere.
    let cp = p._tmp.path().join("checkpoint.json");
    let (code, out, err) = cli(
        &p.dir,
        &["audit", "checkpoint", "--out", cp.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("--from-checkpoint"), "{out}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&cp).unwrap()).unwrap();
    let last = saved["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["instance"] == instance.as_str())
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    assert_eq!(last, 6);
    let (code, _, _) = cli(
        &p.dir,
        &["audit", "verify", "--from-checkpoint", cp.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "an untouched trail agrees with its checkpoint");

    // Crudely: only the rows go. The chain's own head row notices.
    let c1 = p.copy("cut");
    tamper(
        &c1.join("tollgate-data/tollgate.db"),
        &format!("DELETE FROM audit_records WHERE instance = '{instance}' AND seq > 4;"),
    );
    let (code, out, _) = cli(&c1, &["audit", "verify"], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("truncated"), "{out}");

    // Carefully: rows, head and stored checkpoints rewritten to match. Only the checkpoint
    // kept outside the database can tell.
    let c2 = p.copy("cut-carefully");
    tamper(
        &c2.join("tollgate-data/tollgate.db"),
        &format!(
            "DELETE FROM audit_records WHERE instance = '{instance}' AND seq > 4;\n\
             UPDATE audit_heads SET seq = 4, hash = (SELECT hash FROM audit_records \
               WHERE instance = '{instance}' AND seq = 4) WHERE instance = '{instance}';\n\
             DELETE FROM audit_checkpoints WHERE instance = '{instance}' AND seq > 4;"
        ),
    );
    let (code, out, _) = cli(
        &c2,
        &["audit", "verify", "--from-checkpoint", cp.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL"), "{out}");
    assert!(
        out.contains("chain truncated: external checkpoint vouches for seq 6 but records end at 4"),
        "{out}"
    );
    let (code, report) = verify_json(&c2, &["--from-checkpoint", cp.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        chain(&report, &instance)["checkpoint_problems"][0]["seq"],
        5,
        "{report}"
    );

    // A file that is not a checkpoint is a usage error, not a verdict.
    let junk = p._tmp.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let (code, _, err) = cli(
        &p.dir,
        &[
            "audit",
            "verify",
            "--from-checkpoint",
            junk.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a checkpoint file"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_the_trail_needs_an_audit_role_and_shows_the_masked_prompt() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let (key, key_id) = create_key(&p.dir, &[]);
    let mut server = Server::start(&p.dir, &[]);
    let client = reqwest::Client::new();
    let email = "jane.doe@example.org";
    let (status, stored_id, answer) = chat(
        &client,
        &server.url,
        &key,
        "audited",
        &format!("Write to {email} about the invoice"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, plain_id, _) = chat(&client, &server.url, &key, "gpt", "hello").await;
    assert_eq!(status, 200);

    // Without a credential: refused, naming the roles that may read.
    for args in [
        vec!["audit", "show", stored_id.as_str()],
        vec!["audit", "export"],
    ] {
        let (code, out, err) = admin_cli(&p.dir, None, &args);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("owner, admin, auditor"), "{err}");
        assert!(err.contains("TOLLGATE_ADMIN_TOKEN"), "{err}");
        assert!(!out.contains(&stored_id), "{out}");
    }
    // With a credential that is not one: refused, and the attempt is recorded.
    let (code, out, err) = admin_cli(
        &p.dir,
        Some("tg_admin_000000000000000000000000000000000000"),
        &["audit", "show", &stored_id],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not valid"), "{err}");

    // With the owner credential, while the gateway runs: the record, human-readable.
    let (code, out, err) = admin_cli(&p.dir, Some(&p.owner), &["audit", "show", &plain_id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&plain_id) && out.contains("\"route\": \"gpt\""),
        "{out}"
    );
    assert!(
        out.contains("(no payloads stored for this request)"),
        "{out}"
    );
    let (code, _, err) = admin_cli(
        &p.dir,
        Some(&p.owner),
        &["audit", "show", "req_nosuchrequest"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no audit record"), "{err}");

    // A route that stores payloads: the prompt as the provider got it (masked), and the
    // completion as the client got it.
    let doc = show_json(&p.dir, &p.owner, &stored_id);
    let record = &doc["records"][0]["record"];
    assert_eq!(record["key_id"], key_id);
    assert_eq!(record["route"], "audited");
    assert!(!doc["records"].to_string().contains(email), "{doc}");
    let prompt = payload(&doc, "prompt").expect("prompt stored");
    assert_eq!(prompt["payload"]["status"], "ok", "{prompt}");
    let sent = prompt["payload"]["text"].as_str().unwrap();
    assert!(sent.contains("invoice"), "{sent}");
    assert!(
        !sent.contains(email),
        "stored prompt is the masked one: {sent}"
    );
    let upstream = mock
        .requests()
        .into_iter()
        .find(|r| r.body.to_string().contains("invoice"))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(sent).unwrap(),
        upstream.body,
        "exactly what the provider received"
    );
    assert_eq!(record["payloads"]["prompt"], prompt["sha256"]);
    let completion = payload(&doc, "completion").expect("completion stored");
    assert_eq!(completion["payload"]["status"], "ok");
    assert_eq!(
        completion["payload"]["text"], answer,
        "the response exactly as returned"
    );
    assert_eq!(record["payloads"]["completion"], completion["sha256"]);
    assert!(
        payload(&doc, "original_prompt").is_none(),
        "the unmasked prompt is kept only where a route asks"
    );
    assert!(stop(&mut server).success());

    // Reading is itself on the record: who looked at what, and who was turned away.
    let records = export(&p.dir, &p.owner);
    let admin: Vec<&Value> = records
        .iter()
        .map(|r| &r["record"])
        .filter(|r| r["via"] == "cli")
        .collect();
    assert!(
        admin.iter().any(|r| r["action"] == "audit.show"
            && r["target"] == stored_id.as_str()
            && r["outcome"] == "ok"
            && r["actor"].as_str().unwrap().starts_with("adm_")),
        "{admin:?}"
    );
    assert!(
        admin.iter().any(|r| r["action"] == "audit.show"
            && r["outcome"] == "denied"
            && r["actor"] == "unknown"),
        "{admin:?}"
    );
    assert!(!records.iter().any(|r| r.to_string().contains(email)));
    let (code, out, _) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_expired_payloads_except_under_legal_hold() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(
        &mock,
        "\n[retention]\nprompts = \"1s\"\ncompletions = \"1s\"\n",
    );
    let (held_key, held_id) = create_key(&p.dir, &[]);
    let (free_key, _) = create_key(&p.dir, &[]);
    let mut server = Server::start(&p.dir, &[]);
    let client = reqwest::Client::new();
    let (status, held_req, _) = chat(
        &client,
        &server.url,
        &held_key,
        "audited",
        "kept for the case",
    )
    .await;
    assert_eq!(status, 200);
    let (status, free_req, _) =
        chat(&client, &server.url, &free_key, "audited", "free to go").await;
    assert_eq!(status, 200);
    let sent_at = Instant::now();
    assert!(stop(&mut server).success());

    let t = Some(p.owner.as_str());
    let (code, out, err) = admin_cli(
        &p.dir,
        t,
        &[
            "audit", "hold", "add", "--key", &held_id, "--reason", "case-1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&held_id), "{out}");
    let (code, out, err) = admin_cli(&p.dir, t, &["audit", "hold", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&held_id) && out.contains("case-1"), "{out}");
    let (code, _, err) = admin_cli(&p.dir, None, &["retention", "run", "--dry-run"]);
    assert_eq!(code, 2);
    assert!(err.contains("owner, admin, data-steward"), "{err}");

    // Past the TTL (wall-clock: the CLI compares stored times with now).
    let ttl = Duration::from_millis(1_500);
    if let Some(left) = ttl.checked_sub(sent_at.elapsed()) {
        std::thread::sleep(left);
    }

    // A dry run counts and deletes nothing.
    let (code, out, err) = admin_cli(&p.dir, t, &["retention", "run", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let dry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(dry["payloads_deleted"]["prompt"], 1, "{dry}");
    assert_eq!(dry["payloads_deleted"]["completion"], 1, "{dry}");
    assert_eq!(dry["payloads_held"], 2, "{dry}");
    let (code, out, _) = admin_cli(&p.dir, t, &["retention", "run", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("would delete 1 prompt payload(s)"), "{out}");
    assert!(out.contains("kept 2 payload(s) under legal hold"), "{out}");
    let doc = show_json(&p.dir, &p.owner, &free_req);
    assert_eq!(
        payload(&doc, "prompt").unwrap()["payload"]["text"]
            .as_str()
            .map(|s| s.contains("free to go")),
        Some(true),
        "{doc}"
    );

    // The run deletes the free key's payloads and keeps the held key's.
    let (code, out, err) = admin_cli(&p.dir, t, &["retention", "run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["payloads_deleted"]["prompt"], 1, "{run}");
    assert_eq!(run["payloads_deleted"]["completion"], 1, "{run}");
    assert_eq!(run["payloads_held"], 2, "{run}");
    let doc = show_json(&p.dir, &p.owner, &free_req);
    assert_eq!(doc["payloads"], json!([]), "{doc}");
    assert_eq!(
        doc["records"].as_array().unwrap().len(),
        1,
        "the record stays"
    );
    let doc = show_json(&p.dir, &p.owner, &held_req);
    let prompt = payload(&doc, "prompt").expect("held payload kept");
    assert!(
        prompt["payload"]["text"]
            .as_str()
            .is_some_and(|s| s.contains("kept for the case")),
        "{doc}"
    );
    let (code, out, _) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "deleting payloads leaves the chain intact: {out}");

    // Lifting the hold lets the next run delete them.
    let (code, _, err) = admin_cli(&p.dir, t, &["audit", "hold", "remove", "--key", &held_id]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = admin_cli(&p.dir, t, &["audit", "hold", "remove", "--key", &held_id]);
    assert_eq!(code, 2, "no hold left to lift");
    assert!(err.contains("no legal hold"), "{err}");
    let (code, out, err) = admin_cli(&p.dir, t, &["retention", "run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["payloads_deleted"]["prompt"], 1, "{run}");
    assert_eq!(run["payloads_deleted"]["completion"], 1, "{run}");
    assert_eq!(run["payloads_held"], 0, "{run}");
    let doc = show_json(&p.dir, &p.owner, &held_req);
    assert_eq!(doc["payloads"], json!([]), "{doc}");
    let (code, out, _) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");

    // Each step is on the record.
    let actions: Vec<String> = export(&p.dir, &p.owner)
        .iter()
        .filter(|r| r["record"]["via"] == "cli")
        .filter_map(|r| r["record"]["action"].as_str().map(str::to_owned))
        .collect();
    for a in ["audit.hold.add", "audit.hold.remove", "retention.run"] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|a| *a == "retention.run").count(),
        2,
        "dry runs change nothing and are not recorded as runs: {actions:?}"
    );
}

/// Verifying a running gateway must not report an alteration: `audit verify` read the chain
/// page by page and then the head, so records appended in between read as a truncation.
#[tokio::test(flavor = "multi_thread")]
async fn verify_while_the_gateway_writes_is_not_a_false_alarm() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let (key, _) = create_key(&p.dir, &[]);
    let mut server = Server::start(&p.dir, &[]);
    let client = reqwest::Client::new();
    let stop_load = Instant::now() + Duration::from_secs(8);
    let mut tasks = Vec::new();
    for t in 0..6 {
        let (client, url, key) = (client.clone(), server.url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop_load {
                let r = client
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": format!("v{t}")}]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = p.dir.clone();
    let runs = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for _ in 0..12 {
            let (code, out, err) = cli(&dir, &["audit", "verify"], None);
            if code != 0 {
                failures.push(format!("exit {code}: {out}{err}"));
            }
        }
        failures
    })
    .await
    .unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(stop(&mut server).success());
    assert!(
        runs.is_empty(),
        "{} of 12 verifications of an untouched, live trail failed: {}",
        runs.len(),
        runs[0]
    );
}
