//! Opening a document the way a Yjs provider does, and what every scenario
//! shares about clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::proto::{self, Framing, Reader};
use crate::server::Kind;
use crate::ws::{Conn, ConnState};

/// Where the clients connect and which dialect they speak.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub kind: Kind,
}

impl Target {
    pub fn framing(&self, doc: &str) -> Framing {
        Framing::for_doc(self.kind.hocuspocus_framing(), doc)
    }
}

#[derive(Default)]
struct Opening {
    synced: bool,
    step2: Option<Vec<u8>>,
    denied: Option<String>,
    reply: Vec<u8>,
}

impl Opening {
    fn on_frame(&mut self, framing: &Framing, keep_step2: bool, st: &mut ConnState, frame: &[u8]) {
        let Some(msg) = framing.strip(frame) else {
            return;
        };
        let mut r = Reader::new(msg);
        match r.var() {
            Some(proto::MSG_SYNC) | Some(proto::MSG_SYNC_REPLY) => match r.var() {
                Some(proto::SYNC_STEP1) => {
                    self.reply.clear();
                    proto::empty_step2(framing, &mut self.reply);
                    st.queue_binary(&self.reply);
                }
                Some(proto::SYNC_STEP2) if !self.synced => {
                    self.synced = true;
                    if keep_step2 {
                        self.step2 = r.var_bytes().map(<[u8]>::to_vec);
                    }
                }
                _ => {}
            },
            // Hocuspocus: auth 1 = permission denied (2 = authenticated).
            Some(proto::MSG_AUTH) if r.var() == Some(1) => {
                self.denied = Some(String::from_utf8_lossy(r.rest()).into_owned());
            }
            _ => {}
        }
    }
}

/// A client that has finished its initial sync.
pub struct Synced {
    pub conn: Conn,
    pub framing: Framing,
    /// The update of the server's sync step 2 (when asked for).
    pub step2: Option<Vec<u8>>,
    /// Connect → sync step 2 received.
    pub took: Duration,
}

/// Connects to `doc`, sends (Hocuspocus: the token message and) a sync
/// step 1 with an empty state vector, answers the server's step 1, and
/// waits for the server's step 2. Keeps the step 2 update if `keep_step2`.
pub async fn open_synced(
    target: &Target,
    doc: &str,
    keep_step2: bool,
    timeout: Duration,
) -> Result<Synced> {
    let t0 = Instant::now();
    let framing = target.framing(doc);
    let fut = async {
        let mut conn = Conn::connect(target.addr, &target.kind.doc_path(doc)).await?;
        for m in proto::opening_messages(&framing) {
            conn.st.queue_binary(&m);
        }
        conn.flush().await?;
        let mut state = Opening::default();
        conn.drain_buffered(&mut |st, f| state.on_frame(&framing, keep_step2, st, f));
        while !state.synced {
            if let Some(reason) = &state.denied {
                bail!("permission denied: {reason}");
            }
            if conn.st.closed() {
                bail!(
                    "the server closed the connection before sync (close code {:?})",
                    conn.st.close_code
                );
            }
            conn.read_some(&mut |st, f| state.on_frame(&framing, keep_step2, st, f))
                .await?;
            conn.st.try_flush(&conn.fd)?;
        }
        let step2 = state.step2;
        conn.flush().await?;
        Ok::<_, anyhow::Error>((conn, step2))
    };
    let (conn, step2) = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("not synced within {timeout:?}"))??;
    Ok(Synced {
        conn,
        framing,
        step2,
        took: t0.elapsed(),
    })
}

/// Runs `f` for `0..n` with at most `limit` at a time on this thread;
/// returns the results in order.
pub async fn bounded<T, F, Fut>(n: usize, limit: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    use futures_util::stream::{self, StreamExt};
    let mut out: Vec<(usize, T)> = stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move { (i, fut.await) }
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}
