//! The sandbox's in-memory state (serialisable for the snapshot file).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which identity provider a user lives in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Idp {
    /// Microsoft Entra ID.
    Entra,
    /// Okta.
    Okta,
}

/// A postal address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Address {
    /// Street line.
    #[serde(default)]
    pub street: String,
    /// City.
    #[serde(default)]
    pub city: String,
    /// State or region.
    #[serde(default)]
    pub region: String,
    /// Postal code.
    #[serde(default)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: String,
}

/// A user of either IdP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Object id (Entra GUID) or Okta id (`00u…`).
    pub id: String,
    /// Which IdP.
    pub idp: Idp,
    /// UPN (Entra) or login (Okta).
    pub login: String,
    /// First name.
    pub given_name: String,
    /// Last name.
    pub surname: String,
    /// Primary e-mail; may be empty (Graph `mail` null).
    #[serde(default)]
    pub mail: String,
    /// Other e-mails (Graph `otherMails`; Okta `secondEmail` is the first).
    #[serde(default)]
    pub other_mails: Vec<String>,
    /// Manager's id.
    #[serde(default)]
    pub manager_id: Option<String>,
    /// Telephone.
    #[serde(default)]
    pub phone: String,
    /// Organisation.
    #[serde(default)]
    pub organization: String,
    /// Address.
    #[serde(default)]
    pub address: Address,
    /// Okta status (`ACTIVE`, `STAGED`, …); Entra users are always active.
    #[serde(default = "active")]
    pub status: String,
}

fn active() -> String {
    "ACTIVE".into()
}

impl User {
    /// `given surname`.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.surname)
    }
}

/// One item of product data, available at states 103/104.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductData {
    /// Serial number (decimal string).
    pub serial_number: String,
    /// Firmware version.
    pub firmware_version: String,
    /// PIN response JWE.
    pub fido_pin_response: String,
    /// Credential response JWEs.
    pub fido_credential_responses: Vec<String>,
}

/// A YubiEnterprise shipment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shipment {
    /// Shipment id.
    pub id: String,
    /// `fpr` (FIDO Pre-reg) or `exact` (standard).
    pub kind: String,
    /// The request body as accepted (nested FPR shape).
    pub request: Value,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// A state forced by the admin API (or reached by fulfilment failure).
    #[serde(default)]
    pub forced_state: Option<u32>,
    /// Message for the forced state.
    #[serde(default)]
    pub message: Option<String>,
    /// Manual clock: the state it was advanced to.
    #[serde(default)]
    pub manual_state: Option<u32>,
    /// Set once the key was programmed.
    #[serde(default)]
    pub product_data: Option<ProductData>,
    /// Deleted (cancelled) through the API.
    #[serde(default)]
    pub deleted: bool,
    /// Unix seconds of the deletion.
    #[serde(default)]
    pub deleted_at: Option<i64>,
    /// Inventory bucket charged.
    pub inventory_product_id: u32,
    /// Tracking link, once shipped.
    #[serde(default)]
    pub tracking_link: Option<String>,
}

/// A FIDO2 method registered in the sandbox Graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fido2Method {
    /// Method id (base64url credential id + padding digit).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Display name.
    pub display_name: String,
    /// Created, RFC 3339.
    pub created: String,
    /// AAGUID string.
    pub aaguid: String,
    /// Model name.
    pub model: String,
    /// `attested` or `notAttested`.
    pub attestation_level: String,
    /// Credential id, base64url.
    pub credential_id: String,
}

/// Where [`State`]'s FIDO2 methods are, by owner and by credential.
#[derive(Debug, Default)]
struct Fido2Index {
    by_user: std::collections::HashMap<String, Vec<usize>>,
    credentials: std::collections::HashSet<String>,
}

impl Fido2Index {
    fn add(&mut self, at: usize, m: &Fido2Method) {
        self.by_user.entry(m.user_id.clone()).or_default().push(at);
        self.credentials.insert(m.credential_id.clone());
    }
}

/// A group of either IdP. Entra groups may hold groups (their members count transitively).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    /// Object id (Entra GUID) or `00g…` (Okta).
    pub id: String,
    /// Which IdP.
    pub idp: Idp,
    /// Display name (Entra) or `profile.name` (Okta).
    pub name: String,
    /// Direct members: user ids, and (Entra) group ids.
    pub members: Vec<String>,
}

/// An issued Graph challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    /// The user it was issued to.
    pub user_id: String,
    /// Unix seconds of expiry.
    pub expires_at: i64,
    /// Used by a registration.
    pub used: bool,
}

