//! The set-ups and calls many tests share, so that each is one line in a
//! test: an owner with a workspace, clients of one room, the endpoints
//! tests call over and over, and tables of requests with their expected
//! answers.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::{Account, Body, Doc, Resp, Server, WsClient, PASSWORD};

/// Ada owns workspace "Forms"; the fixture most API tests start from.
pub struct Owned {
    pub s: Server,
    pub ada: Account,
    pub ws: String,
}

/// A server with authentication on and Ada's account.
pub async fn with_ada() -> (Server, Account) {
    let s = Server::start().await;
    let ada = s.register("Ada", "ada@example.com").await;
    (s, ada)
}

/// A server with authentication on, Ada and her workspace.
pub async fn owned() -> Owned {
    let (s, ada) = with_ada().await;
    let ws = s.create_workspace(&ada.access, "Forms").await;
    Owned { s, ada, ws }
}

/// Clients of one room named `names`, each synced.
pub async fn connect_all<const N: usize>(
    addr: SocketAddr,
    room: &str,
    names: [&str; N],
) -> [WsClient; N] {
    let mut clients = Vec::with_capacity(N);
    for name in names {
        clients.push(WsClient::connect(addr, room, name).await);
    }
    clients
        .try_into()
        .unwrap_or_else(|_| unreachable!("N clients were connected"))
}

impl Server {
    /// Clients of `template` with `token` named `names`, each synced.
    pub async fn ws_all<const N: usize>(
        &self,
        template: &str,
        token: &str,
        names: [&str; N],
    ) -> [WsClient; N] {
        let mut clients = Vec::with_capacity(N);
        for name in names {
            clients.push(self.ws(template, token, name).await);
        }
        clients
            .try_into()
            .unwrap_or_else(|_| unreachable!("N clients were connected"))
    }
}

/// One request of a table and the answer it must get: method, path,
/// token, body (`Null`: none), then the status and, for a failure, the
/// error code (see [`Call::ok`] and [`Call::is`]).
#[derive(Clone, Debug)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub token: Option<String>,
    pub body: Value,
    pub status: u16,
    pub code: &'static str,
}

impl Call {
    pub fn new(method: &'static str, path: impl Into<String>, token: &str, body: Value) -> Call {
        Call {
            method,
            path: path.into(),
            token: Some(token.to_owned()),
            body,
            status: 0,
            code: "",
        }
    }
    pub fn get(path: impl Into<String>, token: &str) -> Call {
        Call::new("GET", path, token, Value::Null)
    }
    pub fn delete(path: impl Into<String>, token: &str) -> Call {
        Call::new("DELETE", path, token, Value::Null)
    }
    pub fn put(path: impl Into<String>, token: &str, body: Value) -> Call {
        Call::new("PUT", path, token, body)
    }
    pub fn post(path: impl Into<String>, token: &str, body: Value) -> Call {
        Call::new("POST", path, token, body)
    }
    /// Must succeed with `status`.
    pub fn ok(self, status: u16) -> Call {
        Call { status, ..self }
    }
    /// Must fail with `status` and our error shape with `code`.
    pub fn is(self, status: u16, code: &'static str) -> Call {
        Call {
            status,
            code,
            ..self
        }
    }
}

impl Server {
    /// Sends `call`.
    pub async fn call(&self, call: &Call) -> Resp {
        let body = match &call.body {
            Value::Null => Body::None,
            v => Body::Json(v.clone()),
        };
        let token = call.token.as_deref();
        self.request(call.method, &call.path, token, &[], body)
            .await
    }

    /// Sends each call in turn and asserts the answer it states.
    pub async fn expect_all(&self, table: &[Call]) {
        for call in table {
            let r = self.call(call).await;
            assert_ne!(call.status, 0, "{call:?} states no answer");
            if call.code.is_empty() {
                r.expect(call.status);
            } else {
                r.expect_error(call.status, call.code);
            }
        }
    }

    // ---- calls many tests make

