//! engine

// TEMPORARY placeholder for `create`, replaced by the real one on merge.
/// Unmounts everything at or below `dir`, deepest first, re-reading
/// /proc/self/mountinfo until nothing changes; returns what could not be unmounted.
pub fn unmount_below(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    use std::path::PathBuf;
    fn unescape(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\'
                && i + 3 < b.len()
                && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
            {
                out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
                i += 4;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    let below = || -> std::io::Result<Vec<PathBuf>> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")?;
        let mut v: Vec<PathBuf> = text
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|m| PathBuf::from(unescape(m)))
            .filter(|m| m.starts_with(dir))
            .collect();
        // Deepest first; among equal paths the later (upper) mount first.
        v.reverse();
        v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        Ok(v)
    };
    let mut last = below()?;
    loop {
        for m in &last {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::empty());
        }
        let now = below()?;
        if now.is_empty() || now == last {
            return Ok(now);
        }
        last = now;
    }
}
