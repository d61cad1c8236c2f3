//! opswatch's own resources: the descriptor limit it runs with, and telling "this machine ran
//! out of descriptors or memory" apart from a failure of what is being checked. Such a
//! failure is an error of opswatch (shown in `/health` and the log), never a DOWN.

/// EMFILE, ENFILE, ENOMEM, ENOBUFS (Linux numbers).
const LOCAL_EXHAUSTION_ERRNOS: [i32; 4] = [24, 23, 12, 105];

/// Whether `e` means this process or machine ran out of descriptors or memory.
pub fn is_local_exhaustion(e: &std::io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(|code| LOCAL_EXHAUSTION_ERRNOS.contains(&code))
        || e.kind() == std::io::ErrorKind::OutOfMemory
}

/// Raises the soft descriptor limit to the hard one (systemd and most shells start services
/// with a soft limit of 1,024, far below what the hard limit allows). Returns the soft limit
/// in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (now.current, now.maximum)
        && soft < hard
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::debug!(from = soft, to = hard, "raised the open-files limit");
                return hard;
            }
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "cannot raise the open-files limit");
            }
        }
    }
    // No maximum means unlimited.
    now.current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_or_memory_is_local() {
        for code in [24, 23, 12, 105] {
            assert!(is_local_exhaustion(&std::io::Error::from_raw_os_error(
                code
            )));
        }
        // Refused or unreachable is the target's problem.
        for code in [111, 113, 110] {
            assert!(!is_local_exhaustion(&std::io::Error::from_raw_os_error(
                code
            )));
        }
    }
}
