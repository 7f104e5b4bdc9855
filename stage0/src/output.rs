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
        let mut widths = [0usize; N];
        let header = self.header.map(str::to_owned);
        let all = legend.then_some(&header).into_iter().chain(&self.rows);
        for row in all.clone() {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in all {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == N {
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

/// `1.5 MiB`, `230 KiB`, `12 B`.
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
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// RFC 3339 in UTC, for JSON and `--full`.
pub fn rfc3339(unix: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| unix.to_string())
}

/// "3 minutes ago" for tables, or the exact time with `--full`.
pub fn format_time(unix: u64, full: bool) -> String {
    if full {
        return rfc3339(unix);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ago = now.saturating_sub(unix);
    let (n, unit) = match ago {
        0..60 => return "just now".to_owned(),
        60..3600 => (ago / 60, "minute"),
        3600..86400 => (ago / 3600, "hour"),
        _ => (ago / 86400, "day"),
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
    }
}
