//! Shared start-up: locating the config and data directory, opening the store and the
//! master key, and logging.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tollgate_gateway::config::{Config, Warning};
use tollgate_store::key::KeyHasher;
use tollgate_store::keystore::Keystore;
use tollgate_store::master::{MasterKey, MasterKeyNote};
use tollgate_store::sqlite::SqliteStore;
use tollgate_store::{Store, StoreUrl};

/// Config file looked for in the current directory when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "tollgate.toml";
/// Data directory used when neither flag nor config names one.
pub const DEFAULT_DATA_DIR: &str = "tollgate-data";

/// Options every command shares.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Config file (default: ./tollgate.toml if it exists).
    #[arg(long, global = true, env = "TOLLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory for the embedded store (default: ./tollgate-data).
    #[arg(long, global = true, env = "TOLLGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Master key file (default: DATA_DIR/master.key, created on first use).
    #[arg(long, global = true, env = "TOLLGATE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Where keys, secrets and the audit trail live: a SQLite file (a path or sqlite://PATH)
    /// or a Postgres database (postgres://USER:PASS@HOST/DB) shared by several instances
    /// (default: DATA_DIR/tollgate.db). The master key stays in the data directory.
    #[arg(long, global = true, env = "TOLLGATE_STORE", hide_env_values = true, value_parser = StoreParser)]
    pub store: Option<StoreUrl>,
    /// A running gateway (http://HOST:PORT). Admin commands (keys and their audit, kill
    /// switches, prompts and routes, review, drift, audit export) then go through its admin
    /// API with `--admin-key` instead of opening the store; `prompts test` and `routes test`
    /// run their cases through it and record the result there.
    #[arg(long, global = true, env = "TOLLGATE_GATEWAY")]
    pub gateway: Option<String>,
    /// Admin credential (`tg_admin_…`) for the admin API of `--gateway`; commands that take
    /// `--admin-token` also accept that one.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_ADMIN_KEY",
        hide_env_values = true
    )]
    pub admin_key: Option<AdminKey>,
}

/// An admin credential from the command line or environment; `Debug` never shows it.
#[derive(Clone)]
pub struct AdminKey(String);

impl AdminKey {
    /// The credential text, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(***)")
    }
}

impl std::str::FromStr for AdminKey {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Self(s.trim().to_owned()))
    }
}

/// Parses `--store` when the command line is parsed, so a bad value is a usage error. Not a
/// plain function parser: clap would quote the value in its message, password and all.
#[derive(Debug, Clone, Copy)]
struct StoreParser;

impl clap::builder::TypedValueParser for StoreParser {
    type Value = StoreUrl;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<StoreUrl, clap::Error> {
        let kind = clap::error::ErrorKind::ValueValidation;
        let text = value
            .to_str()
            .ok_or_else(|| clap::Error::raw(kind, "--store is not valid UTF-8\n"))?;
        StoreUrl::parse(text).map_err(|e| clap::Error::raw(kind, format!("--store: {e}\n")))
    }
}

/// The loaded config, its warnings and where it came from.
pub struct Loaded {
    /// Validated config.
    pub config: Config,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
    /// Resolved data directory.
    pub data_dir: PathBuf,
}

/// Load the config (or defaults) and resolve the data directory.
pub fn load(global: &GlobalArgs) -> Result<Loaded> {
    let path = match &global.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
    };
    let (config, warnings) = match &path {
        Some(p) => Config::load(p)?,
        None => (Config::default(), Vec::new()),
    };
    let data_dir = match (&global.data_dir, &config.storage.data_dir, &path) {
        (Some(d), _, _) => d.clone(),
        (None, Some(d), Some(cfg)) if d.is_relative() => {
            cfg.parent().unwrap_or(Path::new(".")).join(d)
        }
        (None, Some(d), _) => d.clone(),
        (None, None, _) => PathBuf::from(DEFAULT_DATA_DIR),
    };
    Ok(Loaded {
        config,
        warnings,
        data_dir,
    })
}

/// Create the data directory with mode 0700 if needed; warn if it is readable by others.
pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        // DirBuilder's mode is filtered by the umask; set it explicitly.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting permissions of {}", dir.display()))?;
    } else {
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "data directory is accessible to other users; chmod 700 it");
        }
    }
    Ok(())
}

/// An opened store with its derived secrets.
pub struct Opened {
    /// Store handle.
    pub store: Store,
    /// The keystore.
    pub keystore: Keystore,
    /// Key hasher (pepper from the master key).
    pub hasher: KeyHasher,
    /// Key of the `hash` masking action.
    pub mask_key: [u8; 32],
    /// Key of the audit records' HMAC.
    pub audit_mac_key: [u8; 32],
    /// Key wrapping the audit payloads' day keys.
    pub audit_wrap_key: [u8; 32],
}

