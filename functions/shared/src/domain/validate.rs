//! Validated names: once a value is a [`TenantName`], [`EnvironmentName`] or
//! [`ImageRef`], every name derived from it fits the AWS and MySQL limits.
//!
//! Errors name the field and say what is wrong in words an operator can act on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A rejected value: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field as it is named in the event or config (e.g. `detail.tenant`).
    pub field: String,
    /// What is wrong, with the rule that was broken.
    pub reason: String,
}

impl FieldError {
    /// A rejection of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error under a longer path (e.g. `tenant` inside `detail`).
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            reason: self.reason,
        }
    }
}

/// A value from outside as messages quote it: escaped like `{:?}` (so it stays
/// on one line) and cut short, so a 100 KB tenant name makes a short error.
pub fn shown(value: &str) -> String {
    const MAX: usize = 48;
    let mut width = 0;
    for (i, c) in value.char_indices() {
        width += c.escape_debug().count();
        if width > MAX {
            return format!("{:?}… ({} characters)", &value[..i], value.chars().count());
        }
    }
    format!("{value:?}")
}

/// A message that may quote outside text raw (serde's `unknown field` does):
/// control characters escaped, and at most `max` characters, keeping its end.
pub fn one_line(text: &str, max: usize) -> String {
    let escaped: Vec<char> = text
        .chars()
        .flat_map(|c| {
            let escape = c.is_control() || c == '\u{2028}' || c == '\u{2029}';
            let mut buf = Vec::new();
            if escape {
                buf.extend(c.escape_default());
            } else {
                buf.push(c);
            }
            buf
        })
        .collect();
    if escaped.len() <= max {
        return escaped.into_iter().collect();
    }
    let tail = max / 4;
    let head = max.saturating_sub(tail + 1);
    escaped[..head]
        .iter()
        .chain(std::iter::once(&'…'))
        .chain(&escaped[escaped.len() - tail..])
        .collect()
}

/// A serde path as errors name fields: `detail.tenant`, `private_subnets[0]`;
/// a key that is not a plain name is quoted (`detail."a b"`). Empty: the document itself.
pub(crate) fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let part = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } if is_plain(key) => key.clone(),
            Segment::Map { key } => shown(key),
            Segment::Enum { variant } => shown(variant),
            Segment::Unknown => "?".to_string(),
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&part);
    }
    out
}

/// Reads `value` as `T`; a mismatch is a [`FieldError`] naming the field
/// (`parent.path.to.field`, or `whole` for the document itself).
pub fn typed<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    parent: &str,
    whole: &str,
) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = field_path(e.path());
        let message = e.into_inner().to_string();
        let (field, reason) = match message
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            Some(name) => (join(&join(parent, &path), name), "is missing".to_string()),
            // serde quotes unknown keys raw; keep the reason on one short line.
            None => (join(parent, &path), one_line(&message, 300)),
        };
        let field = if field.is_empty() {
            whole.to_string()
        } else {
            field
        };
        FieldError::new(field, reason)
    })
}

