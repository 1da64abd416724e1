//! The one door for reading a file of a sandbox (`tool.conf`,
//! `create.toml`, `/etc/passwd`, `/etc/group`…): its content is untrusted
//! data. The path is resolved inside the root (no symlink leads out), only
//! a regular file is opened for reading (a FIFO, a device or a socket is
//! refused before it is opened, so nothing blocks and no device is
//! touched), and at most `cap` bytes are read.
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::fcntl::OFlag;

use super::resolve::resolve_in_root;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a regular file")]
    NotRegular,
    #[error("a file of the kernel (procfs, sysfs...), not data")]
    KernelFile,
    #[error("larger than {cap} bytes")]
    TooLarge { cap: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Filesystems of the kernel's own files (`statfs` magic numbers).
const KERNEL_FS: [i64; 14] = [
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0xcafe_4a11, // bpf
    0xde5e_81e4, // efivarfs
    0x6265_6570, // configfs
    0x6165_676c, // pstore
    0x6573_5543, // fusectl
    0x4249_4e4d, // binfmt_misc
    0xf97c_ff8c, // selinuxfs
];

/// `path` opened as a `File` with `flags` (`O_CLOEXEC` added) and, when it
/// is made, `mode`: `openat(AT_FDCWD, ...)`, where std's `open` pays one
/// more system call for `O_CLOEXEC` with musl (see [`super::open_path`]).
pub fn open_file(path: &Path, flags: nix::fcntl::OFlag, mode: u32) -> io::Result<std::fs::File> {
    let fd = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        path,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )?;
    Ok(std::fs::File::from(fd))
}

/// The whole of a file of procfs (`/proc/self/mountinfo`,
/// `/proc/self/status`), read in large pieces from the start with no size
/// asked first (such files say 0), where std's `fs::read` would begin with
/// a 32-byte read and double from there (a dozen reads for a mount table of
/// 1500 lines). A file that is not procfs's is refused: in a holder's mount
/// namespace, root inside the sandbox may have mounted over `/proc`.
pub fn read_proc(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = open_file(path, nix::fcntl::OFlag::O_RDONLY, 0)?;
    let fs = nix::sys::statfs::fstatfs(f.as_fd()).map_err(io::Error::from)?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not procfs's", path.display()),
        ));
    }
    let mut text = vec![0; 16 * 1024];
    let mut n = 0;
    loop {
        match f.read(&mut text[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if n == text.len() {
            text.resize(n * 2, 0);
        }
    }
    text.truncate(n);
    Ok(text)
}

/// The value of the field `name` (`"Uid:"`, `"SigIgn:"`) in the text of a
/// `/proc/PID/status`, trimmed.
pub fn status_field<'a>(status: &'a [u8], name: &str) -> Option<&'a str> {
    let rest = status
        .split(|b| *b == b'\n')
        .find_map(|l| l.strip_prefix(name.as_bytes()))?;
    std::str::from_utf8(rest).ok().map(str::trim)
}

/// Reads `path` (absolute inside the root) from the root `root`.
/// `Ok(None)` when it does not exist.
pub fn read_in_root(
    root: BorrowedFd,
    path: &Path,
    cap: usize,
) -> Result<Option<Vec<u8>>, ReadError> {
    let fd = match resolve_in_root(root, path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(io::Error::from)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(ReadError::NotRegular);
    }
    // procfs and sysfs files look regular, but reading one can consume
    // (`/proc/kmsg`) or be as large as memory (`/proc/kcore`).
    let fs = nix::sys::statfs::fstatfs(fd.as_fd()).map_err(io::Error::from)?;
    if KERNEL_FS.contains(&(fs.filesystem_type().0 as i64)) {
        return Err(ReadError::KernelFile);
    }
    // Reopened through the descriptor: the very inode that was checked.
    let file = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        &super::fd_path(fd.as_fd()),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)?;
    // Room for the whole file as it stood: read in one go, then the end seen.
    let mut out = Vec::with_capacity((st.st_size.max(0) as usize).min(cap) + 1);
    std::fs::File::from(file)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > cap {
        return Err(ReadError::TooLarge { cap });
    }
    Ok(Some(out))
}
