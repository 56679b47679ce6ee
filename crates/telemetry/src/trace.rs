//! Logs and traces: one `tracing` subscriber per process with
//! - logs as text or JSON lines (`FPR_LOG_FORMAT=json`, or a service's `log_format` setting
//!   through [`set_log_format`]), filtered by `FPR_LOG`;
//! - OpenTelemetry traces exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, with the standard `OTEL_*` variables
//!   (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, …);
//! - W3C trace context carried across gRPC calls: [`Inject`] on a client, [`rpc_span`] on a
//!   server.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable text (the default).
    #[default]
    Text,
    /// One JSON object a line, with the fields of the enclosing spans (`shipment.id`,
    /// `trace_id`, …).
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

type Base = tracing_subscriber::layer::Layered<EnvFilter, Registry>;
type FmtLayer = Box<dyn Layer<Base> + Send + Sync>;

static FORMAT: OnceLock<(reload::Handle<FmtLayer, Base>, bool)> = OnceLock::new();
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

fn fmt_layer(format: LogFormat, stderr: bool) -> FmtLayer {
    let writer = move || -> Box<dyn std::io::Write> {
        if stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    }
}

/// What [`init`] set up; flushes the traces when dropped.
#[derive(Debug)]
pub struct Guard {
    exporting: bool,
}

impl Guard {
    /// Whether traces are exported (an OTLP endpoint was configured).
    pub fn exporting(&self) -> bool {
        self.exporting
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        flush();
    }
}

/// Exports every finished span now.
pub fn flush() {
    if let Some(p) = PROVIDER.get()
        && let Err(e) = p.force_flush()
    {
        eprintln!("fpr: flushing traces: {e}");
    }
}

/// Installs the process's subscriber: `FPR_LOG` filter (else `default_filter`), logs to
/// stderr or stdout in `FPR_LOG_FORMAT` (text by default), and traces over OTLP when an
/// endpoint is set in the environment or given as `endpoint` (tests). `service` names the
/// process in traces unless `OTEL_SERVICE_NAME` does. A second call does nothing.
pub fn init(
    service: &'static str,
    default_filter: &str,
    stderr: bool,
    endpoint: Option<&str>,
) -> Guard {
    let format = std::env::var("FPR_LOG_FORMAT")
        .ok()
        .and_then(|f| LogFormat::parse(&f))
        .unwrap_or_default();
    let filter =
        EnvFilter::try_from_env("FPR_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (fmt, handle) = reload::Layer::new(fmt_layer(format, stderr));
    let configured = endpoint.is_some()
        || [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let provider = configured.then(|| provider(service, endpoint)).flatten();
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing_opentelemetry::layer().with_tracer(p.tracer("fpr"))
    });
    let installed = Registry::default()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    if installed {
        let _ = FORMAT.set((handle, stderr));
        if let Some(p) = provider {
            let _ = PROVIDER.set(p);
        }
    }
    Guard {
        exporting: installed && PROVIDER.get().is_some(),
    }
}

fn provider(service: &'static str, endpoint: Option<&str>) -> Option<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e);
    }
    let exporter = match builder.build() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("fpr: OTLP trace exporter not started: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

/// Switches the log format after start (a service's `log_format` setting, read after the
/// subscriber was installed).
pub fn set_log_format(format: LogFormat) {
    if let Some((handle, stderr)) = FORMAT.get() {
        let _ = handle.reload(fmt_layer(format, *stderr));
    }
}

/// The trace id of the current span, when traces are exported.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let id = cx.span().span_context().trace_id();
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
}

/// Records the current trace id into the current span's `trace_id` field (declared
/// `trace_id = tracing::field::Empty`), so JSON logs inside the span carry it.
pub fn record_trace_id() {
    if let Some(id) = current_trace_id() {
        tracing::Span::current().record("trace_id", id);
    }
}

/// A gRPC client interceptor that sends the current span's trace context (`traceparent`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inject;

struct Metadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(k, v);
        }
    }
}

impl tonic::service::Interceptor for Inject {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let cx = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut Metadata(req.metadata_mut()));
        });
        Ok(req)
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The server span of one gRPC call, from the request line and headers only (never the
/// body): a child of the caller's span when the call carries a trace context.
pub fn rpc_span<B>(req: &http::Request<B>) -> tracing::Span {
    let span = tracing::info_span!("rpc", rpc.method = %req.uri().path(), trace_id = tracing::field::Empty);
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let id = span.context().span().span_context().trace_id();
    if id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", id.to_string());
    }
    span
}
