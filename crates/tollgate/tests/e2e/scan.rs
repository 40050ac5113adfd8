//! `tollgate scan` end to end: formats, exit codes, ignores, baselines, history.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::server::cli;

const KEY: &str = "AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x";

fn write(dir: &Path, rel: &str, body: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "app.py",
        format!("KEY = '{KEY}'\nm = torch.load(p)\n").as_bytes(),
    );
    write(
        d,
        ".env",
        b"GROQ_API_KEY=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\n",
    );
    write(
        d,
        "models/evil.bin",
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
    );
    write(
        d,
        "docker-compose.yml",
        b"services:\n  llm:\n    image: ollama/ollama\n    ports:\n      - \"11434:11434\"\n",
    );
    write(d, "requirements.txt", b"openai\n");
    dir
}

#[test]
fn sarif_output_is_valid_for_code_scanning() {
    let dir = repo();
    let (code, out, err) = cli(dir.path(), &["scan", "--format", "sarif"], None);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    let rules: Vec<&str> = results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    for want in [
        "google-api-key",
        "dotenv-credential",
        "pickle-dangerous-import",
        "model-server-public-port",
        "unpinned-ai-package",
        "torch-load-unsafe",
    ] {
        assert!(rules.contains(&want), "{want} missing from {rules:?}");
    }
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/'), "{uri} must be relative");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
    }
    assert!(
        !out.contains("kL5mN7pQ9rS1tU3vW5x"),
        "secret leaked into SARIF"
    );
}

#[test]
fn human_output_leads_with_verdicts_then_what_to_do() {
    let dir = repo();
    let (code, out, _) = cli(dir.path(), &["scan", "."], None);
    assert_eq!(code, 1);
    assert!(out.starts_with("FAIL:"), "{out}");
    for item in [
        "FAIL AC-1",
        "WARN SC-1",
        "FAIL SC-2",
        "WARN SC-3",
        "SKIP SC-4",
    ] {
        assert!(out.contains(item), "{item} missing:\n{out}");
    }
    assert!(out.contains("What to do:"));
}

#[test]
fn ignores_and_fail_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, ".gitignore", b"build/\n");
    write(d, "build/leak.py", format!("K = '{KEY}'\n").as_bytes());
    write(d, ".tollgateignore", b"fixtures/\n");
    write(d, "fixtures/leak.py", format!("K = '{KEY}'\n").as_bytes());
    write(
        d,
        "ok.py",
        format!("K = '{KEY}'  # tollgate:ignore\n").as_bytes(),
    );
    let (code, out, _) = cli(d, &["scan"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("PASS"), "{out}");
    // A warning alone fails by default, but not with --fail-on error.
    write(d, "load.py", b"sd = torch.load(path)\n");
    assert_eq!(cli(d, &["scan"], None).0, 1);
    assert_eq!(cli(d, &["scan", "--fail-on", "error"], None).0, 0);
    assert_eq!(cli(d, &["scan", "--fail-on", "bogus"], None).0, 2);
}

#[test]
fn baseline_accepts_known_findings_only() {
    let dir = repo();
    let d = dir.path();
    let (code, _, err) = cli(d, &["scan", "--write-baseline", "baseline.json"], None);
    assert_eq!(code, 0, "{err}");
    let baseline = std::fs::read_to_string(d.join("baseline.json")).unwrap();
    assert!(
        !baseline.contains("kL5mN7pQ9rS1tU3vW5x"),
        "secret leaked into the baseline"
    );
    let (code, out, _) = cli(d, &["scan", "--baseline", "baseline.json"], None);
    assert_eq!(code, 0, "{out}");
    write(
        d,
        "new.py",
        b"HF = 'hf_Q2w3E4r5T6y7U8i9O0pAsDfGhJkLzXcVbN'\n",
    );
    let (code, out, _) = cli(d, &["scan", "--baseline", "baseline.json", "--json"], None);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
    assert_eq!(v["findings"][0]["file"], "new.py");
}

#[test]
fn history_finds_keys_removed_from_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .current_dir(d)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "git {args:?}");
    };
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!("skipping: git not installed");
        return;
    }
    git(&["init", "-q"]);
    write(d, "app.py", format!("x = 1\nKEY = '{KEY}'\n").as_bytes());
    git(&["add", "app.py"]);
    git(&["commit", "-q", "-m", "add"]);
    write(d, "app.py", b"x = 1\nKEY = os.environ['KEY']\n");
    git(&["commit", "-q", "-am", "remove"]);
    assert_eq!(cli(d, &["scan"], None).0, 0);
    write(d, "fixtures/k.py", format!("K = '{KEY}'\n").as_bytes());
    git(&["add", "fixtures/k.py"]);
    git(&["commit", "-q", "-m", "fixture"]);
    write(d, ".tollgateignore", b"fixtures/\n");
    let (code, out, _) = cli(d, &["scan", "--history", "--json"], None);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"][0]["file"], "app.py");
    assert_eq!(v["findings"][0]["line"], 2);
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("git history")
    );
    assert_eq!(v["findings"].as_array().unwrap().len(), 1, "{out}");
}

#[test]
fn bad_advisory_path_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(dir.path(), &["scan", "--advisories", "nope"], None);
    assert_eq!(code, 2, "{err}");
}
