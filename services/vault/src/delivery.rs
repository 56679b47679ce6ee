//! PIN delivery: SMTP (lettre) or an HMAC-signed HTTPS webhook.
//!
//! The PIN arrives as `&str` borrowed from a zeroizing buffer and is only ever copied into
//! zeroizing buffers here. What the transports copy internally (lettre's message, reqwest's
//! body) is outside our control; those copies live only for the duration of the send.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::{ExposeSecret as _, SecretString};
use time::OffsetDateTime;
use tracing::info;
use zeroize::Zeroizing;

use crate::Error;
use crate::config::{ChannelKind, DeliveryConfig, SmtpConfig, SmtpTls, WebhookConfig};

/// The words around a PIN (no secret).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The user's display name.
    pub display_name: String,
    /// The user's sign-in name.
    pub upn: String,
    /// The orchestrator's shipment id.
    pub shipment_id: String,
    /// The key's serial number.
    pub serial: String,
}

/// What a channel reports after accepting a message.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `smtp` or `webhook`.
    pub channel: &'static str,
    /// Message-ID or delivery id.
    pub message_id: String,
    /// When it was accepted.
    pub at: OffsetDateTime,
}

/// The configured PIN channel.
#[derive(Debug, Clone)]
pub struct Channel {
    cfg: DeliveryConfig,
    http: reqwest::Client,
    smtp: std::sync::Arc<std::sync::Mutex<Option<Relay>>>,
}

/// The SMTP transport, kept so that its pool reuses connections to the relay, with a digest
/// of the password it was built with: a rotated password builds a new one.
struct Relay {
    password: [u8; 32],
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

// === impl Channel ===

impl Channel {
    /// Builds the channel from validated configuration.
    pub fn new(cfg: DeliveryConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("fpr-vault/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config {
                key: "delivery.webhook".into(),
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Self {
            cfg,
            http,
            smtp: std::sync::Arc::default(),
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &'static str {
        match self.cfg.channel {
            ChannelKind::Smtp => "smtp",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// Sends `pin` to `recipients`.
    pub async fn send(
        &self,
        pin: &str,
        recipients: &[String],
        ctx: &Context,
    ) -> Result<Sent, Error> {
        let body = render(&self.cfg.template, pin, ctx);
        let id = fpr_jose::util::random_id().map_err(Error::Crypto)?;
        let sent = match (self.cfg.channel, &self.cfg.smtp, &self.cfg.webhook) {
            (ChannelKind::Smtp, Some(smtp), _) => self.send_smtp(smtp, &id, body, recipients).await,
            (ChannelKind::Webhook, _, Some(hook)) => {
                self.send_webhook(hook, &id, body, pin, recipients, ctx)
                    .await
            }
            _ => Err(Error::Config {
                key: "delivery".into(),
                reason: "channel settings missing".into(),
            }),
        };
        let outcome = match &sent {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        metrics::counter!("fpr_pin_deliveries_total", "channel" => self.name(), "outcome" => outcome)
            .increment(1);
        sent
    }

    async fn send_smtp(
        &self,
        smtp: &SmtpConfig,
        id: &str,
        body: Zeroizing<String>,
        recipients: &[String],
    ) -> Result<Sent, Error> {
        let fail = |reason: String| Error::Delivery {
            channel: "smtp",
            reason,
        };
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|_| fail("bad sender address".into()))?;
        let message_id = format!("<{id}@fpr-vault>");
        let mut builder = Message::builder()
            .from(from)
            .subject(self.cfg.subject.clone())
            .message_id(Some(message_id.clone()));
        for r in recipients {
            builder = builder.to(r
                .parse()
                .map_err(|_| fail("bad recipient address".into()))?);
        }
        let email = builder
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| fail(e.to_string()))?;
        drop(body);
        let transport = self.relay(smtp)?;
        let response =
            tokio::time::timeout(smtp.timeout + Duration::from_secs(1), transport.send(email))
                .await
                .map_err(|_| fail("timed out".into()))?
                .map_err(|e| fail(smtp_reason(&e)))?;
        if !response.is_positive() {
            return Err(fail(format!("relay answered {}", response.code())));
        }
        info!(channel = "smtp", message.id = %message_id, recipients = recipients.len(), "PIN message accepted by relay");
        Ok(Sent {
            channel: "smtp",
            message_id,
            at: OffsetDateTime::now_utc(),
        })
    }

    /// The transport to the relay: the one kept, unless the password changed since it was
    /// built (the password is read at each send, so that it rotates without a restart).
    fn relay(&self, smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, Error> {
        let fail = |reason: String| Error::Delivery {
            channel: "smtp",
            reason,
        };
        let password = match &smtp.username {
            Some(_) => Some(read_secret(
                "delivery.smtp.password",
                smtp.password_file.as_ref(),
                smtp.password_env.as_deref(),
            )?),
            None => None,
        };
        let digest = fpr_jose::util::sha256(
            password
                .as_ref()
                .map_or(&b""[..], |p| p.expose_secret().as_bytes()),
        );
        let mut kept = self
            .smtp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = kept.as_ref().filter(|r| r.password == digest) {
            return Ok(r.transport.clone());
        }
        let mut transport = match smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .map_err(|e| fail(e.to_string()))?,
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                .map_err(|e| fail(e.to_string()))?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        }
        .port(smtp.port)
        .timeout(Some(smtp.timeout));
        if let (Some(user), Some(password)) = (&smtp.username, &password) {
            transport = transport.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        let transport = transport.build();
        *kept = Some(Relay {
            password: digest,
            transport: transport.clone(),
        });
        Ok(transport)
    }

    async fn send_webhook(
        &self,
        hook: &WebhookConfig,
        id: &str,
        body: Zeroizing<String>,
        pin: &str,
        recipients: &[String],
        ctx: &Context,
    ) -> Result<Sent, Error> {
        let fail = |reason: String| Error::Delivery {
            channel: "webhook",
            reason,
        };
        let secret = read_secret(
            "delivery.webhook.hmac_secret",
            hook.hmac_secret_file.as_ref(),
            hook.hmac_secret_env.as_deref(),
        )?;
        let now = OffsetDateTime::now_utc();
        let payload = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "delivery_id": id,
                "shipment_id": ctx.shipment_id,
                "serial_number": ctx.serial,
                "user_display_name": ctx.display_name,
                "user_principal_name": ctx.upn,
                "emails_to": recipients,
                "subject": self.cfg.subject,
                "message": body.as_str(),
                "pin": pin,
                "sent_at": now.unix_timestamp(),
            }))
            .map_err(|e| fail(e.to_string()))?,
        );
        drop(body);
        let ts = now.unix_timestamp().to_string();
        let mut signed = Zeroizing::new(Vec::with_capacity(ts.len() + 1 + payload.len()));
        signed.extend_from_slice(ts.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(&payload);
        let mac = fpr_jose::util::hmac_sha256(secret.expose_secret().as_bytes(), &signed);
        let sig: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        let resp = self
            .http
            .post(hook.url.clone())
            .timeout(hook.timeout)
            .header("content-type", "application/json")
            .header("x-fpr-delivery-id", id)
            .header("x-fpr-timestamp", &ts)
            .header("x-fpr-signature", format!("t={ts},v1={sig}"))
            .body(payload.to_vec())
            .send()
            .await
            .map_err(|e| fail(format!("request failed: {}", e.without_url())))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("webhook answered HTTP {}", status.as_u16())));
        }
        info!(channel = "webhook", message.id = %id, recipients = recipients.len(), "PIN message accepted by webhook");
        Ok(Sent {
            channel: "webhook",
            message_id: id.to_owned(),
            at: now,
        })
    }
}

