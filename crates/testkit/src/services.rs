//! The real services some tests need (PostgreSQL, Redis): their URLs come from the
//! environment `.ci/run` sets. Outside CI a missing service skips the test with a message;
//! in CI it fails the test, so a broken service never passes as a skipped suite.

/// Environment variable naming the test PostgreSQL database.
pub const POSTGRES_URL_ENV: &str = "TOLLGATE_TEST_POSTGRES_URL";
/// Environment variable naming the test Redis server.
pub const REDIS_URL_ENV: &str = "TOLLGATE_TEST_REDIS_URL";

/// Whether this is a CI run (`CI` set, and not `false` or `0`).
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skip (outside CI) or fail (in CI) the test called `what` because `why`.
pub fn unavailable(what: &str, why: &str) {
    assert!(
        !ci(),
        "CI is set, so {what} must run, but {why} (.ci/run starts the services and sets {POSTGRES_URL_ENV} and {REDIS_URL_ENV})"
    );
    eprintln!("skipping {what}: {why}");
}

/// The value of the environment variable `var`, or None after [`unavailable`] when it is
/// unset or blank.
pub fn url(var: &str, what: &str) -> Option<String> {
    let v = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    if v.is_none() {
        unavailable(what, &format!("{var} is not set"));
    }
    v
}
