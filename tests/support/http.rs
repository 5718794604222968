//! HTTP: one request and its answer, the assertions on answers, and the
//! Prometheus `/metrics` exposition.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{within, Server, TIMEOUT};

/// One HTTP answer: status, headers, raw text and the body as JSON (`Null`
/// when it is not JSON).
#[derive(Clone, Debug)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {}: {}",
            self.what, self.status, self.text
        );
        &self.json
    }

    /// Asserts a failure with our error shape
    /// `{"error": {"code", "message", "details"}}` and returns `error`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status} {code}, got {}: {}",
            self.what, self.status, self.text
        );
        let err = &self.json["error"];
        assert!(
            err.is_object(),
            "{}: {status} without the JSON error shape: {:?}",
            self.what,
            self.text
        );
        assert_eq!(
            err["code"], code,
            "{}: wrong error code: {}",
            self.what, self.text
        );
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: error without a message: {}",
            self.what,
            self.text
        );
        assert!(
            err.get("details").is_some(),
            "{}: error without `details`: {}",
            self.what,
            self.text
        );
        err
    }

    /// The `(field, message)` pairs of a 422 validation error.
    #[track_caller]
    pub fn field_errors(&self) -> Vec<(String, String)> {
        let err = self.expect_error(422, "validation_failed");
        let details = err["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: details is not a list: {}", self.what, self.text));
        details
            .iter()
            .map(|d| {
                (
                    d["field"].as_str().unwrap_or_default().to_owned(),
                    d["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The message of the 422 validation error on `field`.
    #[track_caller]
    pub fn field_error(&self, field: &str) -> String {
        let errors = self.field_errors();
        errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| {
                panic!(
                    "{}: no validation error on `{field}`: {errors:?}",
                    self.what
                )
            })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    /// Raw bytes with an optional Content-Type.
    Raw(Option<&'static str>, Vec<u8>),
}

/// The `id` string of a JSON object.
#[track_caller]
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

impl Server {
    /// Sends one request. `headers` are added as given.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let url = format!("http://{}{path}", self.addr);
        let what = format!("{method} {path}");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, &url);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&v).expect("encode JSON")),
            Body::Raw(ct, bytes) => {
                let req = match ct {
                    Some(ct) => req.header("content-type", ct),
                    None => req,
                };
                req.body(bytes)
            }
        };
        let resp = within(TIMEOUT, &what, req.send())
            .await
            .unwrap_or_else(|e| panic!("{what} failed: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = within(TIMEOUT, &what, resp.text())
            .await
            .unwrap_or_else(|e| panic!("reading the body of {what}: {e}"));
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            what,
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("GET", path, token, &[], Body::None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("POST", path, token, &[], Body::Json(body))
            .await
    }

    pub async fn post_empty(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("POST", path, token, &[], Body::None).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("PUT", path, token, &[], Body::Json(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("DELETE", path, token, &[], Body::None).await
    }

    pub async fn delete_json(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("DELETE", path, token, &[], Body::Json(body))
            .await
    }

    /// The value of a metric of this server's `/metrics` (see
    /// [`Metrics::get`]).
    pub async fn metric(&self, name: &str) -> f64 {
        metrics(self.addr).await.get(name)
    }
}

/// GETs `path` on the server at `addr` and returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let url = format!("http://{addr}{path}");
    let resp = within(TIMEOUT, &format!("GET {url}"), reqwest::get(&url))
        .await
        .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
    let status = resp.status().as_u16();
    let body = within(TIMEOUT, &format!("body of GET {url}"), resp.text())
        .await
        .unwrap_or_else(|e| panic!("reading body of GET {url} failed: {e}"));
    (status, body)
}

/// A parsed Prometheus text exposition: series (name plus labels, exactly as
/// written) to value.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub series: Vec<(String, String, f64)>,
    pub raw: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut series = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // name{labels} value [timestamp]  or  name value [timestamp]
            let (name, labels, rest) = match line.find('{') {
                Some(open) => {
                    // Label values may hold `}` (route templates): the
                    // value after the labels never does.
                    let close = line
                        .rfind('}')
                        .filter(|c| *c > open)
                        .unwrap_or_else(|| panic!("bad metrics line: {line}"));
                    (&line[..open], &line[open + 1..close], &line[close + 1..])
                }
                None => {
                    let sp = line
                        .find(char::is_whitespace)
                        .unwrap_or_else(|| panic!("bad metrics line: {line}"));
                    (&line[..sp], "", &line[sp..])
                }
            };
            let value = rest
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("metrics line without value: {line}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad metric value in line: {line}")),
            };
            series.push((name.to_string(), labels.to_string(), value));
        }
        Metrics {
            series,
            raw: text.to_string(),
        }
    }

    /// Whether any series named exactly `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.series.iter().any(|(n, _, _)| n == name)
    }

    /// Sum of every series named exactly `name` (all label sets); panics if
    /// the metric is absent, so a renamed metric fails loudly.
    pub fn get(&self, name: &str) -> f64 {
        assert!(
            self.has(name),
            "metric `{name}` missing from /metrics:\n{}",
            self.raw
        );
        self.series
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }
}

pub async fn metrics(addr: SocketAddr) -> Metrics {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "/metrics answered {status}: {body}");
    Metrics::parse(&body)
}

/// Polls `/metrics` until `pred` holds for the value of `name`, returning
/// that value. Fails after `timeout` with the last value seen.
pub async fn wait_metric(
    addr: SocketAddr,
    name: &str,
    timeout: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        let v = metrics(addr).await.get(name);
        if pred(v) {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("metric `{name}` never met the condition within {timeout:?}; last value {v}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
