//! Audio codecs: G.711 µ-law / A-law (ITU-T G.711) and PCMU <-> PCMA
//! transcoding. Sans-IO, allocation-free, table driven.

pub mod g711;
pub mod plc;

pub use g711::G711;
