//! `fpr up` as a child process on ephemeral loopback ports, and the `fpr` command run against it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "test helpers"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The order's item flags (the sandbox's product, bucket and customization).
pub const ITEM: [&str; 6] = [
    "--product-id",
    "29",
    "--inventory-product-id",
    "106",
    "--customization-id",
    "RXJN83",
];

/// A valid US shipping address as `fpr ship` flags.
pub const ADDRESS: [&str; 10] = [
    "--street-line1",
    "1 Main Street",
    "--city",
    "Dedham",
    "--region",
    "MA",
    "--postal-code",
    "02026",
    "--country",
    "US",
];

/// A running `fpr up`.
pub struct UpProcess {
    pub child: Child,
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:port` of the orchestrator.
    pub addr: String,
    /// The sandbox's URL.
    pub sandbox: String,
    /// Everything `fpr up` printed before "Stop with".
    pub banner: String,
    out: BufReader<std::process::ChildStdout>,
}

impl UpProcess {
    /// The URL on the banner line of `part` (e.g. `rest`, `metrics`, `okta event hook`).
    pub fn banner_url(&self, part: &str) -> String {
        self.banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(part))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {part:?} line in the banner:\n{}", self.banner))
            .to_owned()
    }

    /// Starts `fpr up` with extra arguments; its logs (stderr) go to `log()`.
    pub fn start(extra: &[&str]) -> UpProcess {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// Starts `fpr up` with its data in `dir/data` (which may hold an earlier run's data).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> UpProcess {
        Self::start_env(dir, extra, &[])
    }

    /// As [`UpProcess::start_in`], with environment variables set for `fpr up`.
    pub fn start_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> UpProcess {
        let log = std::fs::File::create(dir.path().join("up.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fpr"))
            .args([
                "up",
                "--sandbox",
                "127.0.0.1:0",
                "--smtp",
                "127.0.0.1:0",
                "--listen",
                "127.0.0.1:0",
                "--rest",
                "127.0.0.1:0",
                "--metrics",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra)
            .env("FPR_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 {
            banner.push_str(&line);
            if line.starts_with("Stop with") {
                break;
            }
            line.clear();
        }
        assert!(banner.contains("fpr is up"), "{banner}");
        let word_after = |prefix: &str| {
            banner
                .lines()
                .find_map(|l| l.trim().strip_prefix(prefix))
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        let addr = word_after("orchestrator").replace("grpc://", "http://");
        let sandbox = word_after("sandbox");
        UpProcess {
            child,
            dir,
            addr,
            sandbox,
            banner,
            out,
        }
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What `fpr up` logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.log")).unwrap()
    }

    /// `fpr <args>` against this orchestrator, with the token file `fpr up` keeps, run in the
    /// temporary directory.
    pub fn fpr(&self, args: &[&str]) -> Output {
        self.command(args)
            .env("FPR_TOKEN_FILE", self.data().join("caller-token"))
            .output()
            .unwrap()
    }

    /// `fpr <args>` with no token anywhere.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fpr"));
        c.args(args)
            .env("FPR_ADDR", &self.addr)
            .env_remove("FPR_TOKEN")
            .env_remove("TOKEN")
            .env_remove("FPR_TOKEN_FILE")
            .current_dir(self.dir.path());
        c
    }

    /// GET on the sandbox's admin API.
    pub fn sandbox_get(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.sandbox);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { reqwest::get(&url).await.unwrap().json().await.unwrap() })
    }

    /// POST on the sandbox's admin API; the answer's JSON.
    pub fn sandbox_post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.sandbox_send(reqwest::Method::POST, path, body)
    }

    /// A call with a JSON body to the sandbox's admin API, which must succeed; the answer's JSON.
    pub fn sandbox_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let url = format!("{}{path}", self.sandbox);
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let r = reqwest::Client::new()
                .request(method.clone(), &url)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{method} {path}: {}", r.status());
            r.json().await.unwrap_or_default()
        })
    }

    /// SIGTERM, then what it printed after the banner.
    pub fn stop(self) -> String {
        self.stop_keeping_data().0
    }

    /// SIGTERM, then what it printed after the banner, and its directory.
    pub fn stop_keeping_data(self) -> (String, tempfile::TempDir) {
        self.stop_with("-TERM")
    }

    /// Sends `signal` (`-TERM`, `-HUP`, …); what it printed after the banner, and its directory.
    pub fn stop_with(mut self, signal: &str) -> (String, tempfile::TempDir) {
        assert!(
            Command::new("kill")
                .arg(signal)
                .arg(self.child.id().to_string())
                .status()
                .unwrap()
                .success()
        );
        let mut rest = String::new();
        while self.out.read_line(&mut rest).unwrap() > 0 {}
        assert!(self.child.wait().unwrap().success());
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (rest, dir)
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// stdout of a command that must succeed.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Every file under `dir`, concatenated as bytes.
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_bytes(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}

/// A CSV of `n` sandbox users that can receive keys: Entra rows with full shipping data (as an
/// HR export has it), Okta rows with the user only (fpr fills them from the Okta profile).
pub fn users_csv(up: &UpProcess, n: usize) -> String {
    let users = up.sandbox_get("/_sandbox/users");
    let mut csv = String::from(
        "idp,upn,First Name,Last Name,email,phone,company,street,city,state,zip,country\n",
    );
    let mut rows = 0;
    for u in users.as_array().unwrap() {
        if rows == n {
            break;
        }
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let login = s(&u["login"]);
        let a = &u["address"];
        if u["idp"] == "entra"
            && !u["manager_id"].is_null()
            && login != "johanna.lorenz@contoso.test"
        {
            let company: String = s(&u["organization"]).chars().take(20).collect();
            csv.push_str(&format!(
                "entra,{login},{},{},{},{},{company},{},{},{},{},{}\n",
                s(&u["given_name"]),
                s(&u["surname"]),
                s(&u["mail"]),
                s(&u["phone"]),
                s(&a["street"]),
                s(&a["city"]),
                s(&a["region"]),
                s(&a["postal_code"]),
                s(&a["country"]),
            ));
            rows += 1;
        } else if u["idp"] == "okta" && u["status"] == "ACTIVE" && !s(&a["street"]).is_empty() {
            csv.push_str(&format!("okta,{login},,,,,,,,,,\n"));
            rows += 1;
        }
    }
    assert_eq!(rows, n, "the sandbox has too few usable users");
    csv
}
