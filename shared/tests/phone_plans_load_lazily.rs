//! The numbering plans cost a few milliseconds to load (libphonenumber's metadata), so a
//! process loads them on the first phone number it
//! parses and never for anything else: email addresses, stored numbers read back from a
//! record, and numbers refused on their shape alone. One test in a process of its own, as the
//! plans, once loaded, stay loaded.

use shared::domain::{Address, AddressKind, Email, PhoneNumber};

fn plans_loaded() -> bool {
    PhoneNumber::plans_loaded()
}

#[test]
fn only_parsing_a_phone_number_loads_the_numbering_plans() {
    assert!(!plans_loaded());
    Email::parse("alice@bücher.de").unwrap();
    assert!(Email::parse("jörg@example.com").is_err());
    // Reading records: a stored number comes back without the plans.
    let stored = PhoneNumber::from_e164("+8613800000000").unwrap();
    assert_eq!(stored.display(), "+86 13800000000");
    Address::from_stored(AddressKind::Phone, "+8613800000000").unwrap();
    // Refused on their shape: no plan needed.
    for raw in [
        "",
        "abc",
        "+",
        "+0 1234567",
        "++86 138",
        "12",
        "+86 138x0000000",
        "+86 1380000000012345678",
    ] {
        assert!(PhoneNumber::parse(raw, "86").is_err(), "{raw:?}");
    }
    assert!(
        !plans_loaded(),
        "the plans were loaded without a phone number to read"
    );
    PhoneNumber::parse("+86 13800000000", "86").unwrap();
    assert!(plans_loaded());
}
