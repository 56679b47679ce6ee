//! `fpr batch`: order keys for every row of a CSV (an HRIS export, say).
//!
//! 1. Every row is parsed and checked locally; then the orchestrator checks every row
//!    (`validate_only`, which also fills Okta rows from the profile). While any row is bad, every
//!    bad row is listed with its line and column and nothing is ordered.
//! 2. Rows are ordered with bounded concurrency. Each row's idempotency key is its own column or
//!    is derived from the batch id, IdP and user, so a rerun (after a crash, a Ctrl-C, or failed
//!    rows) orders nothing twice: rows ordered before are reported `already_ordered`. A row is
//!    `ordered` once the orchestrator has it on disk (`accept_only`); the orchestrator's
//!    processing places the YubiEnterprise orders meanwhile and after, so a large file is taken
//!    at the speed of the store, not of the upstreams.
//! 3. A summary, and a result CSV with each row's shipment id, state or error.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fpr_proto::v1 as pb;
use futures_util::StreamExt as _;

use crate::client::{self, Client};
use crate::output;
use crate::request::{self, Fields, Problem};

/// Exit code for a file with bad rows (sysexits EX_DATAERR).
pub const EX_DATAERR: u8 = 65;

/// How to run a batch.
#[derive(Debug, Clone)]
pub struct Options {
    /// The CSV file.
    pub file: PathBuf,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Result CSV (default: `<file stem>.result.csv` beside the input).
    pub result: Option<PathBuf>,
    /// Prefix of derived idempotency keys (default: the file's stem).
    pub batch_id: Option<String>,
    /// Check every row (locally and on the orchestrator), order nothing.
    pub dry_run: bool,
    /// Values for columns a row leaves empty (or the file lacks).
    pub defaults: Fields,
    /// Where to record each order's call time (`fpr bench`).
    pub timings: Option<std::sync::Arc<std::sync::Mutex<Vec<std::time::Duration>>>>,
}

/// A parsed row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The request.
    pub req: pb::CreateShipmentRequest,
}

/// A bad row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    /// Line in the file.
    pub line: u64,
    /// What is wrong, and in which column.
    pub problem: Problem,
}

/// What happened to a row.
#[derive(Debug, Clone)]
struct Outcome {
    outcome: &'static str,
    shipment_id: String,
    state: String,
    ye_id: String,
    error: String,
}

/// The batch id of a file: its stem.
pub fn default_batch_id(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "batch".into())
}

/// Parses and checks every row: the good rows and every problem of the bad ones.
pub fn parse(text: &str, defaults: &Fields, batch_id: &str) -> (Vec<Row>, Vec<Bad>) {
    let mut bad = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            let bad = Bad {
                line: 1,
                problem: Problem {
                    column: "-".into(),
                    rule: format!("unreadable header: {e}"),
                },
            };
            return (Vec::new(), vec![bad]);
        }
    };
    let mut columns = Vec::new();
    for h in headers.iter() {
        match request::canonical(h) {
            Some(c) if columns.contains(&Some(c)) => bad.push(Bad {
                line: 1,
                problem: Problem {
                    column: h.into(),
                    rule: format!("a second column for {c}"),
                },
            }),
            Some(c) => columns.push(Some(c)),
            None => {
                bad.push(Bad {
                    line: 1,
                    problem: Problem {
                        column: h.into(),
                        rule: format!(
                            "unknown column; known: {}",
                            request::COLUMNS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    },
                });
                columns.push(None);
            }
        }
    }
    if !columns.contains(&Some("user_id")) {
        bad.push(Bad {
            line: 1,
            problem: Problem {
                column: "user_id".into(),
                rule: "the file needs a user_id column (or upn, login)".into(),
            },
        });
    }
    if !bad.is_empty() {
        return (Vec::new(), bad);
    }
    // The line a record starts on, from its byte offset (csv's own count is off by one after
    // CRLF line ends).
    let newlines: Vec<u64> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i as u64)
        .collect();
    let line_at = |p: Option<&csv::Position>| {
        p.map_or(0, |p| {
            let start = text.as_bytes()[usize::try_from(p.byte()).unwrap_or(0).min(text.len())..]
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count() as u64;
            newlines.partition_point(|&nl| nl < p.byte() + start) as u64 + 1
        })
    };
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in rdr.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = line_at(e.position());
                bad.push(Bad {
                    line,
                    problem: Problem {
                        column: "-".into(),
                        rule: e.to_string(),
                    },
                });
                continue;
            }
        };
        let line = line_at(record.position());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let mut fields = Fields::default();
        for (c, v) in columns.iter().zip(record.iter()) {
            if let Some(c) = c {
                fields.set(c, Some(v));
            }
        }
        match request::build(&fields, defaults, batch_id) {
            Ok(req) => {
                if let Some(first) = seen.insert(req.idempotency_key.clone(), line) {
                    bad.push(Bad {
                        line,
                        problem: Problem {
                            column: "user_id".into(),
                            rule: format!(
                                "same user and IdP (same idempotency key) as line {first}"
                            ),
                        },
                    });
                } else {
                    rows.push(Row { line, req });
                }
            }
            Err(problems) => bad.extend(problems.into_iter().map(|problem| Bad { line, problem })),
        }
    }
    if rows.is_empty() && bad.is_empty() {
        bad.push(Bad {
            line: 1,
            problem: Problem {
                column: "-".into(),
                rule: "no rows".into(),
            },
        });
    }
    (rows, bad)
}

