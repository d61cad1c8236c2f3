//! system check (being written).
