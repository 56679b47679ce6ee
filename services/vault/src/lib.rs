//! The fpr vault: the only process that holds private keys and plaintext PINs.
//!
//! It owns the per-shipment P-384 response keys (sealed at rest with AES-256-GCM under a master
//! key), the cached Yubico JWKS, all JWE/JWS work (through `fpr-jose`) and PIN delivery (SMTP or
//! an HMAC-signed webhook). It serves `fpr.vault.v1.VaultService` over a Unix socket whose
//! peers' uids are checked, or over TCP with mutual TLS, with gRPC health and reflection beside
//! it.
//!
//! It never returns, logs or stores a PIN or a private key: PINs exist only in zeroizing
//! buffers inside `DeliverPin`, private scalars only sealed in the store or in memory.
//!
//! Entry points: [`Config::load`], [`server::build`], [`server::bind`], [`server::serve`].
//!
//! ```no_run
//! # async fn run() -> Result<(), fpr_vault::Error> {
//! use fpr_vault::{Config, config::Env, server};
//! let config = Config::load(Some("vault.toml".as_ref()), &Env)?;
//! let service = server::build(&config).await?;
//! let listener = server::bind(&config).await?;
//! let uids = server::allowed_uids(&config, &listener);
//! server::serve(service, listener, uids, std::future::pending()).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod dev;
mod error;
pub mod jwks;
pub mod keystore;
pub mod peer;
pub mod server;
pub mod service;

pub use config::Config;
pub use error::Error;
