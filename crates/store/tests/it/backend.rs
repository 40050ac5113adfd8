//! The backends every store test runs on.
//!
//! A test body is an `async fn name(db: TestDb)`; [`on_each_backend!`] turns a list of them
//! into `sqlite::name` and `postgres::name` tests (`cargo nextest run -E 'test(/postgres::/)'`
//! picks one backend). Each test gets a fresh database: a file in a temporary directory, or a
//! schema `t_<random>` in the database at `TOLLGATE_TEST_POSTGRES_URL`, dropped when the test
//! ends, so tests run in parallel and repeatably on one shared database.
//!
//! Without `TOLLGATE_TEST_POSTGRES_URL`, or with a server that does not answer, the Postgres
//! variants print why and pass, unless `CI` is set: then they fail, so CI can never go green
//! without having run them.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection};
use tollgate_store::Store;
use tollgate_store::postgres::{PgOptions, PgStore};
use tollgate_store::sqlite::SqliteStore;

/// Environment variable naming the Postgres server the tests use.
const POSTGRES_URL_ENV: &str = "TOLLGATE_TEST_POSTGRES_URL";
/// How long a test waits for the Postgres server before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Generate a `sqlite::` and a `postgres::` test for each named test body.
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::backend::TestDb::sqlite().await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::backend::TestDb::postgres().await {
                        super::$name(db).await;
                    }
                }
            )+
        }
    };
}
pub(crate) use on_each_backend;

/// A value bound to a raw SQL statement.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Bytes (BLOB / BYTEA).
    Bytes(&'a [u8]),
}

enum Place {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

/// A fresh, migrated database on one backend, with the store opened on it.
pub struct TestDb {
    /// The store, as the gateway would use it.
    pub store: Store,
    place: Place,
}

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skip a Postgres test outside CI; fail it in CI.
fn unavailable(why: &str) {
    assert!(
        !ci(),
        "CI is set, so the Postgres store tests must run, but {why} ({POSTGRES_URL_ENV}; .ci/run starts a server and sets it)"
    );
    eprintln!(
        "skipping a Postgres store test: {why}; point {POSTGRES_URL_ENV} at a running server to run it"
    );
}

fn pg_options(schema: &str) -> PgOptions {
    PgOptions {
        max_connections: 4,
        connect_timeout: CONNECT_TIMEOUT,
        schema: Some(schema.to_owned()),
    }
}

/// `sql` with SQLite's `?` placeholders numbered as Postgres wants them (`$1`, `$2`, …).
/// The test statements hold no `?` inside string literals.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

impl TestDb {
    /// A SQLite file in a new temporary directory.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store =
            Store::from_backend(std::sync::Arc::new(SqliteStore::open(&path).await.unwrap()));
        Self {
            store,
            place: Place::Sqlite { _dir: dir, path },
        }
    }

    /// A new schema in the test Postgres database, or None (with a message) if there is
    /// none outside CI.
    pub async fn postgres() -> Option<Self> {
        let url = match std::env::var(POSTGRES_URL_ENV) {
            Ok(u) if !u.trim().is_empty() => u,
            _ => {
                unavailable(&format!("{POSTGRES_URL_ENV} is not set"));
                return None;
            }
        };
        // Reachability first, so that a server that is down skips (or fails in CI) with a
        // clear message, while any later error is a plain test failure.
        let probe = async {
            let mut c = sqlx::postgres::PgConnectOptions::from_str(&url)?
                .connect()
                .await?;
            c.ping().await?;
            c.close().await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                unavailable(&format!(
                    "Postgres at {} is unreachable: {e}",
                    tollgate_store::redact_url(&url)
                ));
                return None;
            }
            Err(_) => {
                unavailable(&format!(
                    "Postgres at {} did not answer within {CONNECT_TIMEOUT:?}",
                    tollgate_store::redact_url(&url)
                ));
                return None;
            }
        }
        let schema = format!("t_{:016x}", rand::random::<u64>());
        let pg = PgStore::connect(&url, &pg_options(&schema)).await.unwrap();
        Some(Self {
            store: Store::from_backend(std::sync::Arc::new(pg)),
            place: Place::Postgres { url, schema },
        })
    }

    /// Another handle on the same database, as a second process would open it.
    pub async fn reopen(&self) -> Store {
        match &self.place {
            Place::Sqlite { path, .. } => {
                Store::from_backend(std::sync::Arc::new(SqliteStore::open(path).await.unwrap()))
            }
            Place::Postgres { url, schema } => Store::from_backend(std::sync::Arc::new(
                PgStore::connect(url, &pg_options(schema)).await.unwrap(),
            )),
        }
    }

    /// The database as a `--store` location ([`Store::connect`]).
    pub fn location(&self) -> String {
        match &self.place {
            Place::Sqlite { path, .. } => path.display().to_string(),
            // Postgres takes startup options in the URL: `-c search_path=<schema>`.
            Place::Postgres { url, schema } => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}options=-c%20search_path%3D{schema}")
            }
        }
    }

    /// Run one raw statement, written with `?` placeholders, on a connection of its own (as
    /// someone with direct database access would); returns the rows affected.
    pub async fn exec(&self, sql: &str, args: &[Arg<'_>]) -> u64 {
        match &self.place {
            Place::Sqlite { path, .. } => {
                let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")
                    .unwrap()
                    .filename(path)
                    .connect()
                    .await
                    .unwrap();
                let mut q = sqlx::query(sql);
                for a in args {
                    q = match *a {
                        Arg::Int(v) => q.bind(v),
                        Arg::Text(v) => q.bind(v),
                        Arg::Bytes(v) => q.bind(v),
                    };
                }
                q.execute(&mut conn).await.unwrap().rows_affected()
            }
            Place::Postgres { url, schema } => {
                let mut conn = sqlx::postgres::PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())])
                    .connect()
                    .await
                    .unwrap();
                let sql = numbered(sql);
                let mut q = sqlx::query(&sql);
                for a in args {
                    q = match *a {
                        Arg::Int(v) => q.bind(v),
                        Arg::Text(v) => q.bind(v),
                        Arg::Bytes(v) => q.bind(v),
                    };
                }
                q.execute(&mut conn).await.unwrap().rows_affected()
            }
        }
    }
}

impl Drop for TestDb {
    /// Drop the test's Postgres schema. Drop cannot await, so a thread with a runtime of its
    /// own does it; this runs on a failing test's unwind too. Errors are ignored: a schema
    /// left behind is only clutter, never a wrong result, as every test makes a new one.
    fn drop(&mut self) {
        let Place::Postgres { url, schema } = &self.place else {
            return;
        };
        let (url, schema) = (url.clone(), schema.clone());
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(opts) = sqlx::postgres::PgConnectOptions::from_str(&url) else {
                    return;
                };
                if let Ok(Ok(mut c)) = tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut c)
                        .await;
                    let _ = c.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

#[test]
fn placeholders_are_numbered_for_postgres() {
    assert_eq!(
        numbered("UPDATE t SET a = ? WHERE b = ? AND c = 1"),
        "UPDATE t SET a = $1 WHERE b = $2 AND c = 1"
    );
}
