//! The weekly error-log scan: counts configured patterns per file, and the most frequent
//! matching lines with numbers normalised away, reading only what was appended since the
//! previous scan.
//!
//! Where a scan stopped is remembered per watched log as the file it stopped in and the byte
//! offset inside its content. The file is recognised by (device, inode) and by a hash of its
//! first bytes; the hash still matches after logrotate renamed it to `NAME.1` or compressed it
//! to `NAME.2.gz` (the content is the same, an offset in it means the same). The next scan
//! continues there and then reads every newer rotated file and the live file whole.
//! Memory stays flat whatever the log size: lines are streamed through a bounded buffer, and
//! the table of distinct lines is capped. Each run reads at most a byte budget; what is left
//! waits for the next run.
//!
//! Synchronous (std::fs): run it on the blocking pool.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Bytes of a file's start that identify it across renames and compression.
const HEAD_BYTES: u64 = 1024;
/// Longest line kept; the rest of a longer line is consumed but not looked at.
const MAX_LINE: usize = 16 * 1024;
/// Distinct normalised lines counted; lines never seen once the table is full are not.
const MAX_DISTINCT: usize = 5_000;
/// How many of the most frequent lines the report shows.
pub const TOP_LINES: usize = 5;
/// Longest normalised line kept in the table.
const MAX_KEY: usize = 240;
/// On the first scan of a log, rotated files older than this are not read.
const FIRST_SCAN_MS: i64 = 7 * 86_400_000;

/// Where a scan stopped in one watched log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    pub head_hash: u64,
    pub head_len: u64,
    pub scanned_ms: i64,
}

/// What one watched log gave.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileScan {
    pub path: String,
    /// The files read, oldest first (rotated ones, then the live file).
    pub read: Vec<String>,
    /// Bytes of content read (compressed files: decompressed bytes, including those skipped).
    pub bytes_read: u64,
    pub lines: u64,
    /// Matches per pattern, in the configured order.
    pub counts: Vec<(String, u64)>,
    /// The byte budget ran out in this log; the rest waits for the next run.
    pub capped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A frequent matching line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopLine {
    pub line: String,
    pub count: u64,
}

/// Counts across every log of one scan.
#[derive(Debug, Default)]
pub struct Tally {
    lines: HashMap<String, u64>,
}

impl Tally {
    fn add(&mut self, line: &str) {
        let key = normalise(line);
        if let Some(n) = self.lines.get_mut(&key) {
            *n += 1;
        } else if self.lines.len() < MAX_DISTINCT {
            self.lines.insert(key, 1);
        }
    }

    /// The `n` most frequent lines, most frequent first (ties by text).
    pub fn top(&self, n: usize) -> Vec<TopLine> {
        let mut all: Vec<TopLine> = self
            .lines
            .iter()
            .map(|(line, &count)| TopLine {
                line: line.clone(),
                count,
            })
            .collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.line.cmp(&b.line)));
        all.truncate(n);
        all
    }
}

/// A line with what changes from one occurrence to the next replaced by `#`: runs of digits
/// (timestamps, ids, durations, ports) and long hexadecimal words (hashes, UUIDs).
pub fn normalise(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_KEY));
    for word in line.trim().split_inclusive(char::is_whitespace) {
        let bare = word.trim_end();
        let hexish = bare.len() >= 8
            && bare.chars().any(|c| c.is_ascii_digit())
            && bare
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-' || c == ':');
        if hexish {
            out.push('#');
            out.push_str(&word[bare.len()..]);
        } else {
            let mut in_digits = false;
            for c in word.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('#');
                    }
                    in_digits = true;
                } else {
                    in_digits = false;
                    out.push(c);
                }
            }
        }
        if out.len() >= MAX_KEY {
            break;
        }
    }
    let mut cut = out.len().min(MAX_KEY);
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out.trim_end().to_owned()
}

/// The files a list of globs names now (`*` and `?` in the file name only), sorted, without
/// rotated siblings (those are followed from their live file).
pub fn expand_globs(globs: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for g in globs {
        let path = Path::new(g);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            continue;
        };
        if !name.contains(['*', '?']) {
            out.push(path.to_owned());
            continue;
        }
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Some(file) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if wildcard(name, &file) && rotation_number(&file).is_none() && e.path().is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `*` matches any run of characters, `?` one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `app.log.3.gz` → 3, `app.log.1` → 1; a name that is not a numbered rotation → None.
fn rotation_number(name: &str) -> Option<u32> {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let (_, n) = name.rsplit_once('.')?;
    n.parse().ok()
}

/// One file to read for a watched log.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    gz: bool,
    dev: u64,
    ino: u64,
    mtime_ms: i64,
}

