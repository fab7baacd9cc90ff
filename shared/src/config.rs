//! Typed settings, read once from the environment at start. Missing or malformed settings
//! fail the start with a sentence naming the variable.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    DynamoDb,
}

impl StoreKind {
    /// As `AUTH_STORE` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::DynamoDb => "dynamodb",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryKind {
    Outbox,
    Aws,
}

/// Where the binary runs decides the defaults: the local server runs on embedded adapters,
/// Lambda functions on AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Local,
    Lambda,
}

/// Where a secret comes from: the environment itself (local use), or the name of an SSM
/// Parameter Store SecureString that is read once per cold start (Lambda).
#[derive(Clone)]
pub enum SecretSource {
    Value(String),
    SsmParameter(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Value(_) => f.write_str("Value(<redacted>)"),
            SecretSource::SsmParameter(name) => write!(f, "SsmParameter({name})"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct WxOpenSettings {
    pub app_id: String,
    pub app_secret: SecretSource,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub runtime: Runtime,
    pub port: u16,
    pub store: StoreKind,
    pub table_name: String,
    pub delivery: DeliveryKind,
    pub email_from: Option<String>,
    pub default_country_code: String,
    pub password_min_length: usize,
    pub code_ttl_secs: i64,
    pub verification_token_ttl_secs: i64,
    pub sudo_token_ttl_secs: i64,
    pub code_max_attempts: u32,
    pub code_resend_interval_secs: i64,
    pub code_sends_per_address_per_hour: u32,
    pub code_sends_per_ip_per_hour: u32,
    pub password_free_failures: u32,
    pub password_max_delay_secs: i64,
    pub verify_attempts_per_ip_per_hour: u32,
    pub provider_grants_per_ip_per_hour: u32,
    pub signin_failures_per_ip_per_hour: u32,
    pub signups_per_ip_per_hour: u32,
    pub refresh_reuse_grace_secs: i64,
    pub session_max_lifetime_secs: i64,
    pub recent_auth_secs: i64,
    /// Life of an anonymous account that never binds a way to sign in.
    pub anonymous_account_ttl_secs: i64,
    pub sms_allowed_country_codes: SmsCountries,
    pub sms_sends_per_hour: u32,
    /// Change notices to one email or number per hour.
    pub notices_per_address_per_hour: u32,
    /// The share (in percent) of each channel's hourly budget that notices may use.
    pub sms_notice_share_percent: u32,
    /// All emails of the deployment per hour, codes and notices together.
    pub email_sends_per_hour: u32,
    /// Attempts to take a username by profile edit, per account and per client, per hour.
    pub username_attempts_per_hour: u32,
    /// How long a username given up by a rename stays reserved for its last owner.
    pub username_hold_secs: i64,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub provider_token_ttl_secs: i64,
    /// The `iss` of access tokens and of the discovery document; unset, each request's own
    /// origin plus `/auth/v1` (API Gateway's domain name, or local-api's host).
    pub jwt_issuer: Option<String>,
    pub jwt_audience: String,
    /// PKCS#8 PEM of the signing key (P-256 for ES256, P-384 for ES384, or Ed25519); the local
    /// server makes one up when unset.
    pub jwt_private_key: Option<SecretSource>,
    /// PKCS#8 PEMs of keys whose tokens verify without them signing: the next one before a
    /// switch, the previous one after it.
    pub jwt_verification_keys: Option<SecretSource>,
    /// The secret the hashes of stored secrets are keyed with; the local server makes one up.
    pub secret_hash_key: Option<SecretSource>,
    pub wx_open: Option<WxOpenSettings>,
    /// `AUTH_ENV_ID`: the CloudBase environment id custom-login tickets must name in `env`.
    pub env_id: Option<String>,
    /// `AUTH_CUSTOM_LOGIN_KEYS`: the JSON object of custom-login public keys by
    /// `private_key_id`; custom login is off while unset.
    pub custom_login_keys: Option<SecretSource>,
    pub wechat_api_base: String,
    pub wechat_timeout_ms: u64,
}

/// The countries an SMS may go to, by calling code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmsCountries {
    All,
    Only(Vec<String>),
}

impl SmsCountries {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        if raw.trim() == "*" {
            return Ok(SmsCountries::All);
        }
        let codes: Vec<String> = raw
            .split(',')
            .map(|code| code.trim().trim_start_matches('+').to_string())
            .filter(|code| !code.is_empty())
            .collect();
        let valid = |code: &String| {
            code.len() <= 3 && !code.starts_with('0') && code.bytes().all(|b| b.is_ascii_digit())
        };
        if codes.is_empty() || !codes.iter().all(valid) {
            return Err(ConfigError(format!(
                "AUTH_SMS_ALLOWED_COUNTRY_CODES must be `*` or comma-separated country calling codes such as `86,852`, not `{raw}`"
            )));
        }
        Ok(SmsCountries::Only(codes))
    }

    pub fn allows(&self, country_code: &str) -> bool {
        match self {
            SmsCountries::All => true,
            SmsCountries::Only(codes) => codes.iter().any(|code| code == country_code),
        }
    }
}

/// A configuration problem, said as a sentence for whoever starts the service.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Settings {
    pub fn from_env(runtime: Runtime) -> Result<Self, ConfigError> {
        Self::from_vars(runtime, &std::env::vars().collect())
    }

