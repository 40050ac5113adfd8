//! Egress allow-lists (checklist SC-3): which upstream hosts a gateway may send prompts to.
//! Shared by the gateway's config validation and by `scan`'s check of `tollgate.toml`, so
//! both agree on what an entry means.

/// Whether `host` is allowed by `patterns`: an exact host, or `*.example.com` for any
/// subdomain (not the bare domain). Comparison ignores ASCII case; an empty list allows
/// nothing.
pub fn host_allowed(host: &str, patterns: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|p| {
        let p = p.trim().trim_end_matches('.').to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == p,
        }
    })
}

/// The host of an `http(s)://host[:port]/…` URL, without parsing anything else.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_entries() {
        let allow = vec![
            "api.openai.com".to_owned(),
            "*.openai.azure.com".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        assert!(host_allowed("api.openai.com", &allow));
        assert!(host_allowed("API.OpenAI.com.", &allow));
        assert!(host_allowed("myres.openai.azure.com", &allow));
        assert!(
            !host_allowed("openai.azure.com", &allow),
            "a wildcard needs a subdomain"
        );
        assert!(!host_allowed("evil-openai.azure.com.attacker.test", &allow));
        assert!(!host_allowed("api.openai.com.attacker.test", &allow));
        assert!(host_allowed("127.0.0.1", &allow));
        assert!(!host_allowed("anything", &[]));
    }

    #[test]
    fn hosts_from_urls() {
        assert_eq!(
            url_host("https://api.openai.com/v1"),
            Some("api.openai.com")
        );
        assert_eq!(
            url_host("http://user:pw@10.0.0.5:8000/v1"),
            Some("10.0.0.5")
        );
        assert_eq!(url_host("http://[::1]:11434"), Some("::1"));
        assert_eq!(url_host("not a url"), None);
        assert_eq!(url_host("http:///path"), None);
    }
}
