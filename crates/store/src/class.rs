//! Data classes (checklist DP-4): how sensitive the data a request carries is.
//!
//! Keys and routes declare a class; a provider's review lists the classes it may receive.
//! The classes are ordered from least to most sensitive, so the class of a request is the
//! larger of its key's and its route's ([`DataClass::max`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A data class, least sensitive first: `public < internal < confidential < pii < phi`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum DataClass {
    /// Published or publishable data.
    Public,
    /// Ordinary business data, not for publication (the default of a route).
    #[default]
    Internal,
    /// Business secrets: contracts, source code, financials.
    Confidential,
    /// Personal data (GDPR's personal data, CCPA's personal information).
    Pii,
    /// Protected health information (HIPAA).
    Phi,
}

impl DataClass {
    /// Every class, least sensitive first.
    pub const ALL: [Self; 5] = [
        Self::Public,
        Self::Internal,
        Self::Confidential,
        Self::Pii,
        Self::Phi,
    ];

    /// Lower-case name as written in config, stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Confidential => "confidential",
            Self::Pii => "pii",
            Self::Phi => "phi",
        }
    }

    /// Parse a class name (exact, lower case: names in config and the store are canonical).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The names of every class, for messages: `public, internal, confidential, pii, phi`.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a data class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown data class {0:?}; use one of: public, internal, confidential, pii, phi")]
pub struct UnknownDataClass(pub String);

impl FromStr for DataClass {
    type Err = UnknownDataClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownDataClass(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_ordered_by_sensitivity() {
        assert!(DataClass::Public < DataClass::Internal);
        assert!(DataClass::Internal < DataClass::Confidential);
        assert!(DataClass::Confidential < DataClass::Pii);
        assert!(DataClass::Pii < DataClass::Phi);
        assert_eq!(DataClass::Internal.max(DataClass::Pii), DataClass::Pii);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for c in DataClass::ALL {
            assert_eq!(c.as_str().parse::<DataClass>(), Ok(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert!("secret".parse::<DataClass>().is_err());
        assert!("PII".parse::<DataClass>().is_err());
        assert_eq!(
            DataClass::names(),
            "public, internal, confidential, pii, phi"
        );
    }
}
