//! `fpr demo`: orders keys for sandbox users of both IdPs, lets the sandbox ship them, processes,
//! and shows each shipment's progress live, then the outcome. The PINs shown are read back from
//! the sandbox's mailbox and labelled so: in production nobody but the vault (or Okta) sees one.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fpr_proto::v1 as pb;
use serde_json::Value;

use crate::client::{self, Client};
use crate::ops::grpc;
use crate::output;
use crate::request::{self, Fields};

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sandbox's base URL.
    pub sandbox: String,
    /// Entra users to order for.
    pub entra: usize,
    /// Okta users to order for.
    pub okta: usize,
    /// Give up after this long.
    pub timeout: Duration,
}

/// Users shown first: the seeded ones whose PIN goes somewhere interesting.
const PREFERRED: [&str; 5] = [
    "adele.vance@contoso.test",
    "alex.wilber@contoso.test",
    "diego.siciliani@contoso.test",
    "ada.lovelace@example.test",
    "grace.hopper@example.test",
];

struct Demo {
    http: reqwest::Client,
    base: String,
    manual_clock: bool,
}

impl Demo {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let r = self.http.get(&url).send().await.with_context(|| {
            format!("GET {url}: is `fpr up` (or fpr-sandbox) running? (--sandbox)")
        })?;
        anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
        Ok(r.json().await?)
    }
}

/// The sandbox users to order for: the preferred ones, then others of the IdP that can receive
/// a PIN (Entra users with a manager; active Okta users with an address).
fn pick(users: &[Value], n: usize) -> Vec<Value> {
    let login = |u: &Value| u["login"].as_str().unwrap_or_default().to_owned();
    let mut chosen: Vec<Value> = PREFERRED
        .iter()
        .filter_map(|p| users.iter().find(|u| login(u) == *p).cloned())
        .collect();
    for u in users {
        let usable = match u["idp"].as_str() {
            Some("entra") => !u["manager_id"].is_null(),
            _ => {
                u["status"] == "ACTIVE"
                    && u["address"]["street"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty())
            }
        };
        if usable && !chosen.iter().any(|c| login(c) == login(u)) {
            chosen.push(u.clone());
        }
    }
    chosen.truncate(n);
    chosen
}

fn order(u: &Value, key: String, customization: &str) -> Result<pb::CreateShipmentRequest, String> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut f = Fields::default();
    let idp = s(&u["idp"]);
    f.set("idp", Some(idp.clone()));
    f.set("user_id", Some(s(&u["login"])));
    f.set("idempotency_key", Some(key));
    f.set("product_id", Some("29"));
    f.set("inventory_product_id", Some("106"));
    f.set("customization_id", Some(customization));
    if idp == "entra" {
        // Okta fills these from the user's profile; for Entra the caller gives them (an HR export).
        f.set("recipient_firstname", Some(s(&u["given_name"])));
        f.set("recipient_lastname", Some(s(&u["surname"])));
        f.set("recipient_email", Some(s(&u["mail"])));
        f.set("recipient_telephone", Some(s(&u["phone"])));
        let company: String = s(&u["organization"]).chars().take(20).collect();
        f.set("recipient_company", Some(company));
        let a = &u["address"];
        f.set("street_line1", Some(s(&a["street"])));
        f.set("city", Some(s(&a["city"])));
        f.set("region", Some(s(&a["region"])));
        f.set("postal_code", Some(s(&a["postal_code"])));
        f.set("country_code_2", Some(s(&a["country"])));
    }
    request::build(&f, &Fields::default(), "demo").map_err(|p| {
        p.iter()
            .map(|p| format!("{}: {}", p.column, p.rule))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn progress_table(list: &[pb::Shipment]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let note = if s.error_message.is_empty() {
                output::truncate(&s.last_error, 50)
            } else {
                output::truncate(&format!("{}: {}", s.error_kind, s.error_message), 50)
            };
            vec![
                output::idp(s.idp).into(),
                s.user_id.clone(),
                output::state(s.shipment_state).into(),
                s.step.clone(),
                if s.yubienterprise_state_id == 0 {
                    String::new()
                } else {
                    s.yubienterprise_state_id.to_string()
                },
                s.serial_number.clone(),
                if s.step_times.contains_key("registered") {
                    "yes"
                } else {
                    ""
                }
                .into(),
                s.pin_recipients.join(" "),
                note,
            ]
        })
        .collect();
    output::table(
        &[
            "IDP",
            "USER",
            "STATE",
            "STEP",
            "YE",
            "SERIAL",
            "REGISTERED",
            "PIN SENT TO",
            "NOTE",
        ],
        &rows,
    )
}

/// The PIN in a sandbox mail about `serial` (the vault's template and Okta's both say
/// "PIN is: <digits>").
pub fn pin_in(body: &str) -> Option<String> {
    let at = body.find("PIN is:")? + "PIN is:".len();
    let pin: String = body[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!pin.is_empty()).then_some(pin)
}

