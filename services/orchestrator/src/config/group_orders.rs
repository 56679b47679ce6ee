//! Standing group orders: the processing job orders for members of configured groups who have
//! no key yet (off by default).

use super::*;

/// `[group_orders]`: rules the processing job applies at most once per `interval`, ordering at
/// most `max_orders_per_run` keys a run (the rest wait for the next run).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupOrdersConfig {
    /// Off unless true.
    #[serde(default)]
    pub enabled: bool,
    /// The least time between two runs of the rules.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Orders placed at most per run, over every rule.
    #[serde(default = "default_max_orders")]
    pub max_orders_per_run: u32,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<GroupRule>,
}

/// One group and what its members' orders take.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    /// The group's IdP: entra or okta.
    pub idp: RestIdp,
    /// The group's id, or its name.
    pub group: String,
    /// YubiKey model.
    pub product_id: u32,
    /// Inventory bucket.
    pub inventory_product_id: u32,
    /// Customization id.
    pub customization_id: String,
    /// 1 normal, 2 expedited.
    #[serde(default = "default_delivery_type")]
    pub delivery_type: u32,
    /// PIN digits (0: the default 8).
    #[serde(default)]
    pub pin_length: u32,
    /// PIN recipients instead of the manager (Entra ID).
    #[serde(default)]
    pub emails_to: Vec<String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_max_orders() -> u32 {
    25
}

fn default_delivery_type() -> u32 {
    1
}

impl Default for GroupOrdersConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: default_interval(),
            max_orders_per_run: default_max_orders(),
            rules: Vec::new(),
        }
    }
}

impl Config {
    /// The rules of `[group_orders]`.
    pub(super) fn validate_group_orders(&self) -> Result<(), Error> {
        let bad = |key: String, reason: &str| {
            Err(Error::Config {
                key,
                reason: reason.into(),
            })
        };
        let g = &self.group_orders;
        if g.enabled && g.rules.is_empty() {
            return bad(
                "group_orders.rules".into(),
                "at least one rule when enabled",
            );
        }
        if !(1..=10_000).contains(&g.max_orders_per_run) {
            return bad("group_orders.max_orders_per_run".into(), "1 to 10000");
        }
        for (i, r) in g.rules.iter().enumerate() {
            if r.group.trim().is_empty() {
                return bad(
                    format!("group_orders.rules[{i}].group"),
                    "a group id or name",
                );
            }
            if r.idp == RestIdp::Okta && self.okta.is_none() {
                return bad(
                    format!("group_orders.rules[{i}].idp"),
                    "okta needs an [okta] section",
                );
            }
        }
        Ok(())
    }
}
