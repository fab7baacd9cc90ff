//! What the integration tests share: moto_server, the real server, the WeChat fake, and the
//! provisioning of the tools they need.

pub mod aws;
pub mod fault_proxy;
pub mod jwt;
pub mod logscan;
pub mod moto;
pub mod node;
pub mod provision;
pub mod server;
pub mod template;
pub mod tickets;
pub mod wechat;

/// Declares each named `async fn name(backend: Backend)` of the suite as two tests: `embedded::name`
/// (the embedded store and the outbox) and `dynamodb::name` (DynamoDB, SES and SNS on moto).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(test_support::server::Backend::Embedded).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(test_support::server::Backend::Aws).await
                }
            )*
        }
    };
}
