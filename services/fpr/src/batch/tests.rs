use super::*;

const HEADER: &str = "idp,upn,First Name,Last Name,email,phone,street,city,state,zip,country\n";

fn defaults() -> Fields {
    let mut d = Fields::default();
    d.set("product_id", Some("29"));
    d.set("inventory_product_id", Some("106"));
    d.set("customization_id", Some("RXJN83"));
    d
}

#[test]
fn good_rows_parse() {
    let text = format!(
        "{HEADER}entra,adele.vance@contoso.test,Adele,Vance,adele@contoso.test,555-0100,1 Main St,Dedham,MA,02026,US\n\
         okta,ada.lovelace@example.test,,,,,,,,,\n"
    );
    let (rows, bad) = parse(&text, &defaults(), "hr");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].line, 2);
    assert_eq!(rows[1].line, 3);
}

#[test]
fn every_bad_row_is_listed_with_line_and_column() {
    let text = format!(
        "{HEADER}entra,adele.vance@contoso.test,Adele,Vance,adele@contoso.test,555-0100,1 Main St,Dedham,MA,02026,US\n\
         entra,alex.wilber@contoso.test,Alexander-Maximilian,Wilber,alex@contoso.test,555-0100,1 Main St,Dedham,MA,02026,US\n\
         entra,diego@contoso.test,Diego,S,diego@contoso.test,call me,1 Main St,Dedham,Massachusetts,02026,US\n\
         entra,adele.vance@contoso.test,Adele,Vance,adele@contoso.test,555-0100,1 Main St,Dedham,MA,02026,US\n\
         entra,short,row\n"
    );
    let (rows, bad) = parse(&text, &defaults(), "hr");
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2]);
    let got: Vec<(u64, &str)> = bad
        .iter()
        .map(|b| (b.line, b.problem.column.as_str()))
        .collect();
    assert!(got.contains(&(3, "recipient_firstname")), "{bad:?}");
    assert!(got.contains(&(4, "recipient_telephone")), "{bad:?}");
    assert!(got.contains(&(4, "region")), "{bad:?}");
    assert!(got.contains(&(5, "user_id")), "{bad:?}");
    assert!(got.iter().any(|(l, _)| *l == 6), "{bad:?}");
    assert!(!got.iter().any(|(l, _)| *l == 2), "{bad:?}");
}

#[test]
fn unknown_columns_are_refused() {
    let (rows, bad) = parse("upn,favourite colour\nx,y\n", &defaults(), "hr");
    assert!(rows.is_empty());
    assert_eq!(bad[0].line, 1);
    assert_eq!(bad[0].problem.column, "favourite colour");
    let (_, bad) = parse("city\nDedham\n", &defaults(), "hr");
    assert_eq!(bad[0].problem.column, "user_id");
}
