//! The packed chunk format of `sample_rollups` and re-bucketing for charts.

use super::*;

// ---------------------------------------------------------------------------------------------
// Packed buckets.

pub(super) fn chunk_span(width_ms: i64) -> i64 {
    width_ms * CHUNK_SLOTS
}

pub(super) fn align_down(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

/// Writes `b` (or "no data") into slot `index` of a chunk blob of [`CHUNK_BYTES`].
pub(super) fn put_slot(data: &mut [u8], index: usize, b: Option<&Bucket>) {
    let at = index * SLOT_BYTES;
    let out = &mut data[at..at + SLOT_BYTES];
    match b {
        Some(b) if b.count > 0 => {
            out[0..4].copy_from_slice(&(b.min as f32).to_le_bytes());
            out[4..8].copy_from_slice(&(b.max as f32).to_le_bytes());
            out[8..12].copy_from_slice(&(b.avg() as f32).to_le_bytes());
            let count = u16::try_from(b.count).unwrap_or(u16::MAX);
            out[12..14].copy_from_slice(&count.to_le_bytes());
        }
        _ => out.fill(0),
    }
}

pub(super) fn get_slot(data: &[u8], index: usize, at_ms: i64) -> Option<Bucket> {
    let s = data.get(index * SLOT_BYTES..(index + 1) * SLOT_BYTES)?;
    let count = i64::from(u16::from_le_bytes([s[12], s[13]]));
    if count == 0 {
        return None;
    }
    let f = |i: usize| f64::from(f32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]));
    Some(Bucket {
        at_ms,
        min: f(0),
        max: f(4),
        sum: f(8) * count as f64,
        count,
    })
}

/// The non-empty buckets of a chunk whose start lies in `[from, to)`.
pub(super) fn chunk_buckets(
    chunk_ms: i64,
    width_ms: i64,
    data: &[u8],
    from: i64,
    to: i64,
) -> impl Iterator<Item = Bucket> + '_ {
    (0..CHUNK_SLOTS as usize).filter_map(move |i| {
        let at = chunk_ms + i as i64 * width_ms;
        if at < from || at >= to {
            return None;
        }
        get_slot(data, i, at)
    })
}

/// Groups `(series, bucket)` pairs by the chunk they fall in.
pub(super) fn by_chunk(
    width_ms: i64,
    buckets: Vec<(i64, Bucket)>,
) -> BTreeMap<(i64, i64), Vec<Bucket>> {
    let mut out: BTreeMap<(i64, i64), Vec<Bucket>> = BTreeMap::new();
    for (series, b) in buckets {
        out.entry((series, align_down(b.at_ms, chunk_span(width_ms))))
            .or_default()
            .push(b);
    }
    out
}

pub(super) fn patch_chunk(
    existing: Option<Vec<u8>>,
    chunk_ms: i64,
    width_ms: i64,
    buckets: &[Bucket],
) -> Vec<u8> {
    let mut data = existing.unwrap_or_default();
    data.resize(CHUNK_BYTES, 0);
    for b in buckets {
        let index = ((b.at_ms - chunk_ms) / width_ms) as usize;
        put_slot(&mut data, index, Some(b));
    }
    data
}

/// Merges time-ordered buckets into epoch-aligned points `width_ms` wide.
pub(super) fn rebucket(buckets: impl IntoIterator<Item = Bucket>, width_ms: i64) -> Vec<Point> {
    let mut out: Vec<(i64, Bucket)> = Vec::new();
    for b in buckets {
        let key = b.at_ms.div_euclid(width_ms);
        match out.last_mut() {
            Some((k, acc)) if *k == key => acc.merge(&b),
            _ => out.push((key, b)),
        }
    }
    out.into_iter()
        .map(|(_, b)| Point {
            at_ms: b.at_ms,
            avg: b.avg(),
            min: b.min,
            max: b.max,
            count: b.count,
        })
        .collect()
}

/// Target width of a point over `span_ms`, so that there are at most [`MAX_POINTS`].
pub(super) fn target_width(span_ms: i64) -> i64 {
    (span_ms.max(1) + MAX_POINTS - 2) / (MAX_POINTS - 1)
}

/// The coarsest tier whose buckets are at most half a point wide.
pub fn preferred_tier(span_ms: i64) -> Tier {
    let target = target_width(span_ms);
    if 2 * HOUR_MS <= target {
        Tier::Hourly
    } else if 2 * FIVE_MINUTES_MS <= target {
        Tier::FiveMinute
    } else {
        Tier::Raw
    }
}

/// Point width over `span_ms` read from `tier`: a whole number of its buckets.
pub(super) fn point_width(span_ms: i64, tier: Tier) -> i64 {
    let target = target_width(span_ms);
    match tier.width_ms() {
        0 => target,
        w => (target + w - 1) / w * w,
    }
}

/// Increase of a counter over time-ordered buckets; a drop is a reset (counted from zero).
/// Exact on raw samples; on roll-ups a reset inside one bucket counts its level before the
/// reset as restarts.
#[derive(Debug, Default)]
pub(super) struct CounterWalk {
    pub(super) total: f64,
    pub(super) prev_max: Option<f64>,
}

impl CounterWalk {
    pub(super) fn bucket(&mut self, min: f64, max: f64) {
        if let Some(p) = self.prev_max {
            self.total += if min >= p { min - p } else { min };
        }
        self.total += max - min;
        self.prev_max = Some(max);
    }
}

#[cfg(test)]
pub(super) fn counter_increase_of(buckets: &[Bucket]) -> f64 {
    let mut walk = CounterWalk::default();
    for b in buckets {
        walk.bucket(b.min, b.max);
    }
    walk.total
}
