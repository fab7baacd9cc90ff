//! Properties of every request parser and of email and phone normalisation, on generated
//! input: nothing panics, normal forms are fixed points, the SDK's spellings of one address
//! agree, and each parser accepts exactly what its documented rule says.
//!
//! `PROPTEST_CASES` sets the number of cases per property (256 by default).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use shared::domain::{
    Address, DisplayName, Email, LoginKey, Password, PhoneNumber, ProviderId, SecretToken, UserId,
    Username, VerificationCode, VerificationId,
};
use shared::http::operations::{
    bind_contact::ContactBody, grant_provider_token::ProviderTokenBody, refresh_token::TokenBody,
    send_verification::VerificationBody, sign_in::SignInBody, sign_up::SignUpBody, sudo::SudoBody,
    verify::VerifyBody,
};
use shared::http::wire::{one_address, ProviderTokenOnlyBody, RevokeBody};
use shared::ops::accounts::LoginName;
use shared::ops::providers::parse_provider_code;
use shared::ops::RefreshToken;

/// Numbers numbering plans allow, by construction: the calling code, a leading part the
/// plan assigns, the digits the next one may be, how many digits follow in all, and the
/// national trunk prefix a person may dial first ("" where there is none, or where a
/// leading 0 is part of the number, as in Italy). `fixed` marks plans whose numbers of that
/// kind have exactly that length, so a digit more or less is no number. Every template was
/// checked against the plans on thousands of samples; spread over 1, 2 and 3-digit codes.
#[derive(Debug)]
struct Plan {
    cc: &'static str,
    lead: &'static str,
    first: &'static str,
    rest: usize,
    trunk: &'static str,
    fixed: bool,
}

const PLANS: &[Plan] = &[
    plan("86", "13", "0123456789", 9, "0", true), // China, mobile
    plan("86", "18", "0123456789", 9, "0", true),
    plan("1", "202", "23456789", 7, "", true), // United States, Washington DC
    plan("1", "415", "23456789", 7, "", true),
    plan("7", "912", "0123456789", 7, "8", true), // Russia, mobile
    plan("44", "74", "0123456789", 8, "0", true), // United Kingdom, mobile
    plan("49", "151", "0123456789", 8, "0", true), // Germany, mobile
    plan("39", "06", "0123456789", 8, "", false), // Italy, Rome: the 0 stays
    plan("81", "90", "123456789", 8, "0", true),  // Japan, mobile
    plan("91", "98", "0123456789", 8, "0", true), // India, mobile
    plan("20", "10", "0123456789", 8, "0", true), // Egypt, mobile
    plan("27", "82", "0123456789", 7, "0", false), // South Africa, mobile
    plan("33", "61", "0123456789", 7, "0", true), // France, mobile
    plan("34", "6", "0123456789", 8, "", true),   // Spain, mobile
    plan("55", "119", "0123456789", 8, "0", true), // Brazil, São Paulo mobile
    plan("212", "61", "0123456789", 7, "0", true), // Morocco, mobile
    plan("353", "85", "0123456789", 7, "0", false), // Ireland, mobile
    plan("886", "9", "0123456789", 8, "0", true), // Taiwan, mobile
    plan("971", "50", "0123456789", 7, "0", true), // United Arab Emirates, mobile
    plan("998", "90", "0123456789", 7, "", true), // Uzbekistan, mobile
];

const fn plan(
    cc: &'static str,
    lead: &'static str,
    first: &'static str,
    rest: usize,
    trunk: &'static str,
    fixed: bool,
) -> Plan {
    Plan {
        cc,
        lead,
        first,
        rest,
        trunk,
        fixed,
    }
}

/// A number some plan allows: its plan and national significant number.
fn valid_number() -> impl Strategy<Value = (&'static Plan, String)> {
    valid_number_where(|_| true)
}

/// A number one of the plans that `pick` takes allows.
fn valid_number_where(pick: fn(&Plan) -> bool) -> impl Strategy<Value = (&'static Plan, String)> {
    let plans: Vec<usize> = (0..PLANS.len()).filter(|&i| pick(&PLANS[i])).collect();
    prop::sample::select(plans).prop_flat_map(|i| {
        let plan = &PLANS[i];
        let first = prop::sample::select(plan.first.chars().collect::<Vec<_>>());
        let rest = prop::collection::vec(0u8..10, plan.rest - 1);
        (first, rest).prop_map(move |(first, rest)| {
            let mut national = format!("{}{first}", plan.lead);
            national.extend(rest.into_iter().map(|d| char::from(b'0' + d)));
            (plan, national)
        })
    })
}

