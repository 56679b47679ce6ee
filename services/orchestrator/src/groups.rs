//! Group orders: a key for every member of an IdP group who has none yet.
//!
//! The plan reads the group's members from the IdP (Entra: transitive members that are users;
//! Okta: the group's users; every page), and for each member decides:
//! - **skip** when fpr has an open shipment for them (ongoing or in error), when Entra ID
//!   lists a FIDO2 method whose AAGUID is a YubiKey model fpr orders, or when Okta lists an
//!   active or pending preregistered WebAuthn factor;
//! - **missing data** when the order, its empty recipient and address fields filled from the
//!   member's profile, breaks a shipping rule (or, in Entra ID without `emails_to`, the member
//!   has no manager with a mailbox to receive the PIN);
//! - **order** otherwise, with the CreateShipmentRequest that orders the key. Its idempotency
//!   key is derived from the batch id and the member's IdP id, so reruns order nobody twice.
//!
//! OrderGroup places each planned order through CreateShipment (`accept_only`): the same
//! checks as any order, accepted to disk, placed by the processing job. Standing rules
//! (`[group_orders]`) do the same from the processing job, at most so many orders a run.

use std::collections::{BTreeMap, HashMap};

use fpr_domain::model::{Idp, State};
use fpr_domain::shipping::{self, Profile};
use fpr_domain::{Violation, yubikey};
use fpr_proto::v1 as pb;
use futures_util::StreamExt as _;
use tonic::{Request, Status};

use crate::Error;
use crate::service::ShipmentService;
use crate::workflow::Workflow;

/// Members checked against the IdP at once.
const CONCURRENCY: usize = 8;

/// Okta factor statuses that count as a key the user has (or is getting).
const OKTA_LIVE: [&str; 3] = ["ACTIVE", "PENDING_ACTIVATION", "ENROLLED"];

/// A member as read from the IdP.
struct Member {
    id: String,
    login: String,
    display_name: String,
    /// Okta: the user's status.
    status: String,
    profile: BTreeMap<String, String>,
}

fn invalid(field: &str, rule: impl Into<String>) -> Error {
    Error::Invalid(vec![Violation::new(field, rule)])
}

