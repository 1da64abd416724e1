//! What a run may use: `--memory`, `--cpus`, `--pids` (a cgroup per run,
//! see [`super::RunCgroup`]) and `--rlimit NAME=N` (setrlimit in the child),
//! each also a `[limits]` key of tool.conf; the command line wins. Pure:
//! text in, values out; every error says what is wrong with the value.

/// The period of `cpu.max` / `cpu.cfs_period_us`, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The setrlimit resources a run can limit, by their `--rlimit` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    Nofile,
    Nproc,
    Fsize,
    Cpu,
    As,
    Core,
}

/// The `--rlimit` names, in the order documented.
pub const RLIMIT_NAMES: [&str; 6] = ["nofile", "nproc", "fsize", "cpu", "as", "core"];

/// The `[limits]` keys.
pub const KEYS: [&str; 9] = [
    "memory", "cpus", "pids", "nofile", "nproc", "fsize", "cpu", "as", "core",
];

impl Rlimit {
    pub fn from_name(name: &str) -> Option<Rlimit> {
        Some(match name {
            "nofile" => Rlimit::Nofile,
            "nproc" => Rlimit::Nproc,
            "fsize" => Rlimit::Fsize,
            "cpu" => Rlimit::Cpu,
            "as" => Rlimit::As,
            "core" => Rlimit::Core,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Rlimit::Nofile => "nofile",
            Rlimit::Nproc => "nproc",
            Rlimit::Fsize => "fsize",
            Rlimit::Cpu => "cpu",
            Rlimit::As => "as",
            Rlimit::Core => "core",
        }
    }

    /// The resource number of setrlimit(2).
    pub fn resource(self) -> i32 {
        (match self {
            Rlimit::Nofile => libc::RLIMIT_NOFILE,
            Rlimit::Nproc => libc::RLIMIT_NPROC,
            Rlimit::Fsize => libc::RLIMIT_FSIZE,
            Rlimit::Cpu => libc::RLIMIT_CPU,
            Rlimit::As => libc::RLIMIT_AS,
            Rlimit::Core => libc::RLIMIT_CORE,
        }) as i32
    }

    /// Sizes in bytes take a suffix (K, M, G, T); counts and seconds do not.
    fn is_size(self) -> bool {
        matches!(self, Rlimit::Fsize | Rlimit::As | Rlimit::Core)
    }

    /// A value of this limit: a number (a size for fsize, as and core), or
    /// `unlimited`.
    pub fn parse_value(self, s: &str) -> Result<u64, String> {
        if s == "unlimited" {
            return Ok(u64::MAX);
        }
        if self.is_size() {
            parse_size(s, true)
        } else {
            parse_count(s, true)
        }
    }
}

/// What a run asks for; `None` / empty: no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    /// CPU time per [`CPU_PERIOD_US`], in microseconds (`--cpus 1.5`: 150000).
    pub cpu_quota: Option<u64>,
    pub pids: Option<u64>,
    /// Soft and hard limit alike (`u64::MAX`: unlimited); one per resource.
    pub rlimits: Vec<(Rlimit, u64)>,
}

impl Limits {
    /// Whether the run needs a cgroup.
    pub fn needs_cgroup(&self) -> bool {
        self.memory.is_some() || self.cpu_quota.is_some() || self.pids.is_some()
    }

    pub fn is_empty(&self) -> bool {
        !self.needs_cgroup() && self.rlimits.is_empty()
    }

    /// Sets `r`, replacing an earlier value of it.
    pub fn set_rlimit(&mut self, r: Rlimit, v: u64) {
        self.rlimits.retain(|(x, _)| *x != r);
        self.rlimits.push((r, v));
    }

    /// Takes one `key:value` of `[limits]` (or of the command line).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |e: String| format!("{key}:{}: {e}", crate::show::quote(value));
        match key {
            "memory" => self.memory = Some(parse_size(value, false).map_err(bad)?),
            "cpus" => self.cpu_quota = Some(parse_cpus(value).map_err(bad)?),
            "pids" => self.pids = Some(parse_count(value, false).map_err(bad)?),
            _ => match Rlimit::from_name(key) {
                Some(r) => self.set_rlimit(r, r.parse_value(value).map_err(bad)?),
                None => {
                    return Err(format!(
                        "unknown key {} (known: {})",
                        crate::show::quote(key),
                        KEYS.join(", ")
                    ))
                }
            },
        }
        Ok(())
    }

    /// `self` (the command line) over `base` (tool.conf), key by key.
    pub fn over(&self, base: &Limits) -> Limits {
        let mut l = base.clone();
        l.memory = self.memory.or(base.memory);
        l.cpu_quota = self.cpu_quota.or(base.cpu_quota);
        l.pids = self.pids.or(base.pids);
        for &(r, v) in &self.rlimits {
            l.set_rlimit(r, v);
        }
        l
    }
}

