//! A small HTTP/1.1 server for tests: serves fixed bodies on GET and records POSTs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Lower-case header names and values.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, (u16, Vec<u8>)>,
    redirects: HashMap<String, String>,
    recorded: Vec<Recorded>,
    post_status: Option<u16>,
}

/// A running server; stops when dropped.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    let (status, body, location) = {
                        let mut s = st.lock().unwrap();
                        let location = s.redirects.get(&req.path).cloned();
                        let reply = if location.is_some() {
                            (302, b"{}".to_vec())
                        } else if req.method == "GET" {
                            s.routes
                                .get(&req.path)
                                .cloned()
                                .unwrap_or((404, b"{}".to_vec()))
                        } else {
                            (s.post_status.unwrap_or(200), b"{\"ok\":true}".to_vec())
                        };
                        s.recorded.push(req);
                        (reply.0, reply.1, location)
                    };
                    let location =
                        location.map_or_else(String::new, |l| format!("location: {l}\r\n"));
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{location}connection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` with `status` on GET `path`.
    pub fn route(&self, path: &str, status: u16, body: impl Into<Vec<u8>>) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), (status, body.into()));
    }

    /// Answers any request for `path` with a 302 to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.state
            .lock()
            .unwrap()
            .redirects
            .insert(path.to_owned(), location.to_owned());
    }

    /// Answers every POST with `status`.
    pub fn post_status(&self, status: u16) {
        self.state.lock().unwrap().post_status = Some(status);
    }

    /// Every request so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// Every POST so far.
    pub fn posts(&self) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}
