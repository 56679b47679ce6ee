//! `fpr up` as a newcomer runs it: one process, then a real client with the printed token.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn up_starts_everything_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (s, m, o) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_fpr"))
        .args([
            "up",
            "--sandbox",
            &format!("127.0.0.1:{s}"),
            "--smtp",
            &format!("127.0.0.1:{m}"),
            "--listen",
            &format!("127.0.0.1:{o}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        text.push_str(&line);
        if line.starts_with("Stop with") {
            break;
        }
        line.clear();
    }
    assert!(text.contains("fpr is up"), "{text}");
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("export TOKEN="))
        .unwrap()
        .to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{o}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        let mut client =
            fpr_proto::v1::shipment_service_client::ShipmentServiceClient::with_interceptor(
                channel,
                move |mut r: tonic::Request<()>| {
                    r.metadata_mut().insert("authorization", bearer.clone());
                    Ok(r)
                },
            );
        let status = client
            .get_status(fpr_proto::v1::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        for d in &status.dependencies {
            assert!(d.healthy, "{d:?}");
        }
    });
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    while out.read_line(&mut rest).unwrap() > 0 {}
    assert!(child.wait().unwrap().success());
    assert!(rest.contains("fpr stopped"));
    assert!(
        dir.path().join("vault/master.key").exists()
            && dir.path().join("sandbox/snapshot.json").exists()
    );
}
