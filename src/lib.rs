//! Switchboard: a self-hosted business directory with live presence.
//!
//! Data flows from `sources` through the `sync` engine into PostgreSQL (`db`, the truth); the
//! `search` indexer follows the change log into tantivy; `http` and `web` serve both.

pub mod access;
pub mod addressbook;
pub mod audit;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod federation;
pub mod http;
pub mod presence;
pub mod retention;
pub mod search;
pub mod server;
pub mod sources;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod web;

pub use error::{Error, Result};
