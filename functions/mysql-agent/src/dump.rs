//! A logical dump of one tenant database and its restore, as plain SQL a
//! `mysql` client also loads: per table `DROP TABLE IF EXISTS`, the server's
//! own `SHOW CREATE TABLE`, then `INSERT` batches. Values are written so the
//! text needs no client to read it back: valid UTF-8 as a quoted, escaped
//! string (newlines escaped, so a statement's data never spans lines),
//! anything else as a hex literal, `NULL` as `NULL`.
//!
//! The dump is built in memory (the agent's memory bounds the database size
//! it can dump; see docs/operating.md, "Database dumps").

/// Rows per `INSERT` (and at most [`BATCH_BYTES`] of text).
pub const BATCH_ROWS: usize = 500;
/// Bytes of values per `INSERT` before a new one starts (well under the
/// server's default `max_allowed_packet` of 16 MiB).
pub const BATCH_BYTES: usize = 1 << 20;

/// The first line of every dump (checked on restore: a key that holds
/// something else is refused before any table is dropped).
pub const HEADER: &str = "-- stepdeploy database dump";

/// One value as a SQL literal.
pub fn literal(value: Option<&[u8]>) -> String {
    let Some(bytes) = value else {
        return "NULL".into();
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut out = String::with_capacity(text.len() + 2);
            out.push('\'');
            for c in text.chars() {
                match c {
                    '\0' => out.push_str("\\0"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '\x1a' => out.push_str("\\Z"),
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        }
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() * 2 + 3);
            out.push_str("X'");
            for b in bytes {
                out.push_str(&format!("{b:02X}"));
            }
            out.push('\'');
            out
        }
    }
}

/// `name` quoted as an identifier (backticks doubled).
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Builds a dump's text table by table.
#[derive(Debug, Default)]
pub struct Writer {
    text: String,
    /// Tables written.
    pub tables: u32,
    /// Rows written.
    pub rows: u64,
}

impl Writer {
    /// A dump of `database` taken at `at` (RFC 3339).
    pub fn new(database: &str, at: &str) -> Self {
        let mut writer = Self::default();
        writer.text.push_str(&format!(
            "{HEADER} of {database} at {at}\nSET FOREIGN_KEY_CHECKS=0;\n"
        ));
        writer
    }

    /// One table: its definition, then its rows in batches.
    pub fn table(&mut self, name: &str, create: &str, rows: &[Vec<Option<Vec<u8>>>]) {
        self.tables += 1;
        let table = ident(name);
        self.text
            .push_str(&format!("DROP TABLE IF EXISTS {table};\n{create};\n"));
        let mut batch: Vec<String> = Vec::new();
        let mut size = 0;
        for row in rows {
            let values: Vec<String> = row.iter().map(|v| literal(v.as_deref())).collect();
            let tuple = format!("({})", values.join(","));
            size += tuple.len();
            batch.push(tuple);
            if batch.len() >= BATCH_ROWS || size >= BATCH_BYTES {
                self.insert(&table, &mut batch);
                size = 0;
            }
        }
        self.insert(&table, &mut batch);
        self.rows += rows.len() as u64;
    }

    fn insert(&mut self, table: &str, batch: &mut Vec<String>) {
        if !batch.is_empty() {
            self.text.push_str(&format!(
                "INSERT INTO {table} VALUES {};\n",
                batch.join(",")
            ));
            batch.clear();
        }
    }

    /// The dump's text.
    pub fn finish(mut self) -> String {
        self.text.push_str("SET FOREIGN_KEY_CHECKS=1;\n");
        self.text
    }
}

/// The statements of a dump, split at `;` outside quotes and comments
/// (`--` lines); empty ones are skipped.
pub fn statements(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q != b'`' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'\'' | b'"' | b'`' => quote = Some(b),
                // A comment line before a statement: skipped to its end.
                b'-' if bytes.get(i + 1) == Some(&b'-') && text[start..i].trim().is_empty() => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                    start = i;
                    continue;
                }
                b';' => {
                    let statement = text[start..i].trim();
                    if !statement.is_empty() {
                        out.push(statement);
                    }
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_literals_that_never_span_lines() {
        assert_eq!(literal(None), "NULL");
        assert_eq!(literal(Some(b"42")), "'42'");
        assert_eq!(
            literal(Some("it's a\nline; \\ \"q\" \0 \x1a ü".as_bytes())),
            "'it\\'s a\\nline; \\\\ \\\"q\\\" \\0 \\Z ü'"
        );
        assert_eq!(literal(Some(&[0xff, 0x00, 0x10])), "X'FF0010'");
        assert_eq!(ident("wp`posts"), "`wp``posts`");
    }

    #[test]
    fn a_dump_splits_back_into_its_statements() {
        let mut w = Writer::new("acme_db", "2026-11-30T10:00:00Z");
        let rows: Vec<Vec<Option<Vec<u8>>>> = vec![
            vec![Some(b"1".to_vec()), Some(b"a; b\n'c'".to_vec())],
            vec![Some(b"2".to_vec()), None],
        ];
        w.table(
            "wp_options",
            "CREATE TABLE `wp_options` (\n  `id` int,\n  `v` text COMMENT 'x;y'\n)",
            &rows,
        );
        w.table("empty", "CREATE TABLE `empty` (`id` int)", &[]);
        assert_eq!((w.tables, w.rows), (2, 2));
        let text = w.finish();
        assert!(text.starts_with(HEADER));
        let all = statements(&text);
        assert_eq!(
            all,
            vec![
                "SET FOREIGN_KEY_CHECKS=0",
                "DROP TABLE IF EXISTS `wp_options`",
                "CREATE TABLE `wp_options` (\n  `id` int,\n  `v` text COMMENT 'x;y'\n)",
                "INSERT INTO `wp_options` VALUES ('1','a; b\\n\\'c\\''),('2',NULL)",
                "DROP TABLE IF EXISTS `empty`",
                "CREATE TABLE `empty` (`id` int)",
                "SET FOREIGN_KEY_CHECKS=1",
            ]
        );
    }

    #[test]
    fn big_tables_are_inserted_in_batches() {
        let mut w = Writer::new("acme_db", "now");
        let rows: Vec<Vec<Option<Vec<u8>>>> = (0..1200)
            .map(|i| vec![Some(i.to_string().into_bytes())])
            .collect();
        w.table("t", "CREATE TABLE `t` (`id` int)", &rows);
        let text = w.finish();
        let inserts = statements(&text)
            .into_iter()
            .filter(|s| s.starts_with("INSERT"))
            .count();
        assert_eq!(inserts, 3, "500 + 500 + 200 rows");
    }
}
