//! The bytes of [`super::FILE_PROTOCOL`]. A stream carries requests one at a time, each answered
//! before the next is sent; either side may close it between them.
//!
//! | frame | bytes |
//! | --- | --- |
//! | request | `kind` (1 byte: 1 manifest, 2 piece) · file id (32 bytes) · piece index (4 bytes, big-endian; 0 for the manifest) |
//! | response | `status` (1 byte, [`Status`]) · length (4 bytes, big-endian) · that many bytes |
//!
//! A manifest is the piece hashes, 32 bytes each, in order. A response that is not `ok` carries
//! a UTF-8 reason of at most [`MAX_REASON_BYTES`]. A downloader knows how long each answer must
//! be (from the offer) and refuses any other length before it allocates.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Hash;

/// Longest reason in a response that is not `ok`.
pub const MAX_REASON_BYTES: u32 = 256;

/// What a downloader asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The piece hashes of a file.
    Manifest(Hash),
    /// One piece of a file.
    Piece(Hash, u32),
}

impl Request {
    /// The file it is about.
    pub fn file(&self) -> &Hash {
        match self {
            Self::Manifest(id) | Self::Piece(id, _) => id,
        }
    }
}

/// How a provider answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Here it is.
    Ok = 0,
    /// No such file here.
    Unknown = 1,
    /// Too many downloads at once: try again later or elsewhere.
    Busy = 2,
    /// The request makes no sense (a piece past the end, an unknown kind).
    BadRequest = 3,
    /// The file is known but cannot be read (it changed or went away).
    Unavailable = 4,
}

impl Status {
    fn from_byte(byte: u8) -> Option<Self> {
        [
            Self::Ok,
            Self::Unknown,
            Self::Busy,
            Self::BadRequest,
            Self::Unavailable,
        ]
        .into_iter()
        .find(|s| *s as u8 == byte)
    }
}

