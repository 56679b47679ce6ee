//! The mailbox's SMTP listener: accepts every message (no TLS, no AUTH) and keeps it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::App;
use crate::state::Mail;

/// Binds `addr` and serves SMTP sessions that deliver into the sandbox mailbox.
pub(crate) async fn serve(
    addr: SocketAddr,
    app: Arc<App>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let app = app.clone();
            tokio::spawn(async move {
                let _ = session(sock, |mail| app.state().mailbox.push(mail)).await;
            });
        }
    });
    Ok((bound, task))
}

/// One SMTP session; `deliver` receives each accepted message.
pub async fn session(sock: TcpStream, deliver: impl Fn(Mail)) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 fpr-sandbox ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-fpr-sandbox\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
        } else if upper.starts_with("HELO")
            || upper.starts_with("NOOP")
            || upper.starts_with("MAIL FROM:")
        {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(cmd[8..].trim().trim_matches(['<', '>']).to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(if line.starts_with("..") {
                    &line[1..]
                } else {
                    &line
                });
            }
            let subject = data
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_owned();
            deliver(Mail {
                via: "smtp".into(),
                to: std::mem::take(&mut to),
                subject,
                body: data,
                received_at: crate::http::now(),
            });
            b"250 OK: queued\r\n"
        } else if upper == "QUIT" {
            w.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        w.write_all(reply).await?;
    }
}
