use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// An app API key as shown once to its creator: `app-` followed by 32 random characters.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// What is stored instead of the key: its SHA-256, hex encoded. Keys carry ~190 bits of
/// randomness, so a fast unsalted hash is enough and lets a lookup be a single get.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl ApiKey {
    pub const PREFIX: &'static str = "app-";
    const RANDOM_CHARS: usize = 32;

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        Self(format!("{}{}", Self::PREFIX, Alphanumeric.sample_string(&mut rng, Self::RANDOM_CHARS)))
    }

    /// Reads a key presented by a caller. Any string is accepted here (an unknown key is
    /// simply not found); only the shape of revocation input is checked by [`ApiKey::parse`].
    pub fn presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// A key typed by an operator (e.g. `colloquy key revoke`): must look like one of ours.
    pub fn parse(raw: &str) -> Result<Self, super::Invalid> {
        let raw = raw.trim();
        match raw.strip_prefix(Self::PREFIX) {
            Some(rest) if rest.len() >= 24 && rest.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(super::Invalid("an API key looks like app- followed by at least 24 letters or digits".into())),
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
        let key = ApiKey::generate();
        assert!(key.expose().starts_with("app-"));
        assert_eq!(key.expose().len(), 4 + 32);
        assert!(ApiKey::parse(key.expose()).is_ok());
        assert_ne!(key.expose(), ApiKey::generate().expose());
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