fn any_phone() -> impl Strategy<Value = (&'static str, String)> {
    valid_number().prop_map(|(plan, national)| (plan.cc, national))
}

/// How a person or the SDK may write a number, valid or one digit off: what
/// `phone_parse_never_panics_and_its_forms_are_consistent` feeds the parser besides noise.
fn phone_spelling() -> impl Strategy<Value = String> {
    (
        valid_number(),
        0u8..6,
        prop::collection::vec(any::<u8>(), 16),
        prop::sample::select(vec!["", "+", "00", "0"]),
    )
        .prop_map(|((plan, national), change, seps, start)| {
            let national = match change {
                0 => format!("{national}{}", national.len() % 10),
                1 => national[..national.len() - 1].to_string(),
                2 => format!("{}{national}", plan.trunk),
                _ => national,
            };
            let sprinkled = sprinkle(&national, &seps);
            match start {
                "+" => format!("+{} {sprinkled}", plan.cc),
                "00" => format!("00{}{sprinkled}", plan.cc),
                "0" => format!("{}{sprinkled}", plan.trunk),
                _ => sprinkled,
            }
        })
}

/// Whitespace `str::trim` removes, ASCII and not.
fn padding() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{a0}', '\u{3000}', '\u{2028}',
        ]),
        0..3,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Any text, biased towards the characters the parsers care about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[ +0-9().@a-zA-Z_.-]{0,40}",
        prop::collection::vec(any::<char>(), 0..600).prop_map(|c| c.into_iter().collect()),
    ]
}

fn email_parts() -> impl Strategy<Value = (String, String)> {
    (
        "[a-zA-Z0-9_+-]{1,10}(\\.[a-zA-Z0-9_+-]{1,10}){0,2}",
        "[a-zA-Z0-9]{1,10}(-[a-zA-Z0-9]{1,5})?(\\.[a-zA-Z]{2,6}){1,2}",
    )
}

/// A domain as people type it in several scripts (left-to-right ones: the bidi rule is not
/// what is tested), with a Unicode or ASCII top-level domain.
fn idn_domain() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-z0-9äöüéñçøåαβγδεжзкирлц例え日本語中文]{1,10}", 1..3),
        prop::sample::select(vec!["de", "jp", "com", "中国", "рф"]),
    )
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

/// Characters SES cannot take in a local part: anything beyond 7-bit ASCII.
fn non_ascii_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            'ö', 'é', 'ñ', 'ß', 'α', 'ж', '例', '\u{200b}', '\u{ff41}', '😀'
        ]),
        // Whitespace at either end is trimmed, and then not part of the address.
        any::<char>().prop_filter("not ASCII", |c| !c.is_ascii() && !c.is_whitespace()),
    ]
}

/// Addresses, deliverable or not: ASCII, internationalised domains, non-ASCII local parts.
fn email_spelling() -> impl Strategy<Value = String> {
    prop_oneof![
        email_parts().prop_map(|(local, domain)| format!("{local}@{domain}")),
        (email_parts(), idn_domain()).prop_map(|((local, _), domain)| format!("{local}@{domain}")),
        (
            email_parts(),
            non_ascii_char(),
            any::<prop::sample::Index>()
        )
            .prop_map(|((local, domain), c, at)| {
                let mut local: Vec<char> = local.chars().collect();
                local.insert(at.index(local.len() + 1), c);
                format!("{}@{domain}", local.into_iter().collect::<String>())
            }),
    ]
}