    pub fn from_vars(
        runtime: Runtime,
        vars: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let env = Env(vars);
        let store = match env.text("AUTH_STORE").as_deref() {
            None => match runtime {
                Runtime::Local => StoreKind::Memory,
                Runtime::Lambda => StoreKind::DynamoDb,
            },
            Some(name) if name == StoreKind::Memory.as_str() => StoreKind::Memory,
            Some(name) if name == StoreKind::DynamoDb.as_str() => StoreKind::DynamoDb,
            Some(other) => {
                return Err(ConfigError(format!(
                    "AUTH_STORE must be `memory` or `dynamodb`, not `{other}`"
                )))
            }
        };
        let delivery = match env.text("AUTH_DELIVERY").as_deref() {
            None => match runtime {
                Runtime::Local => DeliveryKind::Outbox,
                Runtime::Lambda => DeliveryKind::Aws,
            },
            Some("outbox") => DeliveryKind::Outbox,
            Some("aws") => DeliveryKind::Aws,
            Some(other) => {
                return Err(ConfigError(format!(
                    "AUTH_DELIVERY must be `outbox` or `aws`, not `{other}`"
                )))
            }
        };
        if runtime == Runtime::Lambda && delivery == DeliveryKind::Outbox {
            return Err(ConfigError(
                "AUTH_DELIVERY=outbox exists only in local-api; Lambda functions deliver through SES and SNS".into(),
            ));
        }
        let table_name = match (store, env.text("AUTH_TABLE_NAME")) {
            (_, Some(name)) => name,
            (StoreKind::DynamoDb, None) if runtime == Runtime::Lambda => {
                return Err(ConfigError(
                    "AUTH_TABLE_NAME is not set: name the DynamoDB table of the service".into(),
                ))
            }
            (_, None) => "cloudbase-association-local".into(),
        };
        let email_from = env.text("AUTH_EMAIL_FROM");
        if delivery == DeliveryKind::Aws && email_from.is_none() {
            return Err(ConfigError(
                "AUTH_EMAIL_FROM is not set: name the SES identity that sends verification emails"
                    .into(),
            ));
        }
        let default_country_code = env.text("AUTH_DEFAULT_COUNTRY_CODE").unwrap_or("86".into());
        if default_country_code.is_empty()
            || default_country_code.starts_with('0')
            || default_country_code.len() > 3
            || !default_country_code.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ConfigError(
                "AUTH_DEFAULT_COUNTRY_CODE must be a country calling code of 1 to 3 digits, such as 86".into(),
            ));
        }
        let wx_open = match (
            env.text("AUTH_WX_OPEN_APP_ID"),
            env.secret("AUTH_WX_OPEN_APP_SECRET")?,
        ) {
            (Some(app_id), Some(app_secret)) => Some(WxOpenSettings { app_id, app_secret }),
            (None, None) => None,
            _ => {
                return Err(ConfigError(
                    "AUTH_WX_OPEN_APP_ID and AUTH_WX_OPEN_APP_SECRET (or AUTH_WX_OPEN_APP_SECRET_PARAMETER) must be set together".into(),
                ))
            }
        };
        let env_id = env.text("AUTH_ENV_ID");
        let custom_login_keys = env.secret("AUTH_CUSTOM_LOGIN_KEYS")?;
        if custom_login_keys.is_some() && env_id.is_none() {
            return Err(ConfigError(
                "AUTH_ENV_ID is not set: custom-login tickets (AUTH_CUSTOM_LOGIN_KEYS) must name the environment id in `env`".into(),
            ));
        }
        let settings = Settings {
            runtime,
            port: env.number("PORT", 3000)?,
            store,
            table_name,
            delivery,
            email_from,
            default_country_code,
            password_min_length: env.number("AUTH_PASSWORD_MIN_LENGTH", 8)?,
            code_ttl_secs: env.positive("AUTH_CODE_TTL_SECS", 600)?,
            verification_token_ttl_secs: env.positive("AUTH_VERIFICATION_TOKEN_TTL_SECS", 600)?,
            sudo_token_ttl_secs: env.positive("AUTH_SUDO_TOKEN_TTL_SECS", 600)?,
            code_max_attempts: env.number("AUTH_CODE_MAX_ATTEMPTS", 5)?,
            code_resend_interval_secs: env.number("AUTH_CODE_RESEND_INTERVAL_SECS", 60)?,
            code_sends_per_address_per_hour: env
                .number("AUTH_CODE_SENDS_PER_ADDRESS_PER_HOUR", 10)?,
            code_sends_per_ip_per_hour: env.number("AUTH_CODE_SENDS_PER_IP_PER_HOUR", 30)?,
            password_free_failures: env.number("AUTH_PASSWORD_FREE_FAILURES", 5)?,
            password_max_delay_secs: env.positive("AUTH_PASSWORD_MAX_DELAY_SECS", 900)?,
            verify_attempts_per_ip_per_hour: env
                .number("AUTH_VERIFY_ATTEMPTS_PER_IP_PER_HOUR", 100)?,
            provider_grants_per_ip_per_hour: env
                .number("AUTH_PROVIDER_GRANTS_PER_IP_PER_HOUR", 60)?,
            signin_failures_per_ip_per_hour: env
                .number("AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR", 100)?,
            signups_per_ip_per_hour: env.number("AUTH_SIGNUPS_PER_IP_PER_HOUR", 30)?,
            refresh_reuse_grace_secs: env.number("AUTH_REFRESH_REUSE_GRACE_SECS", 10)?,
            session_max_lifetime_secs: env
                .positive("AUTH_SESSION_MAX_LIFETIME_SECS", 90 * 24 * 3600)?,
            recent_auth_secs: env.positive("AUTH_RECENT_AUTH_SECS", 600)?,
            anonymous_account_ttl_secs: env
                .positive("AUTH_ANONYMOUS_ACCOUNT_TTL_SECS", 30 * 24 * 3600)?,
            sms_allowed_country_codes: SmsCountries::parse(
                &env.text("AUTH_SMS_ALLOWED_COUNTRY_CODES")
                    .unwrap_or("86".into()),
            )?,
            sms_sends_per_hour: env.number("AUTH_SMS_SENDS_PER_HOUR", 500)?,
            notices_per_address_per_hour: env.number("AUTH_NOTICES_PER_ADDRESS_PER_HOUR", 5)?,
            sms_notice_share_percent: env.number("AUTH_SMS_NOTICE_SHARE_PERCENT", 20)?,
            email_sends_per_hour: env.number("AUTH_EMAIL_SENDS_PER_HOUR", 2000)?,
            username_attempts_per_hour: env.number("AUTH_USERNAME_ATTEMPTS_PER_HOUR", 10)?,
            username_hold_secs: env.positive("AUTH_USERNAME_HOLD_SECS", 30 * 24 * 3600)?,
            access_token_ttl_secs: env.positive("AUTH_ACCESS_TOKEN_TTL_SECS", 7200)?,
            refresh_token_ttl_secs: env.positive("AUTH_REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            provider_token_ttl_secs: env.positive("AUTH_PROVIDER_TOKEN_TTL_SECS", 3600)?,
            jwt_issuer: env
                .text("AUTH_JWT_ISSUER")
                .map(|issuer| issuer.trim_end_matches('/').to_string()),
            jwt_audience: env
                .text("AUTH_JWT_AUDIENCE")
                .unwrap_or("cloudbase-association".into()),
            jwt_private_key: env.secret("AUTH_JWT_PRIVATE_KEY")?,
            jwt_verification_keys: env.secret("AUTH_JWT_VERIFICATION_KEYS")?,
            secret_hash_key: env.secret("AUTH_SECRET_HASH_KEY")?,
            wx_open,
            env_id,
            custom_login_keys,
            wechat_api_base: env
                .text("AUTH_WECHAT_API_BASE")
                .unwrap_or("https://api.weixin.qq.com".into())
                .trim_end_matches('/')
                .to_string(),
            wechat_timeout_ms: env.positive("AUTH_WECHAT_TIMEOUT_MS", 3000)?,
        };
        if settings.sms_notice_share_percent > 100 {
            return Err(ConfigError(
                "AUTH_SMS_NOTICE_SHARE_PERCENT must be a percentage from 0 to 100".into(),
            ));
        }
        // The SDK refreshes 30 s before expiry; shorter lives are for local tests only.
        if settings.runtime == Runtime::Lambda && settings.access_token_ttl_secs < 60 {
            return Err(ConfigError(
                "AUTH_ACCESS_TOKEN_TTL_SECS must be at least 60: the SDK refreshes 30 s before expiry".into(),
            ));
        }
        if settings.runtime == Runtime::Lambda && settings.jwt_private_key.is_none() {
            return Err(ConfigError(
                "AUTH_JWT_PRIVATE_KEY_PARAMETER is not set: name the SSM SecureString holding the PKCS#8 PEM of the P-256 key that signs access tokens".into(),
            ));
        }
        if settings.runtime == Runtime::Lambda && settings.secret_hash_key.is_none() {
            return Err(ConfigError(
                "AUTH_SECRET_HASH_KEY_PARAMETER is not set: name the SSM SecureString holding the secret that keys the hashes of stored codes and tokens".into(),
            ));
        }
        Ok(settings)
    }
}

struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `NAME` holds the secret itself; `NAME_PARAMETER` names the SSM parameter holding it.
    fn secret(&self, name: &str) -> Result<Option<SecretSource>, ConfigError> {
        match (self.text(name), self.text(&format!("{name}_PARAMETER"))) {
            (Some(value), None) => Ok(Some(SecretSource::Value(value))),
            (None, Some(parameter)) => Ok(Some(SecretSource::SsmParameter(parameter))),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(ConfigError(format!(
                "set {name} or {name}_PARAMETER, not both"
            ))),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| ConfigError(format!("{name} must be a whole number, not `{raw}`"))),
        }
    }

    fn positive<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + Default,
    {
        let value = self.number(name, default)?;
        if value > T::default() {
            Ok(value)
        } else {
            Err(ConfigError(format!("{name} must be greater than zero")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn local_defaults_need_nothing() {
        let settings = Settings::from_vars(Runtime::Local, &vars(&[])).unwrap();
        assert_eq!(settings.store, StoreKind::Memory);
        assert_eq!(settings.delivery, DeliveryKind::Outbox);
        assert_eq!(settings.port, 3000);
        assert_eq!(settings.default_country_code, "86");
    }

    #[test]
    fn lambda_without_a_table_names_the_missing_variable() {
        let err = Settings::from_vars(Runtime::Lambda, &vars(&[])).unwrap_err();
        assert!(err.0.contains("AUTH_TABLE_NAME"), "{err}");
    }

    #[test]
    fn malformed_numbers_name_the_variable() {
        let err = Settings::from_vars(Runtime::Local, &vars(&[("AUTH_CODE_TTL_SECS", "ten")]))
            .unwrap_err();
        assert!(err.0.contains("AUTH_CODE_TTL_SECS"), "{err}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_an_ssm_parameter_but_not_both() {
        let settings = Settings::from_vars(
            Runtime::Lambda,
            &vars(&[
                ("AUTH_TABLE_NAME", "t"),
                ("AUTH_EMAIL_FROM", "a@b.co"),
                ("AUTH_JWT_PRIVATE_KEY_PARAMETER", "/auth/jwt"),
                ("AUTH_SECRET_HASH_KEY_PARAMETER", "/auth/hash"),
            ]),
        )
        .unwrap();
        assert!(
            matches!(settings.jwt_private_key, Some(SecretSource::SsmParameter(ref p)) if p == "/auth/jwt")
        );
        let err = Settings::from_vars(
            Runtime::Local,
            &vars(&[
                ("AUTH_JWT_PRIVATE_KEY", "pem"),
                ("AUTH_JWT_PRIVATE_KEY_PARAMETER", "/p"),
            ]),
        )
        .unwrap_err();
        assert!(err.0.contains("not both"), "{err}");
    }

    #[test]
    fn sms_countries_are_a_list_of_calling_codes_or_every_country() {
        let only = |raw| {
            Settings::from_vars(
                Runtime::Local,
                &vars(&[("AUTH_SMS_ALLOWED_COUNTRY_CODES", raw)]),
            )
            .map(|s| s.sms_allowed_country_codes)
        };
        let listed = only("86, +852").unwrap();
        assert!(listed.allows("86") && listed.allows("852") && !listed.allows("1"));
        assert!(only("*").unwrap().allows("1"));
        for bad in ["", "086", "abc", "86;1", "1234"] {
            let err = only(bad);
            assert!(
                bad.is_empty() || err.is_err(),
                "{bad:?} was accepted: {err:?}"
            );
        }
        let defaults = Settings::from_vars(Runtime::Local, &vars(&[])).unwrap();
        assert!(defaults.sms_allowed_country_codes.allows("86"));
        assert!(!defaults.sms_allowed_country_codes.allows("44"));
    }

    #[test]
    fn the_notice_share_is_a_percentage() {
        let share = |raw| {
            Settings::from_vars(
                Runtime::Local,
                &vars(&[("AUTH_SMS_NOTICE_SHARE_PERCENT", raw)]),
            )
            .map(|s| s.sms_notice_share_percent)
        };
        assert_eq!(share("0").unwrap(), 0);
        assert_eq!(share("100").unwrap(), 100);
        let err = share("101").unwrap_err();
        assert!(err.0.contains("AUTH_SMS_NOTICE_SHARE_PERCENT"), "{err}");
        let defaults = Settings::from_vars(Runtime::Local, &vars(&[])).unwrap();
        assert_eq!(
            (
                defaults.notices_per_address_per_hour,
                defaults.sms_notice_share_percent,
                defaults.email_sends_per_hour,
                defaults.username_attempts_per_hour,
                defaults.username_hold_secs,
            ),
            (5, 20, 2000, 10, 2_592_000)
        );
    }

    #[test]
    fn custom_login_keys_need_the_environment_id() {
        let err = Settings::from_vars(
            Runtime::Local,
            &vars(&[("AUTH_CUSTOM_LOGIN_KEYS", r#"{"k": "pem"}"#)]),
        )
        .unwrap_err();
        assert!(err.0.contains("AUTH_ENV_ID"), "{err}");
        let settings = Settings::from_vars(
            Runtime::Lambda,
            &vars(&[
                ("AUTH_TABLE_NAME", "t"),
                ("AUTH_EMAIL_FROM", "a@b.co"),
                ("AUTH_JWT_PRIVATE_KEY_PARAMETER", "/auth/jwt"),
                ("AUTH_SECRET_HASH_KEY_PARAMETER", "/auth/hash"),
                ("AUTH_ENV_ID", "env-1"),
                ("AUTH_CUSTOM_LOGIN_KEYS_PARAMETER", "/auth/custom"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.env_id.as_deref(), Some("env-1"));
        assert!(
            matches!(settings.custom_login_keys, Some(SecretSource::SsmParameter(ref p)) if p == "/auth/custom")
        );
    }

    #[test]
    fn the_wechat_secret_never_prints() {
        let settings = Settings::from_vars(
            Runtime::Local,
            &vars(&[
                ("AUTH_WX_OPEN_APP_ID", "wxapp"),
                ("AUTH_WX_OPEN_APP_SECRET", "s3cr3t"),
            ]),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("s3cr3t"));
    }
}
