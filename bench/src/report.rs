//! Statistics and tables, printed as aligned text and written as Markdown.

use std::time::Duration;

/// The median (the mean of the middle two for an even count).
pub fn median(samples: &[Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// The nearest-rank percentile: the smallest sample with at least `p`% of samples at or
/// below it (with fewer than 100 samples, p99 is the maximum).
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

pub fn ms2(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// `a - b` in milliseconds, signed.
pub fn ms_minus(a: Duration, b: Duration) -> String {
    format!("{:+.3}", (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}

pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, headers: &[&str]) -> Self {
        Self {
            title: title.to_string(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn text(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = format!("\n== {} ==\n", self.title);
        out += &line(&self.headers);
        out += "\n";
        out += &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ");
        out += "\n";
        for row in &self.rows {
            out += &line(row);
            out += "\n";
        }
        for note in &self.notes {
            out += &format!("  * {note}\n");
        }
        out
    }

    pub fn markdown(&self) -> String {
        let escape = |s: &String| s.replace('|', "\\|");
        let mut out = format!("\n#### {}\n\n", self.title);
        out += &format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(escape)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        out += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for row in &self.rows {
            out += &format!(
                "| {} |\n",
                row.iter().map(escape).collect::<Vec<_>>().join(" | ")
            );
        }
        if !self.notes.is_empty() {
            out += "\n";
            for note in &self.notes {
                out += &format!("- {note}\n");
            }
        }
        out
    }
}