/// Separators the SDK or a person may put between digits of the national number.
fn sprinkle(national: &str, seps: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in national.chars().enumerate() {
        if i > 0 {
            match seps.get(i).copied().unwrap_or(0) % 6 {
                1 => out.push('-'),
                2 => out.push(' '),
                3 => out.push('.'),
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

proptest! {
    // ---- email --------------------------------------------------------------------------

    #[test]
    fn email_parse_never_panics_and_normal_forms_are_fixed_points(
        raw in prop_oneof![text(), email_spelling()],
    ) {
        if let Ok(email) = Email::parse(&raw) {
            let stored = email.as_str();
            prop_assert_eq!(stored, stored.trim());
            prop_assert_eq!(stored.to_lowercase(), stored);
            // What SES takes: 7-bit ASCII throughout, the domain in punycode.
            prop_assert!(stored.is_ascii(), "{}", stored);
            prop_assert!(stored.len() <= 254 && stored.contains('@'));
            prop_assert_eq!(Email::parse(stored), Ok(email.clone()));
            let masked = email.masked();
            prop_assert!(!masked.contains(stored), "{} shows {}", masked, stored);
            let (local, _) = stored.split_once('@').unwrap();
            prop_assert!(local.len() < 2 || !masked.contains(&format!("{local}@")), "{} shows {}", masked, local);
        }
    }

    #[test]
    fn local_parts_beyond_ascii_are_refused(raw in email_spelling()) {
        let (local, _) = raw.split_once('@').unwrap();
        if !local.is_ascii() {
            prop_assert!(Email::parse(&raw).is_err(), "{:?} was accepted", raw);
        }
    }

    #[test]
    fn internationalised_domains_are_stored_in_punycode(
        (local, _) in email_parts(),
        domain in idn_domain(),
        upper in any::<bool>(),
    ) {
        let typed = if upper { domain.to_uppercase() } else { domain.clone() };
        let email = Email::parse(&format!("{local}@{typed}")).expect("a deliverable address");
        let (stored_local, stored_domain) = email.as_str().split_once('@').unwrap();
        prop_assert_eq!(stored_local, local.to_ascii_lowercase());
        for (label, typed_label) in stored_domain.split('.').zip(domain.split('.')) {
            prop_assert!(label.is_ascii());
            prop_assert_eq!(label.starts_with("xn--"), !typed_label.is_ascii(), "{}", label);
        }
        // The punycode reads back as the domain typed, in lower case.
        let (unicode, errors) = idna::domain_to_unicode(stored_domain);
        prop_assert!(errors.is_ok());
        prop_assert_eq!(unicode, domain);
        prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
    }

    #[test]
    fn emails_compare_case_insensitively_after_trimming(
        (local, domain) in email_parts(),
        flips in prop::collection::vec(any::<bool>(), 64),
        (left, right) in (padding(), padding()),
    ) {
        let plain = format!("{local}@{domain}");
        let mixed: String = plain
            .chars()
            .zip(flips.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let lower = Email::parse(&plain.to_lowercase()).expect("a plain address");
        prop_assert_eq!(Email::parse(&plain.to_uppercase()), Ok(lower.clone()));
        prop_assert_eq!(Email::parse(&format!("{left}{mixed}{right}")), Ok(lower.clone()));
        prop_assert_eq!(lower.as_str(), plain.to_lowercase());
    }

    // ---- phone numbers ------------------------------------------------------------------

    #[test]
    fn phone_parse_never_panics_and_its_forms_are_consistent(
        raw in prop_oneof![text(), phone_spelling(), "\\+?[1-9][0-9]{2,16}"],
        cc in prop_oneof![
            "[1-9][0-9]{0,2}",
            prop::sample::select(PLANS.iter().map(|p| p.cc).collect::<Vec<_>>()).prop_map(String::from),
        ],
    ) {
        if let Ok(phone) = PhoneNumber::parse(&raw, &cc) {
            let e164 = phone.e164();
            let digits = e164.len() - 1;
            prop_assert!(e164.starts_with('+') && !e164.starts_with("+0"));
            prop_assert!(digits <= 15, "{}", e164);
            prop_assert!(e164[1..].bytes().all(|b| b.is_ascii_digit()));
            let (cc_shown, _) = phone.display().split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
            prop_assert_eq!(cc_shown, format!("+{}", phone.country_code()));
            // The display form reads back as the same number whatever the default.
            prop_assert_eq!(PhoneNumber::parse(&phone.display(), "1"), Ok(phone.clone()));
            prop_assert_eq!(PhoneNumber::parse(&e164, "1"), Ok(phone.clone()));
            // The stored form always reads back to the same number.
            let stored = PhoneNumber::from_e164(&e164).expect("a stored number reads back");
            prop_assert_eq!(&stored, &phone);
            // The log form hides the number.
            let masked = phone.masked();
            let national = &e164[1 + phone.country_code().len()..];
            prop_assert!(!masked.contains(national), "{} shows {}", masked, national);
            prop_assert!(!masked.contains(&e164[1..]));
        }
    }

    #[test]
    fn e164_round_trips_for_assigned_country_codes((cc, national) in any_phone()) {
        let phone = PhoneNumber::parse(&format!("+{cc} {national}"), "86").expect("valid");
        prop_assert_eq!(phone.e164(), format!("+{cc}{national}"));
        prop_assert_eq!(phone.display(), format!("+{cc} {national}"));
        prop_assert_eq!(PhoneNumber::from_e164(&phone.e164()), Ok(phone.clone()));
        let address = Address::Phone(phone.clone());
        prop_assert_eq!(
            Address::from_stored(address.kind(), &address.stored()), Ok(address.clone())
        );
    }

    #[test]
    fn every_sdk_spelling_of_a_number_normalises_to_the_same_value(
        (cc, national) in any_phone(),
        seps in prop::collection::vec(any::<u8>(), 16),
        (left, right) in (padding(), padding()),
    ) {
        let expected = PhoneNumber::parse(&format!("+{cc} {national}"), "86").expect("valid");
        let sprinkled = sprinkle(&national, &seps);
        // getVerification and password sign-in: `+<cc> <national>`, however punctuated.
        let international = [
            format!("+{cc} {national}"),
            format!("+{cc}{national}"),
            format!("+{cc} {sprinkled}"),
            format!("{left}+{cc} {national}{right}"),
            format!("+({cc}) {national}"),
        ];
        for spelling in &international {
            prop_assert_eq!(PhoneNumber::parse(spelling, "86"), Ok(expected.clone()), "{:?}", spelling);
        }
        // bindPhoneNumber sends the number as typed: without a country code, the default.
        let as_typed = [
            national.clone(),
            format!("{left}{sprinkled}{right}"),
            format!("({national})"),
        ];
        for spelling in &as_typed {
            prop_assert_eq!(PhoneNumber::parse(spelling, cc), Ok(expected.clone()), "{:?}", spelling);
        }
    }

    #[test]
    fn a_trunk_prefix_is_dropped_however_the_number_is_written(
        (plan, national) in valid_number_where(|plan| !plan.trunk.is_empty()),
        seps in prop::collection::vec(any::<u8>(), 16),
    ) {
        let cc = plan.cc;
        let expected = PhoneNumber::parse(&format!("+{cc} {national}"), "86").expect("valid");
        let with_trunk = format!("{}{national}", plan.trunk);
        for spelling in [
            format!("+{cc} {with_trunk}"),
            format!("+{cc}{with_trunk}"),
            format!("+{cc} {}", sprinkle(&with_trunk, &seps)),
        ] {
            prop_assert_eq!(PhoneNumber::parse(&spelling, "86"), Ok(expected.clone()), "{:?}", spelling);
        }
        // As dialled at home: trunk prefix and national number.
        prop_assert_eq!(PhoneNumber::parse(&with_trunk, cc), Ok(expected.clone()));
    }

    #[test]
    fn a_digit_more_or_less_is_no_number(
        (plan, national) in valid_number_where(|plan| plan.fixed),
        extra in 0u8..10,
    ) {
        let cc = plan.cc;
        let longer = format!("+{cc} {national}{extra}");
        let shorter = format!("+{cc} {}", &national[..national.len() - 1]);
        prop_assert!(PhoneNumber::parse(&longer, "86").is_err(), "{:?} was accepted", longer);
        prop_assert!(PhoneNumber::parse(&shorter, "86").is_err(), "{:?} was accepted", shorter);
    }

    #[test]
    fn numbers_beyond_15_digits_and_short_numbers_are_refused(
        (cc, national) in any_phone(),
        len in 0usize..24,
    ) {
        // Whatever the plan, E.164 has at most 15 digits, and no plan has numbers of 3.
        let digits = "5".repeat(len);
        let total = cc.len() + len;
        if !(4..=15).contains(&total) {
            let raw = format!("+{cc} {digits}");
            prop_assert!(PhoneNumber::parse(&raw, "86").is_err(), "{:?} was accepted", raw);
        }
        let padded = format!("+{cc} {national}{}", "0".repeat(16usize.saturating_sub(cc.len() + national.len())));
        prop_assert!(PhoneNumber::parse(&padded, "86").is_err(), "{:?} was accepted", padded);
    }

    // ---- other typed values -------------------------------------------------------------

    #[test]
    fn usernames_are_trimmed_lower_case_and_fixed_points(raw in text()) {
        if let Ok(name) = Username::parse(&raw) {
            let s = name.as_str();
            prop_assert!((3..=32).contains(&s.len()));
            prop_assert!(s.starts_with(|c: char| c.is_ascii_lowercase()));
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b)));
            prop_assert_eq!(Username::parse(s), Ok(name.clone()));
        }
    }

    #[test]
    fn usernames_ignore_ascii_case_and_padding(
        name in "[a-zA-Z][a-zA-Z0-9_.-]{2,31}",
        (left, right) in (padding(), padding()),
    ) {
        let lower = Username::parse(&name.to_lowercase()).expect("a valid name");
        prop_assert_eq!(Username::parse(&format!("{left}{name}{right}")), Ok(lower.clone()));
        prop_assert_eq!(Username::parse(&name.to_uppercase()), Ok(lower.clone()));
    }

    #[test]
    fn display_names_are_trimmed_and_fixed_points(raw in text()) {
        if let Ok(name) = DisplayName::parse(&raw) {
            let s = name.as_str();
            prop_assert_eq!(s, s.trim());
            prop_assert!(!s.is_empty() && s.chars().count() <= 64);
            prop_assert!(!s.chars().any(char::is_control));
            prop_assert_eq!(DisplayName::parse(s), Ok(name.clone()));
        }
    }

    #[test]
    fn verification_codes_are_exactly_six_digits(raw in prop_oneof![text(), "[0-9]{4,8}"], (left, right) in (padding(), padding())) {
        let padded = format!("{left}{raw}{right}");
        let six = raw.trim().len() == 6 && raw.trim().bytes().all(|b| b.is_ascii_digit());
        let parsed = VerificationCode::parse(&padded);
        prop_assert_eq!(parsed.is_ok(), six);
        if let Ok(code) = parsed {
            prop_assert_eq!(code.expose(), raw.trim());
        }
    }

    #[test]
    fn secret_tokens_are_1_to_512_printable_ascii_after_trimming(raw in text(), long in "[!-~]{500,520}") {
        for candidate in [&raw, &long] {
            let trimmed = candidate.trim();
            let expected = !trimmed.is_empty() && trimmed.len() <= 512 && trimmed.bytes().all(|b| b.is_ascii_graphic());
            let parsed = SecretToken::parse("token", candidate);
            prop_assert_eq!(parsed.is_ok(), expected);
            if let Ok(token) = parsed {
                prop_assert_eq!(token.expose(), trimmed);
                prop_assert_eq!(SecretToken::parse("token", token.expose()).map(|t| t.expose().to_string()), Ok(trimmed.to_string()));
            }
            prop_assert_eq!(parse_provider_code(candidate).ok(), expected.then(|| trimmed.to_string()));
        }
    }

    #[test]
    fn passwords_are_1_to_256_bytes_untrimmed(raw in text()) {
        let parsed = Password::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), (1..=256).contains(&raw.len()));
        if let Ok(password) = parsed {
            prop_assert_eq!(password.expose(), raw.as_str());
            prop_assert_eq!(password.char_count(), raw.chars().count());
        }
    }

    #[test]
    fn identifiers_are_32_lower_case_hex(raw in prop_oneof![text(), "[0-9a-fA-F]{30,34}"]) {
        let expected = raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        prop_assert_eq!(VerificationId::parse(&raw).is_ok(), expected);
        prop_assert_eq!(UserId::parse(&raw).is_ok(), expected);
        if let Ok(id) = VerificationId::parse(&raw) {
            prop_assert_eq!(id.as_str(), raw.as_str());
        }
    }

    #[test]
    fn provider_ids_are_wx_open_only(raw in prop_oneof![text(), Just("wx_open".to_string())], (left, right) in (padding(), padding())) {
        let padded = format!("{left}{raw}{right}");
        prop_assert_eq!(ProviderId::parse(&padded).ok(), (raw.trim() == "wx_open").then_some(ProviderId::WxOpen));
    }

    #[test]
    fn refresh_tokens_round_trip(session in "[0-9a-f]{32}", secret in "[!-~]{1,100}", raw in text()) {
        let token = RefreshToken::parse(&format!("{session}.{secret}")).expect("a refresh token");
        prop_assert_eq!(token.session_id.as_str(), session.as_str());
        let again = RefreshToken::parse(&token.expose()).expect("its own form");
        prop_assert_eq!(&again.session_id, &token.session_id);
        prop_assert_eq!(again.secret.expose(), token.secret.expose());
        // The form that names the account reads back the same.
        let user = UserId::generate();
        let named = RefreshToken::parse(&format!("{session}.{}.{secret}", user.as_str())).expect("a refresh token");
        prop_assert_eq!(named.user_id.as_ref(), Some(&user));
        prop_assert_eq!(named.secret.expose(), secret.trim());
        prop_assert_eq!(RefreshToken::parse(&named.expose()).expect("its own form").expose(), named.expose());
        // Anything else never panics, and what it accepts reads back the same.
        if let Ok(other) = RefreshToken::parse(&raw) {
            let again = RefreshToken::parse(&other.expose()).expect("its own form");
            prop_assert_eq!(again.expose(), other.expose());
        }
    }

    #[test]
    fn sign_in_names_agree_with_the_typed_parsers(raw in text(), (local, domain) in email_parts(), (cc, national) in any_phone()) {
        for candidate in [raw.clone(), format!("{local}@{domain}"), format!("+{cc} {national}"), national.clone()] {
            let Ok(login) = LoginName::parse(&candidate, "86") else { continue };
            match login.0 {
                LoginKey::Address(Address::Email(email)) => {
                    prop_assert_eq!(Email::parse(&candidate), Ok(email));
                }
                LoginKey::Address(Address::Phone(phone)) => {
                    prop_assert_eq!(PhoneNumber::parse(&candidate, "86"), Ok(phone));
                }
                LoginKey::Username(name) => {
                    prop_assert_eq!(Username::parse(&candidate), Ok(name));
                }
                LoginKey::Provider(..) | LoginKey::ProviderApp(..) => {
                    prop_assert!(false, "a sign-in name is never a provider")
                }
                LoginKey::Custom(_) => prop_assert!(false, "a sign-in name is never a custom uid"),
            }
        }
        // Every accepted email and phone number is a sign-in name for the same address.
        let email = format!("{local}@{domain}");
        prop_assert_eq!(
            LoginName::parse(&email, "86").map(|l| l.0),
            Ok(LoginKey::Address(Address::Email(Email::parse(&email).unwrap())))
        );
        let phone = format!("+{cc} {national}");
        prop_assert_eq!(
            LoginName::parse(&phone, "86").map(|l| l.0),
            Ok(LoginKey::Address(Address::Phone(PhoneNumber::parse(&phone, "86").unwrap())))
        );
    }

    #[test]
    fn one_address_takes_exactly_one_of_email_and_phone(email in prop::option::of(text()), phone in prop::option::of(text())) {
        let result = one_address(email.clone(), phone.clone(), "86");
        match (&email, &phone) {
            (Some(e), None) => prop_assert_eq!(result.ok(), Email::parse(e).ok().map(Address::Email)),
            (None, Some(p)) => prop_assert_eq!(result.ok(), PhoneNumber::parse(p, "86").ok().map(Address::Phone)),
            _ => prop_assert!(result.is_err()),
        }
    }
}

