//! Dependency checks on generated trees and on the shared evaluation corpus.

use std::path::Path;

use serde_json::Value;

use super::*;

fn scan_tree(files: &[(&str, &str)], db: Option<&Database>) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let mut list = Vec::new();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        list.push(((*rel).to_owned(), p));
    }
    scan_manifests(&list, db)
}

#[test]
fn requirements_pins_hashes_includes_and_constraints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.in"), "torch>=2\n").unwrap();
    std::fs::write(dir.path().join("pins.txt"), "openai==1.30.1\n").unwrap();
    let text = "-r base.in\n-c pins.txt\nopenai\nanthropic==0.25.0 \\\n    --hash=sha256:abc\ngit+https://x/y.git\n-e ./local\nnumpy @ git+https://github.com/n/n@0123456789abcdef0123456789abcdef01234567\n";
    let p = python::requirements(&dir.path().join("requirements.txt"), text);
    let got: Vec<_> = p
        .deps
        .iter()
        .map(|d| (d.name.as_str(), d.version.is_some(), d.hashed, d.line))
        .collect();
    assert_eq!(
        got,
        [
            ("torch", false, false, 1),
            ("openai", true, false, 3),
            ("anthropic", true, true, 4),
            ("numpy", true, false, 8)
        ]
    );
}

#[test]
fn include_depth_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..python::MAX_INCLUDE_DEPTH + 3 {
        std::fs::write(
            dir.path().join(format!("r{i}.in")),
            format!("-r r{}.in\n", i + 1),
        )
        .unwrap();
    }
    let p = python::requirements(&dir.path().join("requirements.txt"), "-r r0.in\n");
    assert!(p.errors.iter().any(|e| e.contains("deeper")));
}

#[test]
fn unpinned_ai_packages_and_missing_lockfiles() {
    let f = scan_tree(
        &[
            (
                "svc/pyproject.toml",
                "[project]\nname='x'\ndependencies = [\"openai>=1\", \"requests\"]\n",
            ),
            (
                "web/package.json",
                "{\"dependencies\": {\"openai\": \"4.56.0\", \"left-pad\": \"^1\"}}",
            ),
            (
                "web/package-lock.json",
                "{\"lockfileVersion\": 3, \"packages\": {}}",
            ),
        ],
        None,
    );
    let got: Vec<_> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.path.as_str(), x.line))
        .collect();
    assert_eq!(
        got,
        [
            ("unpinned-ai-package", "svc/pyproject.toml", 3),
            ("missing-lockfile", "svc/pyproject.toml", 1)
        ]
    );
}

#[test]
fn split_requirements_directory() {
    assert!(is_manifest("requirements/base.txt"));
    assert!(is_manifest("svc/requirements/prod.in"));
    assert!(!is_manifest("docs/base.txt"));
    let f = scan_tree(&[("requirements/base.txt", "transformers>=4\n")], None);
    assert_eq!(f[0].rule, "unpinned-ai-package");
}

#[test]
fn oversized_manifest_is_reported_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("package.json");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_MANIFEST_BYTES + 1).unwrap();
    let out = scan_manifests(&[("package.json".to_owned(), path)], None);
    assert_eq!(out[0].rule, "manifest-unparseable");
}

#[test]
fn pep751_pylock_is_a_lockfile() {
    assert!(is_manifest("pylock.toml"));
    let p = python::toml_lock(
        "lock-version = \"1.0\"\n[[packages]]\nname = \"torch\"\nversion = \"2.3.0\"\n",
    );
    assert_eq!(p.deps[0].version.as_deref(), Some("2.3.0"));
    let f = scan_tree(
        &[
            (
                "pyproject.toml",
                "[project]\nname='x'\ndependencies = [\"torch==2.3.0\"]\n",
            ),
            ("pylock.toml", "lock-version = \"1.0\"\n"),
        ],
        None,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn broken_manifest_is_reported() {
    let f = scan_tree(&[("package.json", "{not json")], None);
    assert_eq!(f[0].rule, "manifest-unparseable");
}

/// The shared corpus: every labelled unpinned AI package and every advisory of the local
/// database must be found. Reads the files in place; skipped when absent.
#[test]
fn eval_corpus_deps() {
    let base = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/eval"));
    let Ok(labels) = std::fs::read_to_string(base.join("deps/labels.jsonl")) else {
        eprintln!(
            "skipping: evaluation corpus not present at {}",
            base.display()
        );
        return;
    };
    let db = Database::load(&base.join("advisories")).unwrap();
    let root = base.join("deps");
    let files: Vec<(String, std::path::PathBuf)> = crate::walk::discover(&root)
        .unwrap()
        .into_iter()
        .map(|p| (crate::walk::relative(&root, &p), p))
        .filter(|(rel, _)| is_manifest(rel))
        .collect();
    let findings = scan_manifests(&files, Some(&db));
    let mut missing = Vec::new();
    for line in labels.lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        let file = l["file"].as_str().unwrap();
        let pkg = l["package"].as_str().unwrap();
        let in_file: Vec<&Finding> = findings.iter().filter(|f| f.path == file).collect();
        if l["ai_lib"] == true && l["pinned"] == false {
            let found = in_file.iter().any(|f| {
                f.rule == "unpinned-ai-package" && f.message.contains(&format!(" {pkg} "))
            });
            if !found {
                missing.push(format!("unpinned {pkg} in {file}"));
            }
        }
        for adv in l["advisories_local_db"].as_array().unwrap() {
            let id = adv.as_str().unwrap();
            if !in_file
                .iter()
                .any(|f| f.rule == "known-vulnerability" && f.message.contains(id))
            {
                missing.push(format!("{id} for {pkg} in {file}"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
