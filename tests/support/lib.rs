//! What the integration tests share: starting moto_server, the real server and fakes.

pub mod moto;
