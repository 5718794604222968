//! Secrets at rest: sealing a source's passwords, tokens and credential
//! headers before they are stored, masking them before they are shown,
//! and deciding when an edit may keep them.
//!
//! # Sealing
//!
//! Each secret is sealed on its own with XChaCha20-Poly1305 under the
//! first key of a [`Keyring`]. Its 24-byte nonce is drawn at random: at
//! that size random nonces do not collide in any realistic number of
//! seals, so no counter has to be kept (or shared between replicas).
//! The associated data binds the ciphertext to its place — workspace,
//! source and field — so a sealed value copied from one source (or
//! field, or workspace) into another does not open there: whoever can
//! write to the store cannot make the server send one source's password
//! to another source's host.
//!
//! Keys are rotated by putting a new key first: it seals from then on,
//! the old ones still open what they sealed, [`reseal`] moves a stored
//! configuration onto the new key, and the old key can be dropped once
//! every configuration was resealed.
//!
//! # The stored form
//!
//! [`seal_config`] turns a [`Config`] into JSON in which every secret
//! value (see [`secret_paths`]) is replaced, where it stood, by
//! `{"sealed": {"keyId", "nonce", "ciphertext"}}`. A password inside the
//! URL (`https://user:pw@host/`) is cut out of the URL text, which keeps
//! everything else byte for byte (`https://user@host/`), and is stored
//! sealed under the top-level key `urlPassword`. The stored form is not a
//! [`Config`]: only [`open_config`] turns it back into one.
//!
//! # Edits
//!
//! An edit is a partial update ([`merge_config`]). A secret it does not
//! send (or sends back as the [`MASK`] it was shown) is kept only while
//! it would go where it went before: same origin, same token endpoint,
//! same database host and port, same TLS mode, same authentication type.
//! Otherwise whoever may edit a source could point it at their own host
//! and receive the stored password without ever having known it.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, OsRng, Payload};
use chacha20poly1305::{AeadCore, Key, KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::config::{Config, SslMode};
use crate::redirect::is_credential_header;

/// What is shown in place of a secret. Sent back in an edit, it means
/// "keep the stored value".
pub const MASK: &str = "••••••";

/// The JSON key of the password cut out of the URL, in the stored form.
pub const URL_PASSWORD_KEY: &str = "urlPassword";

/// The name of the URL's password among [`secret_paths`], and the field it
/// is sealed for.
pub const URL_PASSWORD_PATH: &str = "url.password";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const MAX_ID_LEN: usize = 32;
/// Prefixed to the associated data, so that these seals can never be
/// mistaken for another use of the same key.
const AAD_DOMAIN: &[u8] = b"coform-sources/secret/v1";

/// The keys secrets are sealed with, in order: the first seals, any opens
/// what it sealed (found by id).
///
/// Its `Debug` shows the ids only; the key bytes are wiped when it drops.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<KeyEntry>,
}

#[derive(Clone)]
struct KeyEntry {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

/// Why a keyring specification was refused. Messages name positions and
/// ids, never key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No key at all.
    #[error("the keyring is empty: expected id:base64key[,id:base64key...]")]
    Empty,
    /// An entry (counted from 1) is empty or has no `:`.
    #[error("keyring entry {position}: expected id:base64key")]
    Malformed { position: usize },
    /// An entry's id is not 1 to 32 characters of `A-Za-z0-9_-`.
    #[error(
        "keyring entry {position}: the id must be 1 to 32 characters of A-Z, a-z, 0-9, _ and -"
    )]
    InvalidId { position: usize },
    /// The key is not standard base64.
    #[error("key {id:?}: the key is not standard base64")]
    InvalidBase64 { id: String },
    /// The key does not decode to 32 bytes.
    #[error("key {id:?}: the key must be 32 bytes, not {len}")]
    WrongLength { id: String, len: usize },
    /// Two keys share an id: which one opens a value would be a guess.
    #[error("key id {id:?} appears more than once")]
    DuplicateId { id: String },
}

