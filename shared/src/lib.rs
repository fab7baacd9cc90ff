//! The core of the account-association service: typed domain values, the operations, the
//! ports they speak to, the adapters behind those ports, and the HTTP glue every binary shares.

pub mod adapters;
pub mod bootstrap;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod ops;
pub mod ports;