/// Why a response was not the bytes asked for.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The stream failed or closed.
    #[error("stream: {0}")]
    Io(#[from] io::Error),
    /// The provider said no.
    #[error("the provider said {status:?}: {reason}")]
    Refused {
        /// Its answer.
        status: Status,
        /// Its reason.
        reason: String,
    },
    /// The answer's length is not the one the request implies.
    #[error("the provider announced {got} bytes where {expected} (at most) were due")]
    WrongLength {
        /// What it announced.
        got: u32,
        /// What the offer implies.
        expected: u32,
    },
    /// A status byte this build does not know, or a request kind.
    #[error("unknown {0} byte {1}")]
    Unknown(&'static str, u8),
}

/// Writes a request.
pub async fn write_request<W: AsyncWrite + Unpin>(io: &mut W, request: &Request) -> io::Result<()> {
    let (kind, id, index) = match request {
        Request::Manifest(id) => (1u8, id, 0u32),
        Request::Piece(id, index) => (2u8, id, *index),
    };
    let mut frame = [0u8; 37];
    frame[0] = kind;
    frame[1..33].copy_from_slice(id);
    frame[33..].copy_from_slice(&index.to_be_bytes());
    io.write_all(&frame).await?;
    io.flush().await
}

/// Reads a request; `Ok(None)` when the stream ended cleanly before one.
pub async fn read_request<R: AsyncRead + Unpin>(io: &mut R) -> Result<Option<Request>, WireError> {
    let mut frame = [0u8; 37];
    let mut got = 0;
    while got < frame.len() {
        let n = io.read(&mut frame[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        got += n;
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&frame[1..33]);
    let index = u32::from_be_bytes([frame[33], frame[34], frame[35], frame[36]]);
    match frame[0] {
        1 => Ok(Some(Request::Manifest(id))),
        2 => Ok(Some(Request::Piece(id, index))),
        other => Err(WireError::Unknown("request kind", other)),
    }
}

/// Writes a response: `status` and its bytes (the data, or a reason).
pub async fn write_response<W: AsyncWrite + Unpin>(
    io: &mut W,
    status: Status,
    bytes: &[u8],
) -> io::Result<()> {
    let bytes = if status == Status::Ok {
        bytes
    } else {
        &bytes[..bytes.len().min(MAX_REASON_BYTES as usize)]
    };
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("response over 4 GiB"))?;
    let mut head = [0u8; 5];
    head[0] = status as u8;
    head[1..].copy_from_slice(&len.to_be_bytes());
    io.write_all(&head).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

/// Reads a response that must be `ok` and exactly `expected` bytes long.
pub async fn read_response<R: AsyncRead + Unpin>(
    io: &mut R,
    expected: u32,
) -> Result<Vec<u8>, WireError> {
    read_answer(io, expected, expected).await
}

/// Reads a response that must be `ok` and at most `most` bytes long (a manifest: its length is
/// checked once it is read).
pub async fn read_response_upto<R: AsyncRead + Unpin>(
    io: &mut R,
    most: u32,
) -> Result<Vec<u8>, WireError> {
    read_answer(io, 0, most).await
}

async fn read_answer<R: AsyncRead + Unpin>(
    io: &mut R,
    least: u32,
    most: u32,
) -> Result<Vec<u8>, WireError> {
    let mut head = [0u8; 5];
    io.read_exact(&mut head).await?;
    let status = Status::from_byte(head[0]).ok_or(WireError::Unknown("status", head[0]))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if status != Status::Ok {
        if len > MAX_REASON_BYTES {
            return Err(WireError::WrongLength {
                got: len,
                expected: MAX_REASON_BYTES,
            });
        }
        let mut reason = vec![0u8; len as usize];
        io.read_exact(&mut reason).await?;
        let reason = String::from_utf8_lossy(&reason).into_owned();
        return Err(WireError::Refused { status, reason });
    }
    if !(least..=most).contains(&len) {
        return Err(WireError::WrongLength {
            got: len,
            expected: most,
        });
    }
    let mut bytes = vec![0u8; len as usize];
    io.read_exact(&mut bytes).await?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;

    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        block_on(async {
            let mut buf = Cursor::new(Vec::new());
            write_request(&mut buf, &Request::Piece([7; 32], 513))
                .await
                .expect("written");
            write_request(&mut buf, &Request::Manifest([9; 32]))
                .await
                .expect("written");
            buf.set_position(0);
            let first = read_request(&mut buf).await.expect("read");
            assert_eq!(first, Some(Request::Piece([7; 32], 513)));
            let second = read_request(&mut buf).await.expect("read");
            assert_eq!(second, Some(Request::Manifest([9; 32])));
            assert_eq!(read_request(&mut buf).await.expect("clean end"), None);

            let mut buf = Cursor::new(Vec::new());
            write_response(&mut buf, Status::Ok, b"piece")
                .await
                .expect("written");
            write_response(&mut buf, Status::Unknown, b"no such file")
                .await
                .expect("written");
            buf.set_position(0);
            assert_eq!(read_response(&mut buf, 5).await.expect("ok"), b"piece");
            let refused = read_response(&mut buf, 5).await;
            assert!(matches!(
                refused,
                Err(WireError::Refused { status: Status::Unknown, ref reason }) if reason == "no such file"
            ));
        });
    }

    #[test]
    fn a_length_other_than_the_one_due_is_refused_before_allocating() {
        block_on(async {
            // A provider announcing 4 GiB for a 5-byte piece.
            let mut frame = vec![0u8];
            frame.extend_from_slice(&u32::MAX.to_be_bytes());
            let result = read_response(&mut Cursor::new(frame), 5).await;
            assert!(matches!(
                result,
                Err(WireError::WrongLength {
                    got: u32::MAX,
                    expected: 5
                })
            ));
            // A refusal with a 4 GiB reason.
            let mut frame = vec![1u8];
            frame.extend_from_slice(&u32::MAX.to_be_bytes());
            let result = read_response(&mut Cursor::new(frame), 5).await;
            assert!(matches!(result, Err(WireError::WrongLength { .. })));
        });
    }

    #[test]
    fn garbage_requests_are_errors_not_panics() {
        block_on(async {
            let mut frame = vec![9u8];
            frame.extend_from_slice(&[0; 36]);
            let result = read_request(&mut Cursor::new(frame)).await;
            assert!(matches!(result, Err(WireError::Unknown("request kind", 9))));
            let result = read_request(&mut Cursor::new(vec![1u8, 2, 3])).await;
            assert!(matches!(result, Err(WireError::Io(_))));
        });
    }
}
