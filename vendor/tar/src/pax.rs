#![allow(dead_code)]
use std::io;
use std::io::Write;
use std::str;

use crate::other;

// Keywords for PAX extended header records.
pub const PAX_NONE: &str = ""; // Indicates that no PAX key is suitable
pub const PAX_PATH: &str = "path";
pub const PAX_LINKPATH: &str = "linkpath";
pub const PAX_SIZE: &str = "size";
pub const PAX_UID: &str = "uid";
pub const PAX_GID: &str = "gid";
pub const PAX_UNAME: &str = "uname";
pub const PAX_GNAME: &str = "gname";
pub const PAX_MTIME: &str = "mtime";
pub const PAX_ATIME: &str = "atime";
pub const PAX_CTIME: &str = "ctime"; // Removed from later revision of PAX spec, but was valid
pub const PAX_CHARSET: &str = "charset"; // Currently unused
pub const PAX_COMMENT: &str = "comment"; // Currently unused

pub const PAX_SCHILYXATTR: &str = "SCHILY.xattr.";

// Keywords for GNU sparse files in a PAX extended header.
pub const PAX_GNUSPARSE: &str = "GNU.sparse.";
pub const PAX_GNUSPARSENUMBLOCKS: &str = "GNU.sparse.numblocks";
pub const PAX_GNUSPARSEOFFSET: &str = "GNU.sparse.offset";
pub const PAX_GNUSPARSENUMBYTES: &str = "GNU.sparse.numbytes";
pub const PAX_GNUSPARSEMAP: &str = "GNU.sparse.map";
pub const PAX_GNUSPARSENAME: &str = "GNU.sparse.name";
pub const PAX_GNUSPARSEMAJOR: &str = "GNU.sparse.major";
pub const PAX_GNUSPARSEMINOR: &str = "GNU.sparse.minor";
pub const PAX_GNUSPARSESIZE: &str = "GNU.sparse.size";
pub const PAX_GNUSPARSEREALSIZE: &str = "GNU.sparse.realsize";

/// An iterator over the pax extensions in an archive entry.
///
/// This iterator yields structures which can themselves be parsed into
/// key/value pairs.
pub struct PaxExtensions<'entry> {
    /// The records not read yet: each is `LENGTH SP KEY = VALUE LF`, LENGTH
    /// counting the whole record, so that a value may hold any byte, a
    /// newline too (an ACL or capability of `SCHILY.xattr`). The crate as
    /// published splits on newlines instead (composefs/tar-rs#452): such a
    /// value failed, and bytes within one could be read as records of
    /// their own.
    data: &'entry [u8],
}

impl<'entry> PaxExtensions<'entry> {
    /// Create new pax extensions iterator from the given entry data.
    pub fn new(a: &'entry [u8]) -> Self {
        PaxExtensions { data: a }
    }
}

/// A key/value pair corresponding to a pax extension.
pub struct PaxExtension<'entry> {
    key: &'entry [u8],
    value: &'entry [u8],
}

/// The PAX keys that decide where a member is, what it is called and whom
/// it is given ([`check_pax`]).
pub const PAX_DECIDING: [&[u8]; 5] = [b"path", b"linkpath", b"size", b"uid", b"gid"];

/// Checks a whole PAX header before anything of it is used: every record
/// well formed, no PAX sparse file, and what decides where a member is,
/// what it is called and whom it is given (`path`, `linkpath`, `size`,
/// `uid`, `gid`) given at most once, as decimal digits where a number
/// (`uid` and `gid` within 32 bits). Readers differ on a key given twice (this crate took the first,
/// GNU tar and Python the last) and on a number they cannot read: such a
/// header would show them another member than it shows us.
pub fn check_pax(a: &[u8]) -> io::Result<()> {
    let mut seen: Vec<&[u8]> = Vec::new();
    for ext in PaxExtensions::new(a) {
        let ext = ext?;
        let key = ext.key_bytes();
        // PAX sparse files (GNU's formats 0.1 and 1.0) rename the member
        // and frame its data otherwise: not read here.
        if key.starts_with(b"GNU.sparse.") {
            return Err(other("a pax sparse file, which is not supported"));
        }
        if !PAX_DECIDING.contains(&key) {
            continue;
        }
        if seen.contains(&key) {
            return Err(other("a pax extension given twice"));
        }
        seen.push(key);
        if key == b"path" || key == b"linkpath" {
            continue;
        }
        let v = ext.value_bytes();
        let max = if key == b"size" { u64::MAX } else { u32::MAX.into() };
        let number = (!v.is_empty() && v.iter().all(u8::is_ascii_digit))
            .then(|| str::from_utf8(v).ok()?.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n <= max);
        if number.is_none() {
            return Err(other("a pax size, uid or gid that is not a number"));
        }
    }
    Ok(())
}

