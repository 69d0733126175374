//! The vault's document store: files addressed by SHA-256, in RocksDB, encrypted at rest.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `documents` | file digest (32 bytes) | [`DocumentMeta`] (JSON) |
//! | `chunks` | blob id (16 bytes) ‖ chunk index (u32, big-endian) | nonce (24) ‖ XChaCha20-Poly1305 ciphertext |
//! | `journal` | sequence (u64, big-endian) | a served read not yet on the ledger ([`JournalEntry`]) |
//!
//! A file is cut into [`CHUNK_BYTES`] chunks as it streams in; each chunk is sealed with
//! XChaCha20-Poly1305 under the node's vault key, with a random nonce and the blob id and chunk
//! index as associated data (so chunks cannot be swapped or moved undetected). The `chunks`
//! column family keeps values in RocksDB blob files, apart from the LSM tree. The digest is known
//! only at the end of the stream: a file is written under a fresh blob id and registered under
//! its digest (with `sync`, which also makes its chunks durable) only if the digest is the one
//! the uploader declared — otherwise its chunks are deleted and nothing is registered.
//!
//! Files fetched from another node for one read are written the same way but never registered: a
//! [`TempBlob`] deletes its chunks when the last reader drops it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use vault_protocol::crypto::Digest;
use vault_protocol::ids::Timestamp;
use vault_protocol::tx::AccessRead;

/// Size of one stored chunk.
pub const CHUNK_BYTES: usize = 1024 * 1024;
const NONCE_BYTES: usize = 24;
const AAD_TAG: &[u8] = b"vault/v1/document-chunk\0";

const CF_DOCUMENTS: &str = "documents";
const CF_CHUNKS: &str = "chunks";
const CF_JOURNAL: &str = "journal";

/// Why the document store failed or refused.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// RocksDB reported an error.
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// The vault key file is unusable.
    #[error("vault key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not the one declared.
    #[error("the file's SHA-256 is {found}, not the declared {expected}")]
    DigestMismatch {
        /// Declared.
        expected: Digest,
        /// Received.
        found: Digest,
    },
    /// The file's size is not the one declared.
    #[error("the file has {found} bytes, not the declared {expected}")]
    SizeMismatch {
        /// Declared.
        expected: u64,
        /// Received.
        found: u64,
    },
    /// The file exceeds the configured limit.
    #[error("the file exceeds the vault's limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Stored data failed authentication or does not decode.
    #[error("stored document data is damaged: {what}")]
    Corrupt {
        /// What.
        what: String,
    },
}

/// What the vault records about a stored file (never its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    /// SHA-256 of the file.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type given at upload.
    pub media_type: String,
    /// When it was stored.
    pub stored_at: Timestamp,
    /// Who uploaded it (for the node's own records).
    pub uploaded_by: String,
    /// Where its chunks are.
    blob: [u8; 16],
    /// How many chunks.
    chunks: u32,
}

/// A served read waiting to be recorded on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct JournalEntry {
    /// The read.
    pub read: AccessRead,
}

/// The vault key: 32 bytes, kept in a file only the node's user can read.
pub struct VaultKey(XChaCha20Poly1305);

