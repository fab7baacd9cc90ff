//! Addresses a person can prove they own: email addresses and phone numbers.
//!
//! Both are parsed into the form codes are sent to, never merely reformatted: a phone
//! number is read with libphonenumber's numbering plans (the `rlibphonenumber` crate), so a
//! national trunk prefix is dropped and a number no plan allows is refused; an email
//! address must be one Amazon SES can deliver to (a 7-bit ASCII local part), and an
//! internationalised domain is kept in its punycode form.

use std::fmt;

use super::InvalidInput;

/// Longest email address (RFC 5321 path limit less the angle brackets), local part and
/// domain label, all counted in the ASCII form that is stored and sent.
const MAX_EMAIL_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;
/// A bound on the raw input before the domain goes through IDNA: generous for any spelling
/// of a 254-character address (a Unicode label may take 4 bytes a character), small
/// enough that no request makes the conversion expensive.
const MAX_RAW_EMAIL_LEN: usize = 1024;

/// An email address, trimmed and lower-cased, with its domain in ASCII (punycode): the
/// form it is stored, compared and sent in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Accepts what Amazon SES can deliver to. SES does not support SMTPUTF8 (RFC 6531),
    /// so the local part must be 7-bit ASCII; a domain with other characters is converted
    /// to punycode (UTS 46, as browsers and mail clients do) or refused when it cannot be.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = || InvalidInput::new("email", "is not a valid email address");
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > MAX_RAW_EMAIL_LEN {
            return Err(invalid());
        }
        let (local, domain) = trimmed.split_once('@').ok_or_else(invalid)?;
        if !local.is_ascii() {
            return Err(InvalidInput::new(
                "email",
                "has characters other than ASCII before the @, which email delivery does not support",
            ));
        }
        let local = local.to_ascii_lowercase();
        let local_ok = !local.is_empty()
            && local.len() <= MAX_LOCAL_LEN
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        if !local_ok {
            return Err(invalid());
        }
        let domain = ascii_domain(domain).ok_or_else(invalid)?;
        let email = format!("{local}@{domain}");
        if email.len() > MAX_EMAIL_LEN {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe for logs: first character of the local part and the domain.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or(("", &self.0));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// The domain in lower-case ASCII, internationalised labels in punycode, or `None` when it
/// is not a host name mail can be sent to.
fn ascii_domain(domain: &str) -> Option<String> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    // UTS 46 maps (lower-cases, normalises, reads full-width dots as dots), checks
    // `xn--` labels decode, and encodes the rest; ASCII input takes its fast path.
    let ascii = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .ok()?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    ok.then(|| ascii.into_owned())
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

/// A phone number in E.164, remembering where the country code ends so it can be shown
/// as `+86 13800000000`, the form the SDK sends and expects back.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    country_code: String,
    national: String,
}

