//! Latency histograms and check aggregates.

use super::*;

// ---------------------------------------------------------------------------------------------
// Latency histograms.

pub(super) const HIST_BINS: usize = 96;

pub(super) fn hist_bin(latency_ms: i64) -> usize {
    if latency_ms <= 1 {
        return 0;
    }
    let bin = ((latency_ms as f64).log2() * 4.0).ceil();
    (bin as usize).min(HIST_BINS - 1)
}

pub(super) fn bin_bounds(bin: usize) -> (f64, f64) {
    if bin == 0 {
        (0.0, 1.0)
    } else {
        (
            2f64.powf((bin as f64 - 1.0) / 4.0),
            2f64.powf(bin as f64 / 4.0),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Histogram([u64; HIST_BINS]);

impl Default for Histogram {
    fn default() -> Self {
        Self([0; HIST_BINS])
    }
}

impl Histogram {
    pub(super) fn add(&mut self, latency_ms: i64) {
        self.0[hist_bin(latency_ms)] += 1;
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &n) in self.0.iter().enumerate() {
            if n > 0 {
                out.push(i as u8);
                out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
            }
        }
        out
    }

    pub(super) fn add_encoded(&mut self, data: &[u8]) {
        for pair in data.chunks_exact(5) {
            let bin = usize::from(pair[0]).min(HIST_BINS - 1);
            self.0[bin] += u64::from(u32::from_le_bytes([pair[1], pair[2], pair[3], pair[4]]));
        }
    }

    /// Estimated `p`-quantile (0..1, nearest rank), clamped to `[min, max]`.
    pub(super) fn quantile(&self, p: f64, min: f64, max: f64) -> Option<f64> {
        let n: u64 = self.0.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
        let mut below = 0;
        for (bin, &c) in self.0.iter().enumerate() {
            if c > 0 && below + c >= rank {
                let (lo, hi) = bin_bounds(bin);
                let within = (rank - below) as f64 / c as f64;
                return Some((lo + (hi - lo) * within).clamp(min, max));
            }
            below += c;
        }
        Some(max)
    }
}

pub(super) fn exact_quantile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64)
}

/// A check roll-up bucket (or a group of raw results) being built or merged; also how a
/// grouped query's row is read (columns named as the fields).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(super) struct CheckAgg {
    pub(super) at_ms: i64,
    pub(super) total: i64,
    pub(super) failures: i64,
    pub(super) latency_n: i64,
    pub(super) latency_sum: i64,
    pub(super) latency_min: Option<i64>,
    pub(super) latency_max: Option<i64>,
}

impl CheckAgg {
    pub(super) fn add_result(&mut self, ok: bool, latency_ms: Option<i64>) {
        self.total += 1;
        if !ok {
            self.failures += 1;
        } else if let Some(l) = latency_ms {
            self.latency_n += 1;
            self.latency_sum += l;
            self.latency_min = Some(self.latency_min.map_or(l, |m| m.min(l)));
            self.latency_max = Some(self.latency_max.map_or(l, |m| m.max(l)));
        }
    }

    pub(super) fn merge(&mut self, o: &CheckAgg) {
        self.at_ms = self.at_ms.min(o.at_ms);
        self.total += o.total;
        self.failures += o.failures;
        self.latency_n += o.latency_n;
        self.latency_sum += o.latency_sum;
        self.latency_min = match (self.latency_min, o.latency_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.latency_max = match (self.latency_max, o.latency_max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub(super) fn point(&self) -> CheckPoint {
        CheckPoint {
            at_ms: self.at_ms,
            total: self.total,
            failures: self.failures,
            latency_avg: (self.latency_n > 0)
                .then(|| self.latency_sum as f64 / self.latency_n as f64),
            latency_min: self.latency_min,
            latency_max: self.latency_max,
        }
    }
}

/// An hourly or daily check bucket as stored (`bucket_ms` read as `at_ms`).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CheckTierRow {
    #[sqlx(flatten)]
    pub(super) agg: CheckAgg,
    pub(super) latency_hist: Vec<u8>,
}

/// A check's hourly bucket, as the daily roll-up reads them.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CheckDayRow {
    pub(super) check_id: i64,
    #[sqlx(flatten)]
    pub(super) bucket: CheckTierRow,
}

pub(super) fn parse_cursor(value: &str) -> Option<i64> {
    value.trim().parse().ok()
}