fn smtp_reason(e: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = e.status() {
        format!("relay answered {code}")
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_tls() {
        "TLS failed".into()
    } else {
        "connection failed".into()
    }
}

/// Fills the template. The result holds the PIN, so it is zeroized on drop.
pub fn render(template: &str, pin: &str, ctx: &Context) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(template.len() + 64));
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('}') else {
            out.push_str(after);
            rest = "";
            break;
        };
        match &after[1..end] {
            "pin" => out.push_str(pin),
            "display_name" => out.push_str(&ctx.display_name),
            "upn" => out.push_str(&ctx.upn),
            "serial" => out.push_str(&ctx.serial),
            "shipment_id" => out.push_str(&ctx.shipment_id),
            _ => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Reads a secret from its file (preferred) or environment variable, at use time.
pub fn read_secret(
    name: &'static str,
    file: Option<&PathBuf>,
    env: Option<&str>,
) -> Result<SecretString, Error> {
    let bad = |reason: String| Error::Secret { name, reason };
    let value = if let Some(p) = file {
        let raw = Zeroizing::new(
            std::fs::read_to_string(p)
                .map_err(|e| bad(format!("{}: {}", p.display(), e.kind())))?,
        );
        raw.trim().to_owned()
    } else if let Some(var) = env {
        std::env::var(var)
            .map_err(|_| bad(format!("environment variable {var} is not set")))?
            .trim()
            .to_owned()
    } else {
        return Err(bad("no file or environment variable configured".into()));
    };
    if value.is_empty() {
        return Err(bad("empty".into()));
    }
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_known_placeholders_only() {
        let ctx = Context {
            display_name: "Ada".into(),
            upn: "ada@x".into(),
            shipment_id: "s1".into(),
            serial: "123".into(),
        };
        let out = render(
            "Hi {display_name} ({upn}) {serial}/{shipment_id}: {pin} {other} {",
            "4711",
            &ctx,
        );
        assert_eq!(&*out, "Hi Ada (ada@x) 123/s1: 4711 {other} {");
    }
}