/// Why a sealed value (or a stored configuration) did not open. Messages
/// name fields and key ids, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Sealed under a key the keyring no longer (or never) held.
    #[error("sealed under key {key_id:?}, which the keyring does not hold")]
    UnknownKey { key_id: String },
    /// The nonce or ciphertext is not base64 of the right size, or the
    /// sealed object does not have the right shape.
    #[error("the sealed value is malformed: {reason}")]
    Malformed { reason: &'static str },
    /// Authentication failed: the value was altered, or sealed for another
    /// workspace, source or field.
    #[error("the sealed value does not open: it was altered or sealed for another place")]
    Rejected,
    /// A stored configuration holds a secret in the clear.
    #[error("the secret is stored unsealed")]
    NotSealed,
    /// A secret of a stored configuration did not open.
    #[error("secret {field}: {cause}")]
    Field {
        /// The secret's path ([`secret_paths`]).
        field: String,
        cause: Box<SealError>,
    },
    /// The stored configuration, secrets opened, is not a valid [`Config`].
    #[error("the stored configuration is not valid: {message}")]
    InvalidStored { message: String },
}

impl SealError {
    /// The secret this error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            SealError::Field { field, .. } => Some(field),
            _ => None,
        }
    }

    fn in_field(self, field: &str) -> SealError {
        SealError::Field {
            field: field.to_owned(),
            cause: Box::new(self),
        }
    }
}

/// Why an edit was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The edit keeps stored secrets (omits them or sends the mask) while
    /// changing where they would be sent; these must be sent again.
    #[error("these secrets must be sent again, since the edit changes where they are sent: {}", fields.join(", "))]
    SecretsRequired {
        /// Their paths ([`secret_paths`]).
        fields: Vec<String>,
    },
    /// The edit is not a JSON object, or the result is not a valid shape.
    #[error("invalid configuration: {message}")]
    Invalid { message: String },
}

impl MergeError {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            MergeError::SecretsRequired { .. } => "secrets_required",
            MergeError::Invalid { .. } => "invalid_config",
        }
    }
}

/// Where a sealed value belongs; bound to it as associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aad<'a> {
    pub workspace_id: &'a str,
    pub source_id: &'a str,
    /// The secret's path ([`secret_paths`]).
    pub field: &'a str,
}

impl Aad<'_> {
    /// The associated data: a domain tag, then the key id and each part,
    /// each preceded by its length, so that no two different places (say
    /// source `a:b` field `c` and source `a` field `b:c`) encode alike.
    fn encode(&self, key_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            AAD_DOMAIN.len()
                + 32
                + key_id.len()
                + self.workspace_id.len()
                + self.source_id.len()
                + self.field.len(),
        );
        out.extend_from_slice(AAD_DOMAIN);
        for part in [key_id, self.workspace_id, self.source_id, self.field] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// One sealed secret, as stored (JSON `{"keyId", "nonce", "ciphertext"}`,
