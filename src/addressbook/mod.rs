//! The directory as every device's address book: a read-only LDAP server for desk phones and
//! mail clients, with presence in attributes they can show, and the XML phone books of desk
//! phone vendors.

pub mod carddav;
pub mod entry;
pub mod filter;
pub mod ldap;
pub mod phonebook;
pub mod vcard;
