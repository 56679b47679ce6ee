//! Shared configuration plumbing for fpr's services: where values come from (the process
//! environment, or a map in tests), how environment variables override keys of a TOML
//! document, and the https-unless-dangerous rule for upstream URLs.
//!
//! It reads no file and holds no secret: services load their own files and read secrets at
//! use time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;

/// Where configuration values come from, so tests can pass a map instead of the process env.
pub trait Source {
    /// The value of variable `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct Env;

impl Source for Env {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Sets dotted `key` (e.g. `yubico.sign_jwks_url`) in `doc`, creating tables on the way.
/// Whole numbers become TOML integers, everything else strings.
///
/// # Example
///
/// ```
/// use fpr_config::{Source as _, set_path};
/// let mut doc: toml::Table = toml::from_str("[a]\nb = 1").unwrap();
/// set_path(&mut doc, "a.c", "x".into());
/// assert_eq!(doc["a"]["c"].as_str(), Some("x"));
/// let env: std::collections::BTreeMap<String, String> = [("K".to_string(), "v".to_string())].into();
/// assert_eq!(env.var("K").as_deref(), Some("v"));
/// ```
pub fn set_path(doc: &mut toml::Table, key: &str, value: String) {
    let v = value
        .parse::<i64>()
        .map(toml::Value::Integer)
        .unwrap_or(toml::Value::String(value));
    set_value(doc, key, v);
}

/// Sets dotted `key` in `doc` to `value`, creating tables on the way (a key whose parent is
/// not a table is left alone).
pub fn set_value(doc: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut t = doc;
    for p in parts {
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next) = entry else {
            return;
        };
        t = next;
    }
    t.insert(last.to_owned(), value);
}

/// Applies `(variable, key)` overrides from `env` to `doc`.
pub fn apply_overrides(doc: &mut toml::Table, overrides: &[(&str, &str)], env: &dyn Source) {
    for (var, key) in overrides {
        if let Some(value) = env.var(var) {
            set_path(doc, key, value);
        }
    }
}

/// https always; plain http only when the deployment's danger switch allows it.
pub fn scheme_ok(url: &url::Url, allow_plaintext_http: bool) -> bool {
    url.scheme() == "https" || (allow_plaintext_http && url.scheme() == "http")
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C): when a service stops serving.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Crash points for fault-injection tests (`fpr-chaos` and the crash tests): when the process
/// was started with `FPR_DANGER_CRASH_AT=<name>` (or `<name>:<n>`, the n-th time it is reached),
/// reaching the point called `name` ends the process at once, as `kill -9` would, so that a
/// test can stop it exactly between a side effect and the write that records it. Unset (as in
/// every deployment), a crash point does nothing but one relaxed atomic load.
pub mod danger {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The environment variable that arms a crash point.
    pub const CRASH_AT: &str = "FPR_DANGER_CRASH_AT";

    fn armed() -> &'static Option<(String, u32)> {
        static ARMED: OnceLock<Option<(String, u32)>> = OnceLock::new();
        ARMED.get_or_init(|| {
            let v = std::env::var(CRASH_AT).ok()?;
            let (name, n) = match v.split_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                None => (v, 1),
            };
            tracing::warn!(
                crash_point = %name,
                "FPR_DANGER_CRASH_AT is set: this process will stop itself there (a test setting)"
            );
            Some((name, n))
        })
    }

    /// Reads `FPR_DANGER_CRASH_AT` now, so that a service warns at start when it is set.
    pub fn warn_if_armed() {
        let _ = armed();
    }

    /// Ends the process here if this crash point is armed (see the module docs).
    pub fn crash_point(name: &str) {
        static PASSES: AtomicU32 = AtomicU32::new(0);
        if let Some((armed, n)) = armed()
            && armed == name
            && PASSES.fetch_add(1, Ordering::SeqCst) + 1 >= *n
        {
            eprintln!("crash point {name} reached: stopping as kill -9 would");
            std::process::abort();
        }
    }
}
