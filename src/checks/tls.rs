//! Certificate facts for HTTPS checks: the expiry date of the certificate a server presented.
//!
//! Only `notAfter` is needed, so this walks the DER structure of RFC 5280 §4.1 directly
//! rather than pulling in a full X.509 parser:
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
//! signature, issuer, validity SEQUENCE { notBefore Time, notAfter Time }, ... }, ... }`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// `notAfter` of a DER certificate as unix epoch ms, or `None` if it cannot be read.
pub fn not_after_ms(der: &[u8]) -> Option<i64> {
    let (cert, _) = read(der, 0x30)?;
    let (mut tbs, _) = read(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = read(tbs, 0xa0)?.1; // explicit version tag
    }
    let (_, rest) = read(tbs, 0x02)?; // serialNumber
    let (_, rest) = read(rest, 0x30)?; // signature algorithm
    let (_, rest) = read(rest, 0x30)?; // issuer
    let (validity, _) = read(rest, 0x30)?;
    let (_, rest) = read_any(validity)?; // notBefore
    let (tag, value, _) = read_tlv(rest)?;
    parse_time(tag, value)
}

/// Reads one element with the expected tag: (its contents, what follows it).
fn read(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, value, rest) = read_tlv(input)?;
    (t == tag).then_some((value, rest))
}

fn read_any(input: &[u8]) -> Option<(&[u8], &[u8])> {
    read_tlv(input).map(|(_, v, r)| (v, r))
}

fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn parse_time(tag: u8, value: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = s.get(..2)?.parse().ok()?;
            // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| rest.get(r)?.parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(year, num(0..2)?, num(2..4)?)?;
    let time = NaiveTime::from_hms_opt(num(4..6)?, num(6..8)?, num(8..10)?)?;
    Some(NaiveDateTime::new(date, time).and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_a_real_certificate() {
        // A certificate made by `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256
        // -days 30 -subj /CN=localhost` and read back with `openssl x509 -enddate`.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        let der = dir.path().join("c.der");
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args([
                "-days",
                "30",
                "-subj",
                "/CN=localhost",
                "-outform",
                "DER",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&der)
            .output();
        let Ok(made) = made else {
            eprintln!("notice: openssl not available; skipping");
            return;
        };
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let bytes = std::fs::read(&der).unwrap();
        let got = not_after_ms(&bytes).expect("notAfter parsed");
        let expected = chrono::Utc::now().timestamp_millis() + 30 * 86_400_000;
        assert!(
            (got - expected).abs() < 120_000,
            "notAfter {got} vs about {expected}"
        );
    }

    #[test]
    fn both_time_encodings() {
        assert_eq!(parse_time(0x17, b"491231235959Z"), Some(2524607999000));
        assert_eq!(parse_time(0x17, b"500101000000Z"), Some(-631152000000));
        assert_eq!(parse_time(0x18, b"20500101000000Z"), Some(2524608000000));
        assert_eq!(parse_time(0x18, b"2050010100000Z"), None);
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01\x00",
        ] {
            assert_eq!(not_after_ms(input), None);
        }
    }
}
