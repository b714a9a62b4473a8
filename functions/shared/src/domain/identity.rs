//! One canonical form for the people stepdeploy names: requesters and
//! approvers. Validation, the allow-list's de-duplication, the "a requester
//! cannot approve their own run" rule and the approvals table's vote keys all
//! compare this form, so one mailbox cannot pass for two people.
//!
//! The form: Unicode NFKC (full-width `ｃｔｏ` is `cto`), lower case, the
//! `+tag` of an e-mail's local part removed (`cto+deploy@x.io` is
//! `cto@x.io`: most mail systems deliver both to one mailbox). Characters
//! that change what a reader sees without being seen (zero-width, bidi
//! overrides, other format characters, controls, whitespace) are refused, not
//! removed: a name holding one was written to deceive or by mistake.
//!
//! E-mail identities (approvers, and requesters of runs in approval
//! environments) must be plain ASCII after NFKC: look-alike letters from
//! other scripts (Cyrillic `а` for Latin `a`) cannot then make a second
//! identity that reads the same.

use crate::validate::{shown, FieldError};
use unicode_normalization::UnicodeNormalization;

/// Longest identity accepted (after normalisation).
pub const MAX_LEN: usize = 128;

/// Characters that are letters to Unicode but render as nothing (Hangul fillers).
const BLANK_LETTERS: [char; 4] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}'];

/// Characters that act on a terminal or a reader without being seen:
/// controls (escape sequences), zero-width and other format characters, bidi
/// overrides and isolates, the soft hyphen. Text from outside is cleaned of
/// them before anyone reads it (rejection reasons, the CLI's output).
pub fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{061C}' | '\u{00AD}')
}

/// Why `c` may not appear in an identity, or `None` if it may.
fn refused(c: char) -> Option<&'static str> {
    if c.is_control() {
        Some("a control character")
    } else if c.is_whitespace() {
        Some("whitespace")
    } else if BLANK_LETTERS.contains(&c) {
        Some("an invisible character")
    } else if c.is_alphanumeric() || "._@+-'".contains(c) {
        None
    } else if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
    {
        Some("a bidirectional override")
    } else if c.is_ascii() {
        Some("a character other than letters, digits and . _ @ + - '")
    } else {
        // Zero-width and other format characters, combining marks standing
        // alone, symbols: none belongs in a name or a mailbox.
        Some("an invisible, formatting or symbol character")
    }
}

/// The canonical form of an identity (`requested_by`, an approver): NFKC,
/// lower case, an e-mail's `+tag` removed; refused if it holds a character
/// a reader cannot see or a look-alike could exploit.
pub fn canonical(field: &str, value: &str) -> Result<String, FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(
            field,
            "is empty; say who asked for this (an e-mail address or user name)",
        ));
    }
    // Checked after NFKC: a decomposed accent composes, and a character
    // NFKC turns into a refused one (U+2024 into ".") is judged as it reads.
    let folded: String = value.nfkc().collect::<String>().to_lowercase();
    if let Some((c, why)) = folded.chars().find_map(|c| refused(c).map(|why| (c, why))) {
        return Err(FieldError::new(
            field,
            format!(
                "{} contains {why} (U+{:04X}); write the name as plain text",
                shown(value),
                u32::from(c)
            ),
        ));
    }
    if folded.chars().count() > MAX_LEN {
        return Err(FieldError::new(
            field,
            format!("is longer than {MAX_LEN} characters"),
        ));
    }
    Ok(match folded.split_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => folded,
    })
}

/// [`canonical`], and it must be an e-mail address in plain ASCII
/// (`name@domain.tld`): approvers, and requesters where a quorum decides.
pub fn canonical_email(field: &str, value: &str) -> Result<String, FieldError> {
    let id = canonical(field, value)?;
    let valid = id.is_ascii()
        && id.matches('@').count() == 1
        && id.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !local.starts_with('.')
                && !local.ends_with('.')
                && !local.contains("..")
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        });
    if !valid {
        return Err(FieldError::new(
            field,
            format!(
                "{} is not an e-mail address in plain ASCII (name@example.com); \
                 environments with approvers need one, so the requester is known \
                 and cannot approve their own run",
                shown(value)
            ),
        ));
    }
    Ok(id)
}

/// Whether two identities are one person (both put in canonical form; an
/// identity that has none matches nothing).
pub fn same(a: &str, b: &str) -> bool {
    match (canonical("", a), canonical("", b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> String {
        canonical("f", value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
    }

    fn refusal(value: &str) -> String {
        canonical("f", value)
            .expect_err(&format!("{value:?} should be refused"))
            .to_string()
    }

    #[test]
    fn one_mailbox_one_identity() {
        for disguise in [
            "cto@example.com",
            "CTO@Example.COM",
            "cto+deploy@example.com",
            "cto+a+b@example.com",
            "ｃｔｏ@example.com",
        ] {
            assert_eq!(ok(disguise), "cto@example.com", "{disguise}");
        }
        assert_eq!(ok("Jane"), "jane");
        assert_eq!(ok("jose\u{301}"), "jos\u{e9}");
        assert_eq!(ok("o'brien@x.io"), "o'brien@x.io");
        assert!(same("lead@x.io", "LEAD+p@x.io"));
        assert!(!same("lead@x.io", "lead@x.io\u{200B}"));
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for (value, why) in [
            ("cto@example.com\u{200B}", "U+200B"),
            ("cto\u{200D}@example.com", "U+200D"),
            ("\u{202E}moc.elpmaxe@otc", "bidirectional override"),
            ("cto\u{2066}@x.io", "bidirectional override"),
            ("cto\u{FEFF}@x.io", "U+FEFF"),
            ("ct\u{00AD}o@x.io", "U+00AD"),
            ("cto\u{3164}@x.io", "invisible"),
            ("cto @x.io", "whitespace"),
            ("cto\n@x.io", "control"),
            ("cto;drop@x.io", "other than letters"),
        ] {
            let e = refusal(value);
            assert!(e.contains(why), "{value:?}: {e}");
            assert!(e.starts_with("f: "), "{e}");
            assert!(!e.contains('\u{202E}') && !e.contains('\u{200B}'), "{e:?}");
        }
        assert!(refusal("").contains("is empty"));
        assert!(refusal(&"a".repeat(129)).contains("longer than 128"));
    }

    #[test]
    fn approval_identities_are_ascii_addresses() {
        assert_eq!(
            canonical_email("f", "Lead+Prod@Example.com").as_deref(),
            Ok("lead@example.com")
        );
        for bad in [
            "cto",
            "cto@localhost",
            "c\u{0442}o@example.com",
            "@example.com",
            "a@b@c.io",
            "a..b@x.io",
            "a@x..io",
            "+tag@x.io",
        ] {
            let e = canonical_email("detail.requested_by", bad)
                .expect_err(&format!("{bad:?} is not an approval identity"));
            assert!(
                e.to_string().contains("not an e-mail address")
                    || e.to_string().contains("contains"),
                "{bad:?}: {e}"
            );
        }
    }
}
