//! AMP, the framing PM2's sockets speak (the `amp` and `amp-message` packages that ship in
//! PM2's `node_modules`), written from their description:
//!
//! ```text
//! frame = meta:u8 (version << 4 | argc), then argc × (len:u32 big-endian, bytes[len])
//! ```
//!
//! The version is 1 and a frame has 1 to 15 arguments. `amp-message` tags each argument by its
//! first two bytes: `s:` a UTF-8 string, `j:` JSON, anything else a binary blob.
//!
//! Reading is strict because the peer may not be PM2 at all (another program on the socket, a
//! future PM2): a wrong version, zero arguments or an argument over [`MAX_ARG_BYTES`] is a
//! [`FrameError::Protocol`] at once, rather than a wait for bytes that never come or an
//! allocation of whatever length the garbage spells.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The only AMP version there is.
pub const VERSION: u8 = 1;

/// Largest argument accepted: `getMonitorData` answers ~5 KB per process (each app's whole
/// environment is in it, twice), so 64 MiB is thousands of apps, and a garbage length fails
/// instead of allocating gigabytes.
pub const MAX_ARG_BYTES: usize = 64 * 1024 * 1024;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection ended before (`clean`) or inside a frame.
    #[error("the connection closed {}", if *clean { "before an answer" } else { "in the middle of a message" })]
    Closed { clean: bool },
    /// The bytes are not AMP. The reason describes the bytes, never quotes them.
    #[error("not AMP framing: {0}")]
    Protocol(String),
    #[error("reading the socket: {0}")]
    Io(#[from] std::io::Error),
}

/// One argument of an `amp-message`.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Str(String),
    /// The JSON text after `j:` (parsed by the caller into only the fields it needs).
    Json(Vec<u8>),
    Blob(Vec<u8>),
}

impl Arg {
    /// Tags the raw bytes of one argument as `amp-message` does.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Arg {
        match bytes.get(..2) {
            Some(b"s:") => match String::from_utf8(bytes.split_off(2)) {
                Ok(s) => Arg::Str(s),
                Err(e) => Arg::Blob(e.into_bytes()),
            },
            Some(b"j:") => Arg::Json(bytes.split_off(2)),
            _ => Arg::Blob(bytes),
        }
    }

    fn wire_len(&self) -> usize {
        match self {
            Arg::Str(s) => 2 + s.len(),
            Arg::Json(j) => 2 + j.len(),
            Arg::Blob(b) => b.len(),
        }
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Arg::Str(s) => {
                out.extend_from_slice(b"s:");
                out.extend_from_slice(s.as_bytes());
            }
            Arg::Json(j) => {
                out.extend_from_slice(b"j:");
                out.extend_from_slice(j);
            }
            Arg::Blob(b) => out.extend_from_slice(b),
        }
    }
}

/// Encodes one frame. Panics only on a programming error (no argument or more than 15).
pub fn encode(args: &[Arg]) -> Vec<u8> {
    assert!(
        (1..=15).contains(&args.len()),
        "an AMP frame has 1 to 15 arguments"
    );
    let len = 1 + args.iter().map(|a| 4 + a.wire_len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.push(VERSION << 4 | args.len() as u8);
    for a in args {
        out.extend_from_slice(&(a.wire_len() as u32).to_be_bytes());
        a.write_to(&mut out);
    }
    out
}

/// Reads the frame header: the number of arguments that follow.
pub async fn read_meta<R: AsyncRead + Unpin>(r: &mut R) -> Result<usize, FrameError> {
    let mut meta = [0u8; 1];
    match r.read(&mut meta).await? {
        0 => Err(FrameError::Closed { clean: true }),
        _ => {
            let (version, argc) = (meta[0] >> 4, (meta[0] & 0x0f) as usize);
            if version != VERSION || argc == 0 {
                return Err(FrameError::Protocol(format!(
                    "first byte 0x{:02x} is not version 1 with 1 to 15 arguments",
                    meta[0]
                )));
            }
            Ok(argc)
        }
    }
}

/// Reads the length of the next argument, checked against `limit`.
pub async fn read_arg_len<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<usize, FrameError> {
    let mut len = [0u8; 4];
    read_exact(r, &mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(FrameError::Protocol(format!(
            "an argument of {len} bytes (at most {limit} accepted)"
        )));
    }
    Ok(len)
}

/// Reads the next argument (its length, then its bytes).
pub async fn read_arg<R: AsyncRead + Unpin>(r: &mut R, limit: usize) -> Result<Arg, FrameError> {
    let len = read_arg_len(r, limit).await?;
    let mut bytes = vec![0u8; len];
    read_exact(r, &mut bytes).await?;
    Ok(Arg::from_bytes(bytes))
}

/// Skips `len` bytes without keeping them (arguments of messages nobody asked for, such as
/// the apps' log lines PM2 publishes).
pub async fn skip<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<(), FrameError> {
    let copied = tokio::io::copy(&mut r.take(len as u64), &mut tokio::io::sink()).await?;
    if copied < len as u64 {
        return Err(FrameError::Closed { clean: false });
    }
    Ok(())
}

/// Reads a whole frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<Arg>, FrameError> {
    let argc = read_meta(r).await?;
    let mut args = Vec::with_capacity(argc);
    for _ in 0..argc {
        args.push(read_arg(r, MAX_ARG_BYTES).await?);
    }
    Ok(args)
}

