//! `fpr up`: the whole system in this process, and the banner that says where each part is.

pub(crate) async fn run_up(cfg: fpr::UpSettings) -> anyhow::Result<()> {
    // A closed terminal (SIGHUP) stops it too: the in-process vault would otherwise take the
    // signal as "re-read the master key" and leave it running with nobody to stop it. Listened
    // for before the banner, so that a SIGHUP sent as soon as the banner shows is not missed.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let running = fpr::start_all(&cfg).await?;
    let o = running.orchestrator;
    println!("fpr is up (NO SECURITY: sandbox upstreams, for trying fpr out)");
    println!("  orchestrator  grpc://{o}   (fpr.v1.ShipmentService; health and reflection open)");
    println!(
        "  rest          http://{}   (the FIDO Connector's /v1 API; /openapi.json)",
        running.rest
    );
    println!(
        "  okta event hook  {}   (registered with the sandbox's Okta)",
        running.okta_event_hook
    );
    println!(
        "  metrics       http://{}/metrics   (Prometheus: vault and orchestrator)",
        running.metrics
    );
    println!(
        "  vault         unix:{}   (grpcurl: -unix -authority localhost)",
        running.vault_socket.display()
    );
    println!(
        "  sandbox       {}   (YubiEnterprise, Entra ID, Okta; admin API under /_sandbox/)",
        running.sandbox_url
    );
    println!("  PIN mailbox   {}/_sandbox/mailbox", running.sandbox_url);
    println!();
    println!(
        "Caller token (sandbox tenant, 1 hour; kept fresh in {}):",
        running.token_file.display()
    );
    println!("export TOKEN={}", running.token);
    println!();
    println!("Try:");
    println!("  cargo run --release -p fpr -- demo");
    println!("  cargo run --release -p fpr -- status");
    println!("  grpcurl -plaintext {o} list fpr.v1.ShipmentService");
    println!(
        "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {o} fpr.v1.ShipmentService/GetStatus"
    );
    println!(
        "  curl -s -H \"authorization: Bearer $TOKEN\" http://{}/v1/status",
        running.rest
    );
    println!("  curl -s {}/_sandbox/users?idp=entra", running.sandbox_url);
    println!("Stop with Ctrl-C.");
    tokio::select! {
        () = fpr_config::shutdown_signal() => {}
        _ = hup.recv() => {}
    }
    running.stop().await;
    println!("fpr stopped");
    Ok(())
}
