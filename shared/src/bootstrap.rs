//! Builds the app from settings: chooses the adapters, loads keys, makes the AWS clients.

use std::sync::Arc;

use crate::adapters::aws_delivery::AwsDelivery;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::memory::MemoryStore;
use crate::adapters::outbox::Outbox;
use crate::adapters::wechat::WeChat;
use crate::config::{ConfigError, DeliveryKind, Runtime, Settings, StoreKind};
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

pub async fn build_with_outbox(settings: Settings) -> Result<Built, ConfigError> {
    let access_tokens = match &settings.jwt_private_key_pem {
        Some(pem) => AccessTokens::from_pem(pem, &settings.jwt_issuer, &settings.jwt_audience)?,
        None => AccessTokens::ephemeral(&settings.jwt_issuer, &settings.jwt_audience),
    };
    let secrets = SecretHasher::new(access_tokens.secret_hash_key());
    let needs_aws = settings.store == StoreKind::DynamoDb || settings.delivery == DeliveryKind::Aws;
    // Region and credentials resolve from the environment; nothing goes over the network
    // until the first call.
    let aws = if needs_aws {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
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
        settings.wx_open.clone(),
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