/// Rotated siblings of `live` (oldest first), then `live` itself when it exists.
fn sources(live: &Path) -> Vec<Source> {
    let mut out: Vec<(u32, Source)> = Vec::new();
    let (Some(dir), Some(base)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let gz = rest.ends_with(".gz");
            let Ok(n) = rest.strip_suffix(".gz").unwrap_or(rest).parse::<u32>() else {
                continue;
            };
            if let Some(s) = source(&e.path(), gz) {
                out.push((n, s));
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut list: Vec<Source> = out.into_iter().map(|(_, s)| s).collect();
    if let Some(s) = source(live, false) {
        list.push(s);
    }
    list
}

fn source(path: &Path, gz: bool) -> Option<Source> {
    let m = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some(Source {
        path: path.to_owned(),
        gz,
        dev: m.dev(),
        ino: m.ino(),
        mtime_ms: m.mtime() * 1000 + m.mtime_nsec() / 1_000_000,
    })
}

fn open(s: &Source) -> std::io::Result<Box<dyn Read>> {
    let f = File::open(&s.path)?;
    Ok(if s.gz {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
    } else {
        Box::new(f)
    })
}

/// FNV-1a over the first `len` bytes of the content of `s` (`None` when shorter).
fn head_hash(s: &Source, len: u64) -> Option<u64> {
    let mut r = open(s).ok()?.take(len);
    let mut buf = Vec::with_capacity(len as usize);
    r.read_to_end(&mut buf).ok()?;
    (buf.len() as u64 == len).then(|| fnv(&buf))
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Scans the watched log `live` from `prev` on, spending at most `budget` bytes (decremented).
/// Returns what it found and where to continue next time (`None`: nothing to remember).
pub fn scan_log(
    live: &Path,
    prev: Option<&Position>,
    patterns: &[String],
    budget: &mut u64,
    tally: &mut Tally,
    now_ms: i64,
) -> (FileScan, Option<Position>) {
    let mut scan = FileScan {
        path: live.display().to_string(),
        counts: patterns.iter().map(|p| (p.clone(), 0)).collect(),
        ..Default::default()
    };
    let all = sources(live);
    if all.is_empty() {
        scan.error = Some("no such file".to_owned());
        return (scan, prev.copied());
    }
    // Which file holds the previous position, and from where to read.
    let (start, mut from) = match prev {
        Some(p) => match all.iter().position(|s| holds(s, p)) {
            Some(i) => (i, p.offset),
            // That file is gone: read what changed since the last scan.
            None => (
                all.iter()
                    .position(|s| s.mtime_ms >= p.scanned_ms)
                    .unwrap_or(all.len() - 1),
                0,
            ),
        },
        None => (
            all.iter()
                .position(|s| s.mtime_ms >= now_ms - FIRST_SCAN_MS)
                .unwrap_or(all.len() - 1),
            0,
        ),
    };
    let mut position = prev.copied();
    for s in &all[start..] {
        // The live file was truncated in place (copytruncate): start it again.
        if !s.gz
            && let Ok(m) = std::fs::metadata(&s.path)
            && m.len() < from
        {
            from = 0;
        }
        match read_from(s, from, budget, tally, &mut scan) {
            Ok(end) => {
                let head_len = end.min(HEAD_BYTES);
                position = Some(Position {
                    dev: s.dev,
                    ino: s.ino,
                    offset: end,
                    head_hash: head_hash(s, head_len).unwrap_or(0),
                    head_len,
                    scanned_ms: now_ms,
                });
                scan.read.push(s.path.display().to_string());
            }
            Err(e) => {
                scan.error = Some(format!("{}: {e}", s.path.display()));
                break;
            }
        }
        if *budget == 0 {
            scan.capped = true;
            break;
        }
        from = 0;
    }
    (scan, position)
}

/// Whether `s` is the file a position was taken in.
fn holds(s: &Source, p: &Position) -> bool {
    let same_head = || p.head_len == 0 || head_hash(s, p.head_len) == Some(p.head_hash);
    if !s.gz && s.dev == p.dev && s.ino == p.ino {
        return same_head();
    }
    p.head_len > 0 && same_head()
}

/// Reads `s` from content offset `from` to its end (or until the budget runs out), counting
/// complete lines; returns the offset after the last complete line read.
fn read_from(
    s: &Source,
    from: u64,
    budget: &mut u64,
    tally: &mut Tally,
    scan: &mut FileScan,
) -> std::io::Result<u64> {
    let mut reader: Box<dyn Read> = if s.gz {
        let mut r = open(s)?;
        let skipped = std::io::copy(&mut (&mut r).take(from), &mut std::io::sink())?;
        scan.bytes_read += skipped;
        r
    } else {
        let mut f = File::open(&s.path)?;
        f.seek(SeekFrom::Start(from))?;
        Box::new(f)
    };
    let mut r = BufReader::with_capacity(64 * 1024, &mut reader);
    let mut line = Vec::with_capacity(1024);
    let mut offset = from;
    loop {
        if *budget == 0 {
            return Ok(offset);
        }
        line.clear();
        let (n, complete) = read_line(&mut r, &mut line)?;
        if n == 0 || !complete {
            // End of the file; an unfinished last line is read whole next time.
            return Ok(offset);
        }
        offset += n;
        scan.bytes_read += n;
        scan.lines += 1;
        *budget = budget.saturating_sub(n);
        let text = String::from_utf8_lossy(&line);
        let mut matched = false;
        for (pattern, count) in scan.counts.iter_mut() {
            if text.contains(pattern.as_str()) {
                *count += 1;
                matched = true;
            }
        }
        if matched {
            tally.add(&text);
        }
    }
}

/// One line into `line` (at most [`MAX_LINE`] bytes kept, without the newline). Returns the
/// bytes consumed and whether the line ended with a newline.
fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(u64, bool)> {
    let mut consumed = 0u64;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed, false));
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        consumed += used as u64;
        if done.is_some() {
            return Ok((consumed, true));
        }
    }
}

