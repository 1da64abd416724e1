//! Compression of archives: chosen by file name when writing, found by the
//! first bytes when reading. zstd and xz compress on every core.
use std::io::{self, BufRead, Read, Write};
use std::path::Path;

/// How an archive file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Xz,
    Gz,
    /// A plain tar stream.
    None,
}

impl Compression {
    /// By the end of the file name: `.tar.xz`/`.txz` xz, `.tar.gz`/`.tgz`
    /// gzip, `.tar` none, anything else (`.tar.zst`, `.tzst`, no
    /// extension) zstd, the default.
    pub fn for_name(file: &Path) -> Compression {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.ends_with(".xz") || name.ends_with(".txz") {
            Compression::Xz
        } else if name.ends_with(".gz") || name.ends_with(".tgz") {
            Compression::Gz
        } else if name.ends_with(".tar") {
            Compression::None
        } else {
            Compression::Zstd
        }
    }

    /// By the magic bytes at the start of a file; anything unknown is
    /// taken as a plain tar (the tar reader then says if it is not one).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gz
        } else {
            Compression::None
        }
    }
}

fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// A compressing writer; [`Encoder::finish`] writes the trailer and hands
/// back the inner writer.
pub enum Encoder<W: Write> {
    Zstd(zstd::Encoder<'static, W>),
    Xz(liblzma::write::XzEncoder<W>),
    Gz(flate2::write::GzEncoder<W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    /// zstd at level 3 on every core; xz at preset 6 (as `xz` itself) on
    /// every core; gzip at level 6.
    pub fn new(w: W, how: Compression) -> io::Result<Encoder<W>> {
        Ok(match how {
            Compression::Zstd => {
                let mut e = zstd::Encoder::new(w, 3)?;
                e.multithread(threads())?;
                Encoder::Zstd(e)
            }
            Compression::Xz => {
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads())
                    .preset(6)
                    .check(liblzma::stream::Check::Crc64)
                    .encoder()
                    .map_err(io::Error::other)?;
                Encoder::Xz(liblzma::write::XzEncoder::new_stream(w, stream))
            }
            Compression::Gz => Encoder::Gz(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(6),
            )),
            Compression::None => Encoder::None(w),
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Gz(e) => e.finish(),
            Encoder::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Xz(e) => e.write(buf),
            Encoder::Gz(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Xz(e) => e.flush(),
            Encoder::Gz(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// A reader of the tar stream inside `input`, however it is compressed
/// (found by its first bytes).
pub fn decoder<'a, R: BufRead + 'a>(mut input: R) -> io::Result<Box<dyn Read + 'a>> {
    let how = Compression::sniff(input.fill_buf()?);
    Ok(match how {
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(input)?),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
        Compression::Gz => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::None => Box::new(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name() {
        let c = |n: &str| Compression::for_name(Path::new(n));
        assert_eq!(c("/x/a.tar.zst"), Compression::Zstd);
        assert_eq!(c("a.tzst"), Compression::Zstd);
        assert_eq!(c("a"), Compression::Zstd);
        assert_eq!(c("a.tar.xz"), Compression::Xz);
        assert_eq!(c("a.TXZ"), Compression::Xz);
        assert_eq!(c("a.tar.gz"), Compression::Gz);
        assert_eq!(c("a.tgz"), Compression::Gz);
        assert_eq!(c("a.tar"), Compression::None);
    }

    #[test]
    fn round_trip_every_compression() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for how in [
            Compression::Zstd,
            Compression::Xz,
            Compression::Gz,
            Compression::None,
        ] {
            let mut e = Encoder::new(Vec::new(), how).unwrap();
            e.write_all(&data).unwrap();
            let packed = e.finish().unwrap();
            assert_eq!(Compression::sniff(&packed), how, "{how:?}");
            let mut back = vec![];
            decoder(io::BufReader::new(&packed[..]))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{how:?} round trip");
        }
    }
}
