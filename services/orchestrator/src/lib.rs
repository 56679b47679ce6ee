//! The fpr orchestrator: `fpr.v1.ShipmentService` (and the FIDO Connector's REST API over it,
//! see [`rest`]). It validates requests, drives each shipment through YubiEnterprise, the IdP
//! and the vault (see [`workflow`]), keeps the records in its store and runs the processing
//! and cleanup jobs on cron schedules.
//!
//! It never sees a PIN or a private key: it holds creation options, JWEs encrypted to Yubico or
//! to the vault's keys, and public credential data. It never depends on `fpr-jose`.
//!
//! Entry points: [`config::Config::from_toml`], [`server::build`], [`server::serve`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attestation;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod convert;
mod error;
pub mod groups;
pub mod rest;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
pub mod workflow;

pub use error::Error;
