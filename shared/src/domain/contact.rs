//! Addresses a person can prove they own: email addresses and phone numbers.

use std::fmt;

use super::InvalidInput;

/// An email address, trimmed and lower-cased: the form it is stored and compared in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let email = raw.trim().to_lowercase();
        let invalid = || InvalidInput::new("email", "is not a valid email address");
        if email.is_empty() || email.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(email))
        } else {
            Err(invalid())
        }
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
/// are prefix-free, so this is enough to split any E.164 number.
const SHORT_COUNTRY_CODES: &[&str] = &[
    "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
    "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

impl PhoneNumber {
    /// Accepts `+86 13800000000`, `+8613800000000` and, with the default country code,
    /// `13800000000`. Spaces, dashes, dots and parentheses are ignored.
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
        let (country_code, national) = if international {
            // `+86 138...`: the caller marked where the country code ends.
            let explicit = rest
                .split_once(' ')
                .map(|(cc, _)| cc)
                .filter(|cc| !cc.is_empty() && cc.chars().all(|c| c.is_ascii_digit()));
            let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
            // Country codes are prefix-free: the digits alone decide where the code ends, and
            // a space the caller put elsewhere names no country.
            let cc_len = Self::country_code_len(&digits);
            if explicit.is_some_and(|cc| cc.len() != cc_len) {
                return Err(invalid());
            }
            if digits.len() <= cc_len {
                return Err(invalid());
            }
            let (cc, national) = digits.split_at(cc_len);
            (cc.to_string(), national.to_string())
        } else {
            let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
            (default_country_code.to_string(), digits)
        };
        let total = country_code.len() + national.len();
        if country_code.starts_with('0')
            || country_code.is_empty()
            || national.len() < 4
            || !(7..=15).contains(&total)
        {
            return Err(invalid());
        }
        Ok(Self {
            country_code,
            national,
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

    /// The country calling code, without `+`: `86`.
    pub fn country_code(&self) -> &str {
        &self.country_code
    }

    /// `+8613800000000`: the stored and compared form.
    pub fn e164(&self) -> String {
        format!("+{}{}", self.country_code, self.national)
    }

    /// `+86 13800000000`: the form answered to clients.
    pub fn display(&self) -> String {
        format!("+{} {}", self.country_code, self.national)
    }

    /// Parses the stored E.164 form back.
    pub fn from_e164(stored: &str) -> Result<Self, InvalidInput> {
        if !stored.starts_with('+') {
            return Err(InvalidInput::new("phone_number", "is not in E.164 form"));
        }
        Self::parse(stored, "")
    }

    /// A form safe for logs: country code and the last two digits.
    pub fn masked(&self) -> String {
        let tail = &self.national[self.national.len().saturating_sub(2)..];
        format!("+{} ***{tail}", self.country_code)
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
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn phone_numbers_in_every_sdk_form_normalise_to_e164() {
        for raw in [
            "+86 13800000000",
            "+8613800000000",
            "13800000000",
            "138-0000-0000",
        ] {
            let phone = PhoneNumber::parse(raw, "86").unwrap();
            assert_eq!(phone.e164(), "+8613800000000", "{raw:?}");
            assert_eq!(phone.display(), "+86 13800000000");
        }
    }

    #[test]
    fn country_codes_are_split_without_a_space() {
        assert_eq!(
            PhoneNumber::parse("+14155550100", "86").unwrap().display(),
            "+1 4155550100"
        );
        assert_eq!(
            PhoneNumber::parse("+447700900123", "86").unwrap().display(),
            "+44 7700900123"
        );
        assert_eq!(
            PhoneNumber::parse("+3531234567", "86").unwrap().display(),
            "+353 1234567"
        );
    }

    #[test]
    fn a_country_code_that_does_not_exist_is_rejected() {
        assert!(PhoneNumber::parse("+12 3456789", "86").is_err());
        assert!(PhoneNumber::parse("+1 2345678901", "86").is_ok());
    }

    #[test]
    fn malformed_phone_numbers_are_rejected() {
        for raw in [
            "",
            "+",
            "abc",
            "+86 12",
            "+0 1234567",
            "+86 1380000000012345",
            "+86 138x0000000",
            "++8613800000000",
        ] {
            assert!(
                PhoneNumber::parse(raw, "86").is_err(),
                "{raw:?} was accepted"
            );
        }
    }

    #[test]
    fn stored_phone_numbers_round_trip() {
        let phone = PhoneNumber::parse("+86 13800000000", "86").unwrap();
        assert_eq!(PhoneNumber::from_e164(&phone.e164()).unwrap(), phone);
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
