//! Formatting for people: aligned tables, sizes, times.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Columns separated by tabs-worth of spaces, like `machinectl list`.
pub struct Table<const N: usize> {
    header: [&'static str; N],
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    pub fn new(header: [&'static str; N]) -> Self {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, row: [String; N]) {
        self.rows.push(row);
    }

    pub fn write(&self, out: &mut impl Write, legend: bool) -> io::Result<()> {
        DynTable {
            header: self.header.to_vec(),
            rows: self.rows.iter().map(|r| r.to_vec()).collect(),
        }
        .write(out, legend)
    }
}

/// A [`Table`] whose columns are chosen at run time (`--full`, `--fields`).
pub struct DynTable {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl DynTable {
    pub fn new(header: Vec<&'static str>, rows: Vec<Vec<String>>) -> Self {
        DynTable { header, rows }
    }

    pub fn write(&self, out: &mut impl Write, legend: bool) -> io::Result<()> {
        let n = self.header.len();
        let mut widths = vec![0usize; n];
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let all = legend.then_some(&header).into_iter().chain(&self.rows);
        for row in all.clone() {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in all {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == n {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `1.5 MiB`, `230 KiB`, `12 B`: one decimal below 10, none above, as the original rkt
/// printed sizes (go-humanize's `IBytes`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// The original rkt's exact time (Go's `2006-01-02 15:04:05.999 -0700 MST`), in UTC:
/// `2024-05-01 12:00:00 +0000 UTC`. For `--full` tables and `rkt status`.
pub fn exact_time(unix: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Nanoseconds since the epoch, as the original rkt's JSON gives times of images and apps.
pub fn unix_nanos(unix: u64) -> i64 {
    i64::try_from(unix)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
}

/// RFC 3339 in UTC, for JSON and `--full`.
pub fn rfc3339(unix: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| unix.to_string())
}

/// "3 minutes ago" for tables (as the original rkt said it, go-humanize's `Time`), or the
/// exact time with `--full`.
pub fn format_time(unix: u64, full: bool) -> String {
    if full {
        return exact_time(unix);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    ago(now.saturating_sub(unix))
}

/// go-humanize's words for a time `secs` seconds ago.
fn ago(secs: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const WEEK: u64 = 7 * DAY;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 12 * MONTH;
    let (n, unit) = match secs {
        0 => return "now".to_owned(),
        s if s < MINUTE => (s, "second"),
        s if s < HOUR => (s / MINUTE, "minute"),
        s if s < DAY => (s / HOUR, "hour"),
        s if s < WEEK => (s / DAY, "day"),
        s if s < MONTH => (s / WEEK, "week"),
        s if s < YEAR => (s / MONTH, "month"),
        s if s < 18 * MONTH => (1, "year"),
        s if s < 2 * YEAR => (2, "year"),
        s => (s / YEAR, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tables() {
        assert_eq!(format_size(12), "12 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        let mut t = Table::new(["A", "BB"]);
        t.row(["xyz".into(), "1".into()]);
        let mut out = Vec::new();
        t.write(&mut out, true).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB\nxyz  1\n");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_size(80 * 1024 * 1024 + 100), "80 MiB");
        assert_eq!(exact_time(86_400), "1970-01-02 00:00:00 +0000 UTC");
        assert_eq!(unix_nanos(2), 2_000_000_000);
    }

    #[test]
    fn times_ago_as_the_original_said_them() {
        assert_eq!(ago(0), "now");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(59), "59 seconds ago");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(7200), "2 hours ago");
        assert_eq!(ago(86_400 * 3), "3 days ago");
        assert_eq!(ago(86_400 * 14), "2 weeks ago");
    }
}
