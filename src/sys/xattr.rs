//! Extended attributes (file capabilities such as `security.capability`,
//! ACLs, `user.*`) of what a descriptor refers to. The calls go through
//! `/proc/self/fd/N`, so any descriptor works, `O_PATH` ones included
//! (device nodes and FIFOs are never opened for reading or writing): the
//! kernel resolves that path to exactly the inode of the descriptor. Not for
//! symlinks (the path would lead through them).
use std::ffi::CString;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

fn proc_path(fd: BorrowedFd) -> io::Result<CString> {
    CString::new(super::fd_path(fd).as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn name_c(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The names of the extended attributes of `fd` (empty where the
/// filesystem has none).
pub fn list(fd: BorrowedFd) -> io::Result<Vec<Vec<u8>>> {
    let p = proc_path(fd)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: valid C string; the buffer is as long as we say.
        let n = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(vec![]),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The value of the attribute `name` of `fd`; `None` when it is gone.
pub fn get(fd: BorrowedFd, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let p = proc_path(fd)?;
    let n = name_c(name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings; the buffer is as long as we say.
        let r =
            unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Some(libc::ENODATA) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Sets the attribute `name` of `fd` to `value`.
pub fn set(fd: BorrowedFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    let p = proc_path(fd)?;
    let n = name_c(name)?;
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
