//! The workspace's one fixture crate: the services running over real sockets (sandbox, vault,
//! orchestrator), a Yubico the tests hold the keys of (on the sandbox's own Yubico code), an
//! SMTP receiver, a small HTTP server, request builders. The `fpr` package's own process tests
//! (services/fpr/tests) add only what needs its binary.
//!
//! NO SECURITY: test-only. Everything binds to 127.0.0.1 port 0 or a Unix socket in a temp dir.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod http;
pub mod sandbox_calls;
pub mod smtp;
mod yubico;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
pub use yubico::{Fulfilment, Yubico};

use fpr_proto::vault::v1::vault_service_client::VaultServiceClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// Captured log output of every service started in this test binary (TRACE level).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once per test binary.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let buf = LOGS.get_or_init(Default::default).clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(buf.clone()))
            .try_init();
    });
}

/// A test Yubico publishing its keys, an SMTP mailbox, and a vault that uses both: the set-up
/// of most vault tests.
pub struct SmtpVault {
    /// The Yubico side (fulfils sealed requests).
    pub yubico: crate::Yubico,
    /// Serves the Yubico's JWKS (keep it alive).
    pub jwks: crate::http::Server,
    /// Where PINs arrive.
    pub mail: crate::smtp::Receiver,
    /// The vault.
    pub vault: VaultFixture,
}

impl SmtpVault {
    /// Starts the three with the fixture's defaults.
    pub async fn start() -> Self {
        Self::start_with(|b| b).await
    }

    /// As [`SmtpVault::start`], with the vault's builder changed by `f`.
    pub async fn start_with(f: impl FnOnce(VaultBuilder) -> VaultBuilder) -> Self {
        let yubico = crate::Yubico::new();
        let jwks = jwks_server(&yubico).await;
        let mail = crate::smtp::Receiver::start().await;
        let vault = f(VaultFixture::builder(&jwks, Pins::Smtp(mail.addr)))
            .start()
            .await;
        Self {
            yubico,
            jwks,
            mail,
            vault,
        }
    }
}

/// Where the vault sends PINs.
pub enum Pins {
    /// To an SMTP server at this address (plaintext).
    Smtp(std::net::SocketAddr),
    /// To this webhook URL, signed with this secret.
    Webhook(String, &'static str),
}

/// A vault serving on a Unix socket in a temp dir.
pub struct VaultFixture {
    /// The temp dir holding socket, store and keys.
    pub dir: tempfile::TempDir,
    /// The socket path.
    pub socket: PathBuf,
    /// The store directory.
    pub store: PathBuf,
    /// The master key file.
    pub master_key_file: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), fpr_vault::Error>>>,
}

/// Builder for [`VaultFixture`].
pub struct VaultBuilder {
    pins: Pins,
    transport_jwks_url: String,
    sign_jwks_url: String,
    allowed_uids: Vec<u32>,
    listen: Option<String>,
    pinned: Option<(PathBuf, PathBuf)>,
    extra: String,
    store_extra: String,
    recipient_policy: String,
}

/// The vault fixture's PIN recipient policy: the sandbox tenant's domain, resends at once.
pub const TEST_RECIPIENT_POLICY: &str =
    "allowed_recipient_domains = [\"contoso.test\"]\nresend_min_interval = \"0s\"\n";

impl VaultFixture {
    /// A builder whose JWKS come from `jwks` (routes `/transport` and `/sign`).
    pub fn builder(jwks: &crate::http::Server, pins: Pins) -> VaultBuilder {
        Self::builder_for(jwks.url("/transport"), jwks.url("/sign"), pins)
    }

    /// A builder whose JWKS come from these URLs.
    pub fn builder_for(
        transport_jwks_url: String,
        sign_jwks_url: String,
        pins: Pins,
    ) -> VaultBuilder {
        VaultBuilder {
            pins,
            transport_jwks_url,
            sign_jwks_url,
            allowed_uids: Vec::new(),
            listen: None,
            pinned: None,
            extra: String::new(),
            store_extra: String::new(),
            recipient_policy: TEST_RECIPIENT_POLICY.into(),
        }
    }

