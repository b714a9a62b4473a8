//! How results reach the operator: JSON documents for scripts, aligned
//! tables and timestamps for people, and outside text made harmless for the
//! terminal. Pure, so every command prints the same way.

use crate::error::CliError;
use serde::Serialize;

/// Prints `value` as one pretty JSON document (`--output json`).
pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    println!("{text}");
    Ok(())
}

/// Seconds since the epoch, the unit Step Functions dates are compared in.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `2026-11-23T19:40:01Z`.
pub fn timestamp(epoch: f64) -> String {
    aws_smithy_types::DateTime::from_secs(epoch as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Aligned columns, headers first.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Text from outside (a run's error, a requester's name, a rejection
/// reason) as it may reach a terminal: control characters (escape
/// sequences), bidi overrides and other invisible format characters are
/// shown as `\u{…}` instead of acting on the terminal or the reader.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if stepdeploy_shared::identity::invisible(c) && c != '\n' && c != '\t' {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "BB"],
            &[vec!["long".into(), "x".into()], vec!["s".into(), "".into()]],
        );
        assert_eq!(t, "A     BB\nlong  x\ns");
    }

    #[test]
    fn outside_text_cannot_drive_the_terminal() {
        assert_eq!(
            terminal_safe("rejected by x: \u{1b}[2J\u{202e}olleh"),
            "rejected by x: \\u{1b}[2J\\u{202e}olleh"
        );
    }
}