/// A count: decimal digits; zero only when `zero_ok`.
pub fn parse_count(s: &str, zero_ok: bool) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number".into());
    }
    let n: u64 = s.parse().map_err(|_| "too large".to_string())?;
    if n == 0 && !zero_ok {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A size in bytes: digits and an optional suffix K, M, G or T (powers of
/// 1024, either case, an optional `B` after them); zero only when `zero_ok`.
pub fn parse_size(s: &str, zero_ok: bool) -> Result<u64, String> {
    let digits = s.bytes().take_while(|b| b.is_ascii_digit()).count();
    let (num, suffix) = s.split_at(digits);
    let upper = suffix.to_ascii_uppercase();
    let shift = match upper.strip_suffix('B').unwrap_or(&upper) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err("expected a size such as 512M or 1G (suffixes K, M, G, T)".into()),
    };
    if num.is_empty() {
        return Err("expected a size such as 512M or 1G (suffixes K, M, G, T)".into());
    }
    let n: u64 = num.parse().map_err(|_| "too large".to_string())?;
    let bytes = n.checked_mul(1 << shift).ok_or("too large")?;
    if bytes == 0 && !zero_ok {
        return Err("must be more than 0".into());
    }
    Ok(bytes)
}

/// CPUs as a decimal (`1.5`, `0.25`, `2`), into a quota per
/// [`CPU_PERIOD_US`]; at least 0.01 (the kernel's minimum quota is 1 ms).
pub fn parse_cpus(s: &str) -> Result<u64, String> {
    let expected = || "expected a number of CPUs such as 1.5 or 0.5 (at least 0.01)".to_string();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || frac.len() > 5 {
        return Err(expected());
    }
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| "too large".to_string())?
    };
    let mut micro = 0u64;
    for (i, b) in frac.bytes().enumerate() {
        micro += u64::from(b - b'0') * 10u64.pow(4 - i as u32);
    }
    let quota = int
        .checked_mul(CPU_PERIOD_US)
        .and_then(|q| q.checked_add(micro))
        .filter(|q| *q <= 1 << 40)
        .ok_or("too large")?;
    if quota < 1000 {
        return Err(expected());
    }
    Ok(quota)
}

/// `--rlimit NAME=N`.
pub fn parse_rlimit_arg(s: &str) -> Result<(Rlimit, u64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=N, NAME one of: {}", RLIMIT_NAMES.join(", ")))?;
    let r = Rlimit::from_name(name).ok_or_else(|| {
        format!(
            "unknown limit {} (known: {})",
            crate::show::quote(name),
            RLIMIT_NAMES.join(", ")
        )
    })?;
    let v = r
        .parse_value(value)
        .map_err(|e| format!("{name}={value}: {e}"))?;
    Ok((r, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M", false), Ok(512 << 20));
        assert_eq!(parse_size("1G", false), Ok(1 << 30));
        assert_eq!(parse_size("1gb", false), Ok(1 << 30));
        assert_eq!(parse_size("4096", false), Ok(4096));
        assert_eq!(parse_size("2k", false), Ok(2048));
        assert_eq!(parse_size("0", true), Ok(0));
        for bad in [
            "",
            "M",
            "1.5G",
            "12Q",
            "-1",
            "0",
            " 1M",
            "1M ",
            "B",
            "99999999999T",
        ] {
            assert!(parse_size(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5"), Ok(150_000));
        assert_eq!(parse_cpus("0.5"), Ok(50_000));
        assert_eq!(parse_cpus("2"), Ok(200_000));
        assert_eq!(parse_cpus(".25"), Ok(25_000));
        assert_eq!(parse_cpus("0.01"), Ok(1000));
        for bad in ["", ".", "0", "0.001", "1,5", "-1", "abc", "1.5.1", "1e3"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_and_rlimits() {
        assert_eq!(parse_count("256", false), Ok(256));
        assert!(parse_count("0", false).is_err());
        assert!(parse_count("+1", false).is_err());
        assert_eq!(parse_rlimit_arg("nofile=16"), Ok((Rlimit::Nofile, 16)));
        assert_eq!(parse_rlimit_arg("core=0"), Ok((Rlimit::Core, 0)));
        assert_eq!(parse_rlimit_arg("as=1G"), Ok((Rlimit::As, 1 << 30)));
        assert_eq!(
            parse_rlimit_arg("cpu=unlimited"),
            Ok((Rlimit::Cpu, u64::MAX))
        );
        for bad in ["nofile", "nofile=", "nofile=1K", "stack=1", "=3", "nproc=x"] {
            assert!(parse_rlimit_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_and_the_command_line_wins() {
        let mut conf = Limits::default();
        conf.set("memory", "512M").unwrap();
        conf.set("cpus", "1.5").unwrap();
        conf.set("nofile", "1024").unwrap();
        assert!(conf
            .set("memroy", "1G")
            .unwrap_err()
            .contains("unknown key"));
        assert!(conf.set("pids", "lots").is_err());
        let mut cli = Limits {
            memory: Some(1 << 30),
            ..Limits::default()
        };
        cli.set_rlimit(Rlimit::Nofile, 16);
        let l = cli.over(&conf);
        assert_eq!(l.memory, Some(1 << 30));
        assert_eq!(l.cpu_quota, Some(150_000));
        assert_eq!(l.rlimits, vec![(Rlimit::Nofile, 16)]);
    }

    #[test]
    fn the_template_example_parses() {
        let example = crate::create::TOOL_CONF
            .lines()
            .find(|l| l.starts_with("#memory:"))
            .expect("the template shows a [limits] record");
        let text = format!("[limits]\n{}\n", &example[1..]);
        let c = crate::conf::Conf::parse(&text, std::path::Path::new("t")).unwrap();
        assert_eq!(c.limits.memory, Some(512 << 20));
        assert_eq!(c.limits.cpu_quota, Some(150_000));
        assert_eq!(c.limits.pids, Some(256));
        assert_eq!(c.limits.rlimits, vec![(Rlimit::Nofile, 1024)]);
    }
}
