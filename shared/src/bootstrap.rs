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
    let aws = if needs_aws {
        Some(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(std::time::Duration::from_secs(2))
                        .operation_attempt_timeout(std::time::Duration::from_secs(3))
                        .operation_timeout(std::time::Duration::from_secs(6))
                        .build(),
                )
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
