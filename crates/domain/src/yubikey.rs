//! The workspace's one table of YubiKey models: YubiEnterprise product ids and the AAGUIDs the
//! keys attest with, each with one name. The orchestrator names registered keys from it, the
//! order rules take the FIDO Pre-reg models from it, and the sandbox programs and describes keys
//! with it. Sources: YubiEnterprise's product list and Yubico's AAGUID list (docs/design,
//! upstream-apis.md §1.6 and §2.10); FIDO MDS3 is authoritative for the AAGUIDs.

/// A product YubiEnterprise ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// YubiEnterprise's `product_id`.
    pub id: u32,
    /// The product's name, as YubiEnterprise lists it.
    pub name: &'static str,
    /// Whether FIDO Pre-reg can program it.
    pub fpr: bool,
    /// The AAGUID of the model at its current firmware.
    pub aaguid: &'static str,
    /// The current firmware.
    pub firmware: &'static str,
}

/// The products fpr knows, by `product_id`.
pub const PRODUCTS: &[Product] = &[
    product(1, "YubiKey 5 NFC", true, A5_NFC_57, "5.7.1"),
    product(2, "YubiKey 5 Nano", false, A5_57, "5.7.1"),
    product(3, "YubiKey 5C", false, A5_57, "5.7.1"),
    product(4, "YubiKey 5C Nano", false, A5_57, "5.7.1"),
    product(5, "YubiKey 5Ci", false, A5CI_54, "5.4.3"),
    product(7, "Security Key NFC by Yubico", false, SK_NFC_57, "5.7.1"),
    product(29, "YubiKey 5C NFC", true, A5_NFC_57, "5.7.1"),
    product(54, "YubiKey 5 NFC FIPS", true, A5_NFC_FIPS_57, "5.7.2"),
    product(55, "YubiKey 5C NFC FIPS", true, A5_NFC_FIPS_57, "5.7.2"),
];

const A5_NFC_57: &str = "a25342c0-3cdc-4414-8e46-f4807fca511c";
const A5_57: &str = "19083c3d-8383-4b18-bc03-8f1c9ab2fd1b";
const A5CI_54: &str = "c5ef55ff-ad9a-4b9f-b580-adebafe026d0";
const SK_NFC_57: &str = "e77e3c64-05e3-428b-8824-0cbeb04b829d";
const A5_NFC_FIPS_57: &str = "fcc0118f-cd45-435b-8da1-9782b2da0715";

const fn product(
    id: u32,
    name: &'static str,
    fpr: bool,
    aaguid: &'static str,
    firmware: &'static str,
) -> Product {
    Product {
        id,
        name,
        fpr,
        aaguid,
        firmware,
    }
}

/// A model as its AAGUID identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// The AAGUID, lower-case with hyphens.
    pub aaguid: &'static str,
    /// The model's description in FIDO MDS, which is what Microsoft Graph shows as `model`.
    pub name: &'static str,
    /// The firmware series that attests with this AAGUID.
    pub firmware: &'static str,
}

