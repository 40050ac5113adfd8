//! The admin API's one table of operations: the router serves them, the OpenAPI document
//! lists them and the role × endpoint test walks them, so an endpoint cannot exist in one of
//! the three and be missing from the others.

use super::rbac::Permission;

/// One admin operation: method, path (axum syntax), the permission it needs, a summary.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// HTTP method.
    pub method: &'static str,
    /// Path under the server root.
    pub path: &'static str,
    /// Permission required.
    pub permission: Permission,
    /// What it does.
    pub summary: &'static str,
}

/// Every admin operation (besides the public OpenAPI document).
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "GET",
        path: "/admin/v1/keys",
        permission: Permission::KeysRead,
        summary: "List virtual keys (metadata only)",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/keys",
        permission: Permission::KeysWrite,
        summary: "Create a virtual key; the key is returned once",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/keys/audit",
        permission: Permission::KeysRead,
        summary: "Keys under the [rotation] policy with their age against it (`tollgate keys audit`)",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/keys/{id}",
        permission: Permission::KeysRead,
        summary: "One virtual key's metadata",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/keys/{id}/revoke",
        permission: Permission::KeysWrite,
        summary: "Revoke a virtual key",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/keys/{id}/rotate",
        permission: Permission::KeysWrite,
        summary: "Issue a successor key (returned once); the old one stays valid for {\"grace\": \"24h\"}",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/admins",
        permission: Permission::AdminsManage,
        summary: "Create an admin credential bound to a role; returned once",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/admins",
        permission: Permission::AdminsManage,
        summary: "Admin credentials with their roles and state (never the credentials)",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/admins/{id}/revoke",
        permission: Permission::AdminsManage,
        summary: "Revoke an admin credential at once; only an owner revokes an owner, and the last active owner stays",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/providers",
        permission: Permission::ModelsRead,
        summary: "Providers and routes",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/audit/requests/{id}",
        permission: Permission::AuditRead,
        summary: "Audit records of a request",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/audit/verify",
        permission: Permission::AuditRead,
        summary: "Verify every audit chain",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/audit/export",
        permission: Permission::AuditRead,
        summary: "Audit records with since <= time < until (RFC 3339), a page at a time: pass `after` from `next`",
    },
    Endpoint {
        method: "DELETE",
        path: "/admin/v1/audit/records",
        permission: Permission::AuditDelete,
        summary: "Delete audit records (no role may)",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/killswitches",
        permission: Permission::KillSwitch,
        summary: "Kill switches in force",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/killswitches",
        permission: Permission::KillSwitch,
        summary: "Switch off a key, team, route, provider or model, or lock down",
    },
    Endpoint {
        method: "DELETE",
        path: "/admin/v1/killswitches/{kind}/{target}",
        permission: Permission::KillSwitch,
        summary: "Lift a kill switch",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/prompts/{id}",
        permission: Permission::PromptsRead,
        summary: "A prompt's versions (author, hash, diff, evaluation) and deployments",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/prompts/{id}/versions",
        permission: Permission::PromptsStage,
        summary: "Push a prompt (the prompt file as JSON, its name the one in the path) as a new staging version",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/prompts/{id}/diff",
        permission: Permission::PromptsRead,
        summary: "Line diff between two versions (?from=&to=; default production → latest)",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/prompts/{id}/evals",
        permission: Permission::EvalsRecord,
        summary: "Record an evaluation suite's result on a version: {\"version\", \"passed\", \"report\"}",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/prompts/{id}/promote",
        permission: Permission::PromptsPromote,
        summary: "Point production at the staging version, if it passed its evaluation (four-eyes when configured)",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/prompts/{id}/rollback",
        permission: Permission::PromptsPromote,
        summary: "Point production back at the previous version, or {\"to\": VERSION}",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/routes/{id}",
        permission: Permission::ModelsRead,
        summary: "A route's versions (author, targets, evaluation) and deployments",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/routes/{id}/versions",
        permission: Permission::ModelsWrite,
        summary: "Push a route version ({\"route\", \"targets\"}, the route the one in the path) to staging",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/routes/{id}/diff",
        permission: Permission::ModelsRead,
        summary: "Line diff between two route versions (?from=&to=; default production → latest)",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/routes/{id}/evals",
        permission: Permission::EvalsRecord,
        summary: "Record an evaluation suite's result on a route version: {\"version\", \"passed\", \"report\"}",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/routes/{id}/promote",
        permission: Permission::PromptsPromote,
        summary: "Point production at the staging route version, if it passed its evaluation (four-eyes when configured)",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/routes/{id}/rollback",
        permission: Permission::PromptsPromote,
        summary: "Point production back at the previous route version, or {\"to\": VERSION}",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/review",
        permission: Permission::ReportsRead,
        summary: "Review-queue items, oldest first (?route=&all=true&limit=), with the queue's counts",
    },
    Endpoint {
        method: "POST",
        path: "/admin/v1/review/{id}/label",
        permission: Permission::ReviewLabel,
        summary: "Label an item {\"label\": good|wrong|harmful|refused|hallucinated, \"reviewer\", \"note\"}",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/drift/{id}",
        permission: Permission::ReportsRead,
        summary: "A route's daily series and drift score against its baseline (?days=&baseline_days=)",
    },
    Endpoint {
        method: "GET",
        path: "/admin/v1/roles",
        permission: Permission::ReportsRead,
        summary: "The role × permission table",
    },
];