/// An Okta preregistration enrollment. Holds the Okta-side response key and, once activated,
/// the PIN (as Okta does).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrollment {
    /// `fwf…` id.
    pub id: String,
    /// User id.
    pub user_id: String,
    /// Status (`ENROLLED`, `ACTIVE`, `FULFILLMENT_ERRORED`, …).
    pub status: String,
    /// Okta's response key, private JWK (sandbox data).
    pub response_key_jwk: String,
    /// Request id of the credential/PIN requests.
    pub request_id: String,
    /// The creation options Okta made.
    pub options: Value,
    /// RP id.
    pub rp_id: String,
    /// Credential id once activated.
    #[serde(default)]
    pub credential_id: Option<String>,
    /// The PIN once activated (Okta holds it to e-mail it).
    #[serde(default)]
    pub pin: Option<String>,
    /// Serial once activated.
    #[serde(default)]
    pub serial: Option<String>,
    /// Created, RFC 3339.
    pub created: String,
    /// Last update, RFC 3339.
    pub last_updated: String,
}

/// A message in the sandbox mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mail {
    /// `smtp`, `webhook` or `okta`.
    pub via: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject, when known.
    pub subject: String,
    /// The whole message (SMTP DATA, webhook JSON, or Okta's text). Sandbox data: holds PINs.
    pub body: String,
    /// Unix seconds.
    pub received_at: i64,
}

/// An inventory bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    /// `inventory_product_id` (106, 107, …).
    pub product_id: u32,
    /// Name.
    pub name: String,
    /// Credits left.
    pub quantity: i64,
    /// Physical products it can supply.
    pub mapping: Vec<u32>,
}

/// Injected faults for one route key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Probability (0–1) that a call fails with `status`.
    #[serde(default)]
    pub error_rate: f64,
    /// Status for injected failures (default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// Added latency in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Answer 200 with a body that is not JSON.
    #[serde(default)]
    pub malformed_body: bool,
    /// Fulfilment: sign responses with a key that is not published (under a published kid).
    #[serde(default)]
    pub bad_signature: bool,
    /// Fulfilment: sign only the PIN response with a key that is not published (the
    /// credential response stays good).
    #[serde(default)]
    pub bad_pin_signature: bool,
    /// Fulfilment: sign with a kid that is not in the signing JWKS.
    #[serde(default)]
    pub wrong_kid: bool,
    /// Fulfilment: serve the responses of an earlier shipment.
    #[serde(default)]
    pub replayed_response: bool,
    /// Remaining failures to inject (None: no limit).
    #[serde(default)]
    pub count: Option<u32>,
    /// On a hit, one of these at random instead of `status`: `"500"`, `"502"`, `"503"`,
    /// `"429"` (with the service's rate-limit headers), `"timeout"` (hang for `hang_ms`, then
    /// 504), `"drop"` (a 200 whose body breaks off: the connection dies after the request
    /// was read) and `"malformed"` (a 200 that is not JSON).
    #[serde(default)]
    pub mix: Vec<String>,
    /// For the mutating routes (`ye.create`, `ye.exact`, `graph.fido2_post`, `okta.enroll`,
    /// `okta.activate`, `okta.send_pin`): the share (0–1) of injected 5xx and hangs that come
    /// *after* the work was done, as real upstreams fail when the write took effect but the
    /// answer is lost; the rest, and every 429, answer instead of the work. A malformed or
    /// broken-off 2xx always comes after the work (a 2xx means it was done).
    #[serde(default)]
    pub after_work: Option<f64>,
    /// How long a `"timeout"` hangs, in milliseconds (default 30,000).
    #[serde(default)]
    pub hang_ms: Option<u64>,
}

/// Everything the sandbox remembers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Users by id (add them with [`State::add_user`], which keeps the login index).
    pub users: BTreeMap<String, User>,
    /// User ids by IdP and lower-case login (rebuilt after a snapshot is loaded).
    #[serde(skip)]
    logins: std::collections::HashMap<(Idp, String), String>,
    /// Shipments by id.
    pub shipments: BTreeMap<String, Shipment>,
    /// Inventory.
    pub inventory: Vec<Bucket>,
    /// Graph FIDO2 methods (add and remove them through [`State`]'s methods, which keep the
    /// index).
    fido2: Vec<Fido2Method>,
    /// Positions in `fido2` by owner, and every registered credential id (rebuilt after a
    /// snapshot is loaded): a registration no longer scans every user's methods.
    #[serde(skip)]
    fido2_index: Fido2Index,
    /// Graph challenges by base64url bytes.
    pub challenges: BTreeMap<String, Challenge>,
    /// Okta enrollments by id.
    pub enrollments: BTreeMap<String, Enrollment>,
    /// The mailbox.
    pub mailbox: Vec<Mail>,
    /// Faults by route key.
    pub faults: BTreeMap<String, Fault>,
    /// Next serial number.
    pub next_serial: u64,
    /// Okta OAuth service apps: client id → public JWKS (private_key_jwt).
    #[serde(default)]
    pub okta_apps: BTreeMap<String, Value>,
    /// Okta Event Hooks, verified.
    #[serde(default)]
    pub okta_event_hooks: Vec<crate::okta::EventHook>,
    /// Each event hook call's outcome (not kept across restarts).
    #[serde(skip)]
    pub okta_event_deliveries: Vec<Value>,
    /// Okta access tokens issued to service apps: token → (client id, expiry).
    #[serde(default)]
    pub okta_tokens: BTreeMap<String, (String, i64)>,
    /// The scopes of each Okta access token.
    #[serde(default)]
    pub okta_token_scopes: BTreeMap<String, Vec<String>>,
    /// The last fulfilment's product data (for the replay fault).
    #[serde(default)]
    pub last_product_data: Option<ProductData>,
    /// Groups of either IdP by id.
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    /// Challenges live this many seconds, whatever was asked (set through the admin API; it
    /// wins over `Config::challenge_lifetime_s`).
    #[serde(default)]
    pub challenge_lifetime_s: Option<i64>,
}