/// Progress on stderr: a redrawn bar on a terminal, a line each 10 % otherwise.
struct Progress {
    what: &'static str,
    total: usize,
    done: usize,
    failed: usize,
    /// A bar on a terminal; else a line at each tenth.
    bar: Option<indicatif::ProgressBar>,
    last_tenth: usize,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} {elapsed}",
            ) {
                bar.set_style(style.progress_chars("#> "));
            }
            bar.set_prefix(what);
            bar.set_message("(0 failed)");
            bar
        });
        Self {
            what,
            total,
            done: 0,
            failed: 0,
            bar,
            last_tenth: 0,
        }
    }

    fn step(&mut self, failed: bool) {
        self.done += 1;
        self.failed += usize::from(failed);
        let tenth = self.done * 10 / self.total.max(1);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("({} failed)", self.failed));
            bar.inc(1);
            if self.done == self.total {
                bar.finish();
            }
        } else if tenth > self.last_tenth || self.done == self.total {
            self.last_tenth = tenth;
            eprintln!(
                "{} {}/{} ({} failed)",
                self.what, self.done, self.total, self.failed
            );
        }
    }
}

/// Runs the batch; the process exit code.
pub async fn run(client: &Client, opts: &Options, json: bool) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&opts.file)
        .with_context(|| format!("reading {}", opts.file.display()))?;
    let batch_id = opts
        .batch_id
        .clone()
        .unwrap_or_else(|| default_batch_id(&opts.file));
    let (rows, bad) = parse(&text, &opts.defaults, &batch_id);
    let result_path = opts.result.clone().unwrap_or_else(|| {
        opts.file
            .with_file_name(format!("{}.result.csv", default_batch_id(&opts.file)))
    });
    order_rows(client, rows, bad, &result_path, opts, json).await
}

