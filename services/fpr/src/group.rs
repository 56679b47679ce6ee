//! `fpr group-order`: a key for every member of an IdP group who has none yet.
//!
//! The orchestrator plans (PlanGroupOrder): who is ordered for, who is skipped and why, whose
//! shipping data is missing. The plan is shown first; with `--yes` the planned orders go
//! through the batch path ([`crate::batch::order_rows`]): every order checked again, credit
//! warnings, progress, a result CSV, and reruns that order nobody twice.

use std::path::PathBuf;

use anyhow::Context as _;
use fpr_proto::v1 as pb;

use crate::batch::{self, Row};
use crate::client::{self, Client};
use crate::output;
use crate::request::{self, Fields};

/// How to run a group order.
#[derive(Debug, Clone)]
pub struct Options {
    /// entra or okta.
    pub idp: String,
    /// The group's id or name.
    pub group: String,
    /// Product, inventory, customization, delivery, PIN and any fixed shipping columns.
    pub columns: Fields,
    /// Prefix of the idempotency keys (default: `group-<group id>`, chosen by the orchestrator).
    pub batch_id: Option<String>,
    /// Orders in flight at once.
    pub concurrency: usize,
    /// Result CSV (default: `group-<group name>.result.csv` in the current directory).
    pub result: Option<PathBuf>,
    /// Order (without it: the plan only).
    pub yes: bool,
}

fn decision(d: i32) -> &'static str {
    match pb::GroupMemberDecision::try_from(d) {
        Ok(pb::GroupMemberDecision::Order) => "order",
        Ok(pb::GroupMemberDecision::Skip) => "skip",
        Ok(pb::GroupMemberDecision::MissingData) => "missing data",
        _ => "-",
    }
}

/// The GroupOrderRequest the flags make (the columns parsed, not yet checked).
pub fn group_request(opts: &Options) -> Result<pb::GroupOrderRequest, Vec<request::Problem>> {
    let idp = request::parse_idp(&opts.idp).ok_or_else(|| {
        vec![request::Problem {
            column: "idp".into(),
            rule: format!("entra or okta, got {:?}", opts.idp),
        }]
    })?;
    let mut f = opts.columns.clone();
    f.set("idp", Some(opts.idp.as_str()));
    let (template, problems) = request::parse_fields(&f, &Fields::default(), "group");
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(pb::GroupOrderRequest {
        idp: idp as i32,
        group: opts.group.clone(),
        yubico_shipment_request: template.yubico_shipment_request,
        pin_request: template.pin_request,
        enrollment_contacts: template.enrollment_contacts,
        batch_id: opts.batch_id.clone().unwrap_or_default(),
    })
}

/// Runs the group order; the process exit code.
pub async fn run(client: &Client, opts: &Options, json: bool) -> anyhow::Result<u8> {
    let req = match group_request(opts) {
        Ok(r) => r,
        Err(problems) => {
            for p in problems {
                eprintln!("--{}: {}", p.column.replace('_', "-"), p.rule);
            }
            eprintln!("nothing was ordered");
            return Ok(batch::EX_DATAERR);
        }
    };
    let plan = client
        .clone()
        .plan_group_order(req)
        .await
        .map_err(|s| anyhow::anyhow!("{}\nnothing was ordered", client::describe(&s)))?
        .into_inner();
    if !(json && opts.yes) {
        show(&plan, json);
    }
    if !opts.yes {
        if !json {
            println!(
                "dry run: nothing ordered; add --yes to order the {} key{}",
                plan.to_order,
                if plan.to_order == 1 { "" } else { "s" }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Row> = plan
        .members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            m.request.clone().map(|req| Row {
                line: i as u64 + 1,
                req,
            })
        })
        .collect();
    if rows.is_empty() {
        if !json {
            println!("nothing to order");
        }
        return Ok(0);
    }
    let name: String = plan
        .group_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let result = opts
        .result
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("group-{name}.result.csv")));
    let batch_opts = batch::Options {
        file: result.clone(),
        concurrency: opts.concurrency,
        result: Some(result.clone()),
        batch_id: None,
        dry_run: false,
        defaults: Fields::default(),
        timings: None,
    };
    batch::order_rows(client, rows, Vec::new(), &result, &batch_opts, json)
        .await
        .with_context(|| format!("ordering for the group {}", plan.group_name))
}

fn show(plan: &pb::GroupOrderResponse, json: bool) {
    if json {
        let members: Vec<serde_json::Value> = plan
            .members
            .iter()
            .map(|m| {
                serde_json::json!({"user_id": m.user_id, "idp_user_id": m.idp_user_id,
                    "display_name": m.display_name, "decision": decision(m.decision),
                    "reason": m.reason, "shipment_id": m.shipment_id})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"group_id": plan.group_id, "group_name": plan.group_name,
                "to_order": plan.to_order, "skipped": plan.skipped,
                "missing_data": plan.missing_data, "members": members})
        );
        return;
    }
    let rows: Vec<Vec<String>> = plan
        .members
        .iter()
        .map(|m| {
            vec![
                m.user_id.clone(),
                m.display_name.clone(),
                decision(m.decision).into(),
                m.reason.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["USER", "NAME", "DECISION", "WHY"], &rows)
    );
    println!(
        "group {} ({}): {} members: {} to order, {} skipped, {} missing data",
        plan.group_name,
        plan.group_id,
        plan.members.len(),
        plan.to_order,
        plan.skipped,
        plan.missing_data
    );
}