/// nonce and ciphertext in standard base64; the ciphertext ends with the
/// 16-byte tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Keyring {
    /// Reads `id:base64key[,id:base64key...]`: 32-byte keys in standard
    /// base64 (padded), ids of 1 to 32 characters of `A-Za-z0-9_-`, each
    /// id once. Whitespace around entries is ignored.
    pub fn parse(spec: &str) -> Result<Keyring, KeyringError> {
        if spec.trim().is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut keys: Vec<KeyEntry> = Vec::new();
        for (index, entry) in spec.split(',').enumerate() {
            let position = index + 1;
            let (id, encoded) = entry
                .trim()
                .split_once(':')
                .ok_or(KeyringError::Malformed { position })?;
            let (id, encoded) = (id.trim(), encoded.trim());
            if !valid_id(id) {
                return Err(KeyringError::InvalidId { position });
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::DuplicateId { id: id.to_owned() });
            }
            let bytes = Zeroizing::new(
                BASE64
                    .decode(encoded)
                    .map_err(|_| KeyringError::InvalidBase64 { id: id.to_owned() })?,
            );
            if bytes.len() != KEY_LEN {
                return Err(KeyringError::WrongLength {
                    id: id.to_owned(),
                    len: bytes.len(),
                });
            }
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            key.copy_from_slice(&bytes);
            keys.push(KeyEntry {
                id: id.to_owned(),
                key,
            });
        }
        Ok(Keyring { keys })
    }

    /// A keyring of one fresh random key, and the specification to keep
    /// (in the operator's secret store) to read it again.
    ///
    /// # Panics
    ///
    /// If `id` is not a valid key id (1 to 32 characters of
    /// `A-Za-z0-9_-`): ids are chosen by whoever calls this, not read
    /// from input.
    pub fn generate(id: &str) -> (Keyring, String) {
        assert!(
            valid_id(id),
            "a key id is 1 to 32 characters of A-Z, a-z, 0-9, _ and -"
        );
        let generated = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&generated);
        let spec = format!("{id}:{}", BASE64.encode(&key[..]));
        let keyring = Keyring {
            keys: vec![KeyEntry {
                id: id.to_owned(),
                key,
            }],
        };
        (keyring, spec)
    }

    /// The id of the key that seals.
    pub fn sealing_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plaintext` for the place `aad` names, under the first key.
    pub fn seal(&self, plaintext: &str, aad: &Aad) -> Sealed {
        let entry = &self.keys[0];
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&entry.key[..]));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad.encode(&entry.id);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            // Only a message of hundreds of gigabytes can fail to seal.
            .expect("a secret small enough to be in memory seals");
        Sealed {
            key_id: entry.id.clone(),
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        }
    }

    /// Opens what [`seal`](Keyring::seal) sealed for the same place, with
    /// the key it names.
    pub fn open(&self, sealed: &Sealed, aad: &Aad) -> Result<String, SealError> {
        let entry = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey {
                key_id: sealed.key_id.clone(),
            })?;
        let nonce = BASE64
            .decode(&sealed.nonce)
            .ok()
            .filter(|n| n.len() == NONCE_LEN)
            .ok_or(SealError::Malformed {
                reason: "the nonce is not 24 bytes of base64",
            })?;
        let ciphertext = BASE64
            .decode(&sealed.ciphertext)
            .map_err(|_| SealError::Malformed {
                reason: "the ciphertext is not base64",
            })?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&entry.key[..]));
        let aad = aad.encode(&entry.id);
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Rejected)?;
        // Authentic, so it is what `seal` was given: UTF-8.
        String::from_utf8(plain).map_err(|_| SealError::Malformed {
            reason: "the plaintext is not UTF-8",
        })
    }
}

// ---------------------------------------------------------------------
// Where secrets are in a configuration's JSON.

/// The fixed places of secrets, as JSON paths.
const FIXED_SECRETS: [&[&str]; 5] = [
    &["authentication", "token"],
    &["authentication", "credentials", "password"],
    &["authentication", "credentials", "clientSecret"],
    &["authentication", "credentials", "value"],
    &["password"],
];

/// A secret's place: a JSON path (its name is the path joined with `.`;
/// a header's name may itself hold dots, so the path is kept in parts).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SecretField {
    path: Vec<String>,
}

impl SecretField {
    fn name(&self) -> String {
        self.path.join(".")
    }
}

/// The secret fields present (not null) in a configuration's JSON, clear
/// or stored: the fixed ones, then each header that carries a secret.
/// The URL's password is not among them (see [`url_password_span`]).
fn secret_fields(config: &Value) -> Vec<SecretField> {
    let mut fields: Vec<SecretField> = FIXED_SECRETS
        .iter()
        .filter(|path| get(config, path).is_some_and(|v| !v.is_null()))
        .map(|path| SecretField {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
        })
        .collect();
    if let Some(Value::Object(headers)) = config.get("headers") {
        let declared: Vec<&str> = match config.get("secretHeaders") {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for (name, value) in headers {
            let secret =
                is_credential_header(name) || declared.iter().any(|d| d.eq_ignore_ascii_case(name));
            if secret && !value.is_null() {
                fields.push(SecretField {
                    path: vec!["headers".to_owned(), name.clone()],
                });
            }
        }
    }
    fields
}

fn get<'v, S: AsRef<str>>(value: &'v Value, path: &[S]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key.as_ref()))
}

fn get_mut<'v, S: AsRef<str>>(value: &'v mut Value, path: &[S]) -> Option<&'v mut Value> {
    path.iter()
        .try_fold(value, |v, key| v.get_mut(key.as_ref()))
}

/// The byte range of `:password` in a URL's userinfo, when it has a
/// non-empty password.
///
/// Read the way the WHATWG parser (and so the HTTP client) reads an http
/// or https URL, without parsing it into a `Url`, which would re-encode
/// the `{{placeholders}}` of the path: leading spaces and controls are
/// skipped, tabs and newlines anywhere are ignored, any number of `/` and
/// `\` may follow the scheme, the authority ends at `/`, `\`, `?` or `#`,
/// the userinfo ends at the authority's last `@`, the password starts
/// after the userinfo's first `:`. The range covers any ignored
/// characters in between, so cutting it out leaves no part of the
/// password behind.
fn url_password_span(url: &str) -> Option<(usize, usize)> {
    let (colon, at) = userinfo(url)?;
    let colon = colon?;
    let password = &url[colon + 1..at];
    if password.chars().all(|c| matches!(c, '\t' | '\n' | '\r')) {
        return None;
    }
    Some((colon, at))
}