/// Checks and orders parsed rows (the rows of a file, or the members a group order plans):
/// every row checked on the orchestrator first, nothing ordered while any is bad, then
/// ordered with bounded concurrency, a result CSV at `result_path`. The exit code.
pub async fn order_rows(
    client: &Client,
    rows: Vec<Row>,
    mut bad: Vec<Bad>,
    result_path: &Path,
    opts: &Options,
    json: bool,
) -> anyhow::Result<u8> {
    let total = rows.len() + bad.iter().map(|b| b.line).collect::<BTreeSet<_>>().len();
    if rows.is_empty() {
        return Ok(refuse(&bad, total, json));
    }
    let n = opts.concurrency.clamp(1, 64);

    // Phase 1: the orchestrator checks every row that passed here (the same rules, plus the
    // Okta profile); nothing is ordered while any row is bad.
    let mut progress = Progress::new("checking", rows.len());
    let mut checks = futures_util::stream::iter(rows.iter().map(|row| {
        let mut req = row.req.clone();
        req.validate_only = true;
        async move { (row.line, client::create(client, req).await) }
    }))
    .buffer_unordered(n);
    let mut existing: HashMap<u64, pb::CreateShipmentResponse> = HashMap::new();
    while let Some((line, r)) = checks.next().await {
        match r {
            Ok(resp) => {
                if !resp.shipment_id.is_empty() {
                    existing.insert(line, resp);
                }
                progress.step(false);
            }
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                let vs = client::violations(&status);
                if vs.is_empty() {
                    bad.push(Bad {
                        line,
                        problem: Problem {
                            column: "-".into(),
                            rule: status.message().into(),
                        },
                    });
                }
                bad.extend(vs.into_iter().map(|(field, rule)| Bad {
                    line,
                    problem: Problem {
                        column: request::column_of(&field),
                        rule,
                    },
                }));
                progress.step(true);
            }
            Err(status) => {
                anyhow::bail!(
                    "checking line {line}: {}\nnothing was ordered",
                    client::describe(&status)
                );
            }
        }
    }
    drop(checks);
    if !bad.is_empty() {
        bad.sort_by_key(|b| b.line);
        return Ok(refuse(&bad, total, json));
    }
    let mut needs = std::collections::BTreeMap::new();
    for row in rows.iter().filter(|r| !existing.contains_key(&r.line)) {
        *needs.entry(crate::ops::bucket_of(&row.req)).or_insert(0u64) += 1;
    }
    let short = crate::ops::short_credits(client, &needs).await;
    if !short.is_empty() {
        // YubiEnterprise would take the orders up to the credits and refuse the rest: a
        // batch is all or nothing, so none is placed.
        for s in &short {
            eprintln!("refused: {s}");
        }
        if json {
            println!(
                "{}",
                serde_json::json!({"refused": true, "rows": rows.len(), "short_credits": short})
            );
        }
        eprintln!(
            "nothing was ordered; see `fpr catalog`, ask Yubico for credits or split the batch"
        );
        return Ok(EX_DATAERR);
    }
    if opts.dry_run {
        println!(
            "{} rows valid ({} ordered before); dry run: nothing ordered",
            rows.len(),
            existing.len()
        );
        return Ok(0);
    }

    // The result file must be writable before anything is ordered.
    let probe = result_path.with_extension("csv.partial");
    std::fs::File::create(&probe).with_context(|| {
        format!(
            "the result file {} cannot be written; nothing was ordered",
            result_path.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);

    // Phase 2: order, with bounded concurrency, until done or Ctrl-C.
    let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
    for (line, resp) in &existing {
        outcomes.insert(
            *line,
            Outcome {
                outcome: "already_ordered",
                shipment_id: resp.shipment_id.clone(),
                state: output::state(resp.shipment_state).into(),
                ye_id: resp.yubienterprise_shipment_id.clone(),
                error: String::new(),
            },
        );
    }
    let todo: Vec<&Row> = rows
        .iter()
        .filter(|r| !existing.contains_key(&r.line))
        .collect();
    let mut progress = Progress::new("ordering", todo.len());
    let mut orders = futures_util::stream::iter(todo.iter().map(|row| async move {
        let start = std::time::Instant::now();
        let mut req = row.req.clone();
        req.accept_only = true;
        let r = client::create(client, req).await;
        if let Some(t) = &opts.timings {
            t.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(start.elapsed());
        }
        (row.line, r)
    }))
    .buffer_unordered(n);
    let mut interrupted = false;
    loop {
        tokio::select! {
            next = orders.next() => match next {
                None => break,
                Some((line, r)) => {
                    let o = match r {
                        Ok(resp) => Outcome {
                            outcome: "ordered",
                            shipment_id: resp.shipment_id,
                            state: output::state(resp.shipment_state).into(),
                            ye_id: resp.yubienterprise_shipment_id,
                            error: String::new(),
                        },
                        Err(status) => Outcome {
                            outcome: "failed",
                            shipment_id: String::new(),
                            state: String::new(),
                            ye_id: String::new(),
                            error: client::describe(&status).replace('\n', "; "),
                        },
                    };
                    progress.step(o.outcome == "failed");
                    outcomes.insert(line, o);
                }
            },
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                eprintln!("\ninterrupted: rows in flight may or may not be ordered; rerun the same command to finish (nothing is ordered twice)");
                break;
            }
        }
    }
    drop(orders);

    write_result(result_path, &rows, &outcomes)?;
    let count = |o: &str| outcomes.values().filter(|x| x.outcome == o).count();
    let (ordered, before, failed) = (count("ordered"), count("already_ordered"), count("failed"));
    let not_attempted = rows.len() - outcomes.len();
    if json {
        println!(
            "{}",
            serde_json::json!({"rows": rows.len(), "ordered": ordered, "already_ordered": before,
                "failed": failed, "not_attempted": not_attempted, "result_csv": result_path.display().to_string()})
        );
    } else {
        println!(
            "{} rows: {ordered} ordered, {before} already ordered, {failed} failed{}",
            rows.len(),
            if not_attempted > 0 {
                format!(", {not_attempted} not attempted")
            } else {
                String::new()
            }
        );
        println!("results: {}", result_path.display());
        if ordered > 0 {
            println!(
                "the orchestrator is placing the orders at YubiEnterprise; follow them with `fpr list --state ongoing`"
            );
        }
        if failed > 0 || not_attempted > 0 {
            println!(
                "rerun the same command to retry the rest: rows already ordered are not ordered again"
            );
        }
    }
    Ok(if failed > 0 || interrupted || not_attempted > 0 {
        1
    } else {
        0
    })
}

