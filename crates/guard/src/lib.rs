//! Pure detectors and transforms that tollgate runs on untrusted text.
//!
//! Nothing here does I/O or async work, so every detector can run in the request path of the
//! gateway *and* inside `tollgate scan` with the same results. Today the crate holds:
//!
//! - [`egress`]: upstream host allow-lists (SC-3), shared by the gateway and `scan`;
//! - [`secret`]: the one credential rule set, shared by the scanner, the config loader (a
//!   literal key in `tollgate.toml` is an error) and, later, prompt masking;
//! - [`tokens`]: cheap token estimates for providers that report no usage;
//! - [`cost`]: model prices (defaults for well-known models) and the cost of a call;
//! - [`pii`]: PII recognizers with validation and context scoring (DP-1);
//! - [`mask`]: what to do with a detection — redact, partially mask, hash, replace with a
//!   reversible token restored in the response (streams included), or block;
//! - [`normalize`]: Unicode normalisation that undoes and counts obfuscation tricks;
//! - [`injection`]: prompt-injection scoring, spotlighting and canaries (MG-4);
//! - [`content`]: content-category scores and topic allow/deny lists (MG-2);
//! - [`refusal`]: whether a completion opens with a refusal, for drift statistics (MI-4).
//!
//! PII, injection, content and output validation detectors join this crate as they land.

pub mod content;
pub mod cost;
pub mod egress;
pub mod injection;
pub mod mask;
pub mod normalize;
pub mod pii;
pub mod refusal;
pub mod secret;
pub mod tokens;