/// Every YubiKey AAGUID fpr knows, with one name each.
pub const MODELS: &[Model] = &[
    m(
        "cb69481e-8ff7-4039-93ec-0a2729a154a8",
        "YubiKey 5 Series",
        "5.1",
    ),
    m(
        "ee882879-721c-4913-9775-3dfcce97072a",
        "YubiKey 5 Series",
        "5.2/5.4",
    ),
    m(
        "fa2b99dc-9e39-4257-8f92-4a30d23c4118",
        "YubiKey 5 Series with NFC",
        "5.1",
    ),
    m(
        "2fc0579f-8113-47ea-b116-bb5a8db9202a",
        "YubiKey 5 Series with NFC",
        "5.2/5.4",
    ),
    m(A5_NFC_57, "YubiKey 5 Series with NFC", "5.7"),
    m(
        "d7781e5d-e353-46aa-afe2-3ca49f13332a",
        "YubiKey 5 Series with NFC",
        "5.7",
    ),
    m(
        "1ac71f64-468d-4fe0-bef1-0e5f2f551f18",
        "YubiKey 5 Series with NFC (Enterprise Attestation)",
        "5.7",
    ),
    m(
        "6ab56fad-881f-4a43-acb2-0be065924522",
        "YubiKey 5 Series with NFC (Enterprise Attestation)",
        "5.7",
    ),
    m(
        "c1f9a0bc-1dd2-404a-b27f-8e29047a43fd",
        "YubiKey 5 Series with NFC - FIPS",
        "5.4",
    ),
    m(A5_NFC_FIPS_57, "YubiKey 5 Series with NFC - FIPS", "5.7"),
    m(
        "79f3c8ba-9e35-484b-8f47-53a5a0f5c630",
        "YubiKey 5 Series with NFC - FIPS",
        "5.7",
    ),
    m(A5_57, "YubiKey 5 Series", "5.7"),
    m(
        "ff4dac45-ede8-4ec2-aced-cf66103f4335",
        "YubiKey 5 Series",
        "5.7",
    ),
    m(A5CI_54, "YubiKey 5Ci", "5.2/5.4"),
    m(
        "149a2021-8ef6-4133-96b8-81f8d5b7f1f5",
        "Security Key NFC by Yubico",
        "5.2/5.4",
    ),
    m(SK_NFC_57, "Security Key NFC by Yubico", "5.7"),
    m(
        "b7d3f68e-88a6-471e-9ecf-2df26d041ede",
        "Security Key NFC by Yubico",
        "5.7",
    ),
];

const fn m(aaguid: &'static str, name: &'static str, firmware: &'static str) -> Model {
    Model {
        aaguid,
        name,
        firmware,
    }
}

/// The product with this `product_id`.
pub fn product_by_id(id: u32) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.id == id)
}

/// The `product_id`s FIDO Pre-reg can program.
pub fn fpr_product_ids() -> Vec<u32> {
    PRODUCTS.iter().filter(|p| p.fpr).map(|p| p.id).collect()
}

/// The model an AAGUID (any case) identifies, if it is a YubiKey fpr knows.
pub fn model_by_aaguid(aaguid: &str) -> Option<&'static Model> {
    MODELS
        .iter()
        .find(|m| m.aaguid.eq_ignore_ascii_case(aaguid))
}

/// Every AAGUID of the model `product` is: the ones FIDO MDS describes with the same name as
/// the product's current AAGUID (the model's firmware series).
pub fn aaguids_of(product: &Product) -> Vec<&'static str> {
    let Some(model) = model_by_aaguid(product.aaguid) else {
        return vec![product.aaguid];
    };
    MODELS
        .iter()
        .filter(|m| m.name == model.name)
        .map(|m| m.aaguid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_attests_with_a_known_model() {
        for p in PRODUCTS {
            assert!(model_by_aaguid(p.aaguid).is_some(), "{}", p.name);
            assert!(!p.firmware.is_empty(), "{}", p.name);
        }
    }

    #[test]
    fn one_name_per_aaguid() {
        for (i, a) in MODELS.iter().enumerate() {
            assert!(
                MODELS[i + 1..].iter().all(|b| b.aaguid != a.aaguid),
                "{}",
                a.aaguid
            );
            assert_eq!(a.aaguid, a.aaguid.to_ascii_lowercase());
        }
    }

    #[test]
    fn fido_prereg_models() {
        assert_eq!(fpr_product_ids(), [1, 29, 54, 55]);
        assert_eq!(product_by_id(29).map(|p| p.name), Some("YubiKey 5C NFC"));
        let nfc = aaguids_of(product_by_id(29).unwrap());
        assert!(
            nfc.contains(&"2fc0579f-8113-47ea-b116-bb5a8db9202a"),
            "{nfc:?}"
        );
        assert!(
            !nfc.contains(&"fcc0118f-cd45-435b-8da1-9782b2da0715"),
            "{nfc:?}"
        );
        assert_eq!(
            model_by_aaguid("A25342C0-3CDC-4414-8E46-F4807FCA511C").map(|m| m.name),
            Some("YubiKey 5 Series with NFC")
        );
    }
}
