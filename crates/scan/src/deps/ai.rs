//! The AI/ML package list (`data/ai_packages.toml`), per ecosystem.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::Ecosystem;

static LIST: LazyLock<HashMap<String, Vec<String>>> = LazyLock::new(|| {
    toml::from_str(include_str!("../../data/ai_packages.toml")).unwrap_or_default()
});

/// True when `name` (in `eco`) is an AI/ML package.
pub fn is_ai(eco: Ecosystem, name: &str) -> bool {
    let name = eco.normalize(name);
    LIST.get(eco.osv_name()).is_some_and(|list| {
        list.iter().any(|entry| {
            let entry = eco.normalize(entry);
            match entry.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == entry,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_loads_and_matches_with_normalisation() {
        assert!(LIST.len() >= 4);
        assert!(is_ai(Ecosystem::PyPI, "Llama_Index"));
        assert!(is_ai(Ecosystem::PyPI, "langchain-openai"));
        assert!(is_ai(Ecosystem::Npm, "@langchain/core"));
        assert!(is_ai(Ecosystem::Cargo, "candle_core"));
        assert!(is_ai(Ecosystem::Go, "github.com/ollama/ollama"));
        assert!(!is_ai(Ecosystem::PyPI, "requests"));
        assert!(!is_ai(Ecosystem::Npm, "axios"));
    }
}
