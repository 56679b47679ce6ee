//! OpenTelemetry traces of one shipment, exported over OTLP/gRPC to an in-process receiver:
//! each step of the shipment is one trace, and the vault's span of the call the step made
//! (over the real Unix socket, with the trace context in the gRPC metadata) belongs to it, as
//! do the upstream calls. Its own test binary: the process's subscriber exports to this test's
//! receiver only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::{Arc, Mutex};

use fpr_proto::v1 as pb;
use fpr_tests::{Stack, create_request, manual_sandbox, ship_at_yubico};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;

/// An OTLP trace receiver keeping every span it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Any::StringValue(s)) => Some(s.clone()),
            Some(other) => Some(format!("{other:?}")),
            None => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_per_step_spans_the_orchestrator_the_vault_and_the_upstreams() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let telemetry =
        fpr_telemetry::trace::init("fpr-test", "info", true, Some(&format!("http://{addr}")));
    assert!(telemetry.exporting());

    let stack = Stack::start(manual_sandbox()).await;
    let mut client = stack.client().await;
    let created = client
        .create_shipment(create_request("traced-1", "adele.vance@contoso.test"))
        .await
        .unwrap()
        .into_inner();
    ship_at_yubico(&stack, &created.yubienterprise_shipment_id).await;
    let run = client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.completed, 1, "{run:?}");

    // Export, then wait for the receiver to hold the last step's trace.
    let id = created.shipment_id.clone();
    let steps = |spans: &[Span]| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| s.name == "shipment.step" && attr(s, "shipment.id").as_deref() == Some(&id))
            .cloned()
            .collect()
    };
    let mut spans = Vec::new();
    for _ in 0..100 {
        fpr_telemetry::trace::flush();
        spans = receiver.0.lock().unwrap().clone();
        if steps(&spans)
            .iter()
            .any(|s| attr(s, "step").as_deref() == Some("registered"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let steps = steps(&spans);
    let names: Vec<_> = steps.iter().filter_map(|s| attr(s, "step")).collect();
    // Each span is named for the step the shipment was at when the step began.
    for step in ["accepted", "sealed", "ordered", "shipped", "registered"] {
        assert!(
            names.iter().any(|n| n == step),
            "no span for {step}: {names:?}"
        );
    }
    // One trace per step: each step span is a root with its own trace id.
    let mut traces: Vec<_> = steps.iter().map(|s| s.trace_id.clone()).collect();
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), steps.len(), "{names:?}");
    assert!(steps.iter().all(|s| s.parent_span_id.is_empty()));

    // A step's trace holds the vault's span of the call it made, child of the step's span.
    let in_trace = |step: &str, rpc: &str| {
        let s = steps
            .iter()
            .find(|s| attr(s, "step").as_deref() == Some(step))
            .unwrap();
        let vault = spans
            .iter()
            .find(|v| {
                v.name == "rpc"
                    && v.trace_id == s.trace_id
                    && attr(v, "rpc.method").is_some_and(|m| m.ends_with(rpc))
            })
            .unwrap_or_else(|| panic!("no vault span {rpc} in the trace of {step}"));
        assert_eq!(vault.parent_span_id, s.span_id, "{rpc} hangs under {step}");
        s.trace_id.clone()
    };
    let accepted = in_trace("accepted", "VaultService/SealRequests");
    in_trace("shipped", "VaultService/OpenCredentialResponse");
    in_trace("registered", "VaultService/DeliverPin");
    // The upstream calls of a step are in its trace too.
    let graph = spans
        .iter()
        .filter(|s| s.name == "upstream" && s.trace_id == accepted)
        .filter_map(|s| attr(s, "upstream"))
        .collect::<Vec<_>>();
    assert!(graph.iter().any(|u| u == "graph"), "{graph:?}");
    // No span attribute carries a PIN or a key: only the names the code gives.
    for s in &spans {
        for kv in &s.attributes {
            assert!(
                !kv.key.to_ascii_lowercase().contains("pin_response"),
                "{}",
                kv.key
            );
        }
    }
}
