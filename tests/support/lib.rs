//! What the integration tests share: moto_server, the real server and the WeChat fake.

pub mod aws;
pub mod fault_proxy;
pub mod moto;
pub mod server;
pub mod wechat;