    /// `POST /api/workspaces/{ws}/members`: adds `email` with `role`, or
    /// invites it when it has no verified account.
    pub async fn invite(&self, token: &str, ws: &str, email: &str, role: &str) -> Resp {
        let body = json!({ "email": email, "role": role });
        let path = format!("/api/workspaces/{ws}/members");
        self.post(&path, Some(token), body).await
    }

    /// `POST /api/auth/register`.
    pub async fn register_resp(&self, email: &str, password: &str, name: &str) -> Resp {
        let body = json!({ "email": email, "password": password, "name": name });
        self.post("/api/auth/register", None, body).await
    }

    /// `DELETE /api/workspaces/{ws}/members/{user}`.
    pub async fn remove_member(&self, token: &str, ws: &str, user: &str) -> Resp {
        let path = format!("/api/workspaces/{ws}/members/{user}");
        self.delete(&path, Some(token)).await
    }

    /// After an address change from `old` to `new` (password
    /// [`PASSWORD`]): the account signs in with `new` only, and `old` is
    /// free for a new account.
    pub async fn assert_address_moved(&self, old: &str, new: &str) {
        self.login(new, PASSWORD).await;
        self.login_resp(old, PASSWORD)
            .await
            .expect_error(401, "invalid_credentials");
        self.register("Ada Two", old).await;
    }

    /// `DELETE /api/auth/me` with `password`.
    pub async fn delete_account(&self, token: &str, password: &str) -> Resp {
        let body = json!({ "password": password });
        self.delete_json("/api/auth/me", Some(token), body).await
    }

    /// `GET /api/workspaces/{ws}`.
    pub async fn workspace(&self, token: &str, ws: &str) -> Resp {
        self.get(&format!("/api/workspaces/{ws}"), Some(token))
            .await
    }

    /// `total` of `GET /api/templates?{query}`.
    pub async fn template_total(&self, token: &str, query: &str) -> u64 {
        self.get(&format!("/api/templates?{query}"), Some(token))
            .await
            .expect(200)["total"]
            .as_u64()
            .expect("total")
    }

    /// `POST /api/templates/{template}/session`.
    pub async fn session(&self, token: &str, template: &str) -> Resp {
        let path = format!("/api/templates/{template}/session");
        self.post_empty(&path, Some(token)).await
    }

    /// `POST /api/workspaces/{ws}/backup`.
    pub async fn backup(&self, token: &str, ws: &str) -> Resp {
        let path = format!("/api/workspaces/{ws}/backup");
        self.post_empty(&path, Some(token)).await
    }

    /// `POST /api/workspaces/{ws}/restore` with `backup`.
    pub async fn restore(&self, token: &str, ws: &str, backup: Value) -> Resp {
        let path = format!("/api/workspaces/{ws}/restore");
        self.post(&path, Some(token), backup).await
    }

    /// `POST /api/auth/refresh` with `refresh`.
    pub async fn refresh(&self, refresh: &str) -> Resp {
        let body = json!({ "refreshToken": refresh });
        self.post("/api/auth/refresh", None, body).await
    }

    /// `POST /api/auth/forgot-password` for `email`.
    pub async fn forgot_password(&self, email: &str) -> Resp {
        let body = json!({ "email": email });
        self.post("/api/auth/forgot-password", None, body).await
    }

    /// `POST /api/auth/reset-password` with the mailed `token`.
    pub async fn reset_password(&self, token: &str, password: &str) -> Resp {
        let body = json!({ "token": token, "password": password });
        self.post("/api/auth/reset-password", None, body).await
    }

    /// The backup of workspace `ws` (200).
    pub async fn backup_json(&self, token: &str, ws: &str) -> Value {
        self.backup(token, ws).await.expect(200).clone()
    }

    /// `PUT /api/auth/password` from [`PASSWORD`] to `new`.
    pub async fn change_password(&self, token: &str, new: &str) -> Resp {
        let body = json!({ "currentPassword": PASSWORD, "newPassword": new });
        self.put("/api/auth/password", Some(token), body).await
    }
}

/// The element of the JSON list `list` whose `key` is `value`.
#[track_caller]
pub fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|v| v[key] == value)
        .unwrap_or_else(|| panic!("no element with {key} = {value:?} in {list}"))
}
