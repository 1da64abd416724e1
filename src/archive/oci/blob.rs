//! Content-addressed blobs (`blobs/sha256/HEX`): written through a hasher
//! as they stream, so a layer is never held in memory, and read back with
//! their digest checked as they stream.
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// A writer that hashes (SHA-256) and counts what passes through it.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the lowercase hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The running digest and size of a stream read through [`Tallied`].
#[derive(Default)]
pub struct Tally {
    hasher: Sha256,
    size: u64,
}

impl Tally {
    /// Compares the digest and size with `want` (`sha256:HEX`) and `size`.
    pub fn check(self, want: &str, size: Option<u64>) -> io::Result<()> {
        let got = format!("sha256:{}", hex(&self.hasher.finalize()));
        if got != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("its content has digest {got}, not {want} as the image says"),
            ));
        }
        if let Some(size) = size.filter(|s| *s != self.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it is {} bytes long, not {size} as the image says",
                    self.size
                ),
            ));
        }
        Ok(())
    }
}

/// A reader that hashes and counts what it reads into a [`Tally`] the
/// caller keeps (the reader itself may end up inside a decompressor).
pub struct Tallied<'t, R> {
    inner: R,
    tally: &'t mut Tally,
}

impl<'t, R: Read> Tallied<'t, R> {
    pub fn new(inner: R, tally: &'t mut Tally) -> Tallied<'t, R> {
        Tallied { inner, tally }
    }
}

impl<R: Read> Read for Tallied<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tally.hasher.update(&buf[..n]);
        self.tally.size += n as u64;
        Ok(n)
    }
}

/// Lowercase hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A blob being written into `blobs/sha256/` of a layout: first to a
/// temporary name, renamed to its digest when complete.
pub struct BlobWriter {
    dir: PathBuf,
    tmp: PathBuf,
    out: Hashing<BufWriter<File>>,
}

/// A finished blob: `sha256:HEX` and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
}

impl BlobWriter {
    /// Starts a blob in `blobs` (the layout's `blobs/sha256`).
    pub fn new(blobs: &Path, name: &str) -> io::Result<BlobWriter> {
        let tmp = blobs.join(format!(".{name}.partial"));
        let file = File::create(&tmp)?;
        Ok(BlobWriter {
            dir: blobs.to_path_buf(),
            tmp,
            out: Hashing::new(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// Flushes, syncs and renames the blob to its digest.
    pub fn finish(self) -> io::Result<Blob> {
        let (buf, hex, size) = self.out.finish();
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&self.tmp, self.dir.join(&hex))?;
        Ok(Blob {
            digest: format!("sha256:{hex}"),
            size,
        })
    }

    /// Writes a whole small blob (a JSON document).
    pub fn write_all_in(blobs: &Path, bytes: &[u8]) -> io::Result<Blob> {
        let mut w = BlobWriter::new(blobs, "json")?;
        w.write_all(bytes)?;
        w.finish()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_known_text() {
        let mut h = Hashing::new(Vec::new());
        h.write_all(b"abc").unwrap();
        let (v, d, n) = h.finish();
        assert_eq!(v, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            d,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn tally_of(b: &[u8]) -> Tally {
        let mut t = Tally::default();
        io::copy(&mut Tallied::new(b, &mut t), &mut io::sink()).unwrap();
        t
    }

    #[test]
    fn tally_refuses_other_content() {
        let want = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        tally_of(b"abc").check(want, Some(3)).unwrap();
        let e = tally_of(b"abd").check(want, None).unwrap_err();
        assert!(e.to_string().contains("not sha256:ba78"), "{e}");
        let e = tally_of(b"abc").check(want, Some(4)).unwrap_err();
        assert!(e.to_string().contains("3 bytes long, not 4"), "{e}");
    }
}