    /// The audit log (the default place: beside the store).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// A gRPC client over the Unix socket.
    pub async fn client(&self) -> VaultServiceClient<Channel> {
        VaultServiceClient::new(uds_channel(&self.socket).await)
    }

    /// Stops the server and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl VaultBuilder {
    /// JWKS from these URLs instead of a test server.
    pub fn jwks_urls(mut self, transport: String, signing: String) -> Self {
        self.transport_jwks_url = transport;
        self.sign_jwks_url = signing;
        self
    }

    /// Restricts the socket to these uids.
    pub fn allowed_uids(mut self, uids: Vec<u32>) -> Self {
        self.allowed_uids = uids;
        self
    }

    /// Listens on this address (`tcp:…`) instead of the Unix socket.
    pub fn listen(mut self, listen: &str) -> Self {
        self.listen = Some(listen.to_owned());
        self
    }

    /// Pins the Yubico sets from these files.
    pub fn pinned_jwks(mut self, transport: &Path, signing: &Path) -> Self {
        self.pinned = Some((transport.to_owned(), signing.to_owned()));
        self
    }

    /// Adds raw TOML lines to the `[store]` table.
    pub fn store(mut self, toml: &str) -> Self {
        self.store_extra.push_str(toml);
        self.store_extra.push('\n');
        self
    }

    /// Replaces the `[delivery]` recipient and resend settings (raw TOML lines).
    pub fn recipient_policy(mut self, toml: &str) -> Self {
        self.recipient_policy = toml.to_owned();
        self
    }

    /// Appends raw TOML to the end of the config (after the `[danger]` table).
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self
    }

    /// Writes the config and master key, builds and serves the vault.
    pub async fn start(self) -> VaultFixture {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/vault.sock");
        let store = dir.path().join("store");
        let master_key_file = dir.path().join("master.key");
        let mut f = std::fs::File::create(&master_key_file).unwrap();
        f.write_all(
            fpr_jose::seal::MasterKey::generate_hex()
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let delivery = match &self.pins {
            Pins::Smtp(addr) => format!(
                "[delivery]\nchannel = \"smtp\"\n{POLICY}[delivery.smtp]\nhost = \"{}\"\nport = {}\ntls = \"none\"\nfrom = \"keys@fpr.test\"\n",
                addr.ip(),
                addr.port(),
                POLICY = self.recipient_policy,
            ),
            Pins::Webhook(url, secret) => {
                let secret_file = dir.path().join("hook.secret");
                std::fs::write(&secret_file, secret).unwrap();
                format!(
                    "[delivery]\nchannel = \"webhook\"\n{POLICY}[delivery.webhook]\nurl = \"{url}\"\nhmac_secret_file = \"{}\"\n",
                    secret_file.display(),
                    POLICY = self.recipient_policy,
                )
            }
        };
        let listen = self
            .listen
            .clone()
            .unwrap_or_else(|| format!("unix:{}", socket.display()));
        let pinned = match &self.pinned {
            Some((t, s)) => format!(
                "transport_jwks_file = \"{}\"\nsign_jwks_file = \"{}\"\n",
                t.display(),
                s.display()
            ),
            None => String::new(),
        };
        let text = format!(
            "[server]\nlisten = \"{listen}\"\nallowed_uids = {:?}\n\
             [store]\npath = \"{}\"\nmaster_key_file = \"{}\"\n{}\
             [yubico]\ntransport_jwks_url = \"{}\"\nsign_jwks_url = \"{}\"\nunknown_kid_min_interval = \"0s\"\n{pinned}\
             {delivery}\n[danger]\nallow_plaintext_http = true\nallow_plaintext_smtp = true\n{}",
            self.allowed_uids,
            store.display(),
            master_key_file.display(),
            self.store_extra,
            self.transport_jwks_url,
            self.sign_jwks_url,
            self.extra,
        );
        let no_env = std::collections::BTreeMap::<String, String>::new();
        let config = fpr_vault::Config::from_toml(&text, &no_env).unwrap();
        let service = fpr_vault::server::build(&config).await.unwrap();
        let listener = fpr_vault::server::bind(&config).await.unwrap();
        let uids = fpr_vault::server::allowed_uids(&config, &listener);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(fpr_vault::server::serve(
            service,
            listener,
            uids,
            async move {
                let _ = rx.await;
            },
        ));
        VaultFixture {
            dir,
            socket,
            store,
            master_key_file,
            shutdown: Some(tx),
            task: Some(task),
        }
    }
}

