//! Builds the app from settings: chooses the adapters, loads keys, makes the AWS clients.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::adapters::aws_delivery::AwsDelivery;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::memory::MemoryStore;
use crate::adapters::outbox::Outbox;
use crate::adapters::unwired::Unwired;
use crate::adapters::wechat::{WeChat, WeChatApp};
use crate::config::{ConfigError, DeliveryKind, Runtime, SecretSource, Settings, StoreKind};
use crate::crypto::tickets::CustomLoginKeys;
use crate::crypto::{AccessTokens, PasswordHasher};
use crate::domain::SecretHasher;
use crate::ops::App;
use crate::ports::{Delivery, Directory, IdentityProvider, Store, SystemClock};

/// Logs go to stderr; JSON on Lambda (CloudWatch parses it), text locally. `RUST_LOG` (a
/// level, or `target=level` pairs) or `AWS_LAMBDA_LOG_LEVEL` choose what is logged; `info`
/// otherwise. (Not `EnvFilter`: its regular expressions cost every binary 130 KiB.)
pub fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find_map(|value| value.trim().parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        registry
            .with(layer.json().with_current_span(false).without_time())
            .try_init()
    } else {
        registry.with(layer).try_init()
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

/// The app and, for the local server, its outbox and the read model of its console.
pub struct Built {
    pub app: App,
    pub outbox: Option<Arc<Outbox>>,
    pub directory: Option<Arc<dyn Directory>>,
}

type AwsConfigFuture =
    Pin<Box<dyn Future<Output = Result<aws_config::SdkConfig, ConfigError>> + Send>>;

/// Which adapters a binary can build. A Lambda function names only those its operations use,
/// so the others, and the AWS SDKs and HTTP client behind them, are not linked into its
/// binary (BENCHMARKS.md has the sizes). The route table says which operations a function
/// serves; `tests/template.rs` checks each function's wiring against them.
#[derive(Clone, Copy)]
pub struct Wiring {
    aws_config: fn(AwsCallBudget) -> AwsConfigFuture,
    message_delivery: Option<MakeDelivery>,
    wechat: Option<MakeIdentityProvider>,
    directory: Option<MakeDirectory>,
    /// Whether it reads the custom-login public keys (`AUTH_CUSTOM_LOGIN_KEYS`).
    custom_login: bool,
}

/// The store the settings chose, before it is shared as a `dyn Store`.
enum ChosenStore {
    Memory(Arc<MemoryStore>),
    DynamoDb(Arc<DynamoStore>),
}

type MakeDirectory = fn(&ChosenStore) -> Arc<dyn Directory>;
type MakeDelivery = fn(&aws_config::SdkConfig, &Settings) -> Arc<dyn Delivery>;
type MakeIdentityProvider = fn(&Settings, Option<WeChatApp>) -> Arc<dyn IdentityProvider>;

impl Wiring {
    /// `local-api`, the tests and the benchmark: everything, and AWS configuration from the
    /// default provider chain (environment, profiles, SSO, ...).
    pub const LOCAL: Wiring = Wiring {
        aws_config: default_chain,
        message_delivery: Some(aws_delivery),
        wechat: Some(wechat),
        directory: Some(directory),
        custom_login: true,
    };

    /// A Lambda function: the store, and AWS configuration from what the Lambda runtime puts
    /// in the environment (region, the role's credentials, `AWS_ENDPOINT_URL` if set). No
    /// provider chain, so no file reads or network lookups, and none of its code.
    pub const LAMBDA: Wiring = Wiring {
        aws_config: lambda_environment,
        message_delivery: None,
        wechat: None,
        directory: None,
        custom_login: false,
    };

    /// For functions that send codes or notices: SES for email, SNS for SMS.
    pub const fn with_message_delivery(self) -> Self {
        Self {
            message_delivery: Some(aws_delivery),
            ..self
        }
    }

    /// For the function that signs in with custom-login tickets.
    pub const fn with_custom_login(self) -> Self {
        Self {
            custom_login: true,
            ..self
        }
    }

    /// For functions that exchange WeChat codes.
    pub const fn with_wechat(self) -> Self {
        Self {
            wechat: Some(wechat),
            ..self
        }
    }
}

fn default_chain(budget: AwsCallBudget) -> AwsConfigFuture {
    Box::pin(async move {
        Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(budget.timeout_config())
            .retry_config(budget.retry_config())
            .load()
            .await)
    })
}

fn lambda_environment(budget: AwsCallBudget) -> AwsConfigFuture {
    Box::pin(std::future::ready(lambda_sdk_config(budget, |name| {
        std::env::var(name).ok()
    })))
}

