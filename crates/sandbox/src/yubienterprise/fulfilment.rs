//! Yubico's fulfilment of a FIDO Pre-reg shipment: open the sealed requests, program the software key, seal the signed responses.

use super::*;
use crate::yubico;

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

    let req = {
        let y = app.keys.yubico();
        yubico::open_requests(&y.transport, cred_jwe, pin_jwe)?
    };
    let data = if fault.replayed_response && last.is_some() {
        last.ok_or("no earlier response")?
    } else {
        let serial = {
            let mut st = app.state();
            st.next_serial += 1;
            st.next_serial.to_string()
        };
        let out = yubico::program(&app.keys.ca, product, &req, &serial)?;
        // The faults a test may ask for: a signature by an unpublished key, under a published
        // kid or an unknown one, for both responses or the PIN's only.
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
        ProductData {
            serial_number: serial,
            firmware_version: product.firmware.into(),
            fido_pin_response: yubico::seal(&out.pin, &pin_signer, &req.response_key)?,
            fido_credential_responses: vec![yubico::seal(
                &out.credential,
                &signer,
                &req.response_key,
            )?],
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