// === impl State ===

impl State {
    /// Adds (or replaces) a user.
    pub fn add_user(&mut self, u: User) {
        self.logins
            .insert((u.idp, u.login.to_lowercase()), u.id.clone());
        self.users.insert(u.id.clone(), u);
    }

    /// Rebuilds the login and FIDO2 indexes (after loading a snapshot).
    pub fn reindex(&mut self) {
        self.logins = self
            .users
            .values()
            .map(|u| ((u.idp, u.login.to_lowercase()), u.id.clone()))
            .collect();
        self.fido2_index = Fido2Index::default();
        for (i, m) in self.fido2.iter().enumerate() {
            self.fido2_index.add(i, m);
        }
    }

    /// Every Graph FIDO2 method, in registration order.
    pub fn fido2_methods(&self) -> &[Fido2Method] {
        &self.fido2
    }

    /// A user's Graph FIDO2 methods, in registration order.
    pub fn fido2_of<'a>(&'a self, user_id: &str) -> impl Iterator<Item = &'a Fido2Method> {
        self.fido2_index
            .by_user
            .get(user_id)
            .into_iter()
            .flatten()
            .map(|&i| &self.fido2[i])
    }

    /// Whether a credential id (base64url) is registered to anyone.
    pub fn fido2_credential_known(&self, credential_id: &str) -> bool {
        self.fido2_index.credentials.contains(credential_id)
    }

    /// Registers a Graph FIDO2 method.
    pub fn add_fido2(&mut self, m: Fido2Method) {
        self.fido2_index.add(self.fido2.len(), &m);
        self.fido2.push(m);
    }

    /// Removes a user's FIDO2 method; false if there was none.
    pub fn remove_fido2(&mut self, user_id: &str, method_id: &str) -> bool {
        let before = self.fido2.len();
        self.fido2
            .retain(|m| !(m.user_id == user_id && m.id == method_id));
        if self.fido2.len() == before {
            return false;
        }
        self.reindex();
        true
    }

    /// The users among a group's members, nested groups followed (each once), in order.
    pub fn group_users(&self, group_id: &str) -> Vec<&User> {
        let mut seen_groups = std::collections::HashSet::new();
        let mut seen_users = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut stack = vec![group_id.to_owned()];
        while let Some(g) = stack.pop() {
            let Some(group) = self
                .groups
                .get(&g)
                .filter(|_| seen_groups.insert(g.clone()))
            else {
                continue;
            };
            for m in &group.members {
                if let Some(u) = self.users.get(m) {
                    if seen_users.insert(u.id.clone()) {
                        out.push(u);
                    }
                } else if self.groups.contains_key(m) {
                    stack.push(m.clone());
                }
            }
        }
        out
    }

    /// A group of `idp` by id, or by name when exactly one has it.
    pub fn group_by_key(&self, idp: Idp, key: &str) -> Option<&Group> {
        self.groups.get(key).filter(|g| g.idp == idp).or_else(|| {
            let mut named = self
                .groups
                .values()
                .filter(|g| g.idp == idp && g.name == key);
            let first = named.next()?;
            named.next().is_none().then_some(first)
        })
    }

    /// The user of `idp` whose id, or login (any case), is `key`.
    pub fn user_by_key(&self, idp: Idp, key: &str) -> Option<&User> {
        self.users.get(key).filter(|u| u.idp == idp).or_else(|| {
            let id = self.logins.get(&(idp, key.to_lowercase()))?;
            self.users
                .get(id)
                .filter(|u| u.login.eq_ignore_ascii_case(key))
        })
    }
}
