//! The one e-mail address rule of fpr: the orchestrator checks PIN recipients and shipping
//! e-mail with it when a request arrives, and the vault checks the same rule before it binds
//! or sends to an address, so nothing the orchestrator accepts is refused later for its form.
//!
//! An address is `local@domain`, at most 254 characters: the local part is 1 to 64 characters
//! of letters, digits and ``!#$%&'*+/=?^_`{|}~.-`` (a dot neither first, last, nor doubled);
//! the domain is two or more labels of letters, digits and hyphens (1 to 63 characters each,
//! no hyphen first or last) whose last label is not all digits. No quoted local parts, no IP
//! literals, no comments, no display names.
//!
//! ```
//! use fpr_domain::email;
//! assert!(email::check("ada.lovelace+keys@contoso.com").is_ok());
//! assert!(email::check("Ada <ada@contoso.com>").is_err());
//! assert_eq!(email::domain("ada@Contoso.COM"), Some("contoso.com".to_owned()));
//! ```

/// The rule as one sentence, for error messages.
pub const RULE: &str = "must be an e-mail address local@domain (at most 254 characters, no display name, quotes or IP literal)";

/// Checks `e` against the rule; the error says which part is wrong.
pub fn check(e: &str) -> Result<(), &'static str> {
    if e.is_empty() || e.len() > 254 {
        return Err("must be 3 to 254 characters");
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err("must contain one @");
    };
    if domain.contains('@') {
        return Err("must contain one @");
    }
    const LOCAL_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~.-";
    if local.is_empty()
        || local.len() > 64
        || !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(&b))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(
            "the part before @ must be 1 to 64 letters, digits or !#$%&'*+/=?^_`{|}~.- (no leading, trailing or double dot)",
        );
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if labels.len() < 2
        || !labels.iter().all(label_ok)
        || labels
            .last()
            .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the domain must be two or more labels of letters, digits and hyphens");
    }
    Ok(())
}

/// True when `e` follows the rule.
pub fn is_valid(e: &str) -> bool {
    check(e).is_ok()
}

/// The domain of a valid address, lower-cased.
pub fn domain(e: &str) -> Option<String> {
    check(e).ok()?;
    e.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_addresses() {
        for good in [
            "a@b.co",
            "ada.lovelace@contoso.com",
            "o'brien+pin@mail.example.org",
            "x_y-z@sub-domain.example",
            "1@2.example",
        ] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "",
            "nope",
            "@contoso.com",
            "ada@",
            "ada@@contoso.com",
            "a@b@contoso.com",
            "ada lovelace@contoso.com",
            "ada@contoso",
            "ada@contoso..com",
            "ada@-contoso.com",
            "ada@contoso-.com",
            "ada@127.0.0.1",
            "ada@[127.0.0.1]",
            ".ada@contoso.com",
            "ada.@contoso.com",
            "a..da@contoso.com",
            "\"ada\"@contoso.com",
            "Ada <ada@contoso.com>",
            "ada@contoso.com\r\nBcc: eve@evil.example",
            "ada@contoso.com,eve@evil.example",
            "ada\u{0}@contoso.com",
            "adä@contoso.com",
            "ada@contoso.com.",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        assert!(!is_valid(&format!("{}@contoso.com", "a".repeat(65))));
        assert!(!is_valid(&format!("a@{}.com", "b".repeat(64))));
        assert!(!is_valid(&format!("a@{}.com", "b.".repeat(130))));
    }
}
