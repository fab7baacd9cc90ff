//! The profile fields a user edits about themselves: a picture and a gender. Both are shown
//! to other parts of an app, so they are parsed strictly here and stored only in this form.

use super::InvalidInput;

/// The longest picture URL kept: enough for any CDN path with a signature, short enough that
/// the field cannot be used to store data.
pub const MAX_PICTURE_URL: usize = 1024;

/// A picture URL: `https` only (an `http` or `javascript:` URL would be fetched or run as is by
/// whatever renders it), at most `MAX_PICTURE_URL` bytes, with a host and no whitespace,
/// control characters, quotes or angle brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture(String);

impl Picture {
    /// `field` names the key the value came in (`avatar_url` or `picture`).
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let url = raw.trim();
        let rest = url
            .strip_prefix("https://")
            .ok_or(InvalidInput::new(field, "must be an https URL"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if url.len() > MAX_PICTURE_URL {
            return Err(InvalidInput::new(field, "must be at most 1024 bytes"));
        }
        let clean = url
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"\"'<>\\`".contains(c));
        if host.is_empty() || host.starts_with(['.', ':', '@']) || !clean {
            return Err(InvalidInput::new(
                field,
                "must be an https URL with a host and no spaces, quotes or control characters",
            ));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The genders the SDK sends and reads (`user.gender`): `MALE` and `FEMALE`. `UNKNOWN` (also
/// accepted) clears it, and an account without one answers `UNKNOWN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    /// `Ok(None)` for `UNKNOWN`.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidInput> {
        match raw.trim() {
            "MALE" => Ok(Some(Gender::Male)),
            "FEMALE" => Ok(Some(Gender::Female)),
            "UNKNOWN" => Ok(None),
            _ => Err(InvalidInput::new(
                "gender",
                "must be MALE, FEMALE or UNKNOWN",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "MALE",
            Gender::Female => "FEMALE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_https_urls_with_a_host_and_nothing_that_breaks_out_of_markup() {
        assert!(Picture::parse("avatar_url", "https://cdn.example.com/a.png?x=1").is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_PICTURE_URL));
        for raw in [
            "http://example.com/a.png",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://example.com/a b.png",
            "https://example.com/\"onerror=x",
            "https://example.com/<script>",
            "https://example.com/\u{0}",
            "data:image/png;base64,AAAA",
            long.as_str(),
        ] {
            assert!(
                Picture::parse("avatar_url", raw).is_err(),
                "{raw:?} was accepted"
            );
        }
    }

    #[test]
    fn genders_are_the_sdks_names_and_unknown_clears() {
        assert_eq!(Gender::parse("MALE"), Ok(Some(Gender::Male)));
        assert_eq!(Gender::parse("FEMALE"), Ok(Some(Gender::Female)));
        assert_eq!(Gender::parse("UNKNOWN"), Ok(None));
        for raw in ["male", "M", "", "OTHER<script>"] {
            assert!(Gender::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }
}
