//! Generates the gRPC code from `proto/` with the vendored `protoc`, so a fresh machine needs no
//! system package, and writes the file descriptor set that reflection serves.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Pass protoc explicitly rather than through the PROTOC variable (set_var is unsafe in 2024).
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let root = root.canonicalize()?;
    let out = PathBuf::from(env::var("OUT_DIR")?);

    // One descriptor set per service, so each server's reflection lists only what it serves.
    for (proto, descriptor) in [
        ("fpr/vault/v1/vault.proto", "vault_descriptor.bin"),
        ("fpr/v1/shipments.proto", "shipments_descriptor.bin"),
    ] {
        let path = root.join(proto);
        println!("cargo:rerun-if-changed={}", path.display());
        let mut config = tonic_prost_build::Config::new();
        config.protoc_executable(&protoc);
        tonic_prost_build::configure()
            .file_descriptor_set_path(out.join(descriptor))
            .compile_with_config(config, &[path], std::slice::from_ref(&root))?;
    }
    Ok(())
}
