//! The one error type of `fpr-webauthn`.

/// Every way a registration check fails; each variant names the check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// clientDataJSON is not JSON with type, challenge and origin strings.
    #[error("clientDataJSON is malformed: {0}")]
    MalformedClientData(&'static str),
    /// clientDataJSON.type is not `webauthn.create`.
    #[error("clientDataJSON type {0:?} is not webauthn.create")]
    ClientDataType(String),
    /// The challenge is not the one issued.
    #[error("challenge does not match the one issued")]
    ChallengeMismatch,
    /// The origin is not an accepted origin.
    #[error("origin {0:?} is not accepted")]
    OriginMismatch(String),
    /// The attestation object is not valid CBOR of the expected shape.
    #[error("attestationObject is malformed: {0}")]
    MalformedAttestation(&'static str),
    /// The authenticator data is truncated or inconsistent.
    #[error("authenticator data is malformed: {0}")]
    MalformedAuthData(&'static str),
    /// rpIdHash is not SHA-256 of the RP id.
    #[error("rpIdHash does not match the RP id")]
    RpIdHashMismatch,
    /// The UP flag is not set.
    #[error("user presence flag not set")]
    UserNotPresent,
    /// The UV flag is not set and user verification is required.
    #[error("user verification flag not set")]
    UserNotVerified,
    /// No attested credential data (AT flag unset).
    #[error("no attested credential data")]
    NoAttestedCredential,
    /// The credential public key is not a supported COSE key.
    #[error("unsupported credential public key: {0}")]
    UnsupportedKey(&'static str),
    /// The attestation format is not one this checker accepts.
    #[error("attestation format {0:?} is not supported")]
    UnsupportedFormat(String),
    /// The attestation signature does not verify.
    #[error("attestation signature does not verify")]
    BadAttestationSignature,
    /// The attestation certificate breaks a rule of WebAuthn §8.2.1.
    #[error("attestation certificate: {0}")]
    BadCertificate(&'static str),
    /// The certificate chain does not lead to a trusted root.
    #[error("attestation chain is not trusted: {0}")]
    UntrustedChain(&'static str),
    /// The certificate's AAGUID extension differs from the authenticator data's AAGUID.
    #[error("AAGUID in the certificate differs from the authenticator data")]
    AaguidMismatch,
    /// The AAGUID is not on the allow-list.
    #[error("AAGUID {0} is not allowed")]
    AaguidNotAllowed(String),
}
