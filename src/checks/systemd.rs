//! systemd check (being written).