impl VaultKey {
    /// Loads the key at `path`, creating a fresh random one (mode 0600) if the file is absent.
    pub fn load_or_create(path: &Path) -> Result<Self, DocumentError> {
        let err = |reason: String| DocumentError::Key {
            path: path.display().to_string(),
            reason,
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                getrandom::getrandom(&mut k).map_err(|e| err(e.to_string()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                write_private(path, &hex::encode(k)).map_err(|e| err(e.to_string()))?;
                hex::encode(k).into_bytes()
            }
            Err(e) => return Err(err(e.to_string())),
        };
        let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8 hex".into()))?;
        let raw = hex::decode(text.trim()).map_err(|e| err(format!("not hex: {e}")))?;
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| err("must hold 32 bytes (64 hex characters)".into()))?;
        Ok(VaultKey(XChaCha20Poly1305::new(&key.into())))
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        VaultKey(XChaCha20Poly1305::new(&key.into()))
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The document store.
pub struct Documents {
    db: DB,
    key: VaultKey,
    max_file_bytes: u64,
    /// The last journal sequence number used.
    journal_seq: AtomicU64,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("path", &self.db.path())
            .finish()
    }
}

fn chunk_key(blob: &[u8; 16], index: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(blob);
    k[16..].copy_from_slice(&index.to_be_bytes());
    k
}

fn aad(blob: &[u8; 16], index: u32) -> Vec<u8> {
    [AAD_TAG, blob, &index.to_be_bytes()].concat()
}

impl Documents {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, key: VaultKey, max_file_bytes: u64) -> Result<Self, DocumentError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        let mut meta = Options::default();
        meta.set_compression_type(DBCompressionType::Lz4);
        // Sealed chunks do not compress; keep them in blob files, out of the LSM tree.
        let mut chunks = Options::default();
        chunks.set_compression_type(DBCompressionType::None);
        chunks.set_enable_blob_files(true);
        chunks.set_min_blob_size(4096);
        chunks.set_enable_blob_gc(true);
        let journal = Options::default();
        let db = DB::open_cf_descriptors(
            &opts,
            path,
            [
                ColumnFamilyDescriptor::new(CF_DOCUMENTS, meta),
                ColumnFamilyDescriptor::new(CF_CHUNKS, chunks),
                ColumnFamilyDescriptor::new(CF_JOURNAL, journal),
            ],
        )?;
        let last = match db
            .iterator_cf(
                db.cf_handle(CF_JOURNAL)
                    .ok_or_else(|| DocumentError::Corrupt {
                        what: "journal column family missing".into(),
                    })?,
                rocksdb::IteratorMode::End,
            )
            .next()
        {
            Some(Ok((k, _))) => {
                u64::from_be_bytes(k.as_ref().try_into().map_err(|_| DocumentError::Corrupt {
                    what: "journal key is not 8 bytes".into(),
                })?)
            }
            Some(Err(e)) => return Err(e.into()),
            None => 0,
        };
        Ok(Self {
            db,
            key,
            max_file_bytes,
            journal_seq: AtomicU64::new(last),
        })
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        // Every column family is created in `open`; a missing one means the process is broken.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} missing after open"))
    }

    /// The largest file accepted.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// The metadata of a stored file.
    pub fn meta(&self, digest: &Digest) -> Result<Option<DocumentMeta>, DocumentError> {
        match self.db.get_cf(self.cf(CF_DOCUMENTS), digest.0)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| DocumentError::Corrupt {
                    what: format!("metadata of {digest}: {e}"),
                }),
        }
    }

    /// Starts writing a file.
    pub fn writer(self: &Arc<Self>) -> Result<BlobWriter, DocumentError> {
        let mut blob = [0u8; 16];
        getrandom::getrandom(&mut blob).map_err(|e| DocumentError::Corrupt {
            what: format!("no randomness for a blob id: {e}"),
        })?;
        Ok(BlobWriter {
            docs: self.clone(),
            blob,
            hasher: Sha256::new(),
            buf: Vec::with_capacity(CHUNK_BYTES),
            size: 0,
            chunks: 0,
            done: false,
        })
    }

    fn seal(&self, blob: &[u8; 16], index: u32, plain: &[u8]) -> Result<Vec<u8>, DocumentError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|e| DocumentError::Corrupt {
            what: format!("no randomness for a nonce: {e}"),
        })?;
        let sealed = self
            .key
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad(blob, index),
                },
            )
            .map_err(|_| DocumentError::Corrupt {
                what: "encryption failed".into(),
            })?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// Reads and opens chunk `index` of `blob`.
    fn chunk(&self, blob: &[u8; 16], index: u32) -> Result<Vec<u8>, DocumentError> {
        let stored = self
            .db
            .get_cf(self.cf(CF_CHUNKS), chunk_key(blob, index))?
            .ok_or_else(|| DocumentError::Corrupt {
                what: format!("chunk {index} missing"),
            })?;
        if stored.len() < NONCE_BYTES {
            return Err(DocumentError::Corrupt {
                what: format!("chunk {index} truncated"),
            });
        }
        let (nonce, sealed) = stored.split_at(NONCE_BYTES);
        self.key
            .0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad(blob, index),
                },
            )
            .map_err(|_| DocumentError::Corrupt {
                what: format!("chunk {index} fails authentication (wrong vault key or tampered)"),
            })
    }

    fn delete_blob(&self, blob: &[u8; 16]) -> Result<(), DocumentError> {
        self.db.delete_range_cf(
            self.cf(CF_CHUNKS),
            chunk_key(blob, 0),
            chunk_key(blob, u32::MAX),
        )?;
        self.db
            .delete_cf(self.cf(CF_CHUNKS), chunk_key(blob, u32::MAX))?;
        Ok(())
    }

    /// A stored file's chunks, opened one at a time.
    pub fn reader(self: &Arc<Self>, digest: &Digest) -> Result<Option<BlobReader>, DocumentError> {
        Ok(self.meta(digest)?.map(|meta| BlobReader {
            docs: self.clone(),
            blob: meta.blob,
            chunks: meta.chunks,
            next: 0,
            _temp: None,
        }))
    }

    /// A whole stored file (tests and small files).
    pub fn read_all(self: &Arc<Self>, digest: &Digest) -> Result<Option<Vec<u8>>, DocumentError> {
        let Some(mut r) = self.reader(digest)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk()? {
            out.extend_from_slice(&c);
        }
        Ok(Some(out))
    }

    /// How many stored files.
    pub fn count(&self) -> usize {
        self.db
            .iterator_cf(self.cf(CF_DOCUMENTS), rocksdb::IteratorMode::Start)
            .count()
    }

    // -- the journal of served reads -----------------------------------------------------------

    /// Records a served read durably (fsync) before the file is handed over.
    pub fn journal_read(&self, read: AccessRead) -> Result<u64, DocumentError> {
        let cf = self.cf(CF_JOURNAL);
        let next = self.journal_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let bytes = borsh::to_vec(&JournalEntry { read }).map_err(|e| DocumentError::Corrupt {
            what: e.to_string(),
        })?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.put_cf_opt(cf, next.to_be_bytes(), bytes, &wo)?;
        Ok(next)
    }

    /// Up to `max` journaled reads, oldest first.
    pub fn journal(&self, max: usize) -> Result<Vec<(u64, JournalEntry)>, DocumentError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_JOURNAL), rocksdb::IteratorMode::Start)
            .take(max)
        {
            let (k, v) = item?;
            let seq =
                u64::from_be_bytes(k.as_ref().try_into().map_err(|_| DocumentError::Corrupt {
                    what: "journal key is not 8 bytes".into(),
                })?);
            let entry = borsh::from_slice(&v).map_err(|e| DocumentError::Corrupt {
                what: format!("journal entry {seq}: {e}"),
            })?;
            out.push((seq, entry));
        }
        Ok(out)
    }

    /// Removes journaled reads once they are on the ledger.
    pub fn forget_reads(&self, seqs: &[u64]) -> Result<(), DocumentError> {
        let mut batch = rocksdb::WriteBatch::default();
        for s in seqs {
            batch.delete_cf(self.cf(CF_JOURNAL), s.to_be_bytes());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }
}

