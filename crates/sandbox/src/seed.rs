//! The users, inventory and counters a new sandbox starts with.

use crate::Config;
use crate::http::{guid, okta_id};
use crate::state::{Address, Bucket, Idp, State, User};

fn address(street: &str, city: &str, region: &str, postal: &str, country: &str) -> Address {
    Address {
        street: street.into(),
        city: city.into(),
        region: region.into(),
        postal_code: postal.into(),
        country: country.into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn user(
    idp: Idp,
    login: &str,
    given: &str,
    surname: &str,
    mail: &str,
    manager: Option<&str>,
    addr: Address,
    status: &str,
) -> User {
    User {
        id: match idp {
            Idp::Entra => guid(),
            Idp::Okta => okta_id("00u"),
        },
        idp,
        login: login.into(),
        given_name: given.into(),
        surname: surname.into(),
        mail: mail.into(),
        other_mails: Vec::new(),
        manager_id: manager.map(str::to_owned),
        phone: "+1 555 0100".into(),
        organization: "Contoso".into(),
        address: addr,
        status: status.into(),
    }
}

const GIVEN: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sofia", "Mateo", "Amara", "Kenji", "Priya",
    "Lars", "Ines", "Tomas", "Yara", "Omar",
];
const SURNAMES: &[&str] = &[
    "Johansson",
    "Garcia",
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Rossi",
    "Kowalski",
    "Tanaka",
    "Haddad",
    "Silva",
    "Murphy",
    "Novak",
];
const PLACES: &[(&str, &str, &str, &str)] = &[
    ("Seattle", "WA", "98101", "US"),
    ("Austin", "TX", "73301", "US"),
    ("Boston", "MA", "02108", "US"),
    ("Toronto", "ON", "M5H 2N2", "CA"),
    ("Denver", "CO", "80202", "US"),
];

/// The fixed seed: Entra users with managers (one manager without mail, one user without a
/// manager), Okta users (one staged, one with no street address), inventory, and `config.seed_users`
/// generated users.
pub fn initial_state(config: &Config) -> State {
    let mut st = State::default();
    st.next_serial = 30_000_000;
    let mut add = |u: User| {
        let id = u.id.clone();
        st.add_user(u);
        id
    };
    let us = |street: &str| address(street, "Dedham", "MA", "02026", "US");
    let megan = add(user(
        Idp::Entra,
        "megan.bowen@contoso.test",
        "Megan",
        "Bowen",
        "megan.bowen@contoso.test",
        None,
        us("1 Main Street"),
        "ACTIVE",
    ));
    let nestor = add(user(
        Idp::Entra,
        "nestor.wilke@contoso.test",
        "Nestor",
        "Wilke",
        "",
        None,
        us("2 Main Street"),
        "ACTIVE",
    ));
    for (login, given, surname) in [
        ("adele.vance", "Adele", "Vance"),
        ("alex.wilber", "Alex", "Wilber"),
        ("diego.siciliani", "Diego", "Siciliani"),
    ] {
        add(user(
            Idp::Entra,
            &format!("{login}@contoso.test"),
            given,
            surname,
            &format!("{login}@contoso.test"),
            Some(&megan),
            us("7788 Foxrun Street"),
            "ACTIVE",
        ));
    }
    add(user(
        Idp::Entra,
        "lee.gu@contoso.test",
        "Lee",
        "Gu",
        "lee.gu@contoso.test",
        None,
        us("12 Elm Street"),
        "ACTIVE",
    ));
    add(user(
        Idp::Entra,
        "johanna.lorenz@contoso.test",
        "Johanna",
        "Lorenz",
        "johanna.lorenz@contoso.test",
        Some(&nestor),
        us("3 Oak Street"),
        "ACTIVE",
    ));

    add(user(
        Idp::Okta,
        "ada.lovelace@example.test",
        "Ada",
        "Lovelace",
        "ada.lovelace@example.test",
        None,
        address("10 Analytical Way", "Boston", "MA", "02108", "US"),
        "ACTIVE",
    ));
    let mut grace = user(
        Idp::Okta,
        "grace.hopper@example.test",
        "Grace",
        "Hopper",
        "grace.hopper@example.test",
        None,
        address("5 Compiler Road", "Arlington", "VA", "22201", "US"),
        "STAGED",
    );
    grace.other_mails = vec!["grace.personal@example.net".into()];
    add(grace);
    add(user(
        Idp::Okta,
        "alan.turing@example.test",
        "Alan",
        "Turing",
        "alan.turing@example.test",
        None,
        address("", "Wilmslow", "", "SK9 5AB", "GB"),
        "ACTIVE",
    ));

    for i in 0..config.seed_users {
        let given = GIVEN[i % GIVEN.len()];
        let surname = SURNAMES[(i / GIVEN.len()) % SURNAMES.len()];
        let (city, region, postal, country) = PLACES[i % PLACES.len()];
        let idp = if i % 2 == 0 { Idp::Entra } else { Idp::Okta };
        let domain = if idp == Idp::Entra {
            "contoso.test"
        } else {
            "example.test"
        };
        let login = format!(
            "{}.{}{}@{domain}",
            given.to_lowercase(),
            surname.to_lowercase(),
            i
        );
        let manager = (idp == Idp::Entra).then_some(megan.as_str());
        let street = format!("{} Market Street", 100 + i);
        add(user(
            idp,
            &login,
            given,
            surname,
            &login,
            manager,
            address(&street, city, region, postal, country),
            "ACTIVE",
        ));
    }
    let fpr_models = fpr_domain::yubikey::fpr_product_ids();
    st.inventory = vec![
        Bucket {
            product_id: 106,
            name: "Primary Subscr - Adv. Plus Tier: Initial".into(),
            quantity: config.inventory_credits,
            mapping: fpr_models.clone(),
        },
        Bucket {
            product_id: 107,
            name: "Primary Subscr - Adv. Plus Tier: Replacement".into(),
            quantity: config.inventory_credits,
            mapping: fpr_models,
        },
        Bucket {
            product_id: 15,
            name: "Primary Subscr - Adv. Tier: Initial".into(),
            quantity: config.inventory_credits,
            mapping: vec![1, 2, 3, 4, 6, 7],
        },
    ];
    st
}
