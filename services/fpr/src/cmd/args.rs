//! The command tree: what `fpr` takes on its command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fpr::request::Fields;
use fpr_proto::v1 as pb;

/// fpr: pre-registered FIDO2 security keys, shipped.
///
/// Admin subcommands call the orchestrator at --addr with a caller token from --token-file,
/// FPR_TOKEN or TOKEN (after `fpr up`, ./fpr-data/caller-token is used when none is given).
#[derive(Parser)]
#[command(version, about, long_about)]
pub(crate) struct Cli {
    /// The orchestrator (http:// or https://).
    #[arg(
        long,
        global = true,
        env = "FPR_ADDR",
        default_value = "http://127.0.0.1:7400"
    )]
    pub(crate) addr: String,
    /// PEM CA of the orchestrator's certificate, for https.
    #[arg(long, global = true, env = "FPR_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// File holding the caller token (a bearer JWT from your IdP).
    #[arg(long, global = true, env = "FPR_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// With no token given, get one from this sandbox's tenant (sandbox deployments only).
    #[arg(long, global = true, env = "FPR_TOKEN_FROM_SANDBOX")]
    pub(crate) token_from_sandbox: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Sandbox + vault + orchestrator in one process, data under ./fpr-data (NO SECURITY: for a first run).
    Up {
        /// Data directory.
        #[arg(long, default_value = "./fpr-data")]
        data_dir: PathBuf,
        /// Sandbox HTTP address.
        #[arg(long, default_value = "127.0.0.1:8380")]
        sandbox: SocketAddr,
        /// Sandbox SMTP mailbox address.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp: SocketAddr,
        /// Orchestrator gRPC address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
        /// Orchestrator REST API address (the FIDO Connector's /v1 API).
        #[arg(long, default_value = "127.0.0.1:7480")]
        rest: SocketAddr,
        /// Prometheus metrics address (/metrics).
        #[arg(long, default_value = "127.0.0.1:7490")]
        metrics: SocketAddr,
        /// The sandbox's shipment clock: realistic (Yubico locks, ships and delivers as in
        /// life, sped up), instant (shipped on first read) or manual (until the admin API says).
        #[arg(long, default_value = "realistic")]
        clock: String,
        /// Speed-up of the realistic clock: 36000 ships a key about 3 s after the order.
        #[arg(long, default_value_t = 36000.0)]
        speedup: f64,
        /// Generated sandbox users beyond the named ones (half Entra ID, half Okta).
        #[arg(long, default_value_t = 20)]
        seed_users: usize,
    },
    /// Order keys for sandbox users of both IdPs and follow them to the end (needs `fpr up`, or --self-contained).
    Demo {
        /// The sandbox's URL.
        #[arg(long, default_value = "http://127.0.0.1:8380")]
        sandbox: String,
        /// Entra ID users to order for.
        #[arg(long, default_value_t = 3)]
        entra: usize,
        /// Okta users to order for.
        #[arg(long, default_value_t = 2)]
        okta: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Start sandbox, vault and orchestrator in this process (in a temporary directory) first.
        #[arg(long)]
        self_contained: bool,
    },
    /// Version, settings and the health of every dependency (exit 1 when one is failing).
    Status,
    /// What an order needs: FIDO Pre-reg products (with AAGUIDs), inventory credits, and the
    /// customization ids YubiEnterprise has accepted.
    Catalog,
    /// Order a key for one user.
    Ship {
        /// entra or okta.
        #[arg(long)]
        idp: String,
        /// Entra object id or UPN; Okta id or login.
        #[arg(long)]
        user: String,
        /// Makes a retried command return the first result (default: a new random key).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Check every field on the orchestrator; order nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        columns: Columns,
    },
    /// Order keys for every row of a CSV (header names as the `ship` flags, with underscores).
    ///
    /// Every row is checked first (here, then on the orchestrator); while any row is bad every
    /// bad row is listed with its line and column and nothing is ordered (exit 65). Rerunning
    /// the same file orders nothing twice: each row's idempotency key is its idempotency_key
    /// column, or derived from --batch-id, the IdP and the user.
    Batch {
        /// The CSV file.
        file: PathBuf,
        /// Orders in flight at once (1 to 64).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Result CSV [default: <file stem>.result.csv beside the input].
        #[arg(long)]
        result: Option<PathBuf>,
        /// Prefix of derived idempotency keys [default: the file's stem]; change it to order
        /// again for the same users.
        #[arg(long)]
        batch_id: Option<String>,
        /// Check every row; order nothing.
        #[arg(long)]
        dry_run: bool,
        /// IdP of rows without an idp column.
        #[arg(long)]
        idp: Option<String>,
        #[command(flatten)]
        columns: Columns,
    },
    /// Order keys for the members of an IdP group who have none yet.
    ///
    /// Shows the plan first: each member, ordered for, skipped (a YubiKey passkey or
    /// preregistered factor already, or an open fpr shipment) or missing shipping data (the
    /// recipient and address come from the IdP profile unless given as flags). With --yes the
    /// planned orders go through the batch path: checked, ordered, a result CSV; a rerun
    /// orders nobody twice.
    GroupOrder {
        /// entra or okta.
        #[arg(long)]
        idp: String,
        /// The group's id, or its display name (Okta: its name).
        #[arg(long)]
        group: String,
        /// Order the planned keys (without it: the plan only).
        #[arg(long)]
        yes: bool,
        /// Orders in flight at once (1 to 64).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Result CSV [default: group-<group name>.result.csv].
        #[arg(long)]
        result: Option<PathBuf>,
        /// Prefix of the idempotency keys [default: group-<group id>]; change it to order again
        /// for the same members.
        #[arg(long)]
        batch_id: Option<String>,
        #[command(flatten)]
        columns: Columns,
    },
    /// One shipment.
    Get {
        /// fpr's shipment id.
        id: String,
    },
    /// Shipments, newest first.
    List {
        /// ongoing, complete, error or canceled.
        #[arg(long)]
        state: Option<String>,
        /// Only this user (as given at creation).
        #[arg(long)]
        user: Option<String>,
        /// entra or okta.
        #[arg(long)]
        idp: Option<String>,
        /// Created at or after (RFC 3339 or a date).
        #[arg(long)]
        since: Option<String>,
        /// Created before (RFC 3339 or a date).
        #[arg(long)]
        until: Option<String>,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Follow one shipment until it ends.
    Watch {
        /// fpr's shipment id.
        id: String,
    },
    /// Change recipient, address or delivery type while YubiEnterprise allows edits.
    ///
    /// The recipient and the address are each replaced whole: give all of a part's fields.
    Update {
        /// fpr's shipment id.
        id: String,
        #[command(flatten)]
        columns: Columns,
    },
    /// Cancel a shipment (at YubiEnterprise while it is editable).
    Cancel {
        /// fpr's shipment id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Resume a shipment in error from its last good step.
    Retry {
        /// fpr's shipment id.
        id: String,
    },
    /// Mark a shipment complete by hand.
    Complete {
        /// fpr's shipment id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Send the PIN again.
    ResendPin {
        /// fpr's shipment id.
        id: String,
    },
    /// Run the shipment processing job now.
    ProcessNow,
    /// The Yubico transport and signing keys the vault has pinned (over the vault's socket).
    Keys {
        /// The vault's Unix socket.
        #[arg(
            long,
            env = "FPR_VAULT_SOCKET",
            default_value = "./fpr-data/vault/run/vault.sock"
        )]
        vault_socket: PathBuf,
    },
    /// gRPC health of the orchestrator at --addr, or of the vault at --vault-socket.
    ///
    /// Exit 0 when SERVING: for container health checks and exec probes.
    Health {
        /// Check the vault on this Unix socket instead of the orchestrator.
        #[arg(long)]
        vault_socket: Option<PathBuf>,
        /// The service name to check ("" = the server as a whole).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// Time the whole order path as deployed: sandbox, vault and orchestrator as three
    /// processes, N users ordered with the batch path and processed to the end.
    ///
    /// Prints as its last line: users= accept_per_s= e2e_s= create_p50_ms= create_p99_ms=
    /// orchestrator_rss_mb= vault_rss_mb= store_bytes_per_shipment= floor_s= (exit 1 when a
    /// shipment did not complete).
    Bench {
        /// Users to order for (half Entra ID, half Okta).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// CreateShipment calls in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// The orchestrator's jobs.process_concurrency [default: the orchestrator's default].
        #[arg(long)]
        process_concurrency: Option<usize>,
        /// Give up waiting for processing after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
    },
    /// The vault service (`fpr vault serve --config vault.toml`, and its key commands).
    Vault(fpr_vault::cli::Cli),
    /// The orchestrator service (`fpr orchestrator serve --config orchestrator.toml`).
    Orchestrator(fpr_orchestrator::cli::Cli),
    /// The sandbox of every upstream (`fpr sandbox serve`).
    Sandbox(fpr_sandbox::cli::Cli),
}

/// Order columns as flags (`fpr ship`, defaults for `fpr batch`, `fpr update`).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct Columns {
    /// Recipient's first name (at most 15).
    #[arg(long, alias = "firstname")]
    pub(crate) recipient_firstname: Option<String>,
    /// Recipient's last name (at most 20).
    #[arg(long, alias = "lastname")]
    pub(crate) recipient_lastname: Option<String>,
    /// Recipient's e-mail for tracking.
    #[arg(long, alias = "email")]
    pub(crate) recipient_email: Option<String>,
    /// Recipient's telephone.
    #[arg(long, alias = "telephone")]
    pub(crate) recipient_telephone: Option<String>,
    /// Recipient's company (at most 20).
    #[arg(long, alias = "company")]
    pub(crate) recipient_company: Option<String>,
    /// Street, first line.
    #[arg(long)]
    pub(crate) street_line1: Option<String>,
    /// Street, second line.
    #[arg(long)]
    pub(crate) street_line2: Option<String>,
    /// City.
    #[arg(long)]
    pub(crate) city: Option<String>,
    /// Region (2 letters for US and CA).
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Postal code.
    #[arg(long)]
    pub(crate) postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    #[arg(long, alias = "country")]
    pub(crate) country_code_2: Option<String>,
    /// YubiKey model (1, 29, 54, 55).
    #[arg(long)]
    pub(crate) product_id: Option<String>,
    /// Inventory bucket.
    #[arg(long)]
    pub(crate) inventory_product_id: Option<String>,
    /// Customization id from Yubico onboarding.
    #[arg(long)]
    pub(crate) customization_id: Option<String>,
    /// 1 normal, 2 expedited.
    #[arg(long)]
    pub(crate) delivery_type: Option<String>,
    /// PIN digits (4 to 63; default 8).
    #[arg(long)]
    pub(crate) pin_length: Option<String>,
    /// Ask for forcePINChange (true/false).
    #[arg(long)]
    pub(crate) force_pin_change: Option<String>,
    /// PIN recipients instead of the manager, separated by ';'.
    #[arg(long, alias = "pin-to")]
    pub(crate) emails_to: Option<String>,
}

