//! Output for people (aligned tables, key/value blocks) and for scripts (`--json`).

use serde::Serialize;

/// An aligned text table.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            println!("{}", padded.join("  ").trim_end());
        };
        line(self.header.clone());
        line(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect(),
        );
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect());
        }
        if self.rows.is_empty() {
            println!("(none)");
        }
    }
}

/// Prints `label: value` lines, aligned.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        + 1;
    for (label, value) in pairs {
        println!("{:<width$} {value}", format!("{label}:"));
    }
}

pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn time(at: i64) -> String {
    keycard_core::time::Civil::from_unix(at).display()
}

pub fn optional_time(at: Option<i64>) -> String {
    at.map_or_else(|| "never".to_owned(), time)
}

/// The notice printed under credentials, which exist in plaintext only this once.
pub const SHOWN_ONCE: &str = "These are shown once and cannot be read back: store them now (e.g. in your integration's secret store).";

#[cfg(test)]
mod tests {
    #[test]
    fn formats_times() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(super::time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
