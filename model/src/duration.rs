//! Durations as Nomad's API encodes them: integer nanoseconds (Go's `time.Duration`).

use serde::{Deserialize, Serialize};

/// A duration in nanoseconds; a plain JSON integer on the wire. Signed, because Nomad uses
/// negative values as markers (a drain deadline of -1s means "force now").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nanos(pub i64);

impl Nanos {
    pub const ZERO: Nanos = Nanos(0);
    pub const MILLISECOND: Nanos = Nanos(1_000_000);
    pub const SECOND: Nanos = Nanos(1_000_000_000);
    pub const MINUTE: Nanos = Nanos(60 * 1_000_000_000);
    pub const HOUR: Nanos = Nanos(3600 * 1_000_000_000);

    pub const fn from_secs(secs: i64) -> Nanos {
        Nanos(secs * Self::SECOND.0)
    }
    pub const fn from_millis(ms: i64) -> Nanos {
        Nanos(ms * Self::MILLISECOND.0)
    }
    pub const fn from_mins(mins: i64) -> Nanos {
        Nanos(mins * Self::MINUTE.0)
    }
    pub const fn from_hours(hours: i64) -> Nanos {
        Nanos(hours * Self::HOUR.0)
    }
    pub const fn as_nanos(self) -> i64 {
        self.0
    }
    /// `None` for negative durations, which `std::time::Duration` cannot hold.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0).ok().map(std::time::Duration::from_nanos)
    }
    pub fn from_std(d: std::time::Duration) -> Nanos {
        Nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl std::fmt::Display for Nanos {
    /// Go's `time.Duration` style for whole units (`5s`, `1m30s`, `1h0m0s`), as the CLI shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        let sign = if ns < 0 { "-" } else { "" };
        let abs = ns.unsigned_abs();
        if !abs.is_multiple_of(1_000_000_000) {
            if abs < 1_000 {
                return write!(f, "{sign}{abs}ns");
            }
            if abs < 1_000_000 {
                return write!(f, "{sign}{}µs", abs as f64 / 1e3);
            }
            if abs < 1_000_000_000 {
                return write!(f, "{sign}{}ms", abs as f64 / 1e6);
            }
        }
        let total_secs = abs / 1_000_000_000;
        let frac = abs % 1_000_000_000;
        let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
        let secs = if frac == 0 { format!("{s}") } else { format!("{}", s as f64 + frac as f64 / 1e9) };
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{secs}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{secs}s")
        } else {
            write!(f, "{sign}{secs}s")
        }
    }
}

impl std::str::FromStr for Nanos {
    type Err = String;

    /// Go's `time.ParseDuration` syntax: an optional sign, then one or more decimal numbers
    /// (fractions allowed) each followed by a unit `ns`, `us`/`µs`, `ms`, `s`, `m` or `h`
    /// (`"5s"`, `"1h30m"`, `"1.5s"`, `"-1s"`); `"0"` alone needs no unit.
    fn from_str(input: &str) -> Result<Nanos, String> {
        let bad = |why: &str| format!("invalid duration \"{input}\": {why} (expected e.g. \"30s\", \"5m\", \"1h30m\")");
        let (negative, mut rest) = match input.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, input.strip_prefix('+').unwrap_or(input)),
        };
        if rest == "0" {
            return Ok(Nanos::ZERO);
        }
        if rest.is_empty() {
            return Err(bad("empty"));
        }
        let mut total: f64 = 0.0;
        while !rest.is_empty() {
            let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            let number: f64 = rest[..number_len].parse().map_err(|_| bad("a number is missing"))?;
            rest = &rest[number_len..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => return Err(bad("a unit is missing")),
                _ => return Err(bad("unknown unit")),
            };
            rest = &rest[unit_len..];
            total += number * scale;
        }
        if total > i64::MAX as f64 {
            return Err(bad("too large"));
        }
        let nanos = total.round() as i64;
        Ok(Nanos(if negative { -nanos } else { nanos }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_encode_as_plain_integers_and_display_like_go() {
        assert_eq!(serde_json::to_string(&Nanos::from_secs(5)).unwrap(), "5000000000");
        assert_eq!(Nanos::from_secs(5).to_string(), "5s");
        assert_eq!(Nanos::from_secs(90).to_string(), "1m30s");
        assert_eq!(Nanos::from_hours(1).to_string(), "1h0m0s");
        assert_eq!(Nanos::from_millis(250).to_string(), "250ms");
        assert_eq!(Nanos::from_secs(-1).to_string(), "-1s");
    }

    #[test]
    fn nanos_parse_go_duration_strings() {
        let ok = |s: &str| s.parse::<Nanos>().unwrap();
        assert_eq!(ok("5s"), Nanos::from_secs(5));
        assert_eq!(ok("1h30m"), Nanos::from_mins(90));
        assert_eq!(ok("1.5s"), Nanos::from_millis(1500));
        assert_eq!(ok("250ms"), Nanos::from_millis(250));
        assert_eq!(ok("-1s"), Nanos::from_secs(-1));
        assert_eq!(ok("0"), Nanos::ZERO);
        assert_eq!(ok("10us"), Nanos(10_000));
        for bad in ["", "5", "s", "5x", "1..2s", "-"] {
            assert!(bad.parse::<Nanos>().is_err(), "{bad:?} should not parse");
        }
        for d in [Nanos::from_secs(5), Nanos::from_mins(90), Nanos::from_millis(1500), Nanos::from_hours(24)] {
            assert_eq!(ok(&d.to_string()), d, "Display and FromStr agree");
        }
    }
}
