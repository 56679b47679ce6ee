//! The one error type of `fpr-jose`.

/// Every way a JOSE operation can fail. Each variant names the check that failed; none carries
/// key material, plaintext or a whole token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The compact token is longer than the profile's limit (64 KiB).
    #[error("token is {len} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The token is not a well-formed compact serialization (wrong number of parts, bad base64,
    /// header not a JSON object, ...).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The `alg` or `enc` header names an algorithm outside the allow-list.
    #[error("{header} {value:?} is not allowed")]
    ForbiddenAlgorithm {
        /// `alg` or `enc`.
        header: &'static str,
        /// The value found (an algorithm name, never key material).
        value: String,
    },
    /// A header parameter the profile refuses (`zip`, `jku`, `x5u`, `jwk`, `x5c`, `crit`, ...).
    #[error("header parameter {0:?} is not allowed")]
    ForbiddenHeader(&'static str),
    /// A required header parameter is missing or not a string.
    #[error("header parameter {0:?} is missing or not a string")]
    MissingHeader(&'static str),
    /// The JWE was made for another key than the one it is opened with.
    #[error("JWE kid {found:?} does not match the key {expected:?}")]
    KidMismatch {
        /// The kid of the key the caller holds.
        expected: String,
        /// The kid the header names.
        found: String,
    },
    /// The JWS names a signing key that is not in the pinned set.
    #[error("no pinned key with kid {0:?}")]
    UnknownKid(String),
    /// The key named by the header cannot be used for the header's algorithm (curve or `use`).
    #[error("key {kid:?} cannot be used for {alg}")]
    KeyAlgorithmMismatch {
        /// The key's id.
        kid: String,
        /// The algorithm the token asks for.
        alg: String,
    },
    /// The JWE's ephemeral public key (`epk`) is missing, on another curve, or not a valid point.
    #[error("invalid ephemeral key: {0}")]
    InvalidEphemeralKey(&'static str),
    /// The wrapped content-encryption key did not unwrap (tampered key or wrong recipient).
    #[error("content-encryption key did not unwrap")]
    KeyUnwrapFailed,
    /// Authenticated decryption failed: the ciphertext, tag, IV or protected header was altered.
    #[error("authenticated decryption failed")]
    DecryptionFailed,
    /// The JWS signature did not verify with the key its kid names.
    #[error("signature by {kid:?} did not verify")]
    BadSignature {
        /// The kid of the key tried.
        kid: String,
    },
    /// A JWK is malformed or unusable.
    #[error("invalid JWK {kid:?}: {reason}")]
    InvalidKey {
        /// The key's id, when it had one.
        kid: Option<String>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A JWKS document is malformed (not `{"keys":[...]}`, duplicate kids, no usable key).
    #[error("invalid JWKS: {0}")]
    InvalidJwks(&'static str),
    /// A decrypted or signed payload is not the JSON this profile expects. Only the kind of
    /// error and its position are kept: serde's own message quotes the offending value, which
    /// in a PIN response can be the PIN.
    #[error("payload is not valid JSON of the expected shape: {0}")]
    Payload(PayloadError),
    /// A sealed value did not open with the master key (wrong key, other key id, or tampering).
    #[error("sealed value did not open")]
    SealOpenFailed,
    /// A master key file or value is not 32 bytes (raw, 64 hex digits or base64).
    #[error("invalid master key: {0}")]
    InvalidMasterKey(&'static str),
    /// josekit refused the framing after our checks passed.
    #[error("JOSE framing failed")]
    Framing(#[source] josekit::JoseError),
    /// A cryptographic primitive failed where it cannot fail on valid input (RNG, key generation).
    #[error("internal crypto failure: {0}")]
    Internal(&'static str),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where and how a payload failed to parse, without any of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadError {
    /// `syntax`, `data` (wrong type, unknown or duplicate field, missing field) or `eof`.
    pub category: &'static str,
    /// 1-based line of the failure.
    pub line: usize,
    /// 1-based column of the failure.
    pub column: usize,
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} error at line {} column {}",
            self.category, self.line, self.column
        )
    }
}

impl From<serde_json::Error> for PayloadError {
    fn from(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        Self {
            category: match e.classify() {
                Category::Io => "io",
                Category::Syntax => "syntax",
                Category::Data => "data",
                Category::Eof => "eof",
            },
            line: e.line(),
            column: e.column(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Payload(e.into())
    }
}