/// Runs the demo; true when every shipment completed.
pub async fn run(c: &Client, opts: &Options) -> anyhow::Result<bool> {
    let demo = Demo {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        base: opts.sandbox.trim_end_matches('/').to_owned(),
        manual_clock: false,
    };
    let config = demo.get("/_sandbox/config").await?;
    let demo = Demo {
        manual_clock: config["clock"]["mode"] == "manual",
        ..demo
    };
    let customization = config["yubienterprise"]["customization_ids"][0]
        .as_str()
        .unwrap_or("RXJN83")
        .to_owned();
    let entra = demo.get("/_sandbox/users?idp=entra").await?;
    let okta = demo.get("/_sandbox/users?idp=okta").await?;
    let mut users = pick(entra.as_array().map_or(&[][..], Vec::as_slice), opts.entra);
    users.extend(pick(
        okta.as_array().map_or(&[][..], Vec::as_slice),
        opts.okta,
    ));
    anyhow::ensure!(!users.is_empty(), "the sandbox has no users to order for");

    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!(
        "fpr demo: ordering {} keys ({} Entra ID, {} Okta users of the sandbox)\n",
        users.len(),
        users.iter().filter(|u| u["idp"] == "entra").count(),
        users.iter().filter(|u| u["idp"] == "okta").count()
    );
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let req = order(u, format!("demo-{run_id}-{i}"), &customization)
            .map_err(|e| anyhow::anyhow!("{}: {e}", u["login"]))?;
        let r = client::create(c, req)
            .await
            .map_err(grpc)
            .with_context(|| format!("ordering for {}", u["login"]))?;
        ids.push(r.shipment_id);
    }

    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut shown_lines = 0;
    let mut last = String::new();
    let list = loop {
        let mut list = Vec::new();
        for id in &ids {
            let mut c = c.clone();
            list.push(
                c.get_shipment(pb::GetShipmentRequest {
                    shipment_id: id.clone(),
                })
                .await
                .map_err(grpc)?
                .into_inner(),
            );
        }
        let table = progress_table(&list);
        if table != last {
            if tty && shown_lines > 0 {
                print!("\x1b[{shown_lines}A\x1b[J");
            }
            print!("{table}");
            if !tty {
                println!();
            }
            shown_lines = table.lines().count();
            last = table;
        }
        if list.iter().all(output::is_final) || started.elapsed() > opts.timeout {
            break list;
        }
        if demo.manual_clock {
            // The sandbox's Yubico ships only when told to under a manual clock.
            for s in list.iter().filter(|s| {
                !s.yubienterprise_shipment_id.is_empty() && s.yubienterprise_state_id < 103
            }) {
                let _ = demo
                    .http
                    .post(format!(
                        "{}/_sandbox/shipments/{}/advance",
                        demo.base, s.yubienterprise_shipment_id
                    ))
                    .send()
                    .await;
            }
        }
        let mut cc = c.clone();
        cc.process_shipments(pb::ProcessShipmentsRequest {})
            .await
            .map_err(grpc)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let complete = list
        .iter()
        .filter(|s| s.shipment_state == pb::ShipmentState::Complete as i32)
        .count();
    println!(
        "\n{complete}/{} complete in {:.1} s",
        list.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "\nPINs as read back from the sandbox mailbox (SANDBOX DATA: in production only the vault, or Okta, ever sees a PIN):"
    );
    let mailbox = demo.get("/_sandbox/mailbox").await?;
    let mails = mailbox["messages"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for s in &list {
        let mail = mails.iter().rev().find(|m| {
            !s.serial_number.is_empty()
                && m["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(&s.serial_number))
        });
        let (pin, to, via) = mail.map_or_else(
            || (String::new(), String::new(), String::new()),
            |m| {
                (
                    m["body"].as_str().and_then(pin_in).unwrap_or_default(),
                    m["to"]
                        .as_array()
                        .map(|t| {
                            t.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default(),
                    m["via"].as_str().unwrap_or_default().to_owned(),
                )
            },
        );
        rows.push(vec![
            s.user_id.clone(),
            s.serial_number.clone(),
            to,
            via,
            pin,
        ]);
    }
    print!(
        "{}",
        output::table(
            &["USER", "SERIAL", "MAILED TO", "VIA", "PIN (sandbox data)"],
            &rows
        )
    );
    if complete < list.len() {
        println!(
            "\nnot all shipments completed: see `fpr get <id>` and the operator guide's troubleshooting section"
        );
    }
    Ok(complete == list.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_found_in_both_templates() {
        assert_eq!(
            pin_in("A pre-registered security key (serial 30000001) …\n\nIts PIN is: 12345678\n\n")
                .as_deref(),
            Some("12345678")
        );
        assert_eq!(
            pin_in("Hello Ada,\n\nYour new YubiKey (serial 3) is ready. Its PIN is: 987654\n")
                .as_deref(),
            Some("987654")
        );
        assert_eq!(pin_in("no pin here"), None);
    }
}
