//! Approval links: bound to one execution, one gate attempt, one approver and
//! one decision, expiring, and signed with HMAC-SHA256 so they cannot be
//! forged or altered. They name the key that signed them (the HMAC secret's
//! version id), so rotating the key leaves pending links valid. They carry no
//! task token; single use is enforced when a decision is recorded.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a link authorises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Execution ARN.
    pub execution: String,
    /// The gate attempt (random, per gate opening): a link of an earlier
    /// attempt of the same execution (redrive, a name used again) is dead.
    pub attempt: String,
    /// Id of the signing key (the HMAC secret's version id).
    pub key_id: String,
    /// Approver (e-mail on the allow-list).
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: Decision,
    /// Epoch seconds after which the link is dead.
    pub expires: u64,
}

/// The two decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Counts towards the quorum.
    Approve,
    /// Ends the run at once.
    Reject,
}

impl Decision {
    /// As in links.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

/// Why a link is refused (each maps to an HTTP status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// A parameter is missing or malformed.
    #[error("this link is incomplete or malformed ({0})")]
    Malformed(String),
    /// The signature does not match: forged or altered.
    #[error("this link's signature is not valid")]
    BadSignature,
    /// Past its expiry.
    #[error("this link expired")]
    Expired,
}

impl LinkError {
    /// HTTP status for the page.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::BadSignature => 403,
            Self::Expired => 410,
        }
    }
}

fn payload(link: &Link) -> String {
    format!(
        "v2\n{}\n{}\n{}\n{}\n{}\n{}",
        link.execution,
        link.attempt,
        link.key_id,
        link.approver,
        link.decision.as_str(),
        link.expires
    )
}

fn mac(key: &[u8], link: &Link) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(payload(link).as_bytes());
    mac
}

/// The link's signature (hex).
pub fn sign(key: &[u8], link: &Link) -> String {
    hex::encode(mac(key, link).finalize().into_bytes())
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `application/x-www-form-urlencoded` text.
pub use stepdeploy_shared::http::url_decode as decode;

/// Parses `k=v&k=v`.
pub fn form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The query string of a signed link.
pub fn query(key: &[u8], link: &Link) -> String {
    format!(
        "e={}&n={}&k={}&a={}&d={}&x={}&s={}",
        encode(&link.execution),
        encode(&link.attempt),
        encode(&link.key_id),
        encode(&link.approver),
        link.decision.as_str(),
        link.expires,
        sign(key, link)
    )
}

/// The id of the key a link names (`k`), to fetch that key before [`verify`].
pub fn key_id(params: &[(String, String)]) -> Result<String, LinkError> {
    params
        .iter()
        .find(|(k, _)| k == "k")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty() && v.len() <= 64 && !v.contains('\n'))
        .ok_or_else(|| LinkError::Malformed("missing k".into()))
}

