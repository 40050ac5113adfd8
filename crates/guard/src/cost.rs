//! Model prices and the cost of a call (checklist DO-2).
//!
//! Prices are USD per million tokens: input, cached input and output. [`PriceTable`] starts
//! from [`DEFAULT_PRICES`] (list prices the providers published for their well-known models;
//! they change, so deployments override or extend them in config) and resolves a model name
//! by exact match, then by the longest known prefix, so a dated snapshot such as
//! `gpt-4o-2024-08-06` is priced as `gpt-4o` while `gpt-4o-mini-…` is priced as
//! `gpt-4o-mini`.

use std::collections::BTreeMap;

/// Prices of one model, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Input (prompt) tokens.
    pub input: f64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_input: f64,
    /// Output (completion) tokens.
    pub output: f64,
}

/// List prices of well-known models (USD per million tokens: input, cached input, output).
pub const DEFAULT_PRICES: &[(&str, f64, f64, f64)] = &[
    ("gpt-4o", 2.50, 1.25, 10.00),
    ("gpt-4o-mini", 0.15, 0.075, 0.60),
    ("gpt-4.1", 2.00, 0.50, 8.00),
    ("gpt-4.1-mini", 0.40, 0.10, 1.60),
    ("gpt-4.1-nano", 0.10, 0.025, 0.40),
    ("gpt-4-turbo", 10.00, 10.00, 30.00),
    ("gpt-3.5-turbo", 0.50, 0.50, 1.50),
    ("o1", 15.00, 7.50, 60.00),
    ("o1-mini", 1.10, 0.55, 4.40),
    ("o3", 2.00, 0.50, 8.00),
    ("o3-mini", 1.10, 0.55, 4.40),
    ("o4-mini", 1.10, 0.275, 4.40),
    ("text-embedding-3-small", 0.02, 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.13, 0.0),
    ("text-embedding-ada-002", 0.10, 0.10, 0.0),
    ("claude-3-haiku", 0.25, 0.03, 1.25),
    ("claude-3-5-haiku", 0.80, 0.08, 4.00),
    ("claude-3-5-sonnet", 3.00, 0.30, 15.00),
    ("claude-3-7-sonnet", 3.00, 0.30, 15.00),
    ("claude-sonnet-4", 3.00, 0.30, 15.00),
    ("claude-3-opus", 15.00, 1.50, 75.00),
    ("claude-opus-4", 15.00, 1.50, 75.00),
];

/// A price list with prefix resolution.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl PriceTable {
    /// The default list prices.
    pub fn with_defaults() -> Self {
        let mut t = Self::default();
        for (m, i, c, o) in DEFAULT_PRICES {
            t.set(
                m,
                Price {
                    input: *i,
                    cached_input: *c,
                    output: *o,
                },
            );
        }
        t
    }

    /// Add or replace a model's price.
    pub fn set(&mut self, model: &str, price: Price) {
        self.prices.insert(model.to_ascii_lowercase(), price);
    }

    /// The price of `model`: exact, else the longest known prefix followed by `-`, `@` or
    /// `:` (snapshot and deployment suffixes). None if unknown.
    pub fn get(&self, model: &str) -> Option<Price> {
        let m = model.to_ascii_lowercase();
        if let Some(p) = self.prices.get(&m) {
            return Some(*p);
        }
        // Strip a provider path such as `openai/gpt-4o` or `models/…`.
        let bare = m.rsplit('/').next().unwrap_or(&m);
        if let Some(p) = self.prices.get(bare) {
            return Some(*p);
        }
        self.prices
            .iter()
            .filter(|(k, _)| {
                bare.len() > k.len()
                    && bare.starts_with(k.as_str())
                    && matches!(bare.as_bytes()[k.len()], b'-' | b'@' | b':')
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| *p)
    }

    /// Cost in USD of a call to `model` (None if the model has no price).
    pub fn cost(&self, model: &str, input: u64, cached_input: u64, output: u64) -> Option<f64> {
        let p = self.get(model)?;
        let uncached = input.saturating_sub(cached_input);
        Some(
            (uncached as f64 * p.input
                + cached_input.min(input) as f64 * p.cached_input
                + output as f64 * p.output)
                / 1_000_000.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_resolve_to_the_longest_known_prefix() {
        let t = PriceTable::with_defaults();
        assert_eq!(t.get("gpt-4o-2024-08-06").unwrap().input, 2.50);
        assert_eq!(t.get("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(t.get("claude-3-5-sonnet-20241022").unwrap().output, 15.0);
        assert_eq!(t.get("openai/GPT-4o").unwrap().input, 2.50);
        assert!(t.get("gpt-4oops").is_none());
        assert!(t.get("my-local-llama").is_none());
        assert!(t.get("").is_none());
    }

    #[test]
    fn cost_counts_cached_input_at_its_own_price() {
        let t = PriceTable::with_defaults();
        let c = t.cost("gpt-4o", 1_000_000, 0, 1_000_000).unwrap();
        assert!((c - 12.5).abs() < 1e-9);
        let c = t.cost("gpt-4o", 1_000_000, 500_000, 0).unwrap();
        assert!((c - (1.25 + 0.625)).abs() < 1e-9);
        // Cached tokens above the input count are clamped, never negative.
        let c = t.cost("gpt-4o", 10, 1_000, 0).unwrap();
        assert!(c >= 0.0);
    }

    #[test]
    fn config_prices_override_defaults() {
        let mut t = PriceTable::with_defaults();
        t.set(
            "gpt-4o",
            Price {
                input: 1.0,
                cached_input: 0.5,
                output: 2.0,
            },
        );
        t.set(
            "local-llama",
            Price {
                input: 0.0,
                cached_input: 0.0,
                output: 0.0,
            },
        );
        assert_eq!(t.get("gpt-4o-2024-11-20").unwrap().input, 1.0);
        assert_eq!(t.cost("local-llama", 100, 0, 100), Some(0.0));
    }
}