impl Columns {
    pub(crate) fn fields(&self) -> Fields {
        let mut f = Fields::default();
        for (name, v) in [
            ("recipient_firstname", &self.recipient_firstname),
            ("recipient_lastname", &self.recipient_lastname),
            ("recipient_email", &self.recipient_email),
            ("recipient_telephone", &self.recipient_telephone),
            ("recipient_company", &self.recipient_company),
            ("street_line1", &self.street_line1),
            ("street_line2", &self.street_line2),
            ("city", &self.city),
            ("region", &self.region),
            ("postal_code", &self.postal_code),
            ("country_code_2", &self.country_code_2),
            ("product_id", &self.product_id),
            ("inventory_product_id", &self.inventory_product_id),
            ("customization_id", &self.customization_id),
            ("delivery_type", &self.delivery_type),
            ("pin_length", &self.pin_length),
            ("force_pin_change", &self.force_pin_change),
            ("emails_to", &self.emails_to),
        ] {
            f.set(name, v.clone());
        }
        f
    }

    pub(crate) fn update(&self, id: String) -> anyhow::Result<pb::UpdateShipmentRequest> {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let recipient = [
            &self.recipient_firstname,
            &self.recipient_lastname,
            &self.recipient_email,
            &self.recipient_telephone,
            &self.recipient_company,
        ]
        .iter()
        .any(|v| v.is_some())
        .then(|| pb::Recipient {
            recipient_company: s(&self.recipient_company),
            recipient_email: s(&self.recipient_email),
            recipient_firstname: s(&self.recipient_firstname),
            recipient_lastname: s(&self.recipient_lastname),
            recipient_telephone: s(&self.recipient_telephone),
        });
        let mailing_address = [
            &self.street_line1,
            &self.street_line2,
            &self.city,
            &self.region,
            &self.postal_code,
            &self.country_code_2,
        ]
        .iter()
        .any(|v| v.is_some())
        .then(|| pb::MailingAddress {
            street_line1: s(&self.street_line1),
            street_line2: s(&self.street_line2),
            city: s(&self.city),
            region: s(&self.region),
            postal_code: s(&self.postal_code),
            country_code_2: s(&self.country_code_2).to_ascii_uppercase(),
        });
        let delivery_type = match &self.delivery_type {
            None => 0,
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("--delivery-type: 1 or 2, got {v:?}"))?,
        };
        Ok(pb::UpdateShipmentRequest {
            shipment_id: id,
            recipient,
            mailing_address,
            delivery_type,
        })
    }
}

pub(crate) fn parse_idp_flag(v: Option<&str>) -> anyhow::Result<pb::Idp> {
    match v {
        None => Ok(pb::Idp::Unspecified),
        Some(v) => fpr::request::parse_idp(v)
            .ok_or_else(|| anyhow::anyhow!("--idp: entra or okta, got {v:?}")),
    }
}
