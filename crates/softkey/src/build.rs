//! Encoders for a software authenticator (the sandbox): COSE keys, authenticator data and
//! packed attestation objects.

use ciborium::Value;

use fpr_webauthn::flags;

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing a CBOR Value to a Vec cannot fail.
    let _ = ciborium::into_writer(v, &mut out);
    out
}

/// A COSE EC2 ES256 key from an uncompressed P-256 point.
pub fn cose_es256(point: &[u8]) -> Vec<u8> {
    let (x, y) = if point.len() == 65 {
        (&point[1..33], &point[33..])
    } else {
        (&[][..], &[][..])
    };
    cbor(&Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer(2.into())),
        (Value::Integer(3.into()), Value::Integer((-7).into())),
        (Value::Integer((-1).into()), Value::Integer(1.into())),
        (Value::Integer((-2).into()), Value::Bytes(x.to_vec())),
        (Value::Integer((-3).into()), Value::Bytes(y.to_vec())),
    ]))
}

/// Authenticator data. `credential` = (aaguid, credential id, COSE key); sets AT when given
/// and ED when `extensions` (CBOR) is given.
pub fn authenticator_data(
    rp_id_hash: &[u8; 32],
    mut flag_bits: u8,
    sign_count: u32,
    credential: Option<(&[u8; 16], &[u8], &[u8])>,
    extensions: Option<&[u8]>,
) -> Vec<u8> {
    if credential.is_some() {
        flag_bits |= flags::AT;
    }
    if extensions.is_some() {
        flag_bits |= flags::ED;
    }
    let mut out = Vec::with_capacity(37 + 200);
    out.extend_from_slice(rp_id_hash);
    out.push(flag_bits);
    out.extend_from_slice(&sign_count.to_be_bytes());
    if let Some((aaguid, id, key)) = credential {
        out.extend_from_slice(aaguid);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(key);
    }
    if let Some(e) = extensions {
        out.extend_from_slice(e);
    }
    out
}

/// The CBOR of a credProtect extension output (`{"credProtect": level}`).
pub fn cred_protect_extension(level: u8) -> Vec<u8> {
    cbor(&Value::Map(vec![(
        Value::Text("credProtect".into()),
        Value::Integer(level.into()),
    )]))
}

/// A packed attestation object: `{fmt:"packed", attStmt:{alg, sig, x5c}, authData}`.
pub fn packed_attestation_object(
    auth_data: &[u8],
    alg: i64,
    sig: &[u8],
    x5c: &[Vec<u8>],
) -> Vec<u8> {
    let stmt = vec![
        (Value::Text("alg".into()), Value::Integer(alg.into())),
        (Value::Text("sig".into()), Value::Bytes(sig.to_vec())),
        (
            Value::Text("x5c".into()),
            Value::Array(x5c.iter().map(|c| Value::Bytes(c.clone())).collect()),
        ),
    ];
    cbor(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text("packed".into())),
        (Value::Text("attStmt".into()), Value::Map(stmt)),
        (
            Value::Text("authData".into()),
            Value::Bytes(auth_data.to_vec()),
        ),
    ]))
}