/// Chain id of CLI actions (admin records written by `tollgate` commands).
pub const CLI_INSTANCE: &str = "cli";
/// File in the data directory holding the gateway's chain id.
pub const INSTANCE_FILE: &str = "instance.id";

/// The roles that may read audit records and payloads.
pub const AUDIT_READERS: &[&str] = &["owner", "admin", "auditor"];
/// The roles that may manage retention and legal holds.
pub const DATA_STEWARDS: &[&str] = &["owner", "admin", "data-steward"];

impl Opened {
    /// The audit signing key (created in the keystore on first use).
    pub async fn signer(&self) -> Result<tollgate_store::audit::Signer> {
        tollgate_store::audit::Signer::load_or_create(&self.keystore)
            .await
            .context("loading the audit signing key from the keystore")
    }

    /// The payload keyring.
    pub fn keyring(&self) -> tollgate_store::audit::payload::Keyring {
        tollgate_store::audit::payload::Keyring::new(self.store.audit.clone(), self.audit_wrap_key)
    }

    /// Append an admin record for a CLI action to the `cli` chain and sign its new head, so
    /// every administrative change is in the tamper-evident trail (DP-2).
    pub async fn audit_admin(
        &self,
        action: &str,
        actor: &str,
        target: Option<&str>,
        outcome: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        let id = format!("act_{}", uuid::Uuid::now_v7().simple());
        let fields = serde_json::json!({
            "action": action,
            "actor": actor,
            "target": target,
            "outcome": outcome,
            "details": details,
            "request_id": id,
            "key_id": null,
            "team": null,
            "instance": CLI_INSTANCE,
            "via": "cli",
        });
        let rec = tollgate_store::audit::NewRecord::new(
            chrono::Utc::now(),
            tollgate_store::audit::RecordKind::Admin,
            id,
            None,
            None,
            &fields,
        );
        let head = self
            .store
            .audit
            .append(CLI_INSTANCE, &[rec], &self.audit_mac_key)
            .await
            .context("writing the audit record of this action")?;
        let cp = self
            .signer()
            .await?
            .checkpoint(CLI_INSTANCE, head.seq, &head.hash);
        self.store.audit.put_checkpoint(&cp).await?;
        Ok(())
    }

    /// Check the admin credential from `TOLLGATE_ADMIN_TOKEN` (or `--admin-token-file`) and
    /// that its role is one of `roles`; a refusal is itself audited.
    pub async fn require_role(
        &self,
        admin: &AdminArgs,
        roles: &[&str],
        action: &str,
    ) -> Result<tollgate_store::AdminCredential> {
        let token = match (&admin.admin_token_file, &admin.admin_token) {
            (Some(p), _) => fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim()
                .to_owned(),
            (None, Some(t)) => t.trim().to_owned(),
            (None, None) => anyhow::bail!(
                "{action} needs an admin credential with one of the roles {}: set TOLLGATE_ADMIN_TOKEN or pass --admin-token-file",
                roles.join(", ")
            ),
        };
        let cred = self
            .store
            .admins
            .admin_by_hash(&self.hasher.hash_text(&token))
            .await?;
        match cred {
            Some(c) if roles.contains(&c.role.as_str()) => Ok(c),
            Some(c) => {
                self.audit_admin(
                    action,
                    &c.id,
                    None,
                    "denied",
                    serde_json::json!({"role": c.role}),
                )
                .await?;
                anyhow::bail!(
                    "admin credential {} has role {}, but {action} needs one of {}",
                    c.id,
                    c.role,
                    roles.join(", ")
                )
            }
            None => {
                self.audit_admin(
                    action,
                    "unknown",
                    None,
                    "denied",
                    serde_json::json!({"reason": "invalid credential"}),
                )
                .await?;
                anyhow::bail!("the admin credential is not valid (unknown or revoked)")
            }
        }
    }
}

/// Who runs an admin-plane command.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Admin credential (prefer the environment variable or a file over the command line).
    #[arg(long, env = "TOLLGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// File holding the admin credential.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
}

/// Who ran a CLI command, for admin records without a credential: the OS user.
pub fn os_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("os:{user}")
}