/// Reads and checks a link from its parameters (query string or form body).
pub fn verify(key: &[u8], params: &[(String, String)], now: u64) -> Result<Link, LinkError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| LinkError::Malformed(format!("missing {name}")))
    };
    let decision = match get("d")?.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        other => {
            return Err(LinkError::Malformed(format!(
                "unknown decision {}",
                stepdeploy_shared::validate::shown(other)
            )))
        }
    };
    let expires = get("x")?
        .parse()
        .map_err(|_| LinkError::Malformed("bad expiry".into()))?;
    let link = Link {
        execution: get("e")?,
        attempt: get("n")?,
        key_id: get("k")?,
        approver: get("a")?,
        decision,
        expires,
    };
    // The payload separates fields with line breaks: a field holding one could
    // pass for another split of the same text (no link the gate makes has one).
    if [&link.execution, &link.attempt, &link.key_id, &link.approver]
        .iter()
        .any(|f| f.contains('\n'))
    {
        return Err(LinkError::Malformed("line break in a parameter".into()));
    }
    // As `sign` writes it: 64 lower-case hex digits, so one signature has one spelling.
    let signature = get("s")?;
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(LinkError::Malformed("bad signature encoding".into()));
    }
    let signature = hex::decode(signature)
        .map_err(|_| LinkError::Malformed("bad signature encoding".into()))?;
    // Constant-time comparison.
    mac(key, &link)
        .verify_slice(&signature)
        .map_err(|_| LinkError::BadSignature)?;
    if now > link.expires {
        return Err(LinkError::Expired);
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn link() -> Link {
        Link {
            execution: "arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:goldencrust-prod-1".into(),
            attempt: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into(),
            key_id: "v-1".into(),
            approver: "lead@example.com".into(),
            decision: Decision::Approve,
            expires: 2_000,
        }
    }

    #[test]
    fn signed_links_round_trip() {
        let q = query(KEY, &link());
        assert!(!q.contains("token"));
        assert_eq!(verify(KEY, &form(&q), 1_000), Ok(link()));
    }

    #[test]
    fn altered_forged_and_expired_links_are_refused() {
        let q = query(KEY, &link());
        let altered = q.replace("d=approve", "d=reject");
        assert_eq!(
            verify(KEY, &form(&altered), 1_000),
            Err(LinkError::BadSignature)
        );
        let other_approver = q.replace("lead%40example.com", "ops%40example.com");
        assert_eq!(
            verify(KEY, &form(&other_approver), 1_000),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            verify(b"another key", &form(&q), 1_000),
            Err(LinkError::BadSignature)
        );
        assert_eq!(verify(KEY, &form(&q), 2_001), Err(LinkError::Expired));
        assert!(matches!(
            verify(KEY, &form("e=x&a=y"), 1),
            Err(LinkError::Malformed(_))
        ));
        assert!(matches!(
            verify(KEY, &form(&q.replace("d=approve", "d=maybe")), 1),
            Err(LinkError::Malformed(_))
        ));
        assert_eq!(LinkError::Expired.status(), 410);
    }

    // Found by the property tests below.
    #[test]
    fn one_signature_one_spelling_one_split() {
        let q = query(KEY, &link());
        let s = sign(KEY, &link());
        let upper = q.replace(&s, &s.to_ascii_uppercase());
        assert_eq!(
            verify(KEY, &form(&upper), 1_000),
            Err(LinkError::Malformed("bad signature encoding".into()))
        );
        // "v1\na\nb\nc\n…" is the payload of both splits.
        let signed = Link {
            execution: "a\nb".into(),
            approver: "c".into(),
            ..link()
        };
        let forged = query(KEY, &signed)
            .replace("e=a%0Ab&", "e=a&")
            .replace("&a=c&", "&a=b%0Ac&");
        assert_ne!(forged, query(KEY, &signed));
        assert_eq!(
            verify(KEY, &form(&forged), 1_000),
            Err(LinkError::Malformed("line break in a parameter".into()))
        );
        let long = q.replace("d=approve", &format!("d={}", "x".repeat(10_000)));
        let e = verify(KEY, &form(&long), 1_000).expect_err("unknown decision");
        assert!(e.to_string().len() < 200, "{e}");
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            form("a=lead%40example.com&r=looks+good%21"),
            [
                ("a".into(), "lead@example.com".into()),
                ("r".into(), "looks good!".into())
            ]
        );
    }
}