/// The byte offsets of the userinfo's first `:` (if any) and of the `@`
/// that ends it (see [`url_password_span`]).
fn userinfo(url: &str) -> Option<(Option<usize>, usize)> {
    let chars: Vec<(usize, char)> = url
        .char_indices()
        .skip_while(|(_, c)| *c <= ' ')
        .filter(|(_, c)| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let scheme_end = chars.iter().position(|(_, c)| *c == ':')?;
    if scheme_end == 0
        || !chars[..scheme_end]
            .iter()
            .all(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let rest = &chars[scheme_end + 1..];
    let start = rest
        .iter()
        .position(|(_, c)| !matches!(c, '/' | '\\'))
        .unwrap_or(rest.len());
    let authority = &rest[start..];
    let end = authority
        .iter()
        .position(|(_, c)| matches!(c, '/' | '\\' | '?' | '#'))
        .unwrap_or(authority.len());
    let authority = &authority[..end];
    let at = authority.iter().rposition(|(_, c)| *c == '@')?;
    let colon = authority[..at]
        .iter()
        .find(|(_, c)| *c == ':')
        .map(|(i, _)| *i);
    Some((colon, authority[at].0))
}

/// The inner object of a stored `{"sealed": {"keyId", "nonce",
/// "ciphertext"}}`, when `value` is one (other objects that merely have
/// a `sealed` key, say in a request body, are not).
fn sealed_of(value: &Value) -> Option<&Value> {
    let Value::Object(map) = value else {
        return None;
    };
    let inner = map.get("sealed").filter(|_| map.len() == 1)?;
    match inner {
        Value::Object(fields)
            if fields.len() == 3
                && ["keyId", "nonce", "ciphertext"]
                    .iter()
                    .all(|name| fields.get(*name).is_some_and(Value::is_string)) =>
        {
            Some(inner)
        }
        _ => None,
    }
}

fn sealed_json(sealed: Sealed) -> Value {
    let mut map = Map::new();
    map.insert(
        "sealed".to_owned(),
        serde_json::to_value(sealed).expect("a Sealed serializes"),
    );
    Value::Object(map)
}

fn open_json(keys: &Keyring, value: &Value, aad: &Aad) -> Result<String, SealError> {
    let inner = match value {
        Value::String(_) => return Err(SealError::NotSealed),
        other => sealed_of(other).ok_or(SealError::Malformed {
            reason: "expected {\"sealed\": {\"keyId\", \"nonce\", \"ciphertext\"}}",
        })?,
    };
    let sealed: Sealed =
        serde_json::from_value(inner.clone()).map_err(|_| SealError::Malformed {
            reason: "expected {\"sealed\": {\"keyId\", \"nonce\", \"ciphertext\"}}",
        })?;
    keys.open(&sealed, aad)
}

// ---------------------------------------------------------------------
// Configuration-level operations.

/// The secret fields of `config`, by path: `authentication.token`,
/// `authentication.credentials.password`,
/// `authentication.credentials.clientSecret`,
/// `authentication.credentials.value`, `password`, `headers.<Name>` for
/// each header [`Config::is_secret_header`] names, and
/// [`url.password`](URL_PASSWORD_PATH) for a password in the URL. Only
/// fields that are set are listed.
pub fn secret_paths(config: &Config) -> Vec<String> {
    let value = serde_json::to_value(config).expect("a Config serializes");
    let mut paths: Vec<String> = secret_fields(&value)
        .iter()
        .map(SecretField::name)
        .collect();
    if config.url.as_deref().and_then(url_password_span).is_some() {
        paths.push(URL_PASSWORD_PATH.to_owned());
    }
    paths
}

/// The stored form of `config` (see the [module docs](self)): every
/// secret sealed for its place in workspace `workspace_id`, source
/// `source_id`; the URL's password cut out of the URL and sealed under
/// [`URL_PASSWORD_KEY`].
pub fn seal_config(keys: &Keyring, config: &Config, workspace_id: &str, source_id: &str) -> Value {
    let mut value = serde_json::to_value(config).expect("a Config serializes");
    for field in secret_fields(&value) {
        let name = field.name();
        let slot = get_mut(&mut value, &field.path).expect("a listed field is present");
        if let Value::String(plain) = slot {
            let aad = Aad {
                workspace_id,
                source_id,
                field: &name,
            };
            *slot = sealed_json(keys.seal(plain, &aad));
        }
    }
    if let Some(url) = config.url.as_deref() {
        if let Some((colon, at)) = url_password_span(url) {
            let aad = Aad {
                workspace_id,
                source_id,
                field: URL_PASSWORD_PATH,
            };
            let sealed = keys.seal(&url[colon + 1..at], &aad);
            let object = value.as_object_mut().expect("a Config is an object");
            object.insert(
                "url".to_owned(),
                Value::String(format!("{}{}", &url[..colon], &url[at..])),
            );
            object.insert(URL_PASSWORD_KEY.to_owned(), sealed_json(sealed));
        }
    }
    value
}

/// The configuration a stored form holds, secrets in the clear, for a
/// call. Fails (naming the field, never a value) when a secret does not
/// open or is not sealed, and when the result is not a valid [`Config`].
pub fn open_config(
    keys: &Keyring,
    stored: &Value,
    workspace_id: &str,
    source_id: &str,
) -> Result<Config, SealError> {
    let mut value = stored.clone();
    if !value.is_object() {
        return Err(SealError::InvalidStored {
            message: "not a JSON object".to_owned(),
        });
    }
    for field in secret_fields(&value) {
        let name = field.name();
        let aad = Aad {
            workspace_id,
            source_id,
            field: &name,
        };
        let slot = get_mut(&mut value, &field.path).expect("a listed field is present");
        let plain = open_json(keys, slot, &aad).map_err(|e| e.in_field(&name))?;
        *slot = Value::String(plain);
    }
    let object = value.as_object_mut().expect("checked above");
    if let Some(sealed) = object.remove(URL_PASSWORD_KEY) {
        let aad = Aad {
            workspace_id,
            source_id,
            field: URL_PASSWORD_PATH,
        };
        let password = open_json(keys, &sealed, &aad).map_err(|e| e.in_field(URL_PASSWORD_PATH))?;
        let url = object.get("url").and_then(Value::as_str).unwrap_or("");
        let at = match userinfo(url) {
            Some((None, at)) => at,
            _ => {
                return Err(SealError::InvalidStored {
                    message: "urlPassword is stored but the URL has no user (or still a password)"
                        .to_owned(),
                })
            }
        };
        let url = format!("{}:{password}{}", &url[..at], &url[at..]);
        object.insert("url".to_owned(), Value::String(url));
    }
    serde_json::from_value(value).map_err(|e| SealError::InvalidStored {
        message: redact(&e.to_string()),
    })
}

/// What a listing, a GET or an export shows: the configuration (stored or
/// clear) with every secret replaced by [`MASK`] — the URL's password too,
/// as `https://user:••••••@host/` — and whether any secret is set.
///
/// Anything still looking like a sealed value, wherever it is, is masked
/// as well: what this returns never holds a secret or a ciphertext.
pub fn masked_config(stored_or_clear: &Value) -> (Value, bool) {
    let mut value = stored_or_clear.clone();
    let mut set = false;
    for field in secret_fields(&value) {
        if let Some(slot) = get_mut(&mut value, &field.path) {
            *slot = Value::String(MASK.to_owned());
            set = true;
        }
    }
    if let Some(object) = value.as_object_mut() {
        let stored_password = object.remove(URL_PASSWORD_KEY).is_some();
        if let Some(Value::String(url)) = object.get_mut("url") {
            if let Some((colon, at)) = url_password_span(url) {
                *url = format!("{}:{MASK}{}", &url[..colon], &url[at..]);
                set = true;
            } else if stored_password {
                if let Some((None, at)) = userinfo(url) {
                    *url = format!("{}:{MASK}{}", &url[..at], &url[at..]);
                }
                set = true;
            }
        } else if stored_password {
            set = true;
        }
    }
    set |= mask_sealed(&mut value);
    (value, set)
}

/// Masks every `{"sealed": ...}` left anywhere; says whether there was one.
fn mask_sealed(value: &mut Value) -> bool {
    if sealed_of(value).is_some() {
        *value = Value::String(MASK.to_owned());
        return true;
    }
    match value {
        Value::Object(map) => map
            .values_mut()
            .fold(false, |found, v| mask_sealed(v) | found),
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |found, v| mask_sealed(v) | found),
        _ => false,
    }
}

/// The stored form again, every secret sealed under the keyring's first
/// key (each opened with whichever key sealed it): run over every stored
/// configuration after a new key was put first, before the old key is
/// dropped.
pub fn reseal(
    keys: &Keyring,
    stored: &Value,
    workspace_id: &str,
    source_id: &str,
) -> Result<Value, SealError> {
    let config = open_config(keys, stored, workspace_id, source_id)?;
    Ok(seal_config(keys, &config, workspace_id, source_id))
}

/// Where a configuration's secrets go: an edit that changes any of it may
/// not keep them.
#[derive(Debug, PartialEq, Eq)]
struct Destination {
    url: Option<String>,
    token_url: Option<String>,
    host: Option<String>,
    port: u16,
    ssl_mode: SslMode,
    auth_type: crate::config::AuthType,
}

impl Destination {
    fn of(config: &Config) -> Destination {
        Destination {
            url: config.url.as_deref().map(origin),
            token_url: config
                .authentication
                .as_ref()
                .and_then(|auth| auth.credentials.token_url.as_deref())
                .map(origin),
            host: config.host.as_ref().map(|h| h.to_ascii_lowercase()),
            port: config.port.unwrap_or(5432),
            ssl_mode: config.ssl_mode.unwrap_or_default(),
            auth_type: config.auth_type(),
        }
    }
}

/// A URL's origin (scheme, host, port — as the HTTP client will read
/// them). A URL that does not parse to a tuple origin is compared as its
/// whole text, minus its password.
fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.origin().is_tuple() => parsed.origin().ascii_serialization(),
        _ => match url_password_span(url) {
            Some((colon, at)) => format!("text:{}{}", &url[..colon], &url[at..]),
            None => format!("text:{url}"),
        },
    }
}

