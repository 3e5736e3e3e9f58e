//! Bearer tokens for writes (and optionally reads).
//!
//! A tokens file holds one line per token: `sha256:HEX SCOPE NAME`, where HEX
//! is the SHA-256 of the token, SCOPE is `read` or `write` (a write token may
//! also read), and NAME is a label for logs. Only hashes are stored, so the
//! file does not reveal tokens, and a token is printed once when it is made.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Permission a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read the catalog.
    Read,
    /// Read and write the catalog.
    Write,
}

impl Scope {
    fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

#[derive(Debug, Clone)]
struct TokenEntry {
    hash: [u8; 32],
    scope: Scope,
    name: String,
}

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Tokens {
    /// Reads a tokens file. Blank lines and lines starting with `#` are skipped.
    pub fn load(path: &Path) -> Result<Tokens> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = || {
                Error::InvalidParameter(format!(
                    "{}:{}: expected 'sha256:HEX read|write NAME'; make entries with `stacd token new`",
                    path.display(),
                    index + 1
                ))
            };
            let mut fields = line.split_whitespace();
            let hash = fields
                .next()
                .and_then(|f| f.strip_prefix("sha256:"))
                .and_then(parse_hex)
                .ok_or_else(invalid)?;
            let scope = fields.next().and_then(Scope::parse).ok_or_else(invalid)?;
            let name = fields.collect::<Vec<_>>().join(" ");
            entries.push(TokenEntry { hash, scope, name });
        }
        Ok(Tokens { entries })
    }

    /// Finds the scope and name of a presented token. Every entry is compared
    /// in constant time, so timing does not tell how much of a hash matched.
    pub fn check(&self, token: &str) -> Option<(Scope, &str)> {
        let presented = hash(token);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some((entry.scope, entry.name.as_str()));
            }
        }
        found
    }

    /// Tells whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Makes a new random token, appends its hash to `path`, and returns the token.
pub fn new_token(path: &Path, scope: Scope, name: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness available: {e}")))?;
    let token = format!("stacd_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hex: String = hash(&token).iter().map(|b| format!("{b:02x}")).collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join("-");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
    writeln!(file, "sha256:{hex} {} {name}", scope.as_str()).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(token)
}

/// Checks the `Authorization` header of a request against the scope it needs.
pub fn authorize(tokens: &Tokens, header: Option<&str>, needed: Scope) -> Result<()> {
    let Some(header) = header else {
        return Err(Error::Unauthorized(format!(
            "this request needs a bearer token with the '{}' scope: send Authorization: Bearer TOKEN",
            needed.as_str()
        )));
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| Error::Unauthorized("the Authorization header must be 'Bearer TOKEN'".into()))?;
    match tokens.check(token) {
        None => Err(Error::Unauthorized("the bearer token is not valid".into())),
        Some((scope, name)) if scope < needed => {
            tracing::warn!(token.name = name, "token lacks the scope for the request");
            Err(Error::Forbidden(format!(
                "the token '{name}' has the '{}' scope, and this request needs '{}'",
                scope.as_str(),
                needed.as_str()
            )))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_token_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let writer = new_token(&path, Scope::Write, "ingest pipeline").unwrap();
        let reader = new_token(&path, Scope::Read, "viewer").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&writer), "the file must hold hashes only");
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.check(&writer), Some((Scope::Write, "ingest-pipeline")));
        assert_eq!(tokens.check(&reader), Some((Scope::Read, "viewer")));
        assert_eq!(tokens.check("stacd_guess"), None);
    }

    #[test]
    fn authorize_gives_401_and_403() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let reader = new_token(&path, Scope::Read, "viewer").unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert!(matches!(
            authorize(&tokens, None, Scope::Write),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            authorize(&tokens, Some("Basic abc"), Scope::Write),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            authorize(&tokens, Some("Bearer nope"), Scope::Write),
            Err(Error::Unauthorized(_))
        ));
        let header = format!("Bearer {reader}");
        assert!(matches!(
            authorize(&tokens, Some(&header), Scope::Write),
            Err(Error::Forbidden(_))
        ));
        assert!(authorize(&tokens, Some(&header), Scope::Read).is_ok());
    }

    #[test]
    fn malformed_file_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# comment\n\nsha256:abc write x\n").unwrap();
        let error = Tokens::load(&path).unwrap_err();
        assert!(error.to_string().contains(":3:"), "{error}");
    }
}
