//! The fpr vault: the only process that holds private keys and plaintext PINs. It owns the
//! per-shipment P-384 response keys (sealed with AES-256-GCM under a master key), the cached Yubico
//! key sets, all JWE/JWS work (through `fpr-jose`) and PIN delivery (SMTP or a signed webhook). It
//! serves `fpr.vault.v1.VaultService` on a Unix socket (peer uids checked) or mutual TLS.
//! It never returns, logs or stores a PIN or a private key: PINs live only in zeroizing buffers
//! inside `DeliverPin`, private scalars only sealed in the store or in memory.
//! Entry points: [`Config::load`], [`server::build`], [`server::bind`], [`server::serve`].
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