/// Property tests over bad input: arbitrary query strings, altered and expired links.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// A fixed number of cases, and no regression files written into the source tree.
    fn cases(n: u32) -> ProptestConfig {
        ProptestConfig {
            cases: n,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn decision() -> impl Strategy<Value = Decision> {
        prop_oneof![Just(Decision::Approve), Just(Decision::Reject)]
    }

    /// Links as the gate makes them, and links with any text at all in them.
    fn link() -> impl Strategy<Value = Link> {
        (
            prop_oneof![
                3 => "arn:aws:states:[a-z0-9-]{1,15}:[0-9]{12}:execution:[a-z-]{1,20}:[a-z0-9-]{1,60}",
                1 => any::<String>(),
            ],
            prop_oneof![
                3 => "[a-z0-9.+_-]{1,20}@[a-z0-9-]{1,12}\\.[a-z]{2,5}",
                1 => any::<String>(),
            ],
            decision(),
            any::<u64>(),
        )
            .prop_map(|(execution, approver, decision, expires)| Link {
                execution,
                attempt: "a1b2".into(),
                key_id: "k1".into(),
                approver,
                decision,
                expires,
            })
    }

    /// A link the gate could have signed: executions and approvers never hold a line break.
    fn signable_link() -> impl Strategy<Value = Link> {
        link().prop_filter("no line break", |l| {
            !l.execution.contains('\n') && !l.approver.contains('\n')
        })
    }

    /// Every refusal: one short line, and a status that says what kind.
    fn check_refusal(e: &LinkError) -> Result<(), TestCaseError> {
        let text = e.to_string();
        prop_assert!(!text.chars().any(char::is_control), "{text:?}");
        prop_assert!(text.chars().count() <= 200, "{text:?}");
        prop_assert!([400, 403, 410].contains(&e.status()));
        Ok(())
    }

    /// A query string's characters, one of them replaced by another.
    fn flip(text: &str, at: Index, with: char) -> Option<String> {
        let mut chars: Vec<char> = text.chars().collect();
        let i = at.index(chars.len());
        if chars[i] == with {
            return None;
        }
        chars[i] = with;
        Some(chars.into_iter().collect())
    }

    /// Characters to change a link with: mostly those a URL holds.
    fn replacement() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => proptest::char::range('!', '~'),
            1 => Just('%'),
            1 => Just('&'),
            1 => Just('='),
            1 => any::<char>(),
        ]
    }

    proptest! {
        #![proptest_config(cases(5_000))]

        /// Any text as a query string or form body: no panic, and refused with
        /// a clear error unless it is a well-formed, correctly signed, live link.
        #[test]
        fn any_query_is_refused_cleanly(
            text in prop_oneof![
                any::<String>(),
                "([enkadxsr]=[a-z0-9%&=+:@.-]{0,12}&?){0,9}",
                (link(), "[0-9a-fA-F]{0,70}", "[0-9+ -]{0,22}", prop_oneof!["[a-z]{0,8}", ".{100,300}"]).prop_map(|(l, s, x, d)| {
                    format!("e={}&n={}&k={}&a={}&d={d}&x={x}&s={s}", encode(&l.execution), encode(&l.attempt), encode(&l.key_id), encode(&l.approver))
                }),
            ],
            now in any::<u64>(),
        ) {
            match verify(KEY, &form(&text), now) {
                Ok(link) => {
                    // Only a signature made with the key passes.
                    let s = form(&text).into_iter().find(|(k, _)| k == "s").map(|(_, v)| v);
                    prop_assert_eq!(s, Some(sign(KEY, &link)));
                    prop_assert!(now <= link.expires);
                }
                Err(e) => check_refusal(&e)?,
            }
        }

        /// A link the gate signs verifies to itself until it expires, and not after.
        #[test]
        fn signed_links_round_trip_until_they_expire(link in signable_link(), age in any::<u64>()) {
            let q = query(KEY, &link);
            let now = link.expires.saturating_sub(age % 1_000_000);
            prop_assert_eq!(verify(KEY, &form(&q), now), Ok(link.clone()));
            prop_assert_eq!(verify(KEY, &form(&q), link.expires), Ok(link.clone()));
            if let Some(later) = link.expires.checked_add(1 + age % 1_000_000) {
                prop_assert_eq!(verify(KEY, &form(&q), later), Err(LinkError::Expired));
            }
            prop_assert_eq!(verify(b"another key", &form(&q), now), Err(LinkError::BadSignature));
        }

        /// Changing any one character of any parameter's value, or of the
        /// signature, makes the link fail.
        #[test]
        fn altered_links_fail(
            link in signable_link(),
            which in 0usize..7,
            at in any::<Index>(),
            with in replacement(),
        ) {
            let now = link.expires / 2;
            // e, n, k, a, d, x and s, as the link carries them.
            let mut params = [
                link.execution.clone(),
                link.attempt.clone(),
                link.key_id.clone(),
                link.approver.clone(),
                link.decision.as_str().to_string(),
                link.expires.to_string(),
                sign(KEY, &link),
            ];
            prop_assume!(!params[which].is_empty());
            let Some(changed) = flip(&params[which], at, with) else {
                return Ok(());
            };
            params[which] = changed;
            let q = format!(
                "e={}&n={}&k={}&a={}&d={}&x={}&s={}",
                encode(&params[0]),
                encode(&params[1]),
                encode(&params[2]),
                encode(&params[3]),
                encode(&params[4]),
                encode(&params[5]),
                encode(&params[6])
            );
            let result = verify(KEY, &form(&q), now);
            prop_assert!(
                result.is_err(),
                "parameter {which} changed to {:?} and still verified",
                params[which]
            );
            check_refusal(&result.unwrap_err())?;
        }

        /// The signature is compared as written: upper-case hex is another signature.
        #[test]
        fn signature_case_matters(link in signable_link(), at in any::<Index>()) {
            let signature = sign(KEY, &link);
            let letters: Vec<usize> = signature
                .char_indices()
                .filter(|(_, c)| c.is_ascii_alphabetic())
                .map(|(i, _)| i)
                .collect();
            prop_assume!(!letters.is_empty());
            let i = letters[at.index(letters.len())];
            let mut changed = signature.clone();
            changed.replace_range(i..=i, &signature[i..=i].to_ascii_uppercase());
            let q = query(KEY, &link).replace(&signature, &changed);
            let result = verify(KEY, &form(&q), link.expires);
            prop_assert!(result.is_err(), "{changed} verified");
            check_refusal(&result.unwrap_err())?;
        }

        /// Changing any one character of the query string itself: refused, or it
        /// still says exactly what was signed (`%2f` for `%2F`).
        #[test]
        fn altered_query_strings_fail(
            link in signable_link(),
            at in any::<Index>(),
            with in replacement(),
        ) {
            let q = query(KEY, &link);
            let Some(changed) = flip(&q, at, with) else { return Ok(()) };
            match verify(KEY, &form(&changed), link.expires / 2) {
                Ok(got) => prop_assert_eq!(got, link, "{} verified", changed),
                Err(e) => check_refusal(&e)?,
            }
        }

        /// The signature covers each field on its own: moving text from the
        /// execution into the approver (across the payload's line break) fails.
        #[test]
        fn fields_cannot_trade_text(
            execution in "[a-z:-]{1,20}",
            moved in "[a-z@.]{0,10}",
            approver in "[a-z@.]{1,20}",
            decision in decision(),
        ) {
            let signed = Link { execution: format!("{execution}\n{moved}"), attempt: "n".into(), key_id: "k".into(), approver: approver.clone(), decision, expires: 100 };
            let other = Link { execution: execution.clone(), attempt: "n".into(), key_id: "k".into(), approver: format!("{moved}\n{approver}"), decision, expires: 100 };
            let forged = format!(
                "e={}&n=n&k=k&a={}&d={}&x=100&s={}",
                encode(&other.execution), encode(&other.approver), decision.as_str(), sign(KEY, &signed)
            );
            let result = verify(KEY, &form(&forged), 50);
            prop_assert!(result.is_err(), "{:?}", result);
        }

        /// Form decoding: never panics, and undoes the links' encoding.
        #[test]
        fn decoding(text in any::<String>(), value in any::<String>()) {
            let _ = form(&text);
            let _ = decode(&text);
            prop_assert_eq!(decode(&encode(&value)), value);
        }
    }
}
