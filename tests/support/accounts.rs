//! Accounts and what they own: registration, login, verification mails,
//! workspaces, members and templates, and forged tokens.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{url_encode, Body, Resp, Server};

/// A password every policy rule accepts.
pub const PASSWORD: &str = "correct horse 9";

/// A registered account and the tokens of one of its sessions.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub name: String,
    pub color: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

impl Account {
    fn from_tokens(body: &Value, password: &str) -> Account {
        let user = &body["user"];
        Account {
            id: user["id"].as_str().expect("user.id").to_owned(),
            email: user["email"].as_str().expect("user.email").to_owned(),
            name: user["name"].as_str().expect("user.name").to_owned(),
            color: user["color"].as_str().expect("user.color").to_owned(),
            password: password.to_owned(),
            access: body["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
            refresh: body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
        }
    }
}

/// One mail of the outbox folder.
#[derive(Clone, Debug)]
pub struct Mail {
    pub file: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// The single-use token the mail carries (every 43-character base64url
    /// word in it must be that same token).
    #[track_caller]
    pub fn token(&self) -> String {
        let words: Vec<&str> = self
            .body
            .split(|c: char| c.is_whitespace() || c == '=' || c == '?' || c == '/')
            .filter(|w| {
                w.len() == 43
                    && w.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .collect();
        assert!(
            !words.is_empty(),
            "no token in mail {}:\n{}",
            self.file,
            self.body
        );
        assert!(
            words.iter().all(|w| *w == words[0]),
            "different tokens in one mail: {words:?}"
        );
        words[0].to_owned()
    }
}

impl Server {
    // ---- accounts

    /// Registers `email` with [`PASSWORD`]; panics unless 201.
    pub async fn register(&self, name: &str, email: &str) -> Account {
        self.register_with(name, email, PASSWORD).await
    }

    pub async fn register_with(&self, name: &str, email: &str, password: &str) -> Account {
        let r = self.register_resp(email, password, name).await;
        Account::from_tokens(r.expect(201), password)
    }

    /// Logs in; the raw answer.
    pub async fn login_resp(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in (a new session); panics unless 200.
    pub async fn login(&self, email: &str, password: &str) -> Account {
        let r = self.login_resp(email, password).await;
        Account::from_tokens(r.expect(200), password)
    }

    /// Verifies the address of the account registered as `email` with the
    /// newest verification mail to it, unless it is verified already.
    pub async fn ensure_verified(&self, email: &str) {
        let user = self
            .state()
            .accounts
            .user_by_email(&email.trim().to_lowercase())
            .await
            .expect("look the account up")
            .unwrap_or_else(|| panic!("no account with the address {email}"));
        if user.email_verified {
            return;
        }
        let token = self
            .last_mail(&user.email, "Verify your Coform e-mail address")
            .token();
        self.get(
            &format!("/api/auth/verify-email?token={}", url_encode(&token)),
            None,
        )
        .await
        .expect(200);
    }

    /// `GET /api/auth/me` status with this access token.
    pub async fn me_status(&self, access: &str) -> u16 {
        self.get("/api/auth/me", Some(access)).await.status
    }

    // ---- workspaces and templates

    pub async fn create_workspace(&self, token: &str, name: &str) -> String {
        let r = self
            .post("/api/workspaces", Some(token), json!({"name": name}))
            .await;
        r.expect(201)["id"]
            .as_str()
            .expect("workspace id")
            .to_owned()
    }

    /// Adds the account of `email` as a member (201). Only a verified
    /// address is added at once, so an unverified one is first verified
    /// with the newest verification mail to it, as its owner would.
    pub async fn add_member(&self, token: &str, ws: &str, email: &str, role: &str) {
        self.ensure_verified(email).await;
        self.invite(token, ws, email, role).await.expect(201);
    }

    pub async fn set_role(&self, token: &str, ws: &str, user: &str, role: &str) {
        self.put(
            &format!("/api/workspaces/{ws}/members/{user}"),
            Some(token),
            json!({"role": role}),
        )
        .await
        .expect(204);
    }

    /// Creates a template; returns its view (with content).
    pub async fn create_template(
        &self,
        token: &str,
        ws: &str,
        name: &str,
        content: Option<Value>,
    ) -> Value {
        let mut body = json!({"workspaceId": ws, "name": name});
        if let Some(c) = content {
            body["content"] = c;
        }
        self.post("/api/templates", Some(token), body)
            .await
            .expect(201)
            .clone()
    }

    /// The content of a template as `GET` shows it.
    pub async fn content(&self, token: &str, template: &str) -> Value {
        self.get(&format!("/api/templates/{template}"), Some(token))
            .await
            .expect(200)["content"]
            .clone()
    }

    /// A document token for the WebSocket.
    pub async fn doc_token(&self, token: &str, template: &str) -> String {
        self.session(token, template).await.expect(200)["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    // ---- mail

    /// Every mail in the outbox, oldest first.
    pub fn outbox(&self) -> Vec<Mail> {
        let dir: PathBuf = self.data_dir().join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        // `<ms>-<random>.eml`: sort by the time, then the name.
        files.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let ms: u64 = name
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (ms, name)
        });
        files
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("read mail");
                let (head, body) = text.split_once("\n\n").expect("mail has a blank line");
                let field = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                };
                Mail {
                    file: p.file_name().unwrap().to_string_lossy().to_string(),
                    to: field("To:"),
                    subject: field("Subject:"),
                    body: body.to_owned(),
                }
            })
            .collect()
    }

    /// Mails to `to` whose subject contains `subject`, oldest first.
    pub fn mails(&self, to: &str, subject: &str) -> Vec<Mail> {
        self.outbox()
            .into_iter()
            .filter(|m| m.to == to && m.subject.contains(subject))
            .collect()
    }

    /// The newest mail to `to` whose subject contains `subject`.
    #[track_caller]
    pub fn last_mail(&self, to: &str, subject: &str) -> Mail {
        self.mails(to, subject)
            .pop()
            .unwrap_or_else(|| panic!("no mail to {to} about {subject:?}: {:#?}", self.outbox()))
    }
}

/// The claims of a JWT, decoded without checking anything.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// `claims` signed with HS256 and `secret`.
pub fn sign_jwt(claims: &Value, secret: &[u8]) -> String {
    sign_jwt_alg(claims, secret, jsonwebtoken::Algorithm::HS256)
}

pub fn sign_jwt_alg(claims: &Value, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("sign JWT")
}

/// `claims` as an unsigned token (`alg: none`).
pub fn unsigned_jwt(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}
