//! Roles and what they may do on the admin plane (checklist AC-3).
//!
//! A role is a fixed set of [`Permission`]s; an admin credential is bound to one role. The
//! table in [`Role::allows`] is the whole policy, so a reviewer reads it in one place. Deleting
//! audit records is a permission no role holds: the audit trail is append-only for everyone.

use serde::Serialize;

/// Something an admin-plane caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// List and read virtual keys' metadata.
    KeysRead,
    /// Create, revoke and rotate virtual keys.
    KeysWrite,
    /// Create and revoke admin credentials and role bindings.
    AdminsManage,
    /// Read audit records and payloads, verify the chain, export.
    AuditRead,
    /// Delete audit records (held by nobody).
    AuditDelete,
    /// Read providers, routes, models and prices.
    ModelsRead,
    /// Change providers, routes, models and prices.
    ModelsWrite,
    /// Create and change prompts in staging; request promotion.
    PromptsStage,
    /// Read prompts' versions, diffs and evaluations: whoever writes, approves or audits
    /// them (an approver reads the diff it is asked to promote).
    PromptsRead,
    /// Record the result of an evaluation suite on a prompt or route version. The suite
    /// runs on the caller's side (`tollgate prompts test`, `routes test`), so the record is
    /// the caller's attestation: audited with its credential, and the promotion gate (and
    /// four-eyes, when configured) still stands between it and production.
    EvalsRecord,
    /// Promote staged prompts and routes to production; roll back.
    PromptsPromote,
    /// Manage datasets (fine-tuning files and jobs), retention and PII policies.
    DataManage,
    /// Flip kill switches and lockdown.
    KillSwitch,
    /// Read reports (checklist, spend, drift) and the review queue (PII-masked samples).
    ReportsRead,
    /// Label review-queue items. Labelling judges the model's output, the judgement an
    /// approver makes when promoting, so owner, admin and approver hold it; a prompt engineer
    /// does not (the author of a prompt should not grade its own answers), and auditors and
    /// data stewards only read the queue.
    ReviewLabel,
}

impl Permission {
    /// Every permission, for the role × permission matrix.
    pub const ALL: [Self; 15] = [
        Self::KeysRead,
        Self::KeysWrite,
        Self::AdminsManage,
        Self::AuditRead,
        Self::AuditDelete,
        Self::ModelsRead,
        Self::ModelsWrite,
        Self::PromptsStage,
        Self::PromptsRead,
        Self::EvalsRecord,
        Self::PromptsPromote,
        Self::DataManage,
        Self::KillSwitch,
        Self::ReportsRead,
        Self::ReviewLabel,
    ];
}

impl Permission {
    /// The names of the roles holding this permission, in [`Role::ALL`] order: what a refusal
    /// names, and what the CLI checks when it works on the store instead of this API.
    pub fn holders(self) -> Vec<&'static str> {
        Role::ALL
            .iter()
            .filter(|r| r.allows(self))
            .map(|r| r.as_str())
            .collect()
    }
}

/// The roles of the admin plane (and `app`, which has none of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything but deleting audit records.
    Owner,
    /// Everything but deleting audit records.
    Admin,
    /// Providers, routes, models, prices.
    ModelAdmin,
    /// Prompts in staging; may request promotion.
    PromptEngineer,
    /// Promotes and rolls back.
    Approver,
    /// Datasets, retention and PII policies.
    DataSteward,
    /// Reads the audit trail and reports.
    Auditor,
    /// Kill switches.
    IncidentResponder,
    /// Data plane only.
    App,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 9] = [
        Self::Owner,
        Self::Admin,
        Self::ModelAdmin,
        Self::PromptEngineer,
        Self::Approver,
        Self::DataSteward,
        Self::Auditor,
        Self::IncidentResponder,
        Self::App,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::ModelAdmin => "model-admin",
            Self::PromptEngineer => "prompt-engineer",
            Self::Approver => "approver",
            Self::DataSteward => "data-steward",
            Self::Auditor => "auditor",
            Self::IncidentResponder => "incident-responder",
            Self::App => "app",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role holds `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Self::Owner | Self::Admin => p != P::AuditDelete,
            Self::ModelAdmin => matches!(
                p,
                P::ModelsRead | P::ModelsWrite | P::KeysRead | P::EvalsRecord
            ),
            Self::PromptEngineer => matches!(
                p,
                P::PromptsStage | P::PromptsRead | P::EvalsRecord | P::ModelsRead
            ),
            Self::Approver => matches!(
                p,
                P::PromptsPromote
                    | P::PromptsRead
                    | P::EvalsRecord
                    | P::ModelsRead
                    | P::ReportsRead
                    | P::ReviewLabel
            ),
            Self::DataSteward => matches!(p, P::DataManage | P::ReportsRead),
            Self::Auditor => matches!(
                p,
                P::AuditRead | P::ReportsRead | P::KeysRead | P::ModelsRead | P::PromptsRead
            ),
            Self::IncidentResponder => matches!(p, P::KillSwitch | P::KeysRead | P::ModelsRead),
            Self::App => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nobody_may_delete_audit_records() {
        for r in Role::ALL {
            assert!(!r.allows(Permission::AuditDelete), "{r:?}");
        }
    }

    #[test]
    fn app_keys_have_no_admin_permission() {
        for p in Permission::ALL {
            assert!(!Role::App.allows(p));
        }
    }

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
