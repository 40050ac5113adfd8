//! Version ordering in each ecosystem's own semantics: PEP 440 for PyPI (`pep440_rs`), semver
//! for npm, crates.io and Go (`semver`, with Go's `v` prefix and `+incompatible` handled).

use std::cmp::Ordering;
use std::str::FromStr;

use super::Ecosystem;

/// A version parsed for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// PEP 440.
    Pep440(pep440_rs::Version),
    /// Semantic versioning.
    Semver(semver::Version),
    /// Anything else: dotted numeric parts, compared piecewise.
    Loose(Vec<u64>),
}

/// Parse `v` the way `eco` does; `None` when it is not a version there.
pub fn parse(eco: Ecosystem, v: &str) -> Option<Version> {
    let v = v.trim();
    match eco {
        Ecosystem::PyPI => pep440_rs::Version::from_str(v).ok().map(Version::Pep440),
        Ecosystem::Npm | Ecosystem::Cargo | Ecosystem::Go => {
            let v = v.strip_prefix('v').unwrap_or(v);
            let v = v.strip_suffix("+incompatible").unwrap_or(v);
            semver::Version::parse(v)
                .ok()
                .map(Version::Semver)
                .or_else(|| loose(v))
        }
    }
}

fn loose(v: &str) -> Option<Version> {
    let parts: Option<Vec<u64>> = v
        .split(['.', '-'])
        .take_while(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        .map(|p| p.parse().ok())
        .collect();
    parts.filter(|p| !p.is_empty()).map(Version::Loose)
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Pep440(a), Self::Pep440(b)) => Some(a.cmp(b)),
            (Self::Semver(a), Self::Semver(b)) => Some(a.cmp(b)),
            (Self::Loose(a), Self::Loose(b)) => Some(a.cmp(b)),
            (Self::Semver(a), Self::Loose(b)) => Some(vec![a.major, a.minor, a.patch].cmp(b)),
            (Self::Loose(a), Self::Semver(b)) => Some(a.cmp(&vec![b.major, b.minor, b.patch])),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ecosystem_orders_its_own_way() {
        let p = |s| parse(Ecosystem::PyPI, s).unwrap();
        assert!(p("0.9.0") < p("0.9.35"));
        assert!(p("1.0.0rc1") < p("1.0.0"));
        assert!(p("0.4.22.post1") > p("0.4.22"));
        let c = |s| parse(Ecosystem::Cargo, s).unwrap();
        assert!(c("0.0.0-0") < c("0.3.20"));
        assert!(c("0.3.20") < c("0.3.24"));
        let g = |s| parse(Ecosystem::Go, s).unwrap();
        assert!(g("v0.16.0") < g("v0.17.0"));
        assert!(g("v2.0.0+incompatible") > g("v1.9.9"));
        assert!(parse(Ecosystem::PyPI, "not a version").is_none());
    }
}