fn lambda_sdk_config(
    budget: AwsCallBudget,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<aws_config::SdkConfig, ConfigError> {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;
    let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    let region = set("AWS_REGION")
        .or_else(|| set("AWS_DEFAULT_REGION"))
        .ok_or_else(|| ConfigError("AWS_REGION is not set (Lambda always sets it)".into()))?;
    let mut config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        // The compiled-in roots instead of the system store: no ~150 file reads and parses
        // on the cold path (BENCHMARKS.md), and trust limited to the roots AWS chains to.
        .http_client(crate::adapters::trust::aws_http_client())
        .timeout_config(budget.timeout_config())
        .retry_config(budget.retry_config());
    if let Some(endpoint) = set("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

fn aws_delivery(aws: &aws_config::SdkConfig, settings: &Settings) -> Arc<dyn Delivery> {
    Arc::new(AwsDelivery::new(
        aws_sdk_sesv2::Client::new(aws),
        aws_sdk_sns::Client::new(aws),
        settings.email_from.clone().unwrap_or_default(),
    ))
}

fn directory(store: &ChosenStore) -> Arc<dyn Directory> {
    match store {
        ChosenStore::Memory(store) => store.clone(),
        ChosenStore::DynamoDb(store) => store.clone(),
    }
}

fn wechat(settings: &Settings, app: Option<WeChatApp>) -> Arc<dyn IdentityProvider> {
    Arc::new(WeChat::new(
        app,
        settings.wechat_api_base.clone(),
        std::time::Duration::from_millis(settings.wechat_timeout_ms),
    ))
}

pub async fn build(settings: Settings) -> Result<App, ConfigError> {
    build_wired(settings, Wiring::LOCAL)
        .await
        .map(|built| built.app)
}

pub async fn build_with_outbox(settings: Settings) -> Result<Built, ConfigError> {
    build_wired(settings, Wiring::LOCAL).await
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

async fn resolve_optional(
    source: Option<&SecretSource>,
    variable: &str,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Option<String>, ConfigError> {
    match source {
        Some(source) => resolve(source, variable, aws).await.map(Some),
        None => Ok(None),
    }
}

/// Builds the app with the adapters `wiring` allows; the settings choose among them.
pub async fn build_wired(settings: Settings, wiring: Wiring) -> Result<Built, ConfigError> {
    // A function without WeChat does not read its secret.
    let wx_open = settings
        .wx_open
        .as_ref()
        .filter(|_| wiring.wechat.is_some());
    // Only the custom-login function reads its keys.
    let custom_login_keys = settings
        .custom_login_keys
        .as_ref()
        .filter(|_| wiring.custom_login);
    let uses_ssm = [
        settings.jwt_private_key.as_ref(),
        settings.jwt_verification_keys.as_ref(),
        settings.secret_hash_key.as_ref(),
        wx_open.map(|w| &w.app_secret),
        custom_login_keys,
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
        Some((wiring.aws_config)(budget).await?)
    } else {
        None
    };
    // The secrets are read concurrently: one round trip, not one per secret.
    let optional = |source, variable| resolve_optional(source, variable, aws.as_ref());
    let (signing_key, verification_keys, hash_secret, wechat_secret, custom_keys) = tokio::join!(
        optional(settings.jwt_private_key.as_ref(), "AUTH_JWT_PRIVATE_KEY"),
        optional(
            settings.jwt_verification_keys.as_ref(),
            "AUTH_JWT_VERIFICATION_KEYS"
        ),
        optional(settings.secret_hash_key.as_ref(), "AUTH_SECRET_HASH_KEY"),
        optional(wx_open.map(|w| &w.app_secret), "AUTH_WX_OPEN_APP_SECRET"),
        optional(custom_login_keys, "AUTH_CUSTOM_LOGIN_KEYS"),
    );
    let custom_login = match (custom_keys?, settings.env_id.as_deref()) {
        (Some(json), Some(env_id)) => Some(CustomLoginKeys::from_json(&json, env_id)?),
        _ => None,
    };
    let audience = &settings.jwt_audience;
    let access_tokens = match signing_key? {
        Some(pem) => {
            AccessTokens::from_pems(&pem, &verification_keys?.unwrap_or_default(), audience)?
        }
        None => AccessTokens::ephemeral(audience),
    };
    let secrets = SecretHasher::new(match hash_secret? {
        Some(secret) => crate::crypto::secret_hash_key(&secret)?,
        None => crate::domain::random_bytes::<32>(),
    });
    let wechat_app = match (wx_open, wechat_secret?) {
        (Some(wx), Some(app_secret)) => Some(WeChatApp {
            app_id: wx.app_id.clone(),
            app_secret,
        }),
        _ => None,
    };
    let chosen = match (settings.store, &aws) {
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
            ChosenStore::DynamoDb(Arc::new(store))
        }
        _ => ChosenStore::Memory(Arc::new(MemoryStore::new())),
    };
    let directory = wiring.directory.map(|make| make(&chosen));
    let store: Arc<dyn Store> = match chosen {
        ChosenStore::Memory(store) => store,
        ChosenStore::DynamoDb(store) => store,
    };
    let (delivery, outbox): (Arc<dyn Delivery>, Option<Arc<Outbox>>) =
        match (settings.delivery, &aws) {
            (DeliveryKind::Aws, Some(aws)) => match wiring.message_delivery {
                Some(make) => (make(aws, &settings), None),
                None => (Arc::new(Unwired), None),
            },
            _ => {
                let outbox = Arc::new(Outbox::new());
                (outbox.clone(), Some(outbox))
            }
        };
    let identity_provider: Arc<dyn IdentityProvider> = match wiring.wechat {
        Some(make) => make(&settings, wechat_app),
        None => Arc::new(Unwired),
    };
    Ok(Built {
        app: App {
            settings,
            store,
            delivery,
            identity_provider,
            clock: Arc::new(SystemClock),
            access_tokens,
            custom_login,
            secrets,
            passwords: PasswordHasher::new(),
        },
        outbox,
        directory,
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
    fn lambda_aws_configuration_comes_from_the_environment_alone() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        let budget = budget(&[]).unwrap();
        let config = lambda_sdk_config(
            budget,
            vars(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ]),
        )
        .unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(config.credentials_provider().is_some());
        assert_eq!(
            config.timeout_config().and_then(|t| t.operation_timeout()),
            Some(budget.operation())
        );

        let fallback = lambda_sdk_config(budget, vars(&[("AWS_DEFAULT_REGION", "ap-east-1")]));
        let fallback = fallback.unwrap();
        assert_eq!(fallback.region().map(|r| r.as_ref()), Some("ap-east-1"));
        assert_eq!(fallback.endpoint_url(), None);

        let err = lambda_sdk_config(budget, vars(&[("AWS_REGION", " ")])).unwrap_err();
        assert!(err.0.contains("AWS_REGION"), "{err}");
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
