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
pub mod wechat;