fn join(parent: &str, path: &str) -> String {
    match (parent, path) {
        (p, ".") | (p, "") => p.to_string(),
        ("", c) => c.to_string(),
        (p, c) if c.starts_with('[') => format!("{p}{c}"),
        (p, c) => format!("{p}.{c}"),
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Longest tenant name: keeps `{env}-{tenant}-tg` within ELBv2's 32 characters
/// and `{tenant}_user` within MySQL's 32.
pub const TENANT_MAX_LEN: usize = 20;
/// Longest environment name, for the same target-group limit.
pub const ENVIRONMENT_MAX_LEN: usize = 8;

fn check_slug(field: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let rule = format!(
        "must match ^[a-z][a-z0-9]{{{},{}}}$ (a lowercase letter, then lowercase letters or digits, {min} to {max} characters in all)",
        min - 1,
        max - 1
    );
    let mut chars = value.chars();
    let Some(first) = chars.next() else {
        return Err(FieldError::new(field, format!("is empty; it {rule}")));
    };
    if !first.is_ascii_lowercase() {
        return Err(FieldError::new(
            field,
            format!(
                "{} must start with a lowercase letter; it {rule}",
                shown(value)
            ),
        ));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit())) {
        return Err(FieldError::new(
            field,
            format!("{} contains {bad:?}; it {rule}", shown(value)),
        ));
    }
    let len = value.chars().count();
    if len < min || len > max {
        return Err(FieldError::new(
            field,
            format!("{} is {len} characters long; it {rule}", shown(value)),
        ));
    }
    Ok(())
}

/// A tenant name, `^[a-z][a-z0-9]{1,19}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantName(String);

impl TenantName {
    /// Validates `value` as the field `tenant`.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        check_slug("tenant", value, 2, TENANT_MAX_LEN)?;
        Ok(Self(value.to_string()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An environment name, `^[a-z][a-z0-9]{1,7}$` (dev, sit, prod, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvironmentName(String);

impl EnvironmentName {
    /// Validates `value` as the field `environment`.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        check_slug("environment", value, 2, ENVIRONMENT_MAX_LEN)?;
        Ok(Self(value.to_string()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = FieldError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
string_newtype_impls!(TenantName);
string_newtype_impls!(EnvironmentName);
string_newtype_impls!(ImageRef);

/// A container image reference: `[registry[:port]/]path[:tag][@sha256:digest]`,
/// as Docker and ECS accept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef(String);

impl ImageRef {
    /// Validates `value` as the field `image`.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let err = |why: &str| {
            Err(FieldError::new(
                "image",
                format!("{} is not an image reference ({why}); expected [registry/]name[:tag][@sha256:digest], e.g. wordpress:6.4-apache", shown(value)),
            ))
        };
        if value.is_empty() || value.len() > 255 {
            return err("it must be 1 to 255 characters");
        }
        let (rest, digest) = match value.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (value, None),
        };
        if let Some(digest) = digest {
            let Some(hex) = digest.strip_prefix("sha256:") else {
                return err("the digest must start with sha256:");
            };
            if hex.len() != 64
                || !hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            {
                return err("the digest must be 64 lowercase hex digits");
            }
        }
        // A tag follows the last ':' after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return err(
                    "the tag must be 1 to 128 of A-Z a-z 0-9 _ . - and not start with . or -",
                );
            }
        }
        let mut components: Vec<&str> = path.split('/').collect();
        if components.len() > 1 {
            let first = components[0];
            // Like Docker: a first component with '.' or ':' or "localhost" is a registry host.
            if first.contains('.') || first.contains(':') || first == "localhost" {
                let (host, port) = first.split_once(':').unwrap_or((first, ""));
                let host_ok = !host.is_empty()
                    && host.split('.').all(|label| {
                        !label.is_empty()
                            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                let port_ok = port.is_empty() || port.parse::<u16>().is_ok();
                if !host_ok || !port_ok {
                    return err("the registry host is malformed");
                }
                components.remove(0);
            }
        }
        for component in components {
            let valid = !component.is_empty()
                && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
            if !valid {
                return err("each name component must be lowercase letters and digits, separated by . _ or -");
            }
        }
        Ok(Self(value.to_string()))
    }

    /// The reference as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a free-text identity such as `requested_by` (an e-mail or user
/// name): see [`crate::identity::canonical`].
pub fn check_identity(field: &str, value: &str) -> Result<(), FieldError> {
    crate::identity::canonical(field, value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_tenants() {
        for t in [
            "ab",
            "goldencrust",
            "a1",
            "tenant2024",
            "abcdefghijklmnopqrst",
        ] {
            assert_eq!(
                TenantName::parse(t).map(|t| t.to_string()),
                Ok(t.to_string())
            );
        }
    }

    #[test]
    fn bad_tenants_say_why() {
        let cases = [
            ("", "is empty"),
            ("a", "is 1 characters long"),
            ("abcdefghijklmnopqrstu", "is 21 characters long"),
            ("1abc", "must start with a lowercase letter"),
            ("Golden", "must start with a lowercase letter"),
            ("golden-crust", "contains '-'"),
            ("golden_crust", "contains '_'"),
            ("goldenCrust", "contains 'C'"),
            ("gold crust", "contains ' '"),
            ("tenänt", "contains 'ä'"),
        ];
        for (value, why) in cases {
            let e = TenantName::parse(value).expect_err(value);
            assert_eq!(e.field, "tenant");
            assert!(e.reason.contains(why), "{value:?}: {}", e.reason);
            assert!(e.reason.contains("^[a-z][a-z0-9]{1,19}$"), "{}", e.reason);
        }
    }

    #[test]
    fn environment_names() {
        assert!(EnvironmentName::parse("prod").is_ok());
        assert!(EnvironmentName::parse("staging2").is_ok());
        let e = EnvironmentName::parse("production").expect_err("too long");
        assert_eq!(e.to_string(), "environment: \"production\" is 10 characters long; it must match ^[a-z][a-z0-9]{1,7}$ (a lowercase letter, then lowercase letters or digits, 2 to 8 characters in all)");
    }

    #[test]
    fn serde_validates() {
        let t: Result<TenantName, _> = serde_json::from_str("\"Bad!\"");
        assert!(t.is_err());
        let t: TenantName = serde_json::from_str("\"goldencrust\"").expect("valid");
        assert_eq!(serde_json::to_string(&t).expect("ser"), "\"goldencrust\"");
    }

    #[test]
    fn images() {
        for good in [
            "wordpress",
            "wordpress:6.4-apache",
            "library/wordpress:latest",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp/site:v1.2.3",
            // An ECR pull-through cache of Docker Hub (what private subnets without NAT need).
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library/wordpress:6.4-apache",
            "localhost:5000/wp:dev",
            "ghcr.io/acme/wp_site@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "wordpress:6.4@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ImageRef::parse(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "1 to 255"),
            ("WordPress:6", "lowercase"),
            ("wordpress:", "tag"),
            ("wordpress:-x", "tag"),
            ("word press", "lowercase"),
            ("wordpress@sha256:abc", "64 lowercase hex"),
            ("wordpress@md5:abc", "sha256"),
            ("bad_host!.io/wp:1", "registry host"),
            ("reg.io:99999/wp", "registry host"),
            ("/wordpress", "lowercase"),
        ] {
            let e = ImageRef::parse(bad).expect_err(bad);
            assert_eq!(e.field, "image");
            assert!(e.reason.contains(why), "{bad:?}: {}", e.reason);
        }
    }

    #[test]
    fn identities() {
        assert!(check_identity("requested_by", "jane@kimmyai.io").is_ok());
        assert!(check_identity("requested_by", " ").is_err());
        assert!(check_identity("requested_by", "a b").is_err());
        assert!(check_identity("requested_by", &"x".repeat(129)).is_err());
    }
}
