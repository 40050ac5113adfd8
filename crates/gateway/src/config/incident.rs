//! `[incident]`: incident-response settings (checklist MI-3).

use serde::Deserialize;

/// Incident-response settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentConfig {
    /// Key ids still served during a lockdown (break-glass keys for the responders).
    #[serde(default)]
    pub break_glass_keys: Vec<String>,
    /// Date of the last incident drill (`YYYY-MM-DD`), shown in the checklist report.
    pub last_drill: Option<String>,
}