// ---- request bodies ---------------------------------------------------------------------

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body with some of `fields` (as any JSON value) and some unknown keys.
fn body_object(fields: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::collection::btree_map(prop::sample::select(fields), json_value(), 0..=fields.len()),
        prop::collection::btree_map("x_[a-z]{1,8}", json_value(), 0..3),
    )
        .prop_map(|(known, unknown)| {
            known
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .chain(unknown)
                .collect()
        })
}

/// The server's reading of a body: unknown keys are ignored and `null` is absent, so a
/// body deserialises exactly when every known field holds a string or null.
fn fields_are_strings_or_null(body: &Map<String, Value>, fields: &[&str]) -> bool {
    fields
        .iter()
        .all(|f| matches!(body.get(*f), None | Some(Value::Null | Value::String(_))))
}

macro_rules! body_property {
    ($name:ident, $ty:ty, $fields:expr) => {
        proptest! {
            #[test]
            fn $name(body in body_object($fields)) {
                let text = Value::Object(body.clone()).to_string();
                let parsed = serde_json::from_str::<$ty>(&text);
                prop_assert_eq!(parsed.is_ok(), fields_are_strings_or_null(&body, $fields), "{}", text);
            }
        }
    };
}

body_property!(
    sign_up_bodies_are_read_leniently,
    SignUpBody,
    &[
        "username",
        "email",
        "phone_number",
        "verification_token",
        "provider_token",
        "password",
        "name"
    ]
);
body_property!(
    sign_in_bodies_are_read_leniently,
    SignInBody,
    &["username", "password", "verification_token"]
);
body_property!(
    token_bodies_are_read_leniently,
    TokenBody,
    &["grant_type", "refresh_token"]
);
body_property!(revoke_bodies_are_read_leniently, RevokeBody, &["token"]);
body_property!(
    sudo_bodies_are_read_leniently,
    SudoBody,
    &["password", "verification_token"]
);
body_property!(
    verification_bodies_are_read_leniently,
    VerificationBody,
    &["email", "phone_number", "target"]
);
body_property!(
    verify_bodies_are_read_leniently,
    VerifyBody,
    &["verification_id", "verification_code"]
);
body_property!(
    provider_token_bodies_are_read_leniently,
    ProviderTokenBody,
    &["provider_id", "provider_code", "provider_redirect_uri"]
);
body_property!(
    provider_token_only_bodies_are_read_leniently,
    ProviderTokenOnlyBody,
    &["provider_token"]
);

