//! Generated protobuf and gRPC code for fpr's services.
//!
//! The `.proto` files under `proto/` at the workspace root are the one source of truth; this
//! crate compiles them at build time with the vendored `protoc` (no system package needed) and
//! never commits generated code. It also exports the encoded file descriptor set, so every server
//! can offer gRPC reflection.
//!
//! This crate holds no logic: no validation, no I/O.
#![forbid(unsafe_code)]

/// The vault service, package `fpr.vault.v1`.
pub mod vault {
    /// Version 1 of the vault API.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, clippy::pedantic)]
        tonic::include_proto!("fpr.vault.v1");
    }
}

/// fpr's public API, package `fpr.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("fpr.v1");
}

/// Encoded `FileDescriptorSet` of `fpr.vault.v1`, for the vault's gRPC reflection.
pub const VAULT_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vault_descriptor");

/// Encoded `FileDescriptorSet` of `fpr.v1`, for the orchestrator's gRPC reflection.
pub const SHIPMENTS_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("shipments_descriptor");
