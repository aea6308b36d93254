//! Where people come from. Each source reads its system and hands the sync engine a `RawBatch`.

pub mod csv;
pub mod file;
pub mod ldap;
pub mod ldif;
pub mod vcard;

use std::future::Future;

use crate::error::Result;
use crate::sync::RawBatch;

/// A system Switchboard reads people from (a CSV file, LDAP, Active Directory, the demo company).
pub trait ContactSource {
    /// The kind recorded with each run: `csv`, `ldap`, `demo`, …
    fn kind(&self) -> &'static str;

    /// Reads everything the source lists. Records that cannot be read at all are returned as
    /// rejects with their position; they never abort the read.
    fn read(&mut self) -> impl Future<Output = Result<RawBatch>> + Send;
}