/// Calls `f` with every line of `live` and its rotated siblings (oldest first) that were
/// modified at or after `since_ms`, compressed ones included. For reports that need a whole
/// period (the auth log of a month) rather than what was appended.
pub fn for_each_line_since(
    live: &Path,
    since_ms: i64,
    mut f: impl FnMut(&str),
) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    for s in sources(live).iter().filter(|s| s.mtime_ms >= since_ms) {
        let mut r = BufReader::with_capacity(64 * 1024, open(s)?);
        loop {
            line.clear();
            let (n, _) = read_line(&mut r, &mut line)?;
            if n == 0 {
                break;
            }
            f(&String::from_utf8_lossy(&line));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn numbers_and_hashes_are_normalised_away() {
        assert_eq!(
            normalise("2026-11-20T03:14:07.123Z ERROR db timeout after 3000ms (pid 1234)"),
            "#-#-#T#:#:#.#Z ERROR db timeout after #ms (pid #)"
        );
        assert_eq!(
            normalise("ERROR request 3f2a9c1e-77b0-4d2e-9a51-0c1d2e3f4a5b failed"),
            "ERROR request # failed"
        );
    }

    #[test]
    fn globs_match_names_and_leave_rotations_out() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a.log", "b.log", "a.log.1", "a.log.2.gz", "c.txt"] {
            std::fs::write(dir.path().join(n), "x\n").unwrap();
        }
        let got = expand_globs(&[format!("{}/*.log", dir.path().display())]);
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.log", "b.log"]);
        assert!(wildcard("app-*-error.lo?", "app-web-error.log"));
        assert!(!wildcard("*.log", "app.log.1"));
    }

    fn scan(
        live: &Path,
        prev: Option<&Position>,
        budget: u64,
        now: i64,
    ) -> (FileScan, Option<Position>, Tally) {
        let mut tally = Tally::default();
        let mut b = budget;
        let (s, p) = scan_log(live, prev, &["ERROR".to_owned()], &mut b, &mut tally, now);
        (s, p, tally)
    }

    #[test]
    fn reads_only_what_was_appended_then_follows_a_rotation_into_gz() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        let now = chrono::Utc::now().timestamp_millis();
        std::fs::write(&live, "ok 1\nERROR 1\n").unwrap();
        let (s, p1, _) = scan(&live, None, u64::MAX, now);
        assert_eq!(s.counts[0].1, 1);
        assert_eq!(s.bytes_read, 13);

        // Appended, including an unfinished line: only the complete new line is read.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .unwrap();
        f.write_all(b"ERROR 2\npartial ERR").unwrap();
        let (s, p2, _) = scan(&live, p1.as_ref(), u64::MAX, now + 1);
        assert_eq!((s.counts[0].1, s.bytes_read), (1, 8));

        // logrotate: app.log → app.log.1 → compressed app.log.1.gz; a new app.log.
        f.write_all(b"OR 3\n").unwrap();
        drop(f);
        let text = std::fs::read(&live).unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            File::create(dir.path().join("app.log.1.gz")).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(&text).unwrap();
        gz.finish().unwrap();
        std::fs::remove_file(&live).unwrap();
        std::fs::write(&live, "ERROR 4\n").unwrap();
        let (s, _, tally) = scan(&live, p2.as_ref(), u64::MAX, now + 2);
        assert_eq!(s.counts[0].1, 2, "{s:?}");
        assert_eq!(s.read.len(), 2);
        // The line that was unfinished at the previous scan is read whole, once.
        let top = tally.top(5);
        assert_eq!(top.len(), 2, "{top:?}");
        assert!(
            top.iter()
                .any(|t| t.line == "partial ERROR #" && t.count == 1)
        );
        assert!(top.iter().any(|t| t.line == "ERROR #" && t.count == 1));
    }

    #[test]
    fn the_byte_budget_stops_a_run_and_the_next_run_continues() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        let now = chrono::Utc::now().timestamp_millis();
        std::fs::write(&live, "ERROR a\n".repeat(10)).unwrap();
        let (s, p, _) = scan(&live, None, 24, now);
        assert!(s.capped);
        assert_eq!(s.counts[0].1, 3);
        let (s, _, _) = scan(&live, p.as_ref(), u64::MAX, now + 1);
        assert_eq!(s.counts[0].1, 7);
        assert!(!s.capped);
    }
}
