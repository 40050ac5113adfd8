//! Start the real binary and talk to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tollgate_testkit::{MOCK_KEY, MockUpstream};

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// A running `tollgate serve`.
pub struct Server {
    pub url: String,
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Start `tollgate serve` in `cwd` with extra args; waits for the listening line.
    pub fn start(cwd: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .current_dir(cwd)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args)
            .env("TOLLGATE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix("tollgate listening on ").map(str::to_owned));
            if let Some(url) = found {
                return Self { url, child, lines };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tollgate exited with {status}: {:?}", lines.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "tollgate did not start: {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Wait until a line satisfying `f` appears.
    pub fn wait_for_line(&self, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self.output().into_iter().find(|l| f(l)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "line not found in {:?}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a CLI command to completion: (exit code, stdout, stderr).
pub fn cli(cwd: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Create a key with the CLI and return (key, id).
pub fn create_key(cwd: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["keys", "create", "--name", "e2e", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = cli(cwd, &args, None);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

/// The body of a `[providers.NAME.review]` (DP-4) as a security team would write it:
/// reviewed 60 days ago, expiring in 305, approved up to confidential data.
pub fn review_toml() -> String {
    let today = chrono::Utc::now().date_naive();
    format!(
        r#"reviewed_by = "security-team@example.com"
reviewed_on = {}
expires = {}
retention_days = 30
zero_data_retention = false
trains_on_customer_data = false
regions = ["us", "eu"]
dpa_signed = true
certifications = ["SOC 2 Type II", "ISO 27001"]
data_classes = ["public", "internal", "confidential"]"#,
        today - chrono::Duration::days(60),
        today + chrono::Duration::days(305)
    )
}

/// A project directory whose tollgate.toml routes to `mock`, with the mock's credential in
/// the keystore. Returns the directory.
pub fn project(mock: &MockUpstream) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[providers.oa]
kind = "openai"
base_url = "{openai}"
api_key = "keystore://mock"
retry_backoff = "5ms"
[providers.oa.review]
{review}

[providers.oa_fast]
kind = "openai"
base_url = "{openai}"
api_key = "keystore://mock"
first_byte_timeout = "200ms"
max_retries = 0
[providers.oa_fast.review]
{review}

[providers.an]
kind = "anthropic"
base_url = "{base}"
api_key = "keystore://mock"
retry_backoff = "5ms"
[providers.an.review]
{review}

[providers.echo]
kind = "echo"

[routes.gpt]
targets = [{{ provider = "oa", model = "gpt-mock" }}]
[routes.claude]
targets = [{{ provider = "an", model = "claude-mock" }}]
[routes.tool]
targets = [{{ provider = "oa", model = "tool" }}]
[routes.tool-claude]
targets = [{{ provider = "an", model = "tool" }}]
[routes.fallback-cross]
targets = [{{ provider = "oa", model = "fail-500" }}, {{ provider = "an", model = "claude-mock" }}]
[routes.fallback-cross-rev]
targets = [{{ provider = "an", model = "fail-500" }}, {{ provider = "oa", model = "gpt-mock" }}]
[routes.embed]
targets = [{{ provider = "oa", model = "embed-mock" }}]
[routes.slow]
targets = [{{ provider = "oa_fast", model = "slow-1000" }}]
[routes.truncate]
targets = [{{ provider = "oa", model = "truncate" }}]
[routes.echo]
targets = [{{ provider = "echo", model = "echo" }}]
[routes.json]
targets = [{{ provider = "oa", model = "json-valid" }}]
[routes.json-repair]
targets = [{{ provider = "oa", model = "json-repair" }}]
"#,
        openai = mock.openai_base(),
        base = mock.base(),
        review = review_toml(),
    );
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    let (code, _, err) = cli(
        dir.path(),
        &["secrets", "set", "mock"],
        Some(&format!("{MOCK_KEY}\n")),
    );
    assert_eq!(code, 0, "{err}");
    (dir, path)
}
