//! Self-hosted model servers reachable from outside their host (SC-3).
//!
//! Inference servers (Ollama, vLLM, TGI, Triton, llama.cpp, LocalAI, …) ship without
//! authentication; published on every interface they are an open inference API. Checked:
//!
//! - docker compose: a model-server service with `ports:` not bound to a loopback address, or
//!   `network_mode: host`;
//! - Kubernetes: a `Service` of type `LoadBalancer`/`NodePort`, `hostNetwork: true` or a
//!   `hostPort` in a manifest that runs a model server;
//! - systemd units: a model server started with `--host 0.0.0.0` or `OLLAMA_HOST=0.0.0.0`.
//!
//! The checks read YAML line by line (indentation and keys), which is enough for these
//! shapes and never fails on templated files (Helm) that a YAML parser would reject.

use crate::finding::{Finding, Severity};
use crate::suppress::LineIndex;

/// Names that identify a model server in an image, command or unit.
pub const MODEL_SERVERS: &[&str] = &[
    "ollama",
    "vllm",
    "text-generation-inference",
    "text-generation-launcher",
    "tgi",
    "tritonserver",
    "triton",
    "llama.cpp",
    "llama-server",
    "llama-cpp",
    "llamacpp",
    "localai",
    "local-ai",
    "lmdeploy",
    "sglang",
    "xinference",
    "koboldcpp",
    "llamafile",
    "openllm",
    "ray-llm",
    "torchserve",
    "text-embeddings-inference",
    "infinity-emb",
    "comfyui",
    "stable-diffusion-webui",
];

/// Is this a file we know how to check, and of which kind?
fn kind_of(rel: &str, text: &str) -> Option<&'static str> {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    if name.ends_with(".service") {
        return Some("systemd");
    }
    if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
        return None;
    }
    if name.contains("compose") || text.lines().any(|l| l.starts_with("services:")) {
        Some("compose")
    } else if (text.contains("apiVersion:") && text.contains("kind:"))
        || ["LoadBalancer", "NodePort", "hostNetwork"]
            .iter()
            .any(|k| text.contains(k))
    {
        // Manifests, and Helm values files that set the same fields.
        Some("k8s")
    } else {
        None
    }
}

fn mentions_server(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    MODEL_SERVERS.iter().copied().find(|s| {
        lower.match_indices(s).any(|(i, _)| {
            // Whole-word-ish: `tgi` must not match inside `settgings`.
            let before = lower[..i].chars().next_back();
            let after = lower[i + s.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphabetic())
        })
    })
}