/// Whether `s` looks like an id of the IdP's groups rather than a name.
fn looks_like_id(idp: pb::Idp, s: &str) -> bool {
    match idp {
        pb::Idp::Okta => {
            s.len() == 20 && s.starts_with("00g") && s.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        _ => {
            s.len() == 36
                && s.bytes().enumerate().all(|(i, b)| {
                    matches!(i, 8 | 13 | 18 | 23) == (b == b'-')
                        && (b == b'-' || b.is_ascii_hexdigit())
                })
        }
    }
}

/// The group (id, name) and its members.
async fn members(
    wf: &Workflow,
    idp: pb::Idp,
    group: &str,
) -> Result<(String, String, Vec<Member>), Error> {
    let pick = |found: Vec<(String, String)>| match found.len() {
        0 => Err(invalid(
            "group",
            format!("no {} group has the id or name {group:?}", idp_name(idp)),
        )),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        n => Err(invalid(
            "group",
            format!(
                "{n} groups are named {group:?} (ids {}): give the id",
                found
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    };
    match idp {
        pb::Idp::Entra => {
            let graph = wf.entra();
            // An id first when it looks like one; a name otherwise, or when no group has that id.
            let mut found: Vec<_> = if looks_like_id(idp, group) {
                graph.group(group).await?.into_iter().collect()
            } else {
                Vec::new()
            };
            if found.is_empty() {
                found = graph.groups_named(group).await?;
            }
            let (id, name) = pick(found.into_iter().map(|g| (g.id, g.name)).collect())?;
            let list = graph.group_members(&id).await?;
            let members = list
                .into_iter()
                .map(|m| Member {
                    id: m.id,
                    login: m.upn,
                    display_name: m.display_name,
                    status: String::new(),
                    profile: m.attributes,
                })
                .collect();
            Ok((id, name, members))
        }
        pb::Idp::Okta => {
            let Some(okta) = wf.okta() else {
                return Err(invalid("idp", "Okta is not configured on this fpr"));
            };
            let mut found: Vec<_> = if looks_like_id(idp, group) {
                okta.group(group).await?.into_iter().collect()
            } else {
                Vec::new()
            };
            if found.is_empty() {
                found = okta.groups_named(group).await?;
            }
            let (id, name) = pick(found.into_iter().map(|g| (g.id, g.name)).collect())?;
            let list = okta.group_members(&id).await?;
            let members = list
                .into_iter()
                .map(|u| {
                    let p = |k: &str| u.profile.get(k).cloned().unwrap_or_default();
                    Member {
                        login: p("login"),
                        display_name: format!("{} {}", p("firstName"), p("lastName"))
                            .trim()
                            .to_owned(),
                        id: u.id,
                        status: u.status,
                        profile: u.profile,
                    }
                })
                .collect();
            Ok((id, name, members))
        }
        pb::Idp::Unspecified => Err(invalid("idp", "required: IDP_ENTRA or IDP_OKTA")),
    }
}

fn idp_name(idp: pb::Idp) -> &'static str {
    match idp {
        pb::Idp::Okta => "Okta",
        _ => "Entra ID",
    }
}

/// The idempotency key of a member's order: the batch id and a digest of the IdP and the
/// member's IdP id.
fn key_of(batch_id: &str, idp: pb::Idp, member_id: &str) -> String {
    let digest = fpr_webauthn::sha256(format!("{}\n{member_id}", idp.as_str_name()).as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{batch_id}-{hex}")
}

/// Open shipments (ongoing or in error) of `idp` by lower-case user id and IdP user id.
fn open_shipments(wf: &Workflow, idp: Idp) -> Result<HashMap<String, (String, State)>, Error> {
    let mut open = HashMap::new();
    for r in wf.store().all()? {
        if r.idp != idp || !matches!(r.state, State::Ongoing | State::Error) {
            continue;
        }
        for k in [Some(&r.user_id), r.idp_user_id.as_ref()]
            .into_iter()
            .flatten()
        {
            open.insert(k.to_lowercase(), (r.id.clone(), r.state));
        }
    }
    Ok(open)
}

/// Why a member is skipped for a key they have, if they have one.
async fn existing_key(wf: &Workflow, idp: pb::Idp, m: &Member) -> Result<Option<String>, Error> {
    if idp == pb::Idp::Okta {
        let Some(okta) = wf.okta() else {
            return Ok(None);
        };
        let factors = okta.enrollments(&m.id).await?;
        return Ok(factors
            .iter()
            .find(|f| OKTA_LIVE.contains(&f.status.as_str()))
            .map(|f| {
                format!(
                    "has a preregistered WebAuthn factor {} ({})",
                    f.id, f.status
                )
            }));
    }
    let methods = wf.entra().methods(&m.id).await?;
    let ours: Vec<&str> = yubikey::PRODUCTS
        .iter()
        .filter(|p| p.fpr)
        .flat_map(yubikey::aaguids_of)
        .collect();
    Ok(methods
        .iter()
        .find(|x| fpr_entra::has_key_of(std::slice::from_ref(x), &ours))
        .map(|x| {
            let model = yubikey::model_by_aaguid(&x.aaguid).map_or("a YubiKey", |m| m.name);
            format!("has a YubiKey passkey: {model} ({})", x.aaguid)
        }))
}

/// Whether a violation is about the recipient or the address (data a profile supplies).
fn is_shipping(v: &Violation) -> bool {
    v.field.contains(".recipient") || v.field.contains(".mailing_address")
}

/// Decides for one member.
async fn decide(
    wf: &Workflow,
    req: &pb::GroupOrderRequest,
    idp: pb::Idp,
    batch_id: &str,
    open: &HashMap<String, (String, State)>,
    m: Member,
) -> Result<pb::GroupMember, Error> {
    let mut out = pb::GroupMember {
        user_id: m.login.clone(),
        idp_user_id: m.id.clone(),
        display_name: m.display_name.clone(),
        ..Default::default()
    };
    let skip = |mut out: pb::GroupMember, reason: String| {
        out.decision = pb::GroupMemberDecision::Skip as i32;
        out.reason = reason;
        Ok(out)
    };
    if let Some((id, state)) = [&m.id, &m.login]
        .iter()
        .find_map(|k| open.get(&k.to_lowercase()))
    {
        out.shipment_id = id.clone();
        return skip(
            out,
            format!(
                "open fpr shipment {id} ({})",
                format!("{state:?}").to_lowercase()
            ),
        );
    }
    if idp == pb::Idp::Okta
        && !matches!(
            m.status.as_str(),
            "ACTIVE" | "STAGED" | "PROVISIONED" | "RECOVERY" | "PASSWORD_EXPIRED" | "LOCKED_OUT"
        )
    {
        return skip(out, format!("Okta status {}", m.status));
    }
    if let Some(why) = existing_key(wf, idp, &m).await? {
        return skip(out, why);
    }
    let mut y = req.yubico_shipment_request.clone().unwrap_or_default();
    let from = if idp == pb::Idp::Okta {
        Profile::Okta
    } else {
        Profile::Entra
    };
    shipping::fill_from_profile(&mut y, &m.profile, from);
    let order = pb::CreateShipmentRequest {
        idempotency_key: key_of(batch_id, idp, &m.id),
        idp: idp as i32,
        user_id: if m.login.is_empty() {
            m.id.clone()
        } else {
            m.login.clone()
        },
        pin_request: req.pin_request.clone(),
        enrollment_contacts: req.enrollment_contacts.clone(),
        yubico_shipment_request: Some(y),
        validate_only: false,
        accept_only: false,
    };
    let mut missing: Vec<String> = match fpr_domain::validate::create(&order) {
        Ok(_) => Vec::new(),
        Err(vs) => {
            let (shipping, other): (Vec<_>, Vec<_>) = vs.into_iter().partition(is_shipping);
            if !other.is_empty() {
                // Not the member's data: the request itself is wrong.
                return Err(Error::Invalid(other));
            }
            shipping
                .iter()
                .map(|v| {
                    format!(
                        "{}: {}",
                        v.field.rsplit('.').next().unwrap_or_default(),
                        v.rule
                    )
                })
                .collect()
        }
    };
    let no_contacts = req
        .enrollment_contacts
        .as_ref()
        .is_none_or(|c| c.emails_to.is_empty());
    if idp == pb::Idp::Entra && no_contacts {
        let manager = wf.entra().manager(&m.id).await?;
        if manager.as_ref().and_then(|x| x.mail_address()).is_none() {
            missing.push(
                "PIN recipient: no manager with a mailbox; set enrollment_contacts.emails_to"
                    .into(),
            );
        }
    }
    if missing.is_empty() {
        out.decision = pb::GroupMemberDecision::Order as i32;
        let a = order
            .yubico_shipment_request
            .as_ref()
            .and_then(|y| y.mailing_address.clone())
            .unwrap_or_default();
        out.reason = format!(
            "no key and no open shipment; shipping data found: {}, {} {}",
            a.city, a.postal_code, a.country_code_2
        );
        out.request = Some(order);
    } else {
        out.decision = pb::GroupMemberDecision::MissingData as i32;
        out.reason = missing.join("; ");
    }
    Ok(out)
}

/// The plan of a group order; orders nothing.
pub async fn plan(
    wf: &Workflow,
    req: &pb::GroupOrderRequest,
) -> Result<pb::GroupOrderResponse, Error> {
    let idp = pb::Idp::try_from(req.idp).unwrap_or(pb::Idp::Unspecified);
    if idp == pb::Idp::Unspecified {
        return Err(invalid("idp", "required: IDP_ENTRA or IDP_OKTA"));
    }
    let group = req.group.trim();
    if group.is_empty() || group.len() > 256 {
        return Err(invalid(
            "group",
            "required: the group's id or name, at most 256 characters",
        ));
    }
    if req.batch_id.len() > 64 {
        return Err(invalid("batch_id", "at most 64 characters"));
    }
    let (group_id, group_name, list) = members(wf, idp, group).await?;
    let batch_id = if req.batch_id.is_empty() {
        format!("group-{group_id}")
    } else {
        req.batch_id.clone()
    };
    let open = open_shipments(
        wf,
        if idp == pb::Idp::Okta {
            Idp::Okta
        } else {
            Idp::Entra
        },
    )?;
    let decided: Vec<Result<pb::GroupMember, Error>> = futures_util::stream::iter(list)
        .map(|m| decide(wf, req, idp, &batch_id, &open, m))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let members = decided.into_iter().collect::<Result<Vec<_>, _>>()?;
    let count = |d: pb::GroupMemberDecision| {
        members.iter().filter(|m| m.decision == d as i32).count() as u32
    };
    Ok(pb::GroupOrderResponse {
        group_id,
        group_name,
        to_order: count(pb::GroupMemberDecision::Order),
        skipped: count(pb::GroupMemberDecision::Skip),
        missing_data: count(pb::GroupMemberDecision::MissingData),
        members,
        ordered: 0,
        failed: 0,
    })
}

/// Plans, then orders for every member planned ORDER through CreateShipment.
pub async fn order(
    svc: &ShipmentService,
    req: &pb::GroupOrderRequest,
) -> Result<pb::GroupOrderResponse, Status> {
    let mut plan = plan(svc.workflow(), req).await?;
    order_planned(svc, &mut plan, u32::MAX).await?;
    tracing::info!(group = %plan.group_id, ordered = plan.ordered, failed = plan.failed,
        skipped = plan.skipped, missing_data = plan.missing_data, "Group order placed");
    Ok(plan)
}

/// Orders for the first `limit` members `plan` has planned ORDER (a member whose key was
/// used already counts as `already_ordered` and not against the limit).
async fn order_planned(
    svc: &ShipmentService,
    plan: &mut pb::GroupOrderResponse,
    limit: u32,
) -> Result<(), Status> {
    use pb::shipment_service_server::ShipmentService as _;
    let store = svc.workflow().store();
    for m in &mut plan.members {
        if plan.ordered + plan.failed >= limit {
            break;
        }
        let Some(order) = m.request.as_mut() else {
            continue;
        };
        if let Some(id) = store
            .by_idempotency_key(&order.idempotency_key)
            .map_err(Status::from)?
        {
            m.outcome = "already_ordered".into();
            m.shipment_id = id;
            continue;
        }
        order.accept_only = true;
        match svc.create_shipment(Request::new(order.clone())).await {
            Ok(r) => {
                m.outcome = "ordered".into();
                m.shipment_id = r.into_inner().shipment_id;
                plan.ordered += 1;
            }
            Err(s) => {
                m.outcome = "failed".into();
                m.error = s.message().to_owned();
                plan.failed += 1;
            }
        }
    }
    Ok(())
}

/// The standing group orders and when they last ran.
#[derive(Debug, Default)]
pub struct Standing {
    cfg: crate::config::GroupOrdersConfig,
    last: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl Standing {
    /// Rules to run.
    pub fn new(cfg: crate::config::GroupOrdersConfig) -> Self {
        Self {
            cfg,
            last: tokio::sync::Mutex::default(),
        }
    }
}

/// The request a standing rule makes.
fn rule_request(r: &crate::config::GroupRule) -> pb::GroupOrderRequest {
    let (shipping, pin) = shipping::one_key(
        r.delivery_type,
        (
            r.product_id,
            r.inventory_product_id,
            r.customization_id.clone(),
        ),
        r.pin_length,
    );
    pb::GroupOrderRequest {
        idp: match r.idp {
            crate::config::RestIdp::Entra => pb::Idp::Entra,
            crate::config::RestIdp::Okta => pb::Idp::Okta,
        } as i32,
        group: r.group.clone(),
        yubico_shipment_request: Some(shipping),
        pin_request: Some(pin),
        enrollment_contacts: (!r.emails_to.is_empty()).then(|| pb::EnrollmentContacts {
            emails_to: r.emails_to.clone(),
        }),
        batch_id: String::new(),
    }
}

/// Runs the standing rules when enabled and due: for each rule, the members planned ORDER are
/// ordered, at most `max_orders_per_run` over all rules (the rest wait for the next run).
/// Failures are logged; they never stop the processing run.
pub async fn standing(svc: &ShipmentService, s: &Standing) {
    if !s.cfg.enabled {
        return;
    }
    // Held for the whole run: a processing run meanwhile goes on without the rules.
    let Ok(mut last) = s.last.try_lock() else {
        return;
    };
    if last.is_some_and(|t| t.elapsed() < s.cfg.interval) {
        return;
    }
    *last = Some(std::time::Instant::now());
    let mut budget = s.cfg.max_orders_per_run;
    for rule in &s.cfg.rules {
        if budget == 0 {
            tracing::info!(
                "Group orders: this run's limit is reached; the rest wait for the next run"
            );
            break;
        }
        let mut plan = match plan(svc.workflow(), &rule_request(rule)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(group = %rule.group, error = %e, "Group rule not applied");
                continue;
            }
        };
        if let Err(e) = order_planned(svc, &mut plan, budget).await {
            tracing::warn!(group = %rule.group, error = %e, "Group rule stopped");
        }
        budget = budget.saturating_sub(plan.ordered + plan.failed);
        if plan.ordered + plan.failed + plan.missing_data > 0 {
            tracing::info!(group = %plan.group_name, group.id = %plan.group_id,
                ordered = plan.ordered, failed = plan.failed, missing_data = plan.missing_data,
                skipped = plan.skipped, "Group rule applied");
        }
    }
}
