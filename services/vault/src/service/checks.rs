//! The vault's input checks and the small pure helpers of its operations.

use serde_json::Value;

use crate::Error;

pub(super) const REF_RULE: &str = "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -";

pub(super) fn check_ref(r: &str) -> Result<(), Error> {
    let ok = !r.is_empty()
        && r.len() <= 128
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidField {
            field: "shipment_ref",
            rule: REF_RULE.into(),
        })
    }
}

pub(super) fn check_token(field: &'static str, t: &str) -> Result<(), Error> {
    if t.is_empty() {
        return Err(Error::InvalidField {
            field,
            rule: "is required".into(),
        });
    }
    if t.len() > fpr_jose::MAX_TOKEN_LEN {
        return Err(Error::InvalidField {
            field,
            rule: format!("is {} bytes, over the 65536-byte limit", t.len()),
        });
    }
    Ok(())
}

/// Checks the creation options are a WebAuthn PublicKeyCredentialCreationOptions object.
pub(super) fn check_options(json: &str) -> Result<Value, Error> {
    const FIELD: &str = "creation_options_json";
    let bad = |rule: &str| Error::InvalidField {
        field: FIELD,
        rule: rule.into(),
    };
    if json.len() > fpr_jose::MAX_TOKEN_LEN {
        return Err(bad("is over the 65536-byte limit"));
    }
    let v: Value = serde_json::from_str(json).map_err(|_| bad("must be a JSON object"))?;
    // Graph wraps the options as {"publicKey": {...}}; accept that shape too.
    let opts = v.get("publicKey").cloned().unwrap_or(v);
    if !opts.is_object() {
        return Err(bad("must be a JSON object"));
    }
    let has_str = |ptr: &str| {
        opts.pointer(ptr)
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
    };
    for (ptr, rule) in [
        ("/challenge", "needs a non-empty string challenge"),
        ("/rp/id", "needs rp.id"),
        ("/user/id", "needs user.id"),
    ] {
        if !has_str(ptr) {
            return Err(bad(rule));
        }
    }
    if opts
        .get("pubKeyCredParams")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(bad("needs a non-empty pubKeyCredParams"));
    }
    Ok(opts)
}

/// Lower-cased and sorted: two lists naming the same addresses compare equal.
pub(super) fn normalized(list: &[String]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|e| e.to_ascii_lowercase()).collect();
    v.sort();
    v.dedup();
    v
}

pub(super) fn rejected(field: &'static str, e: fpr_jose::Error) -> Error {
    use fpr_jose::Error as J;
    let reason = match &e {
        J::TooLarge { .. } => "too_large",
        J::Malformed(_) | J::Framing(_) => "malformed",
        J::ForbiddenAlgorithm { .. } => "forbidden_algorithm",
        J::ForbiddenHeader(_) => "forbidden_header",
        J::MissingHeader(_) => "missing_header",
        J::KidMismatch { .. } => "wrong_response_key",
        J::UnknownKid(_) => "unknown_signing_key",
        J::KeyAlgorithmMismatch { .. } => "key_algorithm_mismatch",
        J::InvalidEphemeralKey(_) => "invalid_ephemeral_key",
        J::KeyUnwrapFailed | J::DecryptionFailed => "decryption_failed",
        J::BadSignature { .. } => "bad_signature",
        J::Payload(_) => "bad_payload",
        _ => "rejected",
    };
    Error::ResponseRejected {
        field,
        reason,
        check: e.to_string(),
    }
}

/// Refuses a payload whose `typ` names another message before its shape is parsed, so a
/// credential response sent as a PIN response (or the reverse) is named for what it is.
pub(super) fn expect_typ(field: &'static str, payload: &[u8], want: &str) -> Result<(), Error> {
    #[derive(serde::Deserialize)]
    struct Typ {
        typ: Option<Value>,
    }
    if let Ok(Typ { typ: Some(t) }) = serde_json::from_slice::<Typ>(payload)
        && t.as_str() != Some(want)
    {
        return Err(binding(field, "wrong_type", format!("typ is not {want:?}")));
    }
    Ok(())
}

pub(super) fn binding(field: &'static str, reason: &'static str, check: String) -> Error {
    Error::ResponseRejected {
        field,
        reason,
        check,
    }
}

pub(super) fn digest(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&(p.len() as u64).to_be_bytes());
        all.extend_from_slice(p);
    }
    fpr_jose::util::sha256(&all)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
