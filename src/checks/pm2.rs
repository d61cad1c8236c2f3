//! pm2 check (being written).
