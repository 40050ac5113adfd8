//! Shared start-up: locating the config and data directory, opening the store and the
//! master key, and logging.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tollgate_gateway::config::{Config, Warning};
use tollgate_store::Store;
use tollgate_store::key::KeyHasher;
use tollgate_store::keystore::Keystore;
use tollgate_store::master::{MasterKey, MasterKeyNote};
use tollgate_store::sqlite::SqliteStore;

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
}

/// Open the embedded store and the master key under `data_dir`.
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
    let store = Store::from_backend(Arc::new(db));
    let keystore = Keystore::new(store.secrets.clone(), &master);
    let hasher = KeyHasher::new(master.key_pepper());
    Ok(Opened {
        store,
        keystore,
        hasher,
        mask_key: master.mask_hash_key(),
    })
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
