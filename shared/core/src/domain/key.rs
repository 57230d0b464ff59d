use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

use super::{App, Timestamp};

/// What a key may do. App keys are Dify's: they act for the app's end users. Operator keys
/// (a Colloquy extension) are for the people who run the app: they read every conversation
/// and the app's analytics, and never act as an end user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    App,
    Operator,
}

impl KeyRole {
    /// How a key of this role starts, so that a leaked key says what it opens.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::App => "app-",
            Self::Operator => "op-",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Operator => "operator",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, super::Invalid> {
        match raw {
            "app" => Ok(Self::App),
            "operator" => Ok(Self::Operator),
            _ => Err(super::Invalid("a key's role is app or operator".into())),
        }
    }
}

impl std::str::FromStr for KeyRole {
    type Err = super::Invalid;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// A key as stored: never the key itself, only its hash and what may be shown of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub hash: KeyHash,
    pub role: KeyRole,
    /// The key's first characters (`op-AbCd…`), enough to tell keys apart in a list; `None`
    /// for keys made before keys were listed.
    pub shown: Option<String>,
    pub created_at: Timestamp,
    /// When a request last used the key, to the hour (see [`KeyRecord::USE_RESOLUTION_SECONDS`]).
    pub last_used_at: Option<Timestamp>,
}

impl KeyRecord {
    /// A key's last use is written at most once in this many seconds, so that authenticating
    /// stays a read: the first request of each hour writes it.
    pub const USE_RESOLUTION_SECONDS: i64 = 3600;

    /// A use noted at or before this time is stale at `now` (and is written again).
    pub fn stale_before(now: Timestamp) -> Timestamp {
        Timestamp::from_micros(now.micros() - Self::USE_RESOLUTION_SECONDS * 1_000_000)
    }

    /// Whether a request at `now` should record its use of the key.
    pub fn use_is_stale(last_used_at: Option<Timestamp>, now: Timestamp) -> bool {
        last_used_at.is_none_or(|at| at <= Self::stale_before(now))
    }
}

/// What a key grants: its app and its role.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub app: App,
    pub role: KeyRole,
    /// As stored when the grant was read.
    pub last_used_at: Option<Timestamp>,
    /// The key's shown start (see [`KeyRecord::shown`]), what the audit log names it by.
    pub shown: Option<String>,
}

/// An API key as shown once to its creator: its role's prefix (`app-`, `op-`) followed by 32
/// random characters.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// What is stored instead of the key: its SHA-256, hex encoded. Keys carry ~190 bits of
/// randomness, so a fast unsalted hash is enough and lets a lookup be a single get.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl ApiKey {
    const RANDOM_CHARS: usize = 32;
    /// Random characters kept in [`KeyRecord::shown`]: 4 of 32 (24 bits), nothing a guess can use.
    const SHOWN_CHARS: usize = 4;

    /// A fresh key from the operating system's random source.
    pub fn generate(role: KeyRole) -> Self {
        let mut rng = rand::rng();
        Self(format!("{}{}", role.prefix(), Alphanumeric.sample_string(&mut rng, Self::RANDOM_CHARS)))
    }

    /// The role a key's prefix names (a key of neither shape is not one of ours).
    pub fn role(&self) -> Option<KeyRole> {
        [KeyRole::App, KeyRole::Operator].into_iter().find(|role| self.0.starts_with(role.prefix()))
    }

    /// What is stored of a freshly generated key of `role`, created at `now`.
    pub fn record(&self, role: KeyRole, now: Timestamp) -> KeyRecord {
        let shown: String = self.0.chars().take(role.prefix().len() + Self::SHOWN_CHARS).collect();
        KeyRecord { hash: self.hash(), role, shown: Some(format!("{shown}…")), created_at: now, last_used_at: None }
    }

    /// Reads a key presented by a caller. Any string is accepted here (an unknown key is
    /// simply not found); only the shape of revocation input is checked by [`ApiKey::parse`].
    pub fn presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// A key typed by an operator (e.g. `colloquy key revoke`): must look like one of ours.
    pub fn parse(raw: &str) -> Result<Self, super::Invalid> {
        let raw = raw.trim();
        let rest = [KeyRole::App, KeyRole::Operator].into_iter().find_map(|role| raw.strip_prefix(role.prefix()));
        match rest {
            Some(rest) if rest.len() >= 24 && rest.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(super::Invalid(
                "an API key looks like app- or op- followed by at least 24 letters or digits".into(),
            )),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> KeyHash {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(self.0.as_bytes());
        let mut hex = String::with_capacity(2 * digest.len());
        for byte in digest {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        KeyHash(hex)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(app-…)")
    }
}

impl KeyHash {
    /// Rebuilds a hash read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_dify_shape() {
        let key = ApiKey::generate(KeyRole::App);
        assert!(key.expose().starts_with("app-"));
        assert_eq!(key.expose().len(), 4 + 32);
        assert!(ApiKey::parse(key.expose()).is_ok());
        assert_eq!(key.role(), Some(KeyRole::App));
        assert_ne!(key.expose(), ApiKey::generate(KeyRole::App).expose());
    }

    #[test]
    fn operator_keys_say_what_they_are_and_show_only_their_start() {
        let key = ApiKey::generate(KeyRole::Operator);
        assert!(key.expose().starts_with("op-"));
        assert_eq!(key.role(), Some(KeyRole::Operator));
        assert!(ApiKey::parse(key.expose()).is_ok());
        let record = key.record(KeyRole::Operator, Timestamp::from_micros(0));
        let shown = record.shown.unwrap();
        assert_eq!(shown.chars().count(), 3 + 4 + 1);
        assert!(key.expose().starts_with(shown.trim_end_matches('…')));
        assert_eq!(record.hash, key.hash());
        assert_eq!(ApiKey::presented("sk-abc").role(), None);
    }

    #[test]
    fn a_keys_use_is_recorded_once_an_hour() {
        let at = |s: i64| Some(Timestamp::from_micros(s * 1_000_000));
        let now = Timestamp::from_micros(10_000 * 1_000_000);
        assert!(KeyRecord::use_is_stale(None, now));
        assert!(KeyRecord::use_is_stale(at(10_000 - 3600), now));
        assert!(!KeyRecord::use_is_stale(at(10_000 - 3599), now));
    }

    #[test]
    fn hash_is_lowercase_hex_sha256_as_stored_before() {
        // sha256("abc"), the FIPS 180-2 example: keys stored by earlier versions still match.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(ApiKey::presented("abc").hash(), KeyHash::from_stored(expected.into()));
    }

    #[test]
    fn hash_is_stable_and_hides_the_key() {
        let key = ApiKey::presented("app-abcdefghijklmnopqrstuvwx");
        let hash = key.hash();
        assert_eq!(hash, ApiKey::presented("app-abcdefghijklmnopqrstuvwx").hash());
        assert_eq!(hash.as_str().len(), 64);
        assert!(!hash.as_str().contains("abcdefgh"));
        assert_ne!(hash, ApiKey::presented("app-abcdefghijklmnopqrstuvwy").hash());
    }

    #[test]
    fn operator_input_is_checked() {
        assert!(ApiKey::parse("app-short").is_err());
        assert!(ApiKey::parse("key-abcdefghijklmnopqrstuvwx").is_err());
        assert!(ApiKey::parse("app-abcdefghijklmnopqrstuv!x").is_err());
    }
}