/// Check one deployment file.
pub fn scan_config(rel: &str, text: &str, lines: &LineIndex, out: &mut Vec<Finding>) {
    if rel.rsplit('/').next() == Some("tollgate.toml") {
        gateway_egress(rel, text, lines, out);
        return;
    }
    let Some(kind) = kind_of(rel, text) else {
        return;
    };
    let mut push = |line: usize, rule: &str, message: String| {
        if !lines.suppressed(text, line) {
            let snippet: String = lines
                .line_text(text, line)
                .trim()
                .chars()
                .take(120)
                .collect();
            out.push(
                Finding::new("SC-3", rule, Severity::Warning, rel, line, message)
                    .with_evidence(snippet),
            );
        }
    };
    match kind {
        "compose" => compose(text, &mut push),
        "k8s" => kubernetes(text, &mut push),
        _ => systemd(text, &mut push),
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Compose: each service block under `services:`.
fn compose(text: &str, push: &mut impl FnMut(usize, &str, String)) {
    let all: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < all.len() {
        if all[i].trim_end() != "services:" {
            i += 1;
            continue;
        }
        let base = indent(all[i]);
        i += 1;
        let mut service: Option<(usize, usize)> = None; // (start, indent)
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        let mut svc_indent = None;
        while i < all.len() {
            let l = all[i];
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                i += 1;
                continue;
            }
            let ind = indent(l);
            if ind <= base {
                break;
            }
            if svc_indent.is_none() {
                svc_indent = Some(ind);
            }
            if Some(ind) == svc_indent {
                if let Some((s, _)) = service.take() {
                    blocks.push((s, i));
                }
                service = Some((i, ind));
            }
            i += 1;
        }
        if let Some((s, _)) = service {
            blocks.push((s, i));
        }
        for (s, e) in blocks {
            let block = all[s..e].join("\n");
            let Some(server) = mentions_server(&block) else {
                continue;
            };
            compose_service(&all, s, e, server, push);
        }
    }
}

fn compose_service(
    all: &[&str],
    start: usize,
    end: usize,
    server: &str,
    push: &mut impl FnMut(usize, &str, String),
) {
    let mut in_ports = None;
    let mut long_form: Option<(usize, bool)> = None; // (line, has loopback host_ip)
    for (k, l) in all.iter().enumerate().take(end).skip(start) {
        let t = l.trim();
        if t.starts_with("network_mode:") && t.contains("host") {
            push(
                k + 1,
                "model-server-host-network",
                format!(
                    "{server} runs with network_mode: host, so it listens on every interface of the host"
                ),
            );
        }
        if t == "ports:" {
            in_ports = Some(indent(l));
            continue;
        }
        let Some(pind) = in_ports else { continue };
        if indent(l) <= pind && !t.starts_with('-') {
            in_ports = None;
            continue;
        }
        if let Some(item) = t.strip_prefix('-') {
            if let Some((line, false)) = long_form.take() {
                push(line, "model-server-public-port", public_msg(server));
            }
            let item = item.trim().trim_matches(['"', '\'']);
            if item.starts_with("target:") || item.starts_with("published:") || item.is_empty() {
                long_form = Some((k + 1, false));
            } else if short_port_is_public(item) {
                push(k + 1, "model-server-public-port", public_msg(server));
            }
        } else if t.starts_with("host_ip:") {
            if let Some((_, ref mut lo)) = long_form {
                *lo = is_loopback(
                    t.trim_start_matches("host_ip:")
                        .trim()
                        .trim_matches(['"', '\'']),
                );
            }
        }
    }
    if let Some((line, false)) = long_form {
        push(line, "model-server-public-port", public_msg(server));
    }
}

fn public_msg(server: &str) -> String {
    format!(
        "{server} port published on all host interfaces; bind it to 127.0.0.1 or keep it internal"
    )
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_matches(['[', ']']);
    h.starts_with("127.") || h == "::1" || h == "localhost"
}

/// `8000`, `8000:8000`, `0.0.0.0:8000:8000`, `127.0.0.1:8000:8000`, `[::1]:80:80`.
fn short_port_is_public(item: &str) -> bool {
    let item = item.split('/').next().unwrap_or(item);
    if let Some(rest) = item.strip_prefix('[') {
        let host = rest.split(']').next().unwrap_or("");
        return !is_loopback(host);
    }
    let parts: Vec<&str> = item.split(':').collect();
    match parts.len() {
        3 => !is_loopback(parts[0]),
        _ => true,
    }
}

/// Kubernetes: documents separated by `---`; a document or file that runs a model server.
fn kubernetes(text: &str, push: &mut impl FnMut(usize, &str, String)) {
    let Some(server) = mentions_server(text) else {
        return;
    };
    for (k, l) in text.lines().enumerate() {
        let t = l.trim().trim_start_matches("- ");
        let value = |key: &str| {
            t.strip_prefix(key)
                .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
        };
        if let Some(v) = value("type:") {
            if v == "LoadBalancer" || v == "NodePort" {
                push(
                    k + 1,
                    "model-server-public-service",
                    format!("Service of type {v} exposes {server} outside the cluster"),
                );
            }
        } else if value("hostNetwork:").is_some_and(|v| v == "true") {
            push(
                k + 1,
                "model-server-host-network",
                format!("{server} pod uses hostNetwork: it listens on the node's interfaces"),
            );
        } else if value("kind:").is_some_and(|v| v == "Ingress") {
            push(
                k + 1,
                "model-server-public-service",
                format!(
                    "Ingress routes outside traffic to {server}; put the gateway in front instead"
                ),
            );
        } else if value("externalIPs:").is_some() {
            push(
                k + 1,
                "model-server-public-service",
                format!("Service with externalIPs exposes {server} outside the cluster"),
            );
        } else if value("hostPort:").is_some() {
            push(
                k + 1,
                "model-server-public-port",
                format!("{server} container publishes a hostPort on the node"),
            );
        }
    }
}

/// systemd: a model server unit that listens on every interface.
fn systemd(text: &str, push: &mut impl FnMut(usize, &str, String)) {
    let Some(server) = mentions_server(text) else {
        return;
    };
    for (k, l) in text.lines().enumerate() {
        let t = l.trim();
        let all_ifaces = t.contains("0.0.0.0") || t.contains("[::]");
        if all_ifaces && (t.starts_with("ExecStart") || t.starts_with("Environment")) {
            push(
                k + 1,
                "model-server-all-interfaces",
                format!(
                    "{server} listens on all interfaces; bind it to 127.0.0.1 behind the gateway"
                ),
            );
        }
    }
}

#[cfg(test)]
mod gateway_tests {
    use super::*;

    fn run(text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        scan_config(
            "deploy/tollgate.toml",
            text,
            &LineIndex::new(text.as_bytes()),
            &mut out,
        );
        out
    }

    #[test]
    fn gateway_upstreams_outside_the_allow_list_are_findings() {
        let f = run(
            "[server]\negress_allow = [\"api.openai.com\"]\n[providers.a]\nkind = \"openai\"\nbase_url = \"https://api.openai.com/v1\"\n[providers.b]\nkind = \"openai\"\nbase_url = \"https://llm.attacker.test/v1\"\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "gateway-egress-not-allowed");
        assert_eq!(f[0].line, 8);
        let f = run("[providers.a]\nkind = \"openai\"\nbase_url = \"https://api.openai.com/v1\"\n");
        assert_eq!(f[0].rule, "gateway-no-egress-allowlist");
        assert!(
            run("[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8000/v1\"\n")
                .is_empty()
        );
        assert!(run("not toml [").is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(rel: &str, text: &str) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        scan_config(rel, text, &LineIndex::new(text.as_bytes()), &mut out);
        out.into_iter().map(|f| (f.rule, f.line)).collect()
    }

    #[test]
    fn compose_public_and_loopback_ports() {
        let y = "services:\n  ollama:\n    image: ollama/ollama\n    ports:\n      - \"11434:11434\"\n      - \"127.0.0.1:8080:8080\"\n  web:\n    image: nginx\n    ports:\n      - \"80:80\"\n";
        assert_eq!(
            rules("docker-compose.yml", y),
            [("model-server-public-port".to_owned(), 5)]
        );
    }

    #[test]
    fn compose_long_syntax_and_host_network() {
        let y = "services:\n  vllm:\n    image: vllm/vllm-openai\n    network_mode: host\n    ports:\n      - target: 8000\n        published: 8000\n        host_ip: 127.0.0.1\n";
        assert_eq!(
            rules("compose.yaml", y),
            [("model-server-host-network".to_owned(), 4)]
        );
    }

    #[test]
    fn kubernetes_load_balancer_for_a_model_server() {
        let y = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: ghcr.io/huggingface/text-generation-inference:2.0\n---\napiVersion: v1\nkind: Service\nspec:\n  type: LoadBalancer\n";
        assert_eq!(
            rules("k8s/tgi.yaml", y),
            [("model-server-public-service".to_owned(), 12)]
        );
        let quiet = y.replace("text-generation-inference", "nginx");
        assert!(rules("k8s/web.yaml", &quiet).is_empty());
    }

    #[test]
    fn helm_values_and_ingress() {
        let values = "vllm:\n  image: vllm/vllm-openai\n  service:\n    type: LoadBalancer\n";
        assert_eq!(
            rules("charts/llm/values.yaml", values),
            [("model-server-public-service".to_owned(), 4)]
        );
        let ing = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nspec:\n  rules:\n    - http:\n        paths:\n          - backend:\n              service:\n                name: ollama\n";
        assert_eq!(
            rules("k8s/ing.yaml", ing),
            [("model-server-public-service".to_owned(), 2)]
        );
    }

    #[test]
    fn systemd_unit_on_all_interfaces() {
        let u = "[Service]\nEnvironment=\"OLLAMA_HOST=0.0.0.0\"\nExecStart=/usr/bin/ollama serve\n";
        assert_eq!(
            rules("ollama.service", u),
            [("model-server-all-interfaces".to_owned(), 2)]
        );
    }
}

/// The gateway's own config: every provider's host must be on `server.egress_allow`, and a
/// gateway that talks to remote providers should have such a list at all (SC-3).
fn gateway_egress(rel: &str, text: &str, lines: &LineIndex, out: &mut Vec<Finding>) {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return;
    };
    let allow: Vec<String> = doc
        .get("server")
        .and_then(|s| s.get("egress_allow"))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(providers) = doc.get("providers").and_then(toml::Value::as_table) else {
        return;
    };
    let line_of = |needle: &str| text.find(needle).map_or(1, |pos| lines.line_of(pos));
    let mut remote = 0;
    for (name, p) in providers {
        let Some(url) = p.get("base_url").and_then(toml::Value::as_str) else {
            continue;
        };
        let Some(host) = tollgate_guard::egress::url_host(url) else {
            continue;
        };
        if !is_loopback(host) {
            remote += 1;
        }
        if !allow.is_empty() && !tollgate_guard::egress::host_allowed(host, &allow) {
            let line = line_of(url);
            if !lines.suppressed(text, line) {
                out.push(
                    Finding::new(
                        "SC-3",
                        "gateway-egress-not-allowed",
                        Severity::Error,
                        rel,
                        line,
                        format!(
                            "provider {name} points at {host}, which is not in server.egress_allow"
                        ),
                    )
                    .with_evidence(url.chars().take(120).collect::<String>()),
                );
            }
        }
    }
    if allow.is_empty() && remote > 0 {
        out.push(Finding::new(
            "SC-3",
            "gateway-no-egress-allowlist",
            Severity::Note,
            rel,
            1,
            "the gateway has remote providers but no server.egress_allow list; set one so prompts can only go to reviewed hosts",
        ));
    }
}
