//! Implementations of the ports: the embedded defaults and the AWS services and WeChat.

pub mod aws_delivery;
pub mod dynamodb;
pub mod memory;
pub mod outbox;
pub mod trust;
pub mod unwired;
pub mod wechat;
