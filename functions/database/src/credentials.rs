//! The tenant's database credentials and how they are made: a password that
//! never prints, drawn from the OS CSPRNG, and the secret's JSON document.

use serde::{Deserialize, Serialize};

/// Password length: 24 characters of 62 give ~142 bits.
pub const PASSWORD_LEN: usize = 24;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A password. `Debug` hides it and there is no `Display`, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// A fresh random password from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut out = String::with_capacity(PASSWORD_LEN);
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - (256 % ALPHABET.len());
        while out.len() < PASSWORD_LEN {
            let mut buf = [0u8; 32];
            getrandom::fill(&mut buf)?;
            for b in buf {
                if (b as usize) < limit && out.len() < PASSWORD_LEN {
                    out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
                }
            }
        }
        Ok(Self(out))
    }

    /// Wraps a stored password; `None` if it is not one stepdeploy could have made
    /// (then it is rotated rather than written into SQL).
    pub fn from_stored(value: &str) -> Option<Self> {
        (value.len() == PASSWORD_LEN && value.bytes().all(|b| ALPHABET.contains(&b)))
            .then(|| Self(value.to_string()))
    }

    /// The secret itself, for the few places that must send it (MySQL, Secrets Manager).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The document stored in `{env}-{tenant}-db-credentials`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialsDocument {
    /// MySQL user.
    pub username: String,
    /// Its password.
    pub password: Password,
    /// Its database.
    pub database: String,
    /// MySQL host.
    pub host: String,
    /// MySQL port.
    pub port: u16,
}

/// The master credentials' document (RDS's own format has more fields; only these matter).
#[derive(Clone, Deserialize)]
pub struct MasterCredentials {
    /// Master user.
    pub username: String,
    /// Master password (not validated: RDS generates its own alphabet).
    pub password: String,
}

impl std::fmt::Debug for MasterCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MasterCredentials {{ username: {:?}, password: *** }}",
            self.username
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_random_and_hidden() {
        let a = Password::generate().expect("csprng");
        let b = Password::generate().expect("csprng");
        assert_eq!(a.expose().len(), PASSWORD_LEN);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Password(***)");
        assert!(Password::from_stored(a.expose()).is_some());
        assert!(Password::from_stored("short").is_none());
        assert!(Password::from_stored("abc'def\"ghi;jklmnopqrstu").is_none());
        let m = MasterCredentials {
            username: "admin".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{m:?}").contains("hunter2"));
    }
}
