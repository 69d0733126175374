//! Local files: streaming digests, media types, and sending a file as a request body.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use vault_protocol::crypto::Digest;

use crate::ClientError;

/// The SHA-256 of a file and its size, read in chunks (files of any size, in constant memory).
/// This is the digest attestations record: plain SHA-256, as `sha256sum` prints it.
pub fn file_digest(path: &Path) -> std::io::Result<(Digest, u64)> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Digest(hasher.finalize().into()), size))
}

/// The media type of the common document formats, by file extension.
pub fn guess_media_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => "application/pdf",
        "ofd" => "application/ofd",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "tif" | "tiff" => "image/tiff",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "xml" => "application/xml",
        "txt" => "text/plain",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => return None,
    })
}

/// How long a transfer of `len` bytes may take: a minute and a quarter, plus a second for every
/// 256 KiB (so a link slower than that fails rather than hangs).
pub(crate) fn transfer_timeout(len: u64) -> Duration {
    Duration::from_secs(75 + len / (256 * 1024))
}

/// A node's raw answer: status, content type and body.
pub(crate) struct RawAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends a file as the body of a request and returns the node's answer, reporting the bytes
/// handed to the connection so far through `progress`.
///
/// This runs the asynchronous HTTP client on a small runtime of its own, not the blocking one: a
/// node may refuse an upload from its headers alone (too large, a refused signed request) and
/// answer before it has read the body; the blocking client then reports only the broken
/// connection, while the asynchronous one returns the node's answer with its error code.
pub(crate) fn send_file(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, String)],
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<RawAnswer, ClientError> {
    let file = File::open(path).map_err(ClientError::file(path))?;
    let len = file.metadata().map_err(ClientError::file(path))?.len();
    // A duplicate of the handle shares the file offset: reading its position tells how far the
    // body has been read, without getting in the way of the transfer.
    let watcher = file.try_clone().map_err(ClientError::file(path))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Unexpected(format!("cannot start the I/O runtime: {e}")))?;
    let unreachable = |error| ClientError::Unreachable {
        url: url.to_string(),
        error,
    };
    let answer = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(transfer_timeout(len))
            .build()
            .map_err(unreachable)?;
        let mut request = http
            .request(method, url)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::from(tokio::fs::File::from_std(file)));
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let send = request.send();
        tokio::pin!(send);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let response = loop {
            tokio::select! {
                r = &mut send => break r.map_err(unreachable)?,
                _ = tick.tick() => {
                    if let Ok(pos) = (&watcher).stream_position() {
                        progress(pos.min(len));
                    }
                }
            }
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unreachable)?;
        Ok::<_, ClientError>(RawAnswer {
            status,
            body: body.to_vec(),
        })
    })?;
    if answer.status < 400 {
        progress(len);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn streaming_digest_is_plain_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        // Larger than one read buffer, and not a multiple of it.
        let data: Vec<u8> = (0..700_001u32).map(|i| (i % 251) as u8).collect();
        File::create(&path).unwrap().write_all(&data).unwrap();
        let (d, size) = file_digest(&path).unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(
            d,
            vault_protocol::crypto::CryptoSuite::Ed25519Sha256.file_digest(&data)
        );
        // The well-known digest of the empty file.
        let empty = dir.path().join("empty");
        File::create(&empty).unwrap();
        assert_eq!(
            file_digest(&empty).unwrap().0.to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn media_types() {
        assert_eq!(
            guess_media_type(Path::new("a/licence.PDF")),
            Some("application/pdf")
        );
        assert_eq!(
            guess_media_type(Path::new("x.ofd")),
            Some("application/ofd")
        );
        assert_eq!(guess_media_type(Path::new("noext")), None);
    }
}
