//! Single-thread throughput of the vault's JOSE work, without gRPC and store.
//!
//! seal = SealRequests' work: a P-384 response key and both request JWEs.
//! open = decrypt + verify of one credential response and one PIN response.
//!
//! `cargo run --release -p fpr-vault --example bench` prints, as its last line,
//! `seal_per_s=<n> open_per_s=<n>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark"
)]

use std::time::{Duration, Instant};

use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{CredentialResponse, PinResponse, PinSpec};
use fpr_jose::{Curve, PrivateKey, jws};
use fpr_sandbox::yubico::Yubico;

fn rate(min: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up for a fifth of the run (CPU frequency, allocator, caches), then measure.
    let warm = Instant::now();
    while warm.elapsed() < min / 5 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        for _ in 0..50 {
            f();
        }
        n += 50;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let min = Duration::from_secs(secs);
    let yubico = Yubico::new().unwrap();
    let transport = yubico.transport_key().unwrap().clone();
    let options = fpr_sandbox::public_key_options(
        "v1.0",
        "bench-user",
        "bench-user",
        "bench-user",
        b"bench",
        Vec::new(),
    );
    let pin = PinSpec {
        kind: "generate".into(),
        length: 8,
        force_change: false,
    };
    let algs = Algorithms::default();

    let seal = rate(min, || {
        let (key, c, p) =
            fpr_vault::service::seal_requests(&options, &pin, &transport, algs).unwrap();
        std::hint::black_box((key, c, p));
    });

    // One shipment's responses, as Yubico would make them.
    let (key, cred_req, pin_req) =
        fpr_vault::service::seal_requests(&options, &pin, &transport, algs).unwrap();
    let product = fpr_domain::yubikey::product_by_id(29).unwrap();
    let done = yubico
        .fulfil(product, &cred_req, &pin_req, "3632071")
        .unwrap();
    let signing = yubico.signing_jwks();
    let key = PrivateKey::from_scalar(Curve::P384, key.kid(), &key.scalar().unwrap()).unwrap();
    let open = rate(min, || {
        let inner = jwe::decrypt(&done.fido_credential_responses[0], &key).unwrap();
        let v = jws::verify(std::str::from_utf8(&inner).unwrap(), &signing).unwrap();
        let c: CredentialResponse = serde_json::from_slice(&v.payload).unwrap();
        let inner = jwe::decrypt(&done.fido_pin_response, &key).unwrap();
        let v = jws::verify(std::str::from_utf8(&inner).unwrap(), &signing).unwrap();
        let p: PinResponse = serde_json::from_slice(&v.payload).unwrap();
        std::hint::black_box((c, p));
    });

    // The P-384 ceiling on this machine: seal needs 3 key generations and 2 ECDH, open needs
    // 2 ECDH and 2 ES384 verifications; nothing else in the unit is asymmetric.
    let cal = Duration::from_millis(700);
    let keygen = rate(cal, calibrate::keygen);
    let ecdh = rate(cal, calibrate::ecdh());
    let verify = rate(cal, calibrate::verify());
    let seal_max = 1.0 / (3.0 / keygen + 2.0 / ecdh);
    let open_max = 1.0 / (2.0 / ecdh + 2.0 / verify);
    println!(
        "aws-lc-rs P-384 here: keygen {keygen:.0}/s, ecdh {ecdh:.0}/s, es384 verify {verify:.0}/s"
    );
    println!(
        "seal: {seal:.0}/s ({:.1} us each), {:.0}% of the P-384 ceiling {seal_max:.0}/s",
        1e6 / seal,
        100.0 * seal / seal_max
    );
    println!(
        "open: {open:.0}/s ({:.1} us each), {:.0}% of the P-384 ceiling {open_max:.0}/s",
        1e6 / open,
        100.0 * open / open_max
    );
    println!("seal_per_s={seal:.0} open_per_s={open:.0}");
}

/// Raw P-384 primitive timings on aws-lc-rs, the backend fpr-jose runs on, so the benchmark can
/// state what fraction of the ceiling the vault reaches on this machine.
mod calibrate {
    use aws_lc_rs::{agreement, rand::SystemRandom, signature};

    /// One P-384 key generation.
    pub fn keygen() {
        let _ = std::hint::black_box(agreement::PrivateKey::generate(&agreement::ECDH_P384));
    }

    /// Returns a closure doing one P-384 ECDH with a pre-parsed peer point.
    pub fn ecdh() -> impl FnMut() {
        let me = agreement::PrivateKey::generate(&agreement::ECDH_P384).ok();
        let peer = agreement::PrivateKey::generate(&agreement::ECDH_P384)
            .ok()
            .and_then(|k| k.compute_public_key().ok())
            .map(|p| p.as_ref().to_vec())
            .unwrap_or_default();
        move || {
            if let Some(me) = &me {
                let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P384, &peer);
                let _ = std::hint::black_box(agreement::agree(me, peer, (), |z| Ok(z.len())));
            }
        }
    }

    /// Returns a closure doing one ES384 verification with a pre-parsed key.
    pub fn verify() -> impl FnMut() {
        use signature::KeyPair as _;
        let kp =
            signature::EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).ok();
        let sig = kp
            .as_ref()
            .and_then(|k| k.sign(&SystemRandom::new(), b"calibrate").ok());
        let vk = kp.as_ref().and_then(|k| {
            signature::ParsedPublicKey::new(
                &signature::ECDSA_P384_SHA384_FIXED,
                k.public_key().as_ref(),
            )
            .ok()
        });
        move || {
            if let (Some(vk), Some(sig)) = (&vk, &sig) {
                let _ = std::hint::black_box(vk.verify_sig(b"calibrate", sig.as_ref()));
            }
        }
    }
}
