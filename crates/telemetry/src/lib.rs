//! Telemetry of fpr's processes. Metrics: one Prometheus recorder per process (the `metrics`
//! facade, so any crate records with `metrics::counter!` without a handle), served as text at
//! `/metrics` on an admin listener apart from the API. Logs and traces: [`trace`].
//!
//! It must never carry a user id, an address, a shipment id or a secret in a metric label:
//! labels are closed sets (an upstream, a route template, a step, an error kind, an outcome).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod trace;

use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Bucket bounds of every histogram, in seconds: from a fast local call to a slow upstream.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

type Hook = Box<dyn Fn() + Send + Sync>;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Installs the process's recorder (once; later calls return the same). None when another
/// recorder was installed first: metrics are then not served.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "A metrics recorder was already installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Whether this process records metrics (a recorder was installed).
pub fn installed() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// Runs `f` before each scrape (for gauges read from the outside, like a file's size).
pub fn on_scrape(f: impl Fn() + Send + Sync + 'static) {
    if let Ok(mut hooks) = HOOKS.lock() {
        hooks.push(Box::new(f));
    }
}

/// The metrics as Prometheus text (the hooks run first).
pub fn render() -> String {
    if let Ok(hooks) = HOOKS.lock() {
        hooks.iter().for_each(|h| h());
    }
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    install();
    let router = Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render(),
            )
                .into_response()
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `addr` and serves `/metrics` there on a task of its own until `shutdown`; the bound
/// address.
pub async fn spawn(
    addr: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, "Metrics serving at /metrics");
    tokio::spawn(async move {
        if let Err(e) = serve(listener, shutdown).await {
            tracing::warn!(error = %e, "The metrics listener stopped");
        }
    });
    Ok(bound)
}

/// Bytes a store takes on disk: a file's size, or the sum over a directory's files.
pub fn disk_bytes(path: &std::path::Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| disk_bytes(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Seconds since the Unix epoch, for timestamp gauges.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_values_and_hooks_reach_the_text() {
        super::install();
        super::on_scrape(|| metrics::gauge!("fpr_test_gauge").set(7.0));
        metrics::counter!("fpr_test_total", "kind" => "a").increment(2);
        metrics::histogram!("fpr_test_seconds").record(0.02);
        let text = super::render();
        assert!(text.contains("fpr_test_total{kind=\"a\"} 2"), "{text}");
        assert!(text.contains("fpr_test_gauge 7"), "{text}");
        assert!(
            text.contains("fpr_test_seconds_bucket{le=\"0.025\"} 1"),
            "{text}"
        );
    }
}