async fn read_exact<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FrameError::Closed { clean: false })
        }
        Err(e) => Err(FrameError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_tags() {
        let args = vec![
            Arg::Json(br#"{"type":"call"}"#.to_vec()),
            Arg::Str("opswatch:0".to_owned()),
            Arg::Blob(vec![0, 1, 2]),
        ];
        let wire = encode(&args);
        // Meta byte: version 1, 3 arguments; then the first length, big-endian.
        assert_eq!(&wire[..5], &[0x13, 0, 0, 0, 17]);
        assert_eq!(&wire[5..7], b"j:");
        let back = read_frame(&mut wire.as_slice()).await.unwrap();
        assert_eq!(back, args);
    }

    #[tokio::test]
    async fn frames_split_anywhere_are_reassembled() {
        let wire = [
            encode(&[Arg::Str("process:event".into()), Arg::Json(b"{}".to_vec())]),
            encode(&[Arg::Str("next".into())]),
        ]
        .concat();
        // A reader that hands out one byte at a time.
        let mut reader = OneByteAtATime(wire, 0);
        let first = read_frame(&mut reader).await.unwrap();
        assert_eq!(first[0], Arg::Str("process:event".into()));
        let second = read_frame(&mut reader).await.unwrap();
        assert_eq!(second, vec![Arg::Str("next".into())]);
        assert!(matches!(
            read_frame(&mut reader).await,
            Err(FrameError::Closed { clean: true })
        ));
    }

    /// Hands out one byte per read, as a slow socket might.
    struct OneByteAtATime(Vec<u8>, usize);

    impl AsyncRead for OneByteAtATime {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let at = self.1;
            if let Some(&b) = self.0.get(at) {
                buf.put_slice(&[b]);
                self.1 += 1;
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error_not_a_wait() {
        // HTTP, a JSON line, a wrong version: rejected on the first byte.
        for junk in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"{\"a\":1}\n",
            &[0x21, 0, 0],
        ] {
            let e = read_frame(&mut &junk[..]).await.unwrap_err();
            assert!(matches!(e, FrameError::Protocol(_)), "{e:?}");
        }
        // A plausible header announcing 4 GB: rejected without allocating.
        let e = read_frame(&mut &[0x11, 0xff, 0xff, 0xff, 0xff][..])
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::Protocol(_)), "{e:?}");
        // Cut inside an argument.
        let e = read_frame(&mut &[0x11, 0, 0, 0, 9, b's', b':'][..])
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::Closed { clean: false }), "{e:?}");
    }

    #[tokio::test]
    async fn skip_discards_exactly() {
        let data = b"abcdefXY";
        let mut r = &data[..];
        skip(&mut r, 6).await.unwrap();
        assert_eq!(r, b"XY");
        assert!(matches!(
            skip(&mut r, 5).await,
            Err(FrameError::Closed { clean: false })
        ));
    }
}