impl Drop for VaultFixture {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A tonic channel over a Unix socket.
pub async fn uds_channel(path: &Path) -> Channel {
    let path = path.to_owned();
    Endpoint::try_from("http://vault.invalid")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap()
}

/// A JWKS server publishing `yubico`'s sets at `/transport` and `/sign`.
pub async fn jwks_server(yubico: &Yubico) -> crate::http::Server {
    let s = crate::http::Server::start().await;
    publish(&s, yubico);
    s
}

/// (Re)publishes `yubico`'s sets on `server`.
pub fn publish(server: &crate::http::Server, yubico: &Yubico) {
    server.route(
        "/transport",
        200,
        yubico.transport_jwks().to_json().to_string(),
    );
    server.route("/sign", 200, yubico.signing_jwks().to_json().to_string());
}

/// Every file under `dir`, concatenated.
pub fn read_tree(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend_from_slice(&b);
            }
        }
    }
    out
}

/// True when gRPC health on `channel` says `service` is SERVING.
pub async fn serving(channel: Channel, service: &str) -> bool {
    use tonic_health::pb::health_check_response::ServingStatus;
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
}

/// Sends a token request and returns its `access_token`.
async fn access_token(req: reqwest::RequestBuilder) -> String {
    let v: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// A SealRequests for `shipment` (creation options for `user`, a PIN of `length` digits) whose
/// PIN goes to `manager@contoso.test`.
pub fn seal_request(
    shipment: &str,
    user: &str,
    length: u32,
) -> fpr_proto::vault::v1::SealRequestsRequest {
    fpr_proto::vault::v1::SealRequestsRequest {
        shipment_ref: shipment.into(),
        creation_options_json: crate::creation_options(user).to_string(),
        pin_policy: Some(fpr_proto::vault::v1::PinPolicy {
            length,
            force_change: false,
        }),
        recipients: vec!["manager@contoso.test".into()],
    }
}

/// A DeliverPin of `jwe` for `shipment` with YubiEnterprise's `serial`, to the bound recipients.
pub fn deliver_request(
    shipment: &str,
    jwe: &str,
    serial: &str,
) -> fpr_proto::vault::v1::DeliverPinRequest {
    fpr_proto::vault::v1::DeliverPinRequest {
        shipment_ref: shipment.into(),
        pin_response_jwe: jwe.into(),
        expected_serial: serial.into(),
        recipients: Vec::new(),
        context: None,
        resend: false,
        validate_only: false,
    }
}

/// One ShipmentService call, for catalogues that run many.
pub enum Call {
    /// GetStatus.
    Status,
    /// CreateShipment.
    Create(Box<fpr_proto::v1::CreateShipmentRequest>),
    /// GetShipment of this id.
    Get(String),
    /// WatchShipment of this id.
    Watch(String),
    /// ListShipments.
    List(fpr_proto::v1::ListShipmentsRequest),
    /// UpdateShipment.
    Update(fpr_proto::v1::UpdateShipmentRequest),
    /// CancelShipment (id, reason).
    Cancel(String, String),
    /// RetryShipment of this id.
    Retry(String),
    /// CompleteShipment (id, reason).
    Complete(String, String),
    /// ResendPin of this id.
    Resend(String),
    /// ProcessShipments.
    Process,
    /// GetCatalog.
    Catalog,
    /// PlanGroupOrder.
    PlanGroup(fpr_proto::v1::GroupOrderRequest),
    /// OrderGroup.
    OrderGroup(fpr_proto::v1::GroupOrderRequest),
}

/// Makes `call` with `client`; the answer is dropped.
pub async fn call(client: &mut ShipmentClient, call: Call) -> Result<(), tonic::Status> {
    use fpr_proto::v1 as pb;
    match call {
        Call::Status => client.get_status(pb::GetStatusRequest {}).await.map(drop),
        Call::Create(r) => client.create_shipment(*r).await.map(drop),
        Call::Get(shipment_id) => client
            .get_shipment(pb::GetShipmentRequest { shipment_id })
            .await
            .map(drop),
        Call::Watch(shipment_id) => client
            .watch_shipment(pb::WatchShipmentRequest { shipment_id })
            .await
            .map(drop),
        Call::List(r) => client.list_shipments(r).await.map(drop),
        Call::Update(r) => client.update_shipment(r).await.map(drop),
        Call::Cancel(shipment_id, reason) => client
            .cancel_shipment(pb::CancelShipmentRequest {
                shipment_id,
                reason,
            })
            .await
            .map(drop),
        Call::Retry(shipment_id) => client
            .retry_shipment(pb::RetryShipmentRequest { shipment_id })
            .await
            .map(drop),
        Call::Complete(shipment_id, reason) => client
            .complete_shipment(pb::CompleteShipmentRequest {
                shipment_id,
                reason,
            })
            .await
            .map(drop),
        Call::Resend(shipment_id) => client
            .resend_pin(pb::ResendPinRequest { shipment_id })
            .await
            .map(drop),
        Call::Process => client
            .process_shipments(pb::ProcessShipmentsRequest {})
            .await
            .map(drop),
        Call::Catalog => client.get_catalog(pb::GetCatalogRequest {}).await.map(drop),
        Call::PlanGroup(r) => client.plan_group_order(r).await.map(drop),
        Call::OrderGroup(r) => client.order_group(r).await.map(drop),
    }
}

/// A sandbox serving on 127.0.0.1 port 0, with a client for its APIs.
pub struct SandboxFixture {
    /// The running sandbox.
    pub running: fpr_sandbox::Running,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The settings it runs with.
    pub config: fpr_sandbox::Config,
}

/// A JSON reply: status, body (Null when not JSON), headers.
pub type Reply = (u16, serde_json::Value, reqwest::header::HeaderMap);

impl SandboxFixture {
    /// Starts a sandbox with `config`.
    pub async fn start(config: fpr_sandbox::Config) -> Self {
        let sandbox = fpr_sandbox::Sandbox::new(config.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = sandbox.serve(listener).await.unwrap();
        Self {
            running,
            http: reqwest::Client::new(),
            config,
        }
    }

    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn send(&self, req: reqwest::RequestBuilder, body: Option<serde_json::Value>) -> Reply {
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            headers,
        )
    }

    /// A YubiEnterprise call with the sandbox token.
    pub async fn ye(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.config.ye_token);
        self.send(req, body).await
    }

    /// A GET-style call with an explicit bearer token.
    pub async fn send_with(&self, method: reqwest::Method, path: &str, token: &str) -> Reply {
        self.send(
            self.http.request(method, self.url(path)).bearer_auth(token),
            None,
        )
        .await
    }

    /// The tenant's token-signing keys (JWKS JSON), as the orchestrator fetches them.
    pub async fn tenant_jwks(&self) -> String {
        let url = self.url(&format!("/{}/discovery/v2.0/keys", self.config.tenant));
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A Graph app token.
    pub async fn graph_token(&self) -> String {
        let form = [
            ("client_id", self.config.graph_client_id.as_str()),
            ("client_secret", self.config.graph_client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ];
        let url = self.url(&format!("/{}/oauth2/v2.0/token", self.config.tenant));
        access_token(self.http.post(url).form(&form)).await
    }

    /// A Graph call with a fresh app token.
    pub async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let token = self.graph_token().await;
        self.send(
            self.http.request(method, self.url(path)).bearer_auth(token),
            body,
        )
        .await
    }

    /// An Okta call with the SSWS token.
    pub async fn okta(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let req = self
            .http
            .request(method, self.url(path))
            .header("authorization", format!("SSWS {}", self.config.okta_token));
        self.send(req, body).await
    }

    /// An admin API call.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        self.send(
            self.http
                .request(method, self.url(&format!("/_sandbox{path}"))),
            body,
        )
        .await
    }

    /// Every shipment YubiEnterprise holds (the admin API's view).
    pub async fn shipments(&self) -> Vec<serde_json::Value> {
        self.admin(reqwest::Method::GET, "/shipments", None)
            .await
            .1
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A user by login, from the admin API.
    pub async fn user(&self, login: &str) -> serde_json::Value {
        self.admin(reqwest::Method::GET, &format!("/users/{login}"), None)
            .await
            .1
    }
}

