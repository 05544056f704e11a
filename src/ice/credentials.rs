//! ICE credentials: the username fragment and password of one side
//! (RFC 8445 §5.3, RFC 8839 §5.4 `a=ice-ufrag`, `a=ice-pwd`).

use std::fmt;

/// Characters of generated credentials: `[A-Za-z0-9]`, a subset of
/// ice-char (RFC 8839 §5.4) that needs no escaping anywhere.
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why remote credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The ufrag is not 4..=256 ice-chars (RFC 8839 §5.4).
    #[error("ice-ufrag is not 4 to 256 ice-chars")]
    BadUfrag,
    /// The password is not 22..=256 ice-chars (RFC 8839 §5.4).
    #[error("ice-pwd is not 22 to 256 ice-chars")]
    BadPwd,
}

/// The ufrag and password of one ICE agent. The local pair keys the
/// responses it sends and checks the requests it receives; the remote pair
/// keys the requests it sends (RFC 8445 §7.2.2).
///
/// `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// Username fragment (`a=ice-ufrag`).
    pub ufrag: String,
    /// Password (`a=ice-pwd`).
    pub pwd: String,
}

impl IceCredentials {
    /// Length of a generated ufrag (rtpengine's length; RFC 8839 §5.4
    /// requires at least 4 characters, 24 bits of randomness).
    pub const UFRAG_LEN: usize = 8;
    /// Length of a generated password (rtpengine's length; at least 22
    /// characters, 128 bits of randomness).
    pub const PWD_LEN: usize = 26;

    /// New local credentials from random bytes that `fill` writes (a CSPRNG
    /// in production): a ufrag of [`Self::UFRAG_LEN`] and a password of
    /// [`Self::PWD_LEN`] characters of `[A-Za-z0-9]`, drawn without modulo
    /// bias.
    pub fn random(fill: &mut dyn FnMut(&mut [u8])) -> Self {
        let mut chars = [0u8; Self::UFRAG_LEN + Self::PWD_LEN];
        let mut got = 0;
        let mut pool = [0u8; 64];
        // Rejection sampling: bytes >= 248 (= 4 * 62) are drawn again. A
        // `fill` that keeps returning such bytes would loop forever, so after
        // a few rounds the bias is accepted instead.
        for round in 0..8 {
            fill(&mut pool);
            for &b in &pool {
                if got == chars.len() {
                    break;
                }
                if b < 248 || round == 7 {
                    chars[got] = ALPHABET[usize::from(b) % ALPHABET.len()];
                    got += 1;
                }
            }
            if got == chars.len() {
                break;
            }
        }
        // Every byte of `chars` is from ALPHABET or zero; zero only if
        // `fill` gave fewer bytes than asked, which it cannot (it fills the
        // slice), so the strings are ASCII.
        let text: String = chars
            .iter()
            .map(|&c| if c == 0 { 'A' } else { char::from(c) })
            .collect();
        IceCredentials {
            ufrag: text[..Self::UFRAG_LEN].to_owned(),
            pwd: text[Self::UFRAG_LEN..].to_owned(),
        }
    }

    /// Remote credentials, checked as [`is_valid_ufrag`] and
    /// [`is_valid_pwd`].
    pub fn new(ufrag: &str, pwd: &str) -> Result<Self, CredentialsError> {
        if !is_valid_ufrag(ufrag) {
            return Err(CredentialsError::BadUfrag);
        }
        if !is_valid_pwd(pwd) {
            return Err(CredentialsError::BadPwd);
        }
        Ok(IceCredentials {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        })
    }
}

impl fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceCredentials")
            .field("ufrag", &self.ufrag)
            .field("pwd", &"<redacted>")
            .finish()
    }
}

/// Whether `c` is an ice-char: ALPHA / DIGIT / "+" / "/" (RFC 8839 §5.4).
pub fn is_ice_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// Whether `s` is a valid `ice-ufrag`: 4..=256 ice-chars (RFC 8839 §5.4).
pub fn is_valid_ufrag(s: &str) -> bool {
    (4..=256).contains(&s.len()) && s.bytes().all(is_ice_char)
}

/// Whether `s` is a valid `ice-pwd`: 22..=256 ice-chars (RFC 8839 §5.4).
pub fn is_valid_pwd(s: &str) -> bool {
    (22..=256).contains(&s.len()) && s.bytes().all(is_ice_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_lengths_and_alphabet() {
        let mut n = 0u8;
        let mut fill = |b: &mut [u8]| {
            for x in b {
                *x = n;
                n = n.wrapping_add(37);
            }
        };
        let c = IceCredentials::random(&mut fill);
        assert_eq!(c.ufrag.len(), 8);
        assert_eq!(c.pwd.len(), 26);
        assert!(is_valid_ufrag(&c.ufrag) && is_valid_pwd(&c.pwd));
        assert!(
            c.ufrag
                .bytes()
                .chain(c.pwd.bytes())
                .all(|b| b.is_ascii_alphanumeric())
        );
        let d = IceCredentials::random(&mut fill);
        assert_ne!(c, d);
        // A degenerate source still gives valid credentials.
        let c = IceCredentials::random(&mut |b: &mut [u8]| b.fill(0xff));
        assert!(is_valid_ufrag(&c.ufrag) && is_valid_pwd(&c.pwd));
        assert!(!format!("{c:?}").contains(&c.pwd));
    }

    #[test]
    fn remote_validation() {
        assert!(IceCredentials::new("abcd", "a+/b0123456789012345678").is_ok());
        assert_eq!(
            IceCredentials::new("abc", "0123456789012345678901"),
            Err(CredentialsError::BadUfrag)
        );
        assert_eq!(
            IceCredentials::new("ab:d", "0123456789012345678901"),
            Err(CredentialsError::BadUfrag)
        );
        assert_eq!(
            IceCredentials::new("abcd", "012345678901234567890"),
            Err(CredentialsError::BadPwd)
        );
        assert!(is_valid_ufrag(&"a".repeat(256)));
        assert!(!is_valid_ufrag(&"a".repeat(257)));
        assert!(!is_valid_pwd(&"a".repeat(257)));
        assert!(!is_valid_pwd("0123456789012345678901-"));
    }
}
