//! Model checks end to end on generated files, and on the shared evaluation corpus.

use std::path::Path;

use super::*;

fn scan_bytes(name: &str, bytes: &[u8]) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    crate::walk::scan_file(&path, name)
}

fn rules(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|x| x.rule.as_str()).collect()
}

#[test]
fn pickle_renamed_txt_is_found_by_content() {
    let f = scan_bytes("notes.txt", b"cposix\nsystem\n(S'id'\ntR.");
    assert_eq!(rules(&f), ["pickle-dangerous-import"]);
}

#[test]
fn truncated_pickle_is_reported_not_skipped() {
    let f = scan_bytes("model.pkl", b"\x80\x04\x95\x10\x00");
    assert_eq!(rules(&f), ["model-unparseable"]);
}

#[test]
fn torch_zip_with_tricks() {
    let pkl: &[u8] = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
    let z = zip::tests::build(&[
        ("archive/data.pkl", "archive/data.pkl", 0, pkl, Some(7)),
        ("archive/version", "archive/other", 1, b"3\n", None),
    ]);
    let f = scan_bytes("model.pt", &z);
    let r = rules(&f);
    for want in [
        "zip-name-mismatch",
        "zip-flag-bits",
        "zip-bad-crc",
        "pickle-dangerous-import",
    ] {
        assert!(r.contains(&want), "{want} missing from {r:?}");
    }
}

#[test]
fn safetensors_header_past_eof() {
    let mut b = (1u64 << 40).to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    assert_eq!(
        rules(&scan_bytes("m.safetensors", &b)),
        ["safetensors-invalid"]
    );
}

#[test]
fn safetensors_header_over_limit() {
    // Declared length within the (sparse) file but over the header limit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.safetensors");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(safetensors::MAX_HEADER + 100).unwrap();
    drop(f);
    let mut head = (safetensors::MAX_HEADER + 1).to_le_bytes().to_vec();
    head.push(b'{');
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..9].copy_from_slice(&head);
    std::fs::write(&path, &bytes).unwrap();
    let f = crate::walk::scan_file(&path, "big.safetensors");
    assert!(f[0].message.contains("limit"), "{f:?}");
}

#[test]
fn gguf_template_injection() {
    let g = gguf::tests::build(
        "tokenizer.chat_template",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    );
    assert_eq!(
        rules(&scan_bytes("m.gguf", &g)),
        ["gguf-chat-template-code"]
    );
}

#[test]
fn compressed_joblib_is_inflated_and_walked() {
    let evil: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
    let z = miniz_oxide::deflate::compress_to_vec_zlib(evil, 6);
    assert_eq!(
        rules(&scan_bytes("m.joblib", &z)),
        ["pickle-dangerous-import"]
    );
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    gz.extend(miniz_oxide::deflate::compress_to_vec(evil, 6));
    assert_eq!(
        rules(&scan_bytes("m.joblib", &gz)),
        ["pickle-dangerous-import"]
    );
    assert_eq!(
        rules(&scan_bytes("m.joblib", b"BZh91AY&SY")),
        ["model-not-inspected"]
    );
}

#[test]
fn large_legacy_file_is_walked_from_a_prefix_and_in_full_when_needed() {
    // A pickle, then raw storage bigger than the prefix: the prefix suffices.
    let mut legacy =
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.".to_vec();
    legacy.resize(PICKLE_PREFIX as usize + 10, 0);
    assert_eq!(
        rules(&scan_bytes("old.pt", &legacy)),
        ["pickle-dangerous-import"]
    );
    // One long string opcode that crosses the prefix: the whole file is read.
    let n = PICKLE_PREFIX as usize + 100;
    let mut long = vec![0x80, 0x04, 0x8e];
    long.extend_from_slice(&(n as u64).to_le_bytes());
    long.extend(std::iter::repeat_n(b'a', n));
    long.extend_from_slice(b"0cos\nsystem\n.");
    assert_eq!(
        rules(&scan_bytes("big.pkl", &long)),
        ["pickle-dangerous-import"]
    );
}

#[test]
fn pth_path_configuration_text_is_not_a_model() {
    assert!(scan_bytes("distutils-precedence.pth", b"import os; x = 1\n").is_empty());
}

fn keras_zip(config: &str) -> Vec<u8> {
    zip::tests::build(&[
        (
            "metadata.json",
            "metadata.json",
            0,
            b"{\"keras_version\": \"3.6.0\"}",
            None,
        ),
        ("config.json", "config.json", 0, config.as_bytes(), None),
    ])
}

#[test]
fn keras_configs_with_code_or_foreign_modules() {
    let dense = r#"{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "keras.layers", "class_name": "Dense", "config": {}}]}}"#;
    assert!(scan_bytes("m.keras", &keras_zip(dense)).is_empty());
    let lambda = r#"{"module": "keras.layers", "class_name": "Lambda", "config": {"function": {"class_name": "__lambda__"}}}"#;
    assert_eq!(
        rules(&scan_bytes("m.keras", &keras_zip(lambda))),
        ["keras-lambda-layer"]
    );
    let os = r#"{"module": "keras", "class_name": "Model", "config": {"layers": [{"module": "os", "class_name": "system", "config": {}}]}}"#;
    assert_eq!(
        rules(&scan_bytes("m.keras", &keras_zip(os))),
        ["keras-dangerous-module"]
    );
    let custom = r#"{"module": "my_project.layers", "class_name": "Gate", "config": {}}"#;
    assert_eq!(
        rules(&scan_bytes("m.keras", &keras_zip(custom))),
        ["keras-custom-object"]
    );
}

#[test]
fn benign_formats_are_quiet() {
    assert!(scan_bytes("a.pkl", b"\x80\x04]\x94(K\x01K\x02e.").is_empty());
    let g = gguf::tests::build("tokenizer.chat_template", "{{ messages[0].content }}");
    assert!(scan_bytes("m.gguf", &g).is_empty());
}

/// The shared development corpus: every malicious and invalid file flagged (an error-level
/// finding), no benign file flagged. Reads the files as bytes only.
#[test]
fn eval_corpus_models() {
    let base = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/eval/models"
    ));
    let Ok(labels) = std::fs::read_to_string(base.join("labels.jsonl")) else {
        eprintln!(
            "skipping: evaluation corpus not present at {}",
            base.display()
        );
        return;
    };
    let mut failures = Vec::new();
    for line in labels.lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        let file = l["file"].as_str().unwrap();
        let positive = l["malicious"] == true || l["invalid"] == true;
        let f = crate::walk::scan_file(&base.join("files").join(file), file);
        let flagged = f.iter().any(|x| x.severity == Severity::Error);
        if flagged != positive {
            failures.push(format!("{file}: flagged={flagged} {:?}", rules(&f)));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
