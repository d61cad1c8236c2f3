//! The names of the stored series: the one place that spells them. Writers (the jobs), rules
//! and readers (the API, roll-ups, reports) build every name here, so a rename cannot leave a
//! reader looking for a series nobody writes.
//!
//! A family is a prefix ending in `:` followed by what it is about (a mount, a PM2 instance,
//! a systemd unit); a single series has no suffix.

/// Percent of memory in use (from `MemAvailable`).
pub const MEMORY_USED_PCT: &str = "memory.used_pct";
/// Percent of swap in use; not written on a host without swap.
pub const SWAP_USED_PCT: &str = "swap.used_pct";
pub const LOAD_1: &str = "load.1";
pub const LOAD_5: &str = "load.5";
pub const LOAD_15: &str = "load.15";
pub const HOST_UPTIME_S: &str = "host.uptime_s";

/// Percent used per mount (`disk.used_pct:/var`).
pub const DISK_USED_PCT: &str = "disk.used_pct:";
/// Bytes available to unprivileged users per mount.
pub const DISK_FREE_BYTES: &str = "disk.free_bytes:";
/// Percent of inodes used per mount.
pub const DISK_INODE_PCT: &str = "disk.inode_pct:";
/// Every PM2 series (`pm2.cpu_pct:api#0`, ...).
pub const PM2: &str = "pm2.";
pub const PM2_CPU_PCT: &str = "pm2.cpu_pct:";
pub const PM2_MEMORY_BYTES: &str = "pm2.memory_bytes:";
/// PM2's restart counter per instance.
pub const PM2_RESTARTS: &str = "pm2.restarts:";
/// systemd's `NRestarts` per unit.
pub const SYSTEMD_RESTARTS: &str = "systemd.restarts:";

/// The series of `family` about `what` (`of(DISK_USED_PCT, "/")` = `disk.used_pct:/`).
pub fn of(family: &str, what: &str) -> String {
    debug_assert!(family.ends_with(':'), "{family} is not a family");
    format!("{family}{what}")
}

/// How a PM2 process is named in its series: `name#pm_id` (a cluster app has one per
/// instance).
pub fn pm2_instance(name: &str, pm_id: i64) -> String {
    format!("{name}#{pm_id}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn family_members_start_with_their_family() {
        assert_eq!(super::of(super::DISK_USED_PCT, "/"), "disk.used_pct:/");
        assert_eq!(
            super::of(super::PM2_RESTARTS, &super::pm2_instance("api", 0)),
            "pm2.restarts:api#0"
        );
        assert!(super::PM2_RESTARTS.starts_with(super::PM2));
    }
}
