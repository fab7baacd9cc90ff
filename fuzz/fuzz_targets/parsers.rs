//! Bytes through every typed parser of request input and every wire body type: no panic,
//! and what a parser accepts is a fixed point of it (normalisation is idempotent).

#![no_main]

use libfuzzer_sys::fuzz_target;

use shared::domain::{
    DisplayName, Email, Password, PhoneNumber, ProviderId, SecretToken, Username, VerificationCode,
    VerificationId,
};
use shared::http::operations::{
    bind_contact::ContactBody, grant_provider_token::ProviderTokenBody, refresh_token::TokenBody,
    send_verification::VerificationBody, sign_in::SignInBody, sign_up::SignUpBody, sudo::SudoBody,
    verify::VerifyBody,
};
use shared::http::wire::{ProviderTokenOnlyBody, RevokeBody};
use shared::ops::accounts::LoginName;
use shared::ops::providers::parse_provider_code;
use shared::ops::RefreshToken;

fuzz_target!(|data: &[u8]| {
    // Request bodies are bytes: the wire types see them as the server does.
    let _ = serde_json::from_slice::<SignUpBody>(data);
    let _ = serde_json::from_slice::<SignInBody>(data);
    let _ = serde_json::from_slice::<TokenBody>(data);
    let _ = serde_json::from_slice::<RevokeBody>(data);
    let _ = serde_json::from_slice::<SudoBody>(data);
    let _ = serde_json::from_slice::<VerificationBody>(data);
    let _ = serde_json::from_slice::<VerifyBody>(data);
    let _ = serde_json::from_slice::<ContactBody>(data);
    let _ = serde_json::from_slice::<ProviderTokenBody>(data);
    let _ = serde_json::from_slice::<ProviderTokenOnlyBody>(data);

    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(email) = Email::parse(raw) {
        assert_eq!(Email::parse(email.as_str()).ok(), Some(email.clone()));
        let _ = email.masked();
    }
    for cc in ["86", "1", "353"] {
        if let Ok(phone) = PhoneNumber::parse(raw, cc) {
            assert_eq!(
                PhoneNumber::parse(&phone.display(), "86").ok(),
                Some(phone.clone())
            );
            let stored = PhoneNumber::from_e164(&phone.e164()).expect("E.164 reads back");
            assert_eq!(stored.e164(), phone.e164());
            let _ = phone.masked();
        }
    }
    if let Ok(name) = Username::parse(raw) {
        assert_eq!(Username::parse(name.as_str()).ok(), Some(name.clone()));
    }
    if let Ok(name) = DisplayName::parse(raw) {
        assert_eq!(DisplayName::parse(name.as_str()).ok(), Some(name.clone()));
    }
    if let Ok(token) = SecretToken::parse("token", raw) {
        let again = SecretToken::parse("token", token.expose()).expect("a fixed point");
        assert_eq!(again.expose(), token.expose());
    }
    if let Ok(code) = VerificationCode::parse(raw) {
        assert_eq!(code.expose(), raw.trim());
    }
    if let Ok(token) = RefreshToken::parse(raw) {
        let again = RefreshToken::parse(&token.expose()).expect("a fixed point");
        assert_eq!(again.expose(), token.expose());
    }
    let _ = Password::parse(raw);
    let _ = VerificationId::parse(raw);
    let _ = ProviderId::parse(raw);
    let _ = parse_provider_code(raw);
    let _ = LoginName::parse(raw, "86");
});