proptest! {
    /// `sudo_token` is a string or `auth.sudo()`'s whole answer `{sudo_token, ...}`.
    #[test]
    fn contact_bodies_take_the_sudo_token_in_both_shapes(
        body in body_object(&["verification_token", "email", "phone_number"]),
        sudo in prop_oneof![
            json_value(),
            ("[!-~]{1,40}", json_value()).prop_map(|(t, extra)| json!({"sudo_token": t, "expires_in": extra})),
        ],
        with_sudo in any::<bool>(),
    ) {
        let mut body = body;
        if with_sudo {
            body.insert("sudo_token".into(), sudo.clone());
        }
        let text = Value::Object(body.clone()).to_string();
        let sudo_ok = !with_sudo
            || match &sudo {
                Value::Null | Value::String(_) => true,
                Value::Object(o) => matches!(o.get("sudo_token"), Some(Value::String(_))),
                _ => false,
            };
        let expected = sudo_ok && fields_are_strings_or_null(&body, &["verification_token", "email", "phone_number"]);
        let parsed = serde_json::from_str::<ContactBody>(&text);
        prop_assert_eq!(parsed.is_ok(), expected, "{}", text);
        if let (Ok(parsed), Some(Value::String(t))) = (parsed, body.get("sudo_token")) {
            prop_assert_eq!(parsed.sudo_token.map(|s| s.into_inner()), Some(t.clone()));
        }
    }

    /// Arbitrary text never panics a body parser.
    #[test]
    fn body_parsers_never_panic_on_any_text(raw in prop_oneof![text(), json_value().prop_map(|v| v.to_string())]) {
        let _ = serde_json::from_str::<SignUpBody>(&raw);
        let _ = serde_json::from_str::<SignInBody>(&raw);
        let _ = serde_json::from_str::<TokenBody>(&raw);
        let _ = serde_json::from_str::<RevokeBody>(&raw);
        let _ = serde_json::from_str::<SudoBody>(&raw);
        let _ = serde_json::from_str::<VerificationBody>(&raw);
        let _ = serde_json::from_str::<VerifyBody>(&raw);
        let _ = serde_json::from_str::<ContactBody>(&raw);
        let _ = serde_json::from_str::<ProviderTokenBody>(&raw);
        let _ = serde_json::from_str::<ProviderTokenOnlyBody>(&raw);
    }
}
