//! Builds the app from settings: chooses the adapters, loads keys, makes the AWS clients.

use std::sync::Arc;

use crate::adapters::aws_delivery::AwsDelivery;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::memory::MemoryStore;
use crate::adapters::outbox::Outbox;
use crate::adapters::wechat::{WeChat, WeChatApp};
use crate::config::{ConfigError, DeliveryKind, Runtime, SecretSource, Settings, StoreKind};
use crate::crypto::{AccessTokens, PasswordHasher};
use crate::domain::SecretHasher;
use crate::ops::App;
use crate::ports::{Delivery, Store, SystemClock};

/// Logs go to stderr; JSON on Lambda (CloudWatch parses it), text locally. `RUST_LOG` or
/// `AWS_LAMBDA_LOG_LEVEL` choose the level.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .map_err(|_| ())
                .and_then(|level| EnvFilter::try_new(level.to_lowercase()).map_err(|_| ()))
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests build several apps in one process): keep the first.
    drop(result);
}

/// How long one AWS call (DynamoDB, SES, SNS, SSM) may take, retries included.
///
/// The CloudBase SDK gives up on a request after 10 s and the functions' Lambda timeouts are
/// 5 to 9 s, so every call is bounded well inside that: standard retry mode (throttling, 5xx,
/// timeouts and dropped connections are retried) with `max_attempts` attempts, each cut off
/// after `attempt`, with jittered exponential backoff starting at `INITIAL_BACKOFF`, and the
/// whole call cut off after `operation()`. With the defaults (3 attempts of at most 1 s) a call
/// ends within 3.3 s, and a write whose outcome is then unknown is settled by a read of at
/// most 2 s (see `adapters::dynamodb`), so an operation that meets a dependency that stays
/// down answers `unavailable` within about 5.5 s; one transient fault costs at most one
/// attempt timeout.
/// `AUTH_AWS_ATTEMPT_TIMEOUT_MS` and `AUTH_AWS_MAX_ATTEMPTS` change them (the fault suite sets them);
/// combinations whose bound passes `MAX_OPERATION` are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsCallBudget {
    pub attempt: std::time::Duration,
    pub max_attempts: u32,
}

impl AwsCallBudget {
    pub const DEFAULT_ATTEMPT_MS: u64 = 1000;
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
    /// The first retry waits up to this long (jittered), each further one up to twice as long.
    pub const INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
    pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);
    /// Opening a connection (TCP and TLS) never takes longer than this, nor than an attempt.
    pub const MAX_CONNECT: std::time::Duration = std::time::Duration::from_secs(1);
    /// No single call may take longer, whatever the settings.
    pub const MAX_OPERATION: std::time::Duration = std::time::Duration::from_secs(8);

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As `from_env`, reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
            lookup: &impl Fn(&str) -> Option<String>,
            name: &str,
            default: T,
            min: T,
            max: T,
        ) -> Result<T, ConfigError> {
            let Some(raw) = lookup(name).filter(|raw| !raw.trim().is_empty()) else {
                return Ok(default);
            };
            match raw.trim().parse::<T>() {
                Ok(value) if value >= min && value <= max => Ok(value),
                _ => Err(ConfigError(format!(
                    "{name} must be a whole number from {min} to {max}, not `{raw}`"
                ))),
            }
        }
        let attempt_ms = number(
            &lookup,
            "AUTH_AWS_ATTEMPT_TIMEOUT_MS",
            Self::DEFAULT_ATTEMPT_MS,
            50,
            5000,
        )?;
        let max_attempts = number(
            &lookup,
            "AUTH_AWS_MAX_ATTEMPTS",
            Self::DEFAULT_MAX_ATTEMPTS,
            1,
            10,
        )?;
        let budget = Self {
            attempt: std::time::Duration::from_millis(attempt_ms),
            max_attempts,
        };
        if budget.operation() > Self::MAX_OPERATION {
            return Err(ConfigError(format!(
                "AUTH_AWS_ATTEMPT_TIMEOUT_MS ({attempt_ms}) times AUTH_AWS_MAX_ATTEMPTS \
                 ({max_attempts}), with the backoff between attempts, must stay within {} ms",
                Self::MAX_OPERATION.as_millis()
            )));
        }
        Ok(budget)
    }

    /// The longest the backoff before retry `retry` (1 for the first) can be.
    fn backoff_bound(retry: u32) -> std::time::Duration {
        Self::INITIAL_BACKOFF
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(Self::MAX_BACKOFF)
    }

    /// The bound on a whole call: every attempt timing out, with the longest backoffs between.
    pub fn operation(&self) -> std::time::Duration {
        let backoff: std::time::Duration = (1..self.max_attempts).map(Self::backoff_bound).sum();
        self.attempt.saturating_mul(self.max_attempts) + backoff
    }

    pub fn connect(&self) -> std::time::Duration {
        self.attempt.min(Self::MAX_CONNECT)
    }

    pub fn timeout_config(&self) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect())
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation())
            .build()
    }

    pub fn retry_config(&self) -> aws_config::retry::RetryConfig {
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(Self::INITIAL_BACKOFF)
            .with_max_backoff(Self::MAX_BACKOFF)
    }
}

/// The app and, for the local server, its outbox.
pub struct Built {
    pub app: App,
    pub outbox: Option<Arc<Outbox>>,
}

pub async fn build(settings: Settings) -> Result<App, ConfigError> {
    build_with_outbox(settings).await.map(|built| built.app)
}