/// A valid FIDO Pre-reg shipment body carrying the two request JWEs.
pub fn fpr_shipment(pin_jwe: &str, cred_jwe: &str) -> serde_json::Value {
    serde_json::json!({
        "delivery_type": 1,
        "recipient": {"recipient_company": "Example Inc.", "recipient_email": "jan.lindberg@example.com", "recipient_firstname": "Jan",
                      "recipient_lastname": "Lindberg", "recipient_telephone": "555-5555"},
        "mailing_address": {"street_line1": "7788 Foxrun Street", "street_line2": "", "city": "Dedham", "region": "MA",
                            "postal_code": "02026", "country_code_2": "US"},
        "shipment_items": [{"product_id": 29, "inventory_product_id": 106, "product_quantity": 1, "customization_id": "RXJN83",
                            "product_customizations": [{"fido_pin_request": pin_jwe, "fido_credential_requests": [cred_jwe]}]}]
    })
}

/// Adds a bearer token to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A ShipmentService client that sends a bearer token.
pub type ShipmentClient = fpr_proto::v1::shipment_service_client::ShipmentServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

/// Sandbox, vault and orchestrator, each on its own real socket.
pub struct Stack {
    /// The sandbox.
    pub sandbox: SandboxFixture,
    /// The vault.
    pub vault: VaultFixture,
    /// The orchestrator's address.
    pub addr: std::net::SocketAddr,
    /// The REST API's address, when `rest.listen` is set.
    pub rest: Option<std::net::SocketAddr>,
    /// The metrics address, when `metrics_listen` is set.
    pub metrics: Option<std::net::SocketAddr>,
    /// The orchestrator's store.
    pub store: PathBuf,
    /// The service (for starting the scheduler in tests).
    pub service: fpr_orchestrator::service::ShipmentService,
    /// The caller-token verifier (its fetch count).
    pub verifier: std::sync::Arc<fpr_orchestrator::auth::Verifier>,
    _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Stack {
    /// Starts the three with `sandbox` settings (the orchestrator retries at once: base 0 s;
    /// upstream timeout 2 s; orders whose answer was lost are reconciled after 2 s).
    pub async fn start(sandbox: fpr_sandbox::Config) -> Self {
        Self::start_with(sandbox, None).await
    }

    /// As [`Stack::start`]; with `okta_oauth` = (client id, PEM private key, kid) the
    /// orchestrator authenticates to Okta as an OAuth service app instead of with SSWS.
    pub async fn start_with(
        sandbox: fpr_sandbox::Config,
        okta_oauth: Option<(&str, &str, &str)>,
    ) -> Self {
        Self::start_full(sandbox, okta_oauth, |_| {}).await
    }

    /// As [`Stack::start`], with the orchestrator's configuration changed by `tweak`.
    pub async fn start_tweaked(
        sandbox: fpr_sandbox::Config,
        tweak: impl FnOnce(&mut fpr_orchestrator::config::Config),
    ) -> Self {
        Self::start_full(sandbox, None, tweak).await
    }

    async fn start_full(
        sandbox: fpr_sandbox::Config,
        okta_oauth: Option<(&str, &str, &str)>,
        tweak: impl FnOnce(&mut fpr_orchestrator::config::Config),
    ) -> Self {
        capture_logs();
        let sb = SandboxFixture::start(sandbox).await;
        let smtp = sb.running.smtp_addr.unwrap();
        let vault = VaultFixture::builder_for(
            sb.url("/.well-known/yubico-transport-keys.jwks"),
            sb.url("/.well-known/yubico-sign.jwks"),
            Pins::Smtp(smtp),
        )
        .start()
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fpr::sandboxed::orchestrator_config(
            &sb.config,
            &sb.running.url(),
            &sb.running.attestation_root_pem(),
        )
        .unwrap();
        cfg.listen = "127.0.0.1:0".into();
        cfg.store_path = dir.path().join("store");
        cfg.vault_socket = vault.socket.clone();
        cfg.upstream_timeout = std::time::Duration::from_secs(2);
        cfg.reconcile_after = std::time::Duration::from_secs(2);
        cfg.vault_timeout = std::time::Duration::from_secs(5);
        cfg.retry.base = std::time::Duration::ZERO;
        cfg.retry.max = std::time::Duration::ZERO;
        if let Some((client, pem, kid)) = okta_oauth {
            let path = dir.path().join("okta-key.pem");
            std::fs::write(&path, pem).unwrap();
            let okta = cfg.okta.as_mut().unwrap();
            okta.token = None;
            okta.oauth = Some(fpr_orchestrator::config::OktaOauth {
                client_id: client.into(),
                private_key: fpr_orchestrator::config::SecretRef {
                    file: Some(path),
                    ..Default::default()
                },
                key_id: kid.into(),
            });
        }
        tweak(&mut cfg);
        cfg.validate().unwrap();
        let channel = fpr_orchestrator::server::vault_channel(&vault.socket).unwrap();
        let built = fpr_orchestrator::server::build(&cfg, channel)
            .await
            .unwrap();
        let service = built.service.clone();
        let verifier = built.verifier.clone();
        let rest = built.rest_addr();
        let metrics = built.metrics_addr();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(fpr_orchestrator::server::serve(
            built,
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        Stack {
            sandbox: sb,
            vault,
            addr,
            rest,
            metrics,
            store: dir.path().join("store"),
            service,
            verifier,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    /// A caller token for fpr's API from the sandbox tenant.
    pub async fn caller_token(&self) -> String {
        let c = &self.sandbox.config;
        let scope = format!("{}/.default", c.api_audience);
        let form = [
            ("client_id", c.caller_client_id.as_str()),
            ("client_secret", c.caller_client_secret.as_str()),
            ("scope", &scope),
            ("grant_type", "client_credentials"),
        ];
        let url = self
            .sandbox
            .url(&format!("/{}/oauth2/v2.0/token", c.tenant));
        access_token(self.sandbox.http.post(url).form(&form)).await
    }

    /// A caller token signed by the sandbox tenant with chosen app, roles and claims (a null
    /// claim removes it); see the sandbox's `POST /_sandbox/tokens`.
    pub async fn mint_token(&self, spec: serde_json::Value) -> String {
        let url = self.sandbox.url("/_sandbox/tokens");
        access_token(self.sandbox.http.post(url).json(&spec)).await
    }

    /// A client sending `token` (None: no token).
    pub async fn client_with(&self, token: Option<String>) -> ShipmentClient {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let header = token.map(|t| format!("Bearer {t}").parse().unwrap());
        fpr_proto::v1::shipment_service_client::ShipmentServiceClient::with_interceptor(
            channel,
            Bearer(header),
        )
    }

    /// A client with a valid caller token.
    pub async fn client(&self) -> ShipmentClient {
        let t = self.caller_token().await;
        self.client_with(Some(t)).await
    }
}

/// A valid CreateShipment for `user` with key `key`.
pub fn create_request(key: &str, user: &str) -> fpr_proto::v1::CreateShipmentRequest {
    use fpr_proto::v1 as pb;
    pb::CreateShipmentRequest {
        idempotency_key: key.into(),
        idp: pb::Idp::Entra as i32,
        user_id: user.into(),
        pin_request: Some(pb::PinRequest {
            r#type: "generate".into(),
            length: 8,
            force_change: false,
        }),
        enrollment_contacts: None,
        yubico_shipment_request: Some(pb::YubicoShipmentRequest {
            delivery_type: 1,
            recipient: Some(pb::Recipient {
                recipient_company: "Contoso".into(),
                recipient_email: user.into(),
                recipient_firstname: "Pat".into(),
                recipient_lastname: "User".into(),
                recipient_telephone: "+1 555 0100".into(),
            }),
            mailing_address: Some(pb::MailingAddress {
                street_line1: "7788 Foxrun Street".into(),
                street_line2: String::new(),
                city: "Dedham".into(),
                region: "MA".into(),
                postal_code: "02026".into(),
                country_code_2: "US".into(),
            }),
            shipment_items: vec![pb::ShipmentItem {
                product_id: 29,
                inventory_product_id: 106,
                product_quantity: 1,
                customization_id: "RXJN83".into(),
            }],
        }),
        validate_only: false,
        accept_only: false,
    }
}

/// An Okta CreateShipment that takes recipient and address from the user's Okta profile.
pub fn okta_request(key: &str, login: &str) -> fpr_proto::v1::CreateShipmentRequest {
    use fpr_proto::v1 as pb;
    let mut r = create_request(key, login);
    r.idp = pb::Idp::Okta as i32;
    if let Some(y) = r.yubico_shipment_request.as_mut() {
        y.recipient = None;
        y.mailing_address = None;
    }
    r
}

/// `n` generated Okta users of the sandbox (their logins carry a number).
pub async fn okta_users(stack: &Stack, n: usize) -> Vec<serde_json::Value> {
    let (_, users, _) = stack
        .sandbox
        .admin(reqwest::Method::GET, "/users?idp=okta", None)
        .await;
    users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["login"].as_str().unwrap().contains(char::is_numeric))
        .take(n)
        .cloned()
        .collect()
}

/// The sandbox settings the orchestrator tests use: a manual clock (shipments wait at
/// YubiEnterprise until advanced) and 40 generated users (20 per IdP).
pub fn manual_sandbox() -> fpr_sandbox::Config {
    fpr_sandbox::Config {
        clock: fpr_sandbox::Clock::Manual,
        seed_users: 40,
        ..fpr_sandbox::Config::default()
    }
}

/// GetShipment.
pub async fn get_shipment(client: &mut ShipmentClient, id: &str) -> fpr_proto::v1::Shipment {
    client
        .get_shipment(fpr_proto::v1::GetShipmentRequest {
            shipment_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// A shipment's state.
pub fn state_of(s: &fpr_proto::v1::Shipment) -> fpr_proto::v1::ShipmentState {
    fpr_proto::v1::ShipmentState::try_from(s.shipment_state).unwrap()
}

/// Ships a YubiEnterprise shipment in the sandbox (state 103).
pub async fn ship_at_yubico(stack: &Stack, ye_id: &str) {
    let (s, _, _) = stack
        .sandbox
        .admin(
            reqwest::Method::POST,
            &format!("/shipments/{ye_id}/advance"),
            Some(serde_json::json!({"to": 103})),
        )
        .await;
    assert_eq!(s, 200);
}

/// CreateShipment of an Entra order for `user`, which must succeed.
pub async fn create_shipment(
    client: &mut ShipmentClient,
    key: &str,
    user: &str,
) -> fpr_proto::v1::CreateShipmentResponse {
    client
        .create_shipment(create_request(key, user))
        .await
        .unwrap()
        .into_inner()
}

/// ProcessShipments, which must succeed.
pub async fn process_shipments(
    client: &mut ShipmentClient,
) -> fpr_proto::v1::ProcessShipmentsResponse {
    client
        .process_shipments(fpr_proto::v1::ProcessShipmentsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// A valid PublicKeyCredentialCreationOptions, as Microsoft Graph returns them.
pub fn creation_options(user: &str) -> serde_json::Value {
    serde_json::json!({
        "challenge": fpr_jose::util::b64e(user.as_bytes()),
        "timeout": 1_209_600_000u64,
        "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
        "user": {"id": fpr_jose::util::b64e(user.as_bytes()), "name": user, "displayName": user},
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
        "excludeCredentials": [],
        "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
        "attestation": "direct",
        "extensions": {"credProtect": "userVerificationRequired", "enforceCredProtect": true}
    })
}
