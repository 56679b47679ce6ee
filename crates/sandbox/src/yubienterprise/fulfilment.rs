//! Yubico's fulfilment of a FIDO Pre-reg shipment: open the sealed requests, program the software key, seal the signed responses.

use super::*;

pub(super) fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Programs the key: decrypt the requests, make the credential and PIN, sign and encrypt the
/// responses, store them as product data.
pub(super) fn fulfil(app: &App, id: &str) -> Result<(), String> {
    let (request, fault, last) = {
        let st = app.state();
        let s = st.shipments.get(id).ok_or("shipment vanished")?;
        (
            s.request.clone(),
            st.faults
                .get("yubico.fulfilment")
                .cloned()
                .unwrap_or_default(),
            st.last_product_data.clone(),
        )
    };
    let item = request
        .pointer("/shipment_items/0")
        .ok_or("no shipment item")?;
    let product_id = item
        .get("product_id")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let product = PRODUCTS
        .iter()
        .find(|p| u64::from(p.id) == product_id)
        .ok_or("unknown product")?;
    let pin_jwe =
        str_at(item, "/product_customizations/0/fido_pin_request").ok_or("no PIN request")?;
    let cred_jwe = str_at(item, "/product_customizations/0/fido_credential_requests/0")
        .ok_or("no credential request")?;

    let (cred_req, pin_req) = {
        let y = app.keys.yubico();
        let open = |t: &str| -> Result<Vec<u8>, String> {
            let info = jwe::inspect(t).map_err(|e| format!("request JWE: {e}"))?;
            let key = y
                .transport
                .iter()
                .find(|k| k.kid() == info.kid)
                .ok_or("request encrypted to an unknown transport key")?;
            jwe::decrypt(t, key)
                .map(|p| p.to_vec())
                .map_err(|e| format!("request JWE: {e}"))
        };
        let cred: CredentialRequest = serde_json::from_slice(&open(cred_jwe)?)
            .map_err(|_| "credential request is not the protocol's JSON")?;
        let pin: PinRequest = serde_json::from_slice(&open(pin_jwe)?)
            .map_err(|_| "PIN request is not the protocol's JSON")?;
        (cred, pin)
    };
    if cred_req.typ != protocol::CREDENTIAL_REQUEST
        || pin_req.typ != protocol::PIN_REQUEST
        || cred_req.v != 1
        || pin_req.v != 1
    {
        return Err("wrong typ or v in a request".into());
    }
    if cred_req.request_id != pin_req.request_id || cred_req.response_key != pin_req.response_key {
        return Err("PIN and credential requests do not belong together".into());
    }
    if !protocol::PIN_LENGTH.contains(&pin_req.pin.length) || pin_req.pin.kind != "generate" {
        return Err("PIN request asks for an unsupported PIN".into());
    }
    let response_key =
        PublicJwk::from_json(&cred_req.response_key).map_err(|e| format!("response key: {e}"))?;

    let data = if fault.replayed_response && last.is_some() {
        last.ok_or("no earlier response")?
    } else {
        let aaguid = fpr_webauthn::parse_aaguid(product.aaguid).ok_or("bad AAGUID")?;
        let cred = app
            .keys
            .ca
            .make_credential(&cred_req.public_key, &aaguid, product.name)
            .map_err(|e| e.to_string())?;
        let serial = {
            let mut st = app.state();
            st.next_serial += 1;
            st.next_serial.to_string()
        };
        let cred_id = fpr_webauthn::b64e(&cred.credential_id);
        let mut ext = json!({"credProps": {"rk": true}});
        if cred.cred_protect {
            ext["credProtect"] = json!(1);
        }
        let response = CredentialResponse {
            typ: protocol::CREDENTIAL_RESPONSE.into(),
            v: protocol::VERSION,
            request_id: cred_req.request_id.clone(),
            serial_number: serial.clone(),
            firmware_version: product.firmware.into(),
            credential: RegistrationResponseJson {
                id: cred_id.clone(),
                raw_id: cred_id,
                kind: "public-key".into(),
                authenticator_attachment: Some("cross-platform".into()),
                response: AttestationResponseJson {
                    client_data_json: fpr_webauthn::b64e(&cred.client_data_json),
                    attestation_object: fpr_webauthn::b64e(&cred.attestation_object),
                    transports: vec!["nfc".into(), "usb".into()],
                },
                client_extension_results: ext,
            },
        };
        let pin = fpr_jose::util::random_digits(pin_req.pin.length as usize)
            .map_err(|e| e.to_string())?;
        let pin_resp = PinResponse::new(pin_req.request_id.clone(), serial.clone(), pin);
        let signer = {
            let y = app.keys.yubico();
            let published = y.signing.first().ok_or("no signing key")?;
            if fault.bad_signature {
                SigningKey::generate(Curve::P384, published.kid()).map_err(|e| e.to_string())?
            } else if fault.wrong_kid {
                SigningKey::generate(Curve::P384, "APCS-Tsgnkey-NOT-PUBLISHED")
                    .map_err(|e| e.to_string())?
            } else {
                published.clone()
            }
        };
        let pin_signer = if fault.bad_pin_signature {
            SigningKey::generate(Curve::P384, signer.kid()).map_err(|e| e.to_string())?
        } else {
            signer.clone()
        };
        let seal = |payload: &[u8], signer: &SigningKey| -> Result<String, String> {
            let signed =
                zeroize::Zeroizing::new(jws::sign(payload, signer).map_err(|e| e.to_string())?);
            jwe::encrypt(signed.as_bytes(), &response_key, Algorithms::default())
                .map_err(|e| e.to_string())
        };
        let cred_json = serde_json::to_vec(&response).map_err(|e| e.to_string())?;
        let pin_json = pin_resp.to_json().map_err(|e| e.to_string())?;
        ProductData {
            serial_number: serial,
            firmware_version: product.firmware.into(),
            fido_pin_response: seal(&pin_json, &pin_signer)?,
            fido_credential_responses: vec![seal(&cred_json, &signer)?],
        }
    };
    let mut st = app.state();
    st.last_product_data = Some(data.clone());
    if let Some(s) = st.shipments.get_mut(id) {
        s.tracking_link = Some(format!("https://tracking.sandbox.invalid/{id}"));
        s.product_data = Some(data);
    }
    tracing::info!(shipment.id = %id, "Key programmed and shipped");
    Ok(())
}