pub fn pax_extensions_value(a: &[u8], key: &str) -> Option<u64> {
    for extension in PaxExtensions::new(a) {
        let current_extension = match extension {
            Ok(ext) => ext,
            Err(_) => return None,
        };
        if current_extension.key() != Ok(key) {
            continue;
        }

        let value = match current_extension.value() {
            Ok(value) => value,
            Err(_) => return None,
        };
        let result = match value.parse::<u64>() {
            Ok(result) => result,
            Err(_) => return None,
        };
        return Some(result);
    }
    None
}

impl<'entry> Iterator for PaxExtensions<'entry> {
    type Item = io::Result<PaxExtension<'entry>>;

    fn next(&mut self) -> Option<io::Result<PaxExtension<'entry>>> {
        if self.data.is_empty() {
            return None;
        }
        let record = self
            .data
            .iter()
            .position(|b| *b == b' ')
            .and_then(|i| {
                // Decimal digits only (`parse` would take a `+`): a length
                // read otherwise than other readers read it frames other
                // records than theirs.
                let digits = &self.data[..i];
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let len = str::from_utf8(digits).ok()?.parse::<usize>().ok()?;
                (len > i + 1 && len <= self.data.len() && self.data[len - 1] == b'\n')
                    .then_some((i + 1, len))
            })
            .and_then(|(kvstart, len)| {
                let kv = &self.data[kvstart..len - 1];
                let equals = kv.iter().position(|b| *b == b'=')?;
                Some((
                    PaxExtension {
                        key: &kv[..equals],
                        value: &kv[equals + 1..],
                    },
                    len,
                ))
            });
        match record {
            Some((ext, len)) => {
                self.data = &self.data[len..];
                Some(Ok(ext))
            }
            None => {
                // Nothing after a malformed record can be framed.
                self.data = &[];
                Some(Err(other("malformed pax extension")))
            }
        }
    }
}

impl<'entry> PaxExtension<'entry> {
    /// Returns the key for this key/value pair parsed as a string.
    ///
    /// May fail if the key isn't actually utf-8.
    pub fn key(&self) -> Result<&'entry str, str::Utf8Error> {
        str::from_utf8(self.key)
    }

    /// Returns the underlying raw bytes for the key of this key/value pair.
    pub fn key_bytes(&self) -> &'entry [u8] {
        self.key
    }

    /// Returns the value for this key/value pair parsed as a string.
    ///
    /// May fail if the value isn't actually utf-8.
    pub fn value(&self) -> Result<&'entry str, str::Utf8Error> {
        str::from_utf8(self.value)
    }

    /// Returns the underlying raw bytes for this value of this key/value pair.
    pub fn value_bytes(&self) -> &'entry [u8] {
        self.value
    }
}

/// Extension trait for `Builder` to append PAX extended headers.
impl<T: Write> crate::Builder<T> {
    /// Append PAX extended headers to the archive.
    ///
    /// Takes in an iterator over the list of headers to add to convert it into a header set formatted.
    ///
    /// Returns io::Error if an error occurs, else it returns ()
    pub fn append_pax_extensions<'key, 'value>(
        &mut self,
        headers: impl IntoIterator<Item = (&'key str, &'value [u8])>,
    ) -> Result<(), io::Error> {
        // Store the headers formatted before write
        let mut data: Vec<u8> = Vec::new();

        // For each key in headers, convert into a sized space and add it to data.
        // This will then be written in the file
        for (key, value) in headers {
            let mut len_len = 1;
            let mut max_len = 10;
            let rest_len = 3 + key.len() + value.len();
            while rest_len + len_len >= max_len {
                len_len += 1;
                max_len *= 10;
            }
            let len = rest_len + len_len;
            write!(&mut data, "{} {}=", len, key)?;
            data.extend_from_slice(value);
            data.push(b'\n');
        }

        // Ignore the header append if it's empty.
        if data.is_empty() {
            return Ok(());
        }

        // Create a header of type XHeader, set the size to the length of the
        // data, set the entry type to XHeader, and set the checksum
        // then append the header and the data to the archive.
        let mut header = crate::Header::new_ustar();
        let data_as_bytes: &[u8] = &data;
        header.set_size(data_as_bytes.len() as u64);
        header.set_entry_type(crate::EntryType::XHeader);
        header.set_cksum();
        self.append(&header, data_as_bytes)
    }
}