/// This gateway's chain id: from config, else kept in the data directory (created once).
pub fn instance_id(config: &Config, data_dir: &Path) -> Result<String> {
    if let Some(id) = &config.audit.instance_id {
        return Ok(id.clone());
    }
    let path = data_dir.join(INSTANCE_FILE);
    if let Ok(text) = fs::read_to_string(&path) {
        let id = text.trim().to_owned();
        if tollgate_gateway::config::audit::valid_instance_id(&id) {
            return Ok(id);
        }
        anyhow::bail!("{} holds an invalid instance id", path.display());
    }
    let id = format!("gw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    fs::write(&path, format!("{id}\n")).with_context(|| format!("writing {}", path.display()))?;
    let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
    Ok(id)
}

/// Start the audit writer of a gateway process.
pub async fn start_auditor(
    opened: &Opened,
    config: &Config,
    data_dir: &Path,
) -> Result<tollgate_gateway::audit::Auditor> {
    let instance = instance_id(config, data_dir)?;
    Ok(tollgate_gateway::audit::Auditor::start(
        opened.store.audit.clone(),
        opened.keyring(),
        opened.signer().await?,
        opened.audit_mac_key,
        tollgate_gateway::audit::AuditSettings {
            instance,
            fail_closed: config.audit.fail_closed,
            checkpoint_every: config.audit.checkpoint_every,
        },
    ))
}

/// Open the store (`--store`, else the embedded one under `data_dir`) and the master key
/// under `data_dir`.
pub async fn open(global: &GlobalArgs, data_dir: &Path) -> Result<Opened> {
    ensure_data_dir(data_dir)?;
    let (master, notes) = match &global.master_key_file {
        Some(p) => MasterKey::load_or_create(p, false)
            .context("TOLLGATE_MASTER_KEY_FILE / --master-key-file")?,
        None => MasterKey::load_or_create(&data_dir.join("master.key"), true)?,
    };
    for n in notes {
        match n {
            MasterKeyNote::Created => {
                tracing::info!(dir = %data_dir.display(), "created a new master key (master.key, mode 0600); back it up: without it the keystore cannot be read")
            }
            MasterKeyNote::LoosePermissions(m) => tracing::warn!(
                mode = format!("{m:o}"),
                "master key file is readable by other users; chmod 600 it"
            ),
        }
    }
    let store = match &global.store {
        Some(location) => Store::open(location)
            .await
            .with_context(|| format!("opening the store at {location}"))?,
        None => open_embedded(data_dir).await?,
    };
    let keystore = Keystore::new(store.secrets.clone(), &master);
    let hasher = KeyHasher::new(master.key_pepper());
    Ok(Opened {
        store,
        keystore,
        hasher,
        mask_key: master.mask_hash_key(),
        audit_mac_key: master.audit_mac_key(),
        audit_wrap_key: master.audit_wrap_key(),
    })
}

/// The embedded store: `tollgate.db` in the data directory.
async fn open_embedded(data_dir: &Path) -> Result<Store> {
    let db = SqliteStore::open(&data_dir.join("tollgate.db"))
        .await
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    // The directory is 0700 already; the files get 0600 too, in case it is ever loosened.
    for name in ["tollgate.db", "tollgate.db-wal", "tollgate.db-shm"] {
        let p = data_dir.join(name);
        if p.exists() {
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o600));
        }
    }
    Ok(Store::from_backend(Arc::new(db)))
}

/// Logging: JSON lines on stdout for `serve`, plain text on stderr for other commands.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        global: GlobalArgs,
    }

    #[test]
    fn store_flag_picks_the_backend_and_never_echoes_a_password() {
        let cli = Cli::try_parse_from(["t", "--store", "postgres://svc:hunter2@db/tollgate"])
            .map_err(|e| e.to_string());
        assert!(
            matches!(&cli, Ok(c) if matches!(c.global.store, Some(StoreUrl::Postgres(_)))),
            "{cli:?}"
        );
        // Neither Debug of the parsed flags nor a refusal shows the password.
        assert!(!format!("{cli:?}").contains("hunter2"));
        let err = Cli::try_parse_from(["t", "--store", "mysql://root:hunter2@db/x"])
            .err()
            .map(|e| (e.kind(), e.to_string()));
        let (kind, msg) = err.unwrap_or((clap::error::ErrorKind::DisplayHelp, String::new()));
        assert_eq!(kind, clap::error::ErrorKind::ValueValidation);
        assert!(
            msg.contains("mysql://root:***@db/x") && !msg.contains("hunter2"),
            "{msg}"
        );
        let none = Cli::try_parse_from(["t"]).map(|c| c.global.store.is_none());
        assert!(matches!(none, Ok(true)));
    }
}
