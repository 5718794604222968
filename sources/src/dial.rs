//! [`Connector`]: opening a connection to one address the guard vetted.
//!
//! A connector is given socket addresses, never names: nothing between
//! the guard's check and the connection can resolve the host again and
//! get a different answer (DNS rebinding).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpStream;

/// Opens a connection to an address. [`Guard::connect`](crate::Guard::connect)
/// calls it only with addresses it has just vetted.
#[async_trait]
pub trait Connector: Send + Sync {
    /// What a connection is: a `TcpStream`, or whatever a test records.
    type Stream: Send;

    /// Connects to exactly `addr`.
    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream>;
}

/// Plain TCP with a time limit per address.
#[derive(Clone, Copy, Debug)]
pub struct TcpConnector {
    /// How long one address may take to accept before the next is tried.
    pub timeout: Duration,
}

impl Default for TcpConnector {
    fn default() -> Self {
        TcpConnector {
            timeout: Duration::from_secs(10),
        }
    }
}

#[async_trait]
impl Connector for TcpConnector {
    type Stream = TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
            Ok(connected) => connected,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {:?}", self.timeout),
            )),
        }
    }
}