/// Writes one file, chunk by chunk, hashing as it goes. Dropped unfinished, it deletes what it
/// wrote.
pub struct BlobWriter {
    docs: Arc<Documents>,
    blob: [u8; 16],
    hasher: Sha256,
    buf: Vec<u8>,
    size: u64,
    chunks: u32,
    done: bool,
}

/// How [`BlobWriter::finish`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The file's metadata.
    pub meta: DocumentMeta,
    /// Whether the vault already held this file (the new copy was discarded).
    pub already_held: bool,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends bytes.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), DocumentError> {
        let limit = self.docs.max_file_bytes;
        if self.size + data.len() as u64 > limit {
            return Err(DocumentError::TooLarge { limit });
        }
        self.size += data.len() as u64;
        self.hasher.update(data);
        while !data.is_empty() {
            let take = (CHUNK_BYTES - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_BYTES {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), DocumentError> {
        let sealed = self.docs.seal(&self.blob, self.chunks, &self.buf)?;
        self.docs.db.put_cf(
            self.docs.cf(CF_CHUNKS),
            chunk_key(&self.blob, self.chunks),
            sealed,
        )?;
        self.chunks += 1;
        self.buf.clear();
        Ok(())
    }

    fn complete(&mut self, expected: &Digest, size: Option<u64>) -> Result<(), DocumentError> {
        if !self.buf.is_empty() || self.chunks == 0 {
            self.flush_chunk()?;
        }
        let found = Digest(self.hasher.clone().finalize().into());
        if let Some(expected_size) = size {
            if expected_size != self.size {
                return Err(DocumentError::SizeMismatch {
                    expected: expected_size,
                    found: self.size,
                });
            }
        }
        if &found != expected {
            return Err(DocumentError::DigestMismatch {
                expected: *expected,
                found,
            });
        }
        Ok(())
    }

    /// Ends the file: checks its digest (and size, if declared) and registers it under the
    /// digest, durably. On a mismatch nothing is registered and the chunks are deleted.
    pub fn finish(
        mut self,
        expected: &Digest,
        size: Option<u64>,
        media_type: &str,
        uploaded_by: &str,
        now: Timestamp,
    ) -> Result<Stored, DocumentError> {
        self.complete(expected, size)?;
        if let Some(meta) = self.docs.meta(expected)? {
            // Already held: keep the copy we have (dropping `self` deletes the new one).
            return Ok(Stored {
                meta,
                already_held: true,
            });
        }
        let meta = DocumentMeta {
            digest: *expected,
            size: self.size,
            media_type: media_type.to_string(),
            stored_at: now,
            uploaded_by: uploaded_by.to_string(),
            blob: self.blob,
            chunks: self.chunks,
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| DocumentError::Corrupt {
            what: e.to_string(),
        })?;
        let mut wo = WriteOptions::default();
        // The synced write also makes every chunk written before it durable (one WAL).
        wo.set_sync(true);
        self.docs
            .db
            .put_cf_opt(self.docs.cf(CF_DOCUMENTS), expected.0, bytes, &wo)?;
        self.done = true;
        Ok(Stored {
            meta,
            already_held: false,
        })
    }

    /// Ends a file fetched for one read: checks its digest and returns it unregistered; its
    /// chunks are deleted when the last reader of the [`TempBlob`] is dropped.
    pub fn finish_temporary(mut self, expected: &Digest) -> Result<Arc<TempBlob>, DocumentError> {
        self.complete(expected, None)?;
        self.done = true;
        Ok(Arc::new(TempBlob {
            docs: self.docs.clone(),
            blob: self.blob,
            chunks: self.chunks,
            size: self.size,
        }))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.docs.delete_blob(&self.blob) {
                tracing::warn!(error = %e, "could not delete an unfinished upload's chunks");
            }
        }
    }
}

/// A file held for one read, deleted when dropped.
pub struct TempBlob {
    docs: Arc<Documents>,
    blob: [u8; 16],
    chunks: u32,
    size: u64,
}

impl TempBlob {
    /// Its size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads it.
    pub fn reader(self: &Arc<Self>) -> BlobReader {
        BlobReader {
            docs: self.docs.clone(),
            blob: self.blob,
            chunks: self.chunks,
            next: 0,
            _temp: Some(self.clone()),
        }
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if let Err(e) = self.docs.delete_blob(&self.blob) {
            tracing::warn!(error = %e, "could not delete a fetched file's chunks");
        }
    }
}

/// Reads a file's chunks in order, opening each.
pub struct BlobReader {
    docs: Arc<Documents>,
    blob: [u8; 16],
    chunks: u32,
    next: u32,
    _temp: Option<Arc<TempBlob>>,
}

impl BlobReader {
    /// The next chunk, or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, DocumentError> {
        if self.next >= self.chunks {
            return Ok(None);
        }
        let c = self.docs.chunk(&self.blob, self.next)?;
        self.next += 1;
        Ok(Some(c))
    }

    /// The chunks as an async byte stream (each chunk opened on the blocking pool).
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
        futures::stream::unfold(Some(self), |state| async move {
            let mut reader = state?;
            let res = tokio::task::spawn_blocking(move || {
                let c = reader.next_chunk();
                (reader, c)
            })
            .await;
            match res {
                Ok((reader, Ok(Some(c)))) => Some((Ok(bytes::Bytes::from(c)), Some(reader))),
                Ok((_, Ok(None))) => None,
                Ok((_, Err(e))) => Some((Err(std::io::Error::other(e.to_string())), None)),
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, key: [u8; 32], max: u64) -> Arc<Documents> {
        Arc::new(Documents::open(dir, VaultKey::from_bytes(key), max).unwrap())
    }

    fn sha(b: &[u8]) -> Digest {
        Digest(Sha256::digest(b).into())
    }

    fn file(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn store(docs: &Arc<Documents>, data: &[u8]) -> Result<Stored, DocumentError> {
        let mut w = docs.writer()?;
        for part in data.chunks(100_000) {
            w.write(part)?;
        }
        w.finish(
            &sha(data),
            Some(data.len() as u64),
            "application/pdf",
            "test",
            Timestamp(1),
        )
    }

    #[test]
    fn files_round_trip_across_chunks_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let data = file(2 * CHUNK_BYTES + 12_345);
        {
            let docs = open(dir.path(), [1; 32], 10 << 20);
            let s = store(&docs, &data).unwrap();
            assert!(!s.already_held);
            assert_eq!(s.meta.size, data.len() as u64);
            assert_eq!(s.meta.chunks, 3);
            assert!(store(&docs, &data).unwrap().already_held);
            assert_eq!(docs.count(), 1);
        }
        let docs = open(dir.path(), [1; 32], 10 << 20);
        assert_eq!(docs.read_all(&sha(&data)).unwrap().unwrap(), data);
        // An empty file is a file too.
        store(&docs, b"").unwrap();
        assert_eq!(docs.read_all(&sha(b"")).unwrap().unwrap(), b"");
    }

    #[test]
    fn content_is_encrypted_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let marker = b"UNIQUE-PLAINTEXT-MARKER-0123456789".repeat(1000);
        {
            let docs = open(dir.path(), [2; 32], 10 << 20);
            store(&docs, &marker).unwrap();
            docs.db.flush_cf(docs.cf(CF_CHUNKS)).unwrap();
        }
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !bytes.windows(24).any(|w| w == &marker[..24]),
                "plaintext found in {}",
                entry.display()
            );
        }
        // The wrong key cannot open it.
        let docs = open(dir.path(), [3; 32], 10 << 20);
        let e = docs.read_all(&sha(&marker)).unwrap_err();
        assert!(matches!(e, DocumentError::Corrupt { .. }), "{e}");
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn a_wrong_digest_or_size_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let docs = open(dir.path(), [4; 32], 10 << 20);
        let data = file(CHUNK_BYTES + 10);
        let mut w = docs.writer().unwrap();
        w.write(&data).unwrap();
        let other = sha(b"other");
        let e = w.finish(&other, None, "x", "t", Timestamp(1)).unwrap_err();
        assert!(matches!(e, DocumentError::DigestMismatch { .. }));
        let mut w = docs.writer().unwrap();
        w.write(&data).unwrap();
        let e = w
            .finish(&sha(&data), Some(5), "x", "t", Timestamp(1))
            .unwrap_err();
        assert!(matches!(e, DocumentError::SizeMismatch { expected: 5, .. }));
        assert_eq!(docs.count(), 0);
        let leftover = docs
            .db
            .iterator_cf(docs.cf(CF_CHUNKS), rocksdb::IteratorMode::Start)
            .count();
        assert_eq!(leftover, 0, "chunks of refused files are deleted");
    }

    #[test]
    fn the_size_limit_holds_while_streaming() {
        let dir = tempfile::tempdir().unwrap();
        let docs = open(dir.path(), [5; 32], 1000);
        let mut w = docs.writer().unwrap();
        w.write(&[0; 600]).unwrap();
        assert!(matches!(
            w.write(&[0; 600]),
            Err(DocumentError::TooLarge { limit: 1000 })
        ));
    }

    #[test]
    fn temporary_blobs_vanish_after_reading() {
        let dir = tempfile::tempdir().unwrap();
        let docs = open(dir.path(), [6; 32], 10 << 20);
        let data = file(CHUNK_BYTES * 2);
        let mut w = docs.writer().unwrap();
        w.write(&data).unwrap();
        let t = w.finish_temporary(&sha(&data)).unwrap();
        let mut r = t.reader();
        drop(t);
        let mut got = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            got.extend(c);
        }
        assert_eq!(got, data);
        drop(r);
        let left = docs
            .db
            .iterator_cf(docs.cf(CF_CHUNKS), rocksdb::IteratorMode::Start)
            .count();
        assert_eq!(left, 0);
        assert_eq!(docs.count(), 0, "a fetched file is never registered");
    }

    #[test]
    fn the_journal_survives_reopen_in_order() {
        use vault_protocol::ids::{AttestationId, GrantId};
        use vault_protocol::tx::Grantee;
        let dir = tempfile::tempdir().unwrap();
        let read = |n: u8| AccessRead {
            reader: Grantee::Department(vault_protocol::ids::DepartmentId::new("housing").unwrap()),
            attestation: AttestationId(Digest([n; 32])),
            grant: GrantId(Digest([n + 1; 32])),
            read_at: Timestamp(n as u64),
        };
        {
            let docs = open(dir.path(), [7; 32], 1000);
            for n in 0..5 {
                docs.journal_read(read(n)).unwrap();
            }
            docs.forget_reads(&[2]).unwrap();
        }
        let docs = open(dir.path(), [7; 32], 1000);
        let j = docs.journal(10).unwrap();
        let got: Vec<u8> = j.iter().map(|(_, e)| e.read.read_at.0 as u8).collect();
        assert_eq!(got, vec![0, 2, 3, 4]);
        // New entries go after the old ones.
        docs.journal_read(read(9)).unwrap();
        assert_eq!(docs.journal(10).unwrap().last().unwrap().1.read, read(9));
    }
}