/// Reads a secret: from the settings, or from its SSM SecureString parameter.
async fn resolve(
    source: &SecretSource,
    variable: &str,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<String, ConfigError> {
    let name = match source {
        SecretSource::Value(value) => return Ok(value.clone()),
        SecretSource::SsmParameter(name) => name,
    };
    let aws =
        aws.ok_or_else(|| ConfigError(format!("{variable}_PARAMETER needs AWS configuration")))?;
    let answer = aws_sdk_ssm::Client::new(aws)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            ConfigError(format!(
                "reading SSM parameter {name} ({variable}_PARAMETER) failed: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            ))
        })?;
    answer
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| {
            ConfigError(format!(
                "SSM parameter {name} ({variable}_PARAMETER) has no value"
            ))
        })
}

pub async fn build_with_outbox(settings: Settings) -> Result<Built, ConfigError> {
    let uses_ssm = [
        settings.jwt_private_key.as_ref(),
        settings.wx_open.as_ref().map(|w| &w.app_secret),
    ]
    .into_iter()
    .flatten()
    .any(|source| matches!(source, SecretSource::SsmParameter(_)));
    let needs_aws =
        uses_ssm || settings.store == StoreKind::DynamoDb || settings.delivery == DeliveryKind::Aws;
    // Region and credentials resolve from the environment; only SSM parameters, when used,
    // are read over the network here.
    let budget = AwsCallBudget::from_env()?;
    let aws = if needs_aws {
        Some(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .timeout_config(budget.timeout_config())
                .retry_config(budget.retry_config())
                .load()
                .await,
        )
    } else {
        None
    };
    let access_tokens = match &settings.jwt_private_key {
        Some(source) => AccessTokens::from_pem(
            &resolve(source, "AUTH_JWT_PRIVATE_KEY", aws.as_ref()).await?,
            &settings.jwt_issuer,
            &settings.jwt_audience,
        )?,
        None => AccessTokens::ephemeral(&settings.jwt_issuer, &settings.jwt_audience),
    };
    let secrets = SecretHasher::new(access_tokens.secret_hash_key());
    let wechat_app = match &settings.wx_open {
        Some(wx) => Some(WeChatApp {
            app_id: wx.app_id.clone(),
            app_secret: resolve(&wx.app_secret, "AUTH_WX_OPEN_APP_SECRET", aws.as_ref()).await?,
        }),
        None => None,
    };
    let store: Arc<dyn Store> = match (settings.store, &aws) {
        (StoreKind::DynamoDb, Some(aws)) => {
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), &settings.table_name);
            if settings.runtime == Runtime::Local {
                store.ensure_table().await.map_err(|e| {
                    ConfigError(format!(
                        "the DynamoDB table `{}` could not be created or read (AWS_ENDPOINT_URL={}): {e}",
                        settings.table_name,
                        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
                    ))
                })?;
            }
            Arc::new(store)
        }
        _ => Arc::new(MemoryStore::new()),
    };
    let (delivery, outbox): (Arc<dyn Delivery>, Option<Arc<Outbox>>) =
        match (settings.delivery, &aws) {
            (DeliveryKind::Aws, Some(aws)) => (
                Arc::new(AwsDelivery::new(
                    aws_sdk_sesv2::Client::new(aws),
                    aws_sdk_sns::Client::new(aws),
                    settings.email_from.clone().unwrap_or_default(),
                )),
                None,
            ),
            _ => {
                let outbox = Arc::new(Outbox::new());
                (outbox.clone(), Some(outbox))
            }
        };
    let identity_provider = Arc::new(WeChat::new(
        wechat_app,
        settings.wechat_api_base.clone(),
        std::time::Duration::from_millis(settings.wechat_timeout_ms),
    ));
    Ok(Built {
        app: App {
            settings,
            store,
            delivery,
            identity_provider,
            clock: Arc::new(SystemClock),
            access_tokens,
            secrets,
            passwords: PasswordHasher::new(),
        },
        outbox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn budget(vars: &[(&str, &str)]) -> Result<AwsCallBudget, ConfigError> {
        AwsCallBudget::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn aws_calls_are_bounded_well_inside_the_sdk_deadline_by_default() {
        let budget = budget(&[]).unwrap();
        assert_eq!(budget.max_attempts, 3);
        assert_eq!(budget.attempt, Duration::from_secs(1));
        assert_eq!(budget.connect(), Duration::from_secs(1));
        // Three attempts of 1 s, with at most 100 ms and 200 ms of backoff between them.
        assert_eq!(budget.operation(), Duration::from_millis(3300));
        let retry = budget.retry_config();
        assert_eq!(retry.max_attempts(), 3);
        assert_eq!(retry.initial_backoff(), Duration::from_millis(100));
        let timeouts = budget.timeout_config();
        assert_eq!(
            timeouts.operation_timeout(),
            Some(Duration::from_millis(3300))
        );
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn aws_call_budget_settings_are_read_and_checked() {
        let short = budget(&[
            ("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "400"),
            ("AUTH_AWS_MAX_ATTEMPTS", "2"),
        ])
        .unwrap();
        assert_eq!(short.attempt, Duration::from_millis(400));
        assert_eq!(short.connect(), Duration::from_millis(400));
        assert_eq!(short.operation(), Duration::from_millis(900));

        for bad in [
            ("AUTH_AWS_MAX_ATTEMPTS", "0"),
            ("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "soon"),
        ] {
            let err = budget(&[bad]).unwrap_err();
            assert!(err.0.contains(bad.0), "{err}");
        }
        // Ten attempts of 2 s could not end before the SDK gives up.
        let err = budget(&[
            ("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "2000"),
            ("AUTH_AWS_MAX_ATTEMPTS", "10"),
        ])
        .unwrap_err();
        assert!(err.0.contains("AUTH_AWS_MAX_ATTEMPTS"), "{err}");
    }
}
