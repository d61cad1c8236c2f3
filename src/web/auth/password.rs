//! argon2id password hashes: made by `opswatch user hash`, checked by `POST /login`.
//!
//! One check costs ~19 MiB and tens of milliseconds of one core, so checks run on the blocking
//! pool behind a small semaphore: a burst of logins queues instead of starving the runtime
//! (`/health` keeps answering) or multiplying memory.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// OWASP's argon2id memory (19 MiB, 1 lane) with more passes than its minimum of 2: the login
/// cost is meant to be 50-150 ms. On the 2-core machine, quiet, 4 passes took 50.7 ms per
/// check (bench/login.sh), about 12.5 ms a pass; 6 passes (~75 ms) sit in the middle of that
/// range, leaving room for a faster or a slower machine (see BENCHMARKS.md). Hashes made with
/// other parameters still verify: a PHC string carries its own.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 6;
const LANES: u32 = 1;

/// Checks at once: two is what the 2-core target can run without queueing the runtime's own
/// threads behind them, and bounds argon2's memory to ~38 MiB.
const CHECKS_AT_ONCE: usize = 2;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$m=19456,t=6,p=1$...`) of `password`, with a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// A hash of a password nobody knows, checked when the user does not exist, so that an
/// unknown name costs the same time as a wrong password: made by [`hash_password`], so it
/// always carries the current parameters.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).expect("the OS random source works");
    hash_password(&hex::encode(random)).expect("hashing works")
});

/// Password checks, bounded.
#[derive(Clone)]
pub struct PasswordChecker {
    permits: Arc<Semaphore>,
    /// argon2's working memory, reused: allocating 19 MiB per check on the blocking pool left
    /// one such block cached in each thread's malloc arena (measured: 200 MiB RSS after a login
    /// burst); at most [`CHECKS_AT_ONCE`] buffers ever exist.
    buffers: Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
}

impl Default for PasswordChecker {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(CHECKS_AT_ONCE)),
            buffers: Default::default(),
        }
    }
}

/// Checks `password` against the PHC string `phc`, computing in `blocks`.
fn verify_in(blocks: &mut Vec<argon2::Block>, phc: &str, password: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    let Ok(hash) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = Version::try_from(hash.version.unwrap_or(0x13)) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    blocks.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.as_bytes().len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, &mut blocks[..])
        .is_err()
    {
        return false;
    }
    out.ct_eq(expected.as_bytes()).into()
}

impl PasswordChecker {
    /// Whether `password` matches `phc` (`None`: no such user; checked against a dummy hash
    /// all the same, then refused).
    pub async fn check(&self, phc: Option<&str>, password: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known = phc.is_some();
        let phc = phc.map_or_else(|| DUMMY_HASH.clone(), str::to_owned);
        let password = password.to_owned();
        let buffers = self.buffers.clone();
        let matched = tokio::task::spawn_blocking(move || {
            let mut blocks = buffers
                .lock()
                .map(|mut b| b.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let matched = verify_in(&mut blocks, &phc, password.as_bytes());
            if let Ok(mut b) = buffers.lock() {
                b.push(blocks);
            }
            matched
        })
        .await
        .unwrap_or(false);
        known && matched
    }

    /// Makes the dummy hash now rather than during the first login (it costs one hash).
    pub fn warm_up(&self) {
        LazyLock::force(&DUMMY_HASH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier as _;

    #[tokio::test]
    async fn a_hash_checks_its_password_only() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=6,p=1$"), "{phc}");
        let checker = PasswordChecker::default();
        assert!(checker.check(Some(&phc), "correct horse").await);
        assert!(!checker.check(Some(&phc), "correct horsE").await);
        assert!(!checker.check(None, "correct horse").await);
        assert!(!checker.check(Some("$argon2id$garbage"), "x").await);
    }

    #[tokio::test]
    async fn hashes_made_with_older_parameters_still_verify() {
        // What `opswatch user hash` printed before the passes went from 2 to 4.
        let params = Params::new(MEMORY_KIB, 2, LANES, None).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"old horse")
            .unwrap()
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        let checker = PasswordChecker::default();
        assert!(checker.check(Some(&old), "old horse").await);
        assert!(!checker.check(Some(&old), "old horsE").await);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_new_hash_costs() {
        let dummy = argon2::PasswordHash::new(&DUMMY_HASH).unwrap();
        let made = hash_password("x").unwrap();
        let made = argon2::PasswordHash::new(&made).unwrap();
        assert_eq!(
            Params::try_from(&dummy).unwrap(),
            Params::try_from(&made).unwrap()
        );
        assert_eq!(dummy.algorithm, made.algorithm);
    }

    /// `cargo test --lib argon2_cost -- --ignored --nocapture`: what one check costs here.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn argon2_cost() {
        let phc = hash_password("pw").unwrap();
        let started = std::time::Instant::now();
        for _ in 0..10 {
            let _ = hasher().verify_password(b"pw", phc.as_str());
        }
        println!("one check: {:?}", started.elapsed() / 10);
    }
}
