//! Scanning logs for secrets: every form of a secret that must never be logged, and the scan.

/// The forms of `secret` a log line must not carry: the whole of it and, for tokens made of
/// parts, the part that is the secret. `<id>.<secret>` tokens (sudo, verification and provider
/// tokens) and `<session>.<user>.<secret>` refresh tokens are safe to log by their ids alone,
/// so their last part is searched on its own; a JWT's signature is what makes it a credential.
pub fn forms(secret: &str) -> Vec<String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Vec::new();
    }
    let mut forms = vec![secret.to_string()];
    let parts: Vec<&str> = secret.split('.').collect();
    let secret_part = match parts.as_slice() {
        [_, secret] => Some(*secret),
        [_, _, signature] => Some(*signature),
        _ => None,
    };
    if let Some(part) = secret_part.filter(|part| part.len() >= 16) {
        forms.push(part.to_string());
    }
    forms
}

/// Panics naming the first log line that carries any form of any of `secrets`.
#[track_caller]
pub fn assert_no_secret<S: AsRef<str>>(lines: &[String], secrets: &[S]) {
    for secret in secrets {
        for form in forms(secret.as_ref()) {
            if let Some(line) = lines.iter().find(|line| line.contains(&form)) {
                panic!(
                    "the log carries a secret or an address ({form:?} of {:?}): {line}",
                    secret.as_ref()
                );
            }
        }
    }
}

/// What WeChat hands the service for a code `ok:<name>` of the fake (`test_support::wechat`):
/// the OAuth access and refresh tokens, which are WeChat's credentials for the user.
pub fn wechat_oauth_tokens(name: &str) -> Vec<String> {
    vec![format!("at-ok-{name}"), format!("rt-{name}")]
}