/// Country calling codes of one and two digits; every other code has three. ITU codes
/// are prefix-free, so this is enough to split any E.164 number without the numbering
/// plans (see [`PhoneNumber::from_e164`]).
const SHORT_COUNTRY_CODES: &[&str] = &[
    "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
    "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// E.164 allows at most 15 digits, country code included.
const MAX_E164_DIGITS: usize = 15;

impl PhoneNumber {
    /// Accepts `+86 13800000000`, `+8613800000000` and, with the default country code,
    /// `13800000000`. Spaces, dashes, dots and parentheses are ignored. The number must be
    /// one its country's numbering plan allows; a national trunk prefix (the `0` of
    /// `+86 013800000000`) is removed. A number without `+` is read as dialled in the
    /// main region of `default_country_code`.
    pub fn parse(raw: &str, default_country_code: &str) -> Result<Self, InvalidInput> {
        let invalid = || InvalidInput::new("phone_number", "is not a valid phone number");
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 32 {
            return Err(invalid());
        }
        let (international, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        if !rest
            .chars()
            .all(|c| c.is_ascii_digit() || " -.()".contains(c))
        {
            return Err(invalid());
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        // Refusals that need no numbering plan come first: the plans are loaded on the
        // first number that gets this far (see `plan::parse`).
        if digits.len() < 3 || digits.len() > 17 || (international && digits.starts_with('0')) {
            return Err(invalid());
        }
        let (country_code, national) = if international {
            plan::parse(&digits, None)
        } else {
            plan::parse(&digits, Some(default_country_code))
        }
        .ok_or_else(invalid)?;
        if international {
            // `+86 138...`: where the caller put the first space must be where the
            // country code ends; a space elsewhere names no country.
            let explicit = rest
                .split_once(' ')
                .map(|(cc, _)| cc)
                .filter(|cc| !cc.is_empty() && cc.chars().all(|c| c.is_ascii_digit()));
            if explicit.is_some_and(|cc| cc != country_code) {
                return Err(invalid());
            }
        }
        if country_code.len() + national.len() > MAX_E164_DIGITS {
            return Err(invalid());
        }
        Ok(Self {
            country_code,
            national,
        })
    }

    /// `+8613800000000`: the stored and compared form.
    pub fn e164(&self) -> String {
        format!("+{}{}", self.country_code, self.national)
    }

    /// `+86 13800000000`: the form answered to clients.
    pub fn display(&self) -> String {
        format!("+{} {}", self.country_code, self.national)
    }

    /// The country calling code, digits only: `86` for `+86 13800000000`.
    pub fn country_code(&self) -> &str {
        &self.country_code
    }

    /// Reads the stored E.164 form back. Only its shape is checked, not the numbering
    /// plans: a number stored once stays readable when a plan changes, and reading a
    /// record never loads the plans.
    pub fn from_e164(stored: &str) -> Result<Self, InvalidInput> {
        let invalid = || InvalidInput::new("phone_number", "is not in E.164 form");
        let digits = stored.strip_prefix('+').ok_or_else(invalid)?;
        if digits.starts_with('0')
            || digits.len() > MAX_E164_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let cc_len = Self::country_code_len(digits);
        if digits.len() <= cc_len {
            return Err(invalid());
        }
        let (country_code, national) = digits.split_at(cc_len);
        Ok(Self {
            country_code: country_code.to_string(),
            national: national.to_string(),
        })
    }

    fn country_code_len(digits: &str) -> usize {
        (1..=2)
            .find(|&len| {
                digits
                    .get(..len)
                    .is_some_and(|prefix| SHORT_COUNTRY_CODES.contains(&prefix))
            })
            .unwrap_or(3)
    }

    /// Whether this process has loaded the numbering plans, which happens on the first
    /// number that gets past the checks of its shape (for tests of what loads them).
    #[doc(hidden)]
    pub fn plans_loaded() -> bool {
        plan::loaded()
    }

    /// A form safe for logs: country code and the last two digits.
    pub fn masked(&self) -> String {
        let tail = &self.national[self.national.len().saturating_sub(2)..];
        format!("+{} ***{tail}", self.country_code)
    }
}

/// The numbering plans: libphonenumber's metadata through `rlibphonenumber`, with its
/// `regex-lite` engine. Its first use costs about 4 ms in a release build (the `phonenumber`
/// crate took over 100 ms, checking every pattern of every region up front) and it adds
/// about half a MiB to a binary (2.3 MiB).
mod plan {
    use std::sync::atomic::{AtomicBool, Ordering};

    use rlibphonenumber::{PhoneNumber, PHONE_NUMBER_UTIL};

    static USED: AtomicBool = AtomicBool::new(false);

    /// Whether this process has touched the plans (they load on first use).
    pub(super) fn loaded() -> bool {
        USED.load(Ordering::Relaxed)
    }

    /// Parses digits (with no `+`: `default_country_code` is the calling code of the
    /// region they were dialled in; otherwise they start with the country code) into the
    /// country code and national significant number of a number its plan allows.
    pub(super) fn parse(
        digits: &str,
        default_country_code: Option<&str>,
    ) -> Option<(String, String)> {
        USED.store(true, Ordering::Relaxed);
        let parsed = match default_country_code {
            None => PHONE_NUMBER_UTIL.parse(format!("+{digits}"), None),
            Some(code) => {
                let code: i32 = code.parse().ok()?;
                match PHONE_NUMBER_UTIL.get_region_for_country_code(code) {
                    Some(region) => PHONE_NUMBER_UTIL
                        .parse(digits, Some(region))
                        // A calling code of no region (say +800): the digits follow it.
                        .or_else(|_| PHONE_NUMBER_UTIL.parse(format!("+{code}{digits}"), None)),
                    None => PHONE_NUMBER_UTIL.parse(format!("+{code}{digits}"), None),
                }
            }
        }
        .ok()?;
        let (code, national) = valid_parts(&parsed)?;
        // The E.164 form must read back as the same number, or it is refused, not stored.
        let again = PHONE_NUMBER_UTIL
            .parse(format!("+{code}{national}"), None)
            .ok()?;
        (valid_parts(&again)? == (code.clone(), national.clone())).then_some((code, national))
    }

    fn valid_parts(number: &PhoneNumber) -> Option<(String, String)> {
        if number.extension.as_deref().is_some_and(|e| !e.is_empty()) || !number.is_valid() {
            return None;
        }
        Some((
            number.country_code.to_string(),
            number.get_national_significant_number(),
        ))
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

/// An address a code can be sent to and an account can be bound to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    Email(Email),
    Phone(PhoneNumber),
}

impl Address {
    pub fn kind(&self) -> AddressKind {
        match self {
            Address::Email(_) => AddressKind::Email,
            Address::Phone(_) => AddressKind::Phone,
        }
    }

    /// The stored, normalised form: a lower-case email or an E.164 number.
    pub fn stored(&self) -> String {
        match self {
            Address::Email(email) => email.as_str().to_string(),
            Address::Phone(phone) => phone.e164(),
        }
    }

    pub fn from_stored(kind: AddressKind, stored: &str) -> Result<Self, InvalidInput> {
        match kind {
            AddressKind::Email => Email::parse(stored).map(Address::Email),
            AddressKind::Phone => PhoneNumber::from_e164(stored).map(Address::Phone),
        }
    }

    pub fn masked(&self) -> String {
        match self {
            Address::Email(email) => email.masked(),
            Address::Phone(phone) => phone.masked(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressKind {
    Email,
    Phone,
}

impl AddressKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::Email => "email",
            AddressKind::Phone => "phone",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "email" => Some(AddressKind::Email),
            "phone" => Some(AddressKind::Phone),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Test@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "test@example.com");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for raw in [
            "",
            "plain",
            "a@b",
            "@example.com",
            "a@.com",
            "a b@example.com",
            "a@-x.com",
            "a..b@x.com",
            "a@x_y.com",
            "a@x.com.",
            "a@b@x.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn a_local_part_ses_cannot_deliver_to_is_refused() {
        // SES has no SMTPUTF8: only 7-bit ASCII before the @, punycode or not.
        for raw in [
            "jörg@example.com",
            "用户@example.com",
            "ｕser@example.com",
            "user\u{200b}@example.com",
            "josé@bücher.de",
        ] {
            let refused = Email::parse(raw).expect_err(raw);
            assert_eq!(refused.field, "email");
        }
    }

    #[test]
    fn an_internationalised_domain_becomes_punycode() {
        for (raw, stored) in [
            ("user@bücher.de", "user@xn--bcher-kva.de"),
            ("User@BÜCHER.de", "user@xn--bcher-kva.de"),
            ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
            ("user@XN--BCHER-KVA.DE", "user@xn--bcher-kva.de"),
            ("user@例え.jp", "user@xn--r8jz45g.jp"),
            // Full-width dots are dots (UTS 46).
            ("user@例え。jp", "user@xn--r8jz45g.jp"),
        ] {
            let email = Email::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(email.as_str(), stored, "{raw:?}");
            assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            assert!(email.as_str().is_ascii());
        }
    }

    #[test]
    fn a_domain_that_cannot_be_converted_is_refused() {
        for raw in [
            // Not valid punycode.
            "user@xn--.de",
            "user@xn--ab-.de",
            // A character IDNA disallows, and a label that is too long once encoded.
            "user@a\u{fffd}b.de",
            &format!("user@{}.de", "ü".repeat(60)),
            // A label made of nothing once mapped (a soft hyphen maps to nothing).
            "user@\u{ad}.de",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn email_length_limits_hold_in_the_stored_form() {
        let local = "a".repeat(64);
        assert!(Email::parse(&format!("{local}@example.com")).is_ok());
        assert!(Email::parse(&format!("a{local}@example.com")).is_err());
        let label = "b".repeat(63);
        assert!(Email::parse(&format!("a@{label}.com")).is_ok());
        assert!(Email::parse(&format!("a@b{label}.com")).is_err());
        // 254 characters at most, counted after punycode.
        let domain = format!("{0}.{0}.{0}.{1}.com", "c".repeat(63), "c".repeat(56));
        let at_limit = format!("a@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        assert!(Email::parse(&format!("ab@{domain}")).is_err());
        // Short in Unicode, too long in punycode.
        let label: String = "äöüßéèêëïîôûç"
            .chars()
            .cycle()
            .take(14)
            .flat_map(|c| ['a', 'a', c])
            .collect();
        let long_unicode = format!("a@{0}.{0}.{0}.{0}.de", label);
        assert_eq!(long_unicode.len(), 232);
        assert!(Email::parse(&long_unicode).is_err());
        // Input far beyond any address is refused before the domain is converted.
        assert!(Email::parse(&format!("a@{}.de", "ü".repeat(5000))).is_err());
    }

    #[test]
    fn phone_numbers_in_every_sdk_form_normalise_to_e164() {
        for raw in [
            "+86 13800000000",
            "+8613800000000",
            "13800000000",
            "138-0000-0000",
            " +86 138 0000 0000 ",
            "+(86) 138.0000.0000",
        ] {
            let phone = PhoneNumber::parse(raw, "86").unwrap();
            assert_eq!(phone.e164(), "+8613800000000", "{raw:?}");
            assert_eq!(phone.display(), "+86 13800000000");
            assert_eq!(phone.country_code(), "86");
        }
    }

    #[test]
    fn a_national_trunk_prefix_is_not_part_of_the_number() {
        let plain = PhoneNumber::parse("+86 13800000000", "86").unwrap();
        for raw in ["+86 013800000000", "+86013800000000", "013800000000"] {
            let with_prefix = PhoneNumber::parse(raw, "86").unwrap();
            assert_eq!(with_prefix, plain, "{raw:?}");
            assert_eq!(with_prefix.e164(), "+8613800000000");
        }
        // Other plans' prefixes: UK and Japan 0, Russia 8.
        for (with, without) in [
            ("+44 07400 123456", "+44 7400 123456"),
            ("+81 090 1234 5678", "+81 90 1234 5678"),
            ("+7 8 912 345 6789", "+7 912 345 6789"),
        ] {
            assert_eq!(
                PhoneNumber::parse(with, "86").unwrap(),
                PhoneNumber::parse(without, "86").unwrap(),
                "{with:?}"
            );
        }
        // Italy's leading 0 belongs to the number and is kept.
        let rome = PhoneNumber::parse("+39 06 1234 5678", "86").unwrap();
        assert_eq!(rome.e164(), "+390612345678");
    }

    #[test]
    fn numbers_the_plan_does_not_allow_are_refused() {
        for raw in [
            "+86 123",
            "+86 12345678",
            // A mainland mobile with a digit too few or too many.
            "+86 1380000000",
            "+86 138000000000",
            // North America: no area code starts with 0 or 1; ten digits exactly.
            "+1 020 555 0100",
            "+1 120 555 0100",
            "+1 202 555 010",
            "+1 202 555 01000",
            // UK numbers reserved for drama, and Dublin with a digit missing.
            "+44 7700 900123",
            "+353 1 234567",
        ] {
            assert!(
                PhoneNumber::parse(raw, "86").is_err(),
                "{raw:?} was accepted"
            );
        }
    }

    #[test]
    fn a_number_is_accepted_only_if_its_e164_form_reads_back_as_itself() {
        // The `phonenumber` crate read `+7 888 169853018` as +7 8169853018 (taking `88` for
        // a trunk prefix), which read again is no number: such input is refused.
        assert!(PhoneNumber::parse("+7888169853018", "86").is_err());
    }

    #[test]
    fn north_american_numbers_follow_their_plan() {
        let dc = PhoneNumber::parse("+1 202 555 0100", "86").unwrap();
        assert_eq!(dc.e164(), "+12025550100");
        assert_eq!(dc.display(), "+1 2025550100");
        assert_eq!(dc.country_code(), "1");
        // Typed in the US (default code 1): with or without the trunk 1.
        assert_eq!(PhoneNumber::parse("(202) 555-0100", "1").unwrap(), dc);
        assert_eq!(PhoneNumber::parse("1 202 555 0100", "1").unwrap(), dc);
    }

    #[test]
    fn country_codes_are_split_without_a_space() {
        for (raw, display) in [
            ("+14155550100", "+1 4155550100"),
            ("+447400123456", "+44 7400123456"),
            ("+353851234567", "+353 851234567"),
            ("+8613912345678", "+86 13912345678"),
        ] {
            let phone = PhoneNumber::parse(raw, "86").unwrap();
            assert_eq!(phone.display(), display, "{raw:?}");
        }
    }

    #[test]
    fn a_country_code_that_does_not_exist_is_rejected() {
        assert!(PhoneNumber::parse("+12 3456789", "86").is_err());
        assert!(PhoneNumber::parse("+1 2345678901", "86").is_ok());
        // A space after the digits names the country code; it must be one.
        assert!(PhoneNumber::parse("+861 3800000000", "86").is_err());
    }

    #[test]
    fn without_a_plus_the_default_country_code_reads_the_number() {
        let uk = PhoneNumber::parse("07400 123456", "44").unwrap();
        assert_eq!(uk.e164(), "+447400123456");
        // Dialled from China with the international prefix.
        let from_china = PhoneNumber::parse("0044 7400 123456", "86").unwrap();
        assert_eq!(from_china, uk);
        // A code of no region (+800, international freephone).
        assert_eq!(
            PhoneNumber::parse("1234 5678", "800").unwrap().e164(),
            "+80012345678"
        );
        assert!(PhoneNumber::parse("13800000000", "999").is_err());
    }

    #[test]
    fn malformed_phone_numbers_are_rejected() {
        for raw in [
            "",
            "+",
            "abc",
            "+86 12",
            "+0 1234567",
            "+0086 13800000000",
            "+86 1380000000012345",
            "+86 138x0000000",
            "++8613800000000",
            "+86 13800000000 ext 5",
            "tel:+86-138-0000-0000",
            "+86 138 0000 0000 0000 0000 0000 00",
        ] {
            assert!(
                PhoneNumber::parse(raw, "86").is_err(),
                "{raw:?} was accepted"
            );
        }
    }

    #[test]
    fn stored_phone_numbers_round_trip() {
        for raw in ["+86 13800000000", "+39 06 1234 5678", "+1 202 555 0100"] {
            let phone = PhoneNumber::parse(raw, "86").unwrap();
            assert_eq!(PhoneNumber::from_e164(&phone.e164()).unwrap(), phone);
        }
    }

    #[test]
    fn stored_numbers_read_back_without_the_plans() {
        // Written before numbers were checked against the plans: still readable, so the
        // account holding one still loads (and can unbind it).
        let old = PhoneNumber::from_e164("+861234567").unwrap();
        assert_eq!(
            (old.country_code(), old.e164().as_str()),
            ("86", "+861234567")
        );
        for stored in [
            "",
            "8613800000000",
            "+",
            "+0861234567",
            "+86 138",
            "+1234567890123456",
        ] {
            assert!(PhoneNumber::from_e164(stored).is_err(), "{stored:?}");
        }
    }

    #[test]
    fn masked_forms_hide_the_address() {
        assert_eq!(
            Email::parse("alice@example.com").unwrap().masked(),
            "a***@example.com"
        );
        assert_eq!(
            PhoneNumber::parse("13800000042", "86").unwrap().masked(),
            "+86 ***42"
        );
    }
}