/// Applies an edit to `current`.
///
/// `changes` is merged key by key: objects recursively, `null` removes a
/// key, anything else (arrays included) replaces. `body` and `variables`
/// are documents of their own and are replaced whole (a `null` inside
/// them is a value, not a removal).
///
/// A stored secret the edit omits, or sends back as [`MASK`], is kept —
/// but only while the URL's origin, the OAuth token URL's origin, the
/// database host, port and TLS mode and the authentication type stay as
/// they were; otherwise [`MergeError::SecretsRequired`] lists the secrets
/// to send again. A header that stops being secret (removed from
/// `secretHeaders`) while keeping its stored value must be sent again too,
/// or the edit would make the server show it. The URL's password is kept
/// when `url` is omitted or sent with the mask as its password.
///
/// The result is parsed strictly (unknown fields refused) but not
/// [`checked`](Config::check) against a kind: the caller does that.
pub fn merge_config(current: &Config, changes: &Value) -> Result<Config, MergeError> {
    let Value::Object(patch) = changes else {
        return Err(MergeError::Invalid {
            message: "an edit is a JSON object".to_owned(),
        });
    };
    let current_json = serde_json::to_value(current).expect("a Config serializes");
    let mut merged = current_json.clone();
    {
        let target = merged.as_object_mut().expect("a Config is an object");
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else if key == "body" || key == "variables" {
                target.insert(key.clone(), value.clone());
            } else {
                merge_value(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }

    let mut kept: Vec<String> = Vec::new();
    let mut required: Vec<String> = Vec::new();
    let mut kept_fields: Vec<SecretField> = Vec::new();
    for field in secret_fields(&current_json) {
        let old = get(&current_json, &field.path).expect("a listed field is present");
        match get(changes, &field.path) {
            Some(Value::String(sent)) if sent == MASK => {
                // The mask was merged where it was sent: put the secret back.
                if let Some(slot) = get_mut(&mut merged, &field.path) {
                    *slot = old.clone();
                }
                kept.push(field.name());
                kept_fields.push(field);
            }
            Some(_) => {}
            None => {
                if get(&merged, &field.path) == Some(old) {
                    kept.push(field.name());
                    kept_fields.push(field);
                }
            }
        }
    }
    // The URL's password.
    let current_password = current
        .url
        .as_deref()
        .and_then(|url| url_password_span(url).map(|(c, a)| &url[c + 1..a]));
    match patch.get("url") {
        None => {
            if current_password.is_some() {
                kept.push(URL_PASSWORD_PATH.to_owned());
            }
        }
        Some(Value::String(url)) => {
            if let Some((colon, at)) = url_password_span(url) {
                if &url[colon + 1..at] == MASK {
                    match current_password {
                        Some(password) => {
                            let restored = format!("{}:{password}{}", &url[..colon], &url[at..]);
                            merged["url"] = Value::String(restored);
                            kept.push(URL_PASSWORD_PATH.to_owned());
                        }
                        None => required.push(URL_PASSWORD_PATH.to_owned()),
                    }
                }
            }
        }
        Some(_) => {}
    }
    // A mask where there was nothing to keep.
    for field in secret_fields(&merged) {
        if get(&merged, &field.path).and_then(Value::as_str) == Some(MASK)
            && !kept_fields.contains(&field)
        {
            required.push(field.name());
        }
    }

    let next: Config = serde_json::from_value(merged).map_err(|e| MergeError::Invalid {
        message: redact(&e.to_string()),
    })?;

    let still_secret = serde_json::to_value(&next).expect("a Config serializes");
    let still_secret = secret_fields(&still_secret);
    for field in &kept_fields {
        if !still_secret.contains(field) {
            required.push(field.name());
        }
    }
    if !kept.is_empty() && Destination::of(current) != Destination::of(&next) {
        required.append(&mut kept);
    }
    if !required.is_empty() {
        required.sort();
        required.dedup();
        return Err(MergeError::SecretsRequired { fields: required });
    }
    Ok(next)
}

/// JSON merge of `patch` into `target`: objects key by key, `null`
/// removes, anything else replaces.
fn merge_value(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let target = target.as_object_mut().expect("made an object above");
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_value(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// A parse error's message without the values it quotes: serde names the
/// offending value (`invalid type: string "hunter2", expected u16`), which
/// may be a secret put in the wrong place.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push_str("\"…\"");
                let mut escaped = false;
                for c in chars.by_ref() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
            }
            _ => out.push(c),
        }
    }
    // `unknown variant `x``: the value is in backticks.
    if let Some(start) = out.find("unknown variant `") {
        let from = start + "unknown variant `".len();
        if let Some(len) = out[from..].find('`') {
            out.replace_range(from..from + len, "…");
        }
    }
    out
}

#[cfg(test)]
mod tests;
