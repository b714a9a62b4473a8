//! Approval links: bound to one execution, one approver and one decision,
//! expiring, and signed with HMAC-SHA256 so they cannot be forged or altered.
//! They carry no task token; single use is enforced when a decision is recorded.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a link authorises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Execution ARN.
    pub execution: String,
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
        "v1\n{}\n{}\n{}\n{}",
        link.execution,
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
pub fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
        "e={}&a={}&d={}&x={}&s={}",
        encode(&link.execution),
        encode(&link.approver),
        link.decision.as_str(),
        link.expires,
        sign(key, link)
    )
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
        other => return Err(LinkError::Malformed(format!("unknown decision {other:?}"))),
    };
    let expires = get("x")?
        .parse()
        .map_err(|_| LinkError::Malformed("bad expiry".into()))?;
    let link = Link {
        execution: get("e")?,
        approver: get("a")?,
        decision,
        expires,
    };
    let signature = hex::decode(get("s")?)
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