fn refuse(bad: &[Bad], total: usize, json: bool) -> u8 {
    let lines: BTreeSet<u64> = bad.iter().map(|b| b.line).collect();
    let rows: Vec<Vec<String>> = bad
        .iter()
        .map(|b| {
            vec![
                b.line.to_string(),
                b.problem.column.clone(),
                b.problem.rule.clone(),
            ]
        })
        .collect();
    if json {
        let list: Vec<serde_json::Value> = bad
            .iter()
            .map(|b| serde_json::json!({"line": b.line, "column": b.problem.column, "problem": b.problem.rule}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"refused": true, "rows": total, "bad_rows": lines.len(), "problems": list})
        );
    }
    eprint!("{}", output::table(&["LINE", "COLUMN", "PROBLEM"], &rows));
    eprintln!(
        "refused: {} bad row{} of {total}; nothing was ordered",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
    );
    EX_DATAERR
}

fn write_result(path: &Path, rows: &[Row], outcomes: &HashMap<u64, Outcome>) -> anyhow::Result<()> {
    let tmp = path.with_extension("csv.partial");
    {
        let mut w =
            csv::Writer::from_path(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        w.write_record([
            "line",
            "idp",
            "user_id",
            "idempotency_key",
            "outcome",
            "shipment_id",
            "shipment_state",
            "yubienterprise_shipment_id",
            "error",
        ])?;
        for row in rows {
            let o = outcomes.get(&row.line);
            w.write_record([
                row.line.to_string().as_str(),
                output::idp(row.req.idp),
                &row.req.user_id,
                &row.req.idempotency_key,
                o.map_or("not_attempted", |o| o.outcome),
                o.map_or("", |o| o.shipment_id.as_str()),
                o.map_or("", |o| o.state.as_str()),
                o.map_or("", |o| o.ye_id.as_str()),
                o.map_or("", |o| o.error.as_str()),
            ])?;
        }
        w.flush()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod crlf {
    use super::*;

    #[test]
    fn lines_are_counted_with_crlf() {
        let mut d = Fields::default();
        d.set("product_id", Some("29"));
        d.set("inventory_product_id", Some("106"));
        d.set("customization_id", Some("RXJN83"));
        let (rows, bad) = parse(
            "idp,user_id\r\nokta,a@example.test\r\nokta,b@example.test\r\n",
            &d,
            "b",
        );
        assert!(bad.is_empty());
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
    }
}
