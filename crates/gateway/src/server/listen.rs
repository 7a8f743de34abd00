//! The accept loop, with the edge's time limits (`[server]`), in place of `axum::serve` (which has none):
//!
//! - at most `max_connections` open: one more is closed as soon as accepted;
//! - a request's headers within `header_timeout`, which is also how long a kept-alive connection may sit idle
//!   (hyper starts the clock when it waits for the next request's head);
//! - a body at `min_body_rate` bytes a second or better, after a grace of `header_timeout` ([`MinRate`]);
//! - a write to the client that cannot proceed for `send_timeout` ends the connection: a client that stopped
//!   reading (a stream's among them) is cut, and says so in the log ([`Stalled`]);
//! - on shutdown, idle connections close at once and the others after their request; the slowest of those are
//!   bounded by the limits above, so slow clients cannot hold a drain.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::protect::ServerConfig;

/// Serve `router` on `listener` until `token` is cancelled; connections are tracked by `tracker`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: ServerConfig,
    token: CancellationToken,
    tracker: TaskTracker,
) -> io::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        // hyper's default bound of 100 headers (more: a bare 431): a larger one would allocate on every request.
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(cfg.header_timeout))
        .keep_alive_timeout(cfg.header_timeout)
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            () = token.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: not fatal; wait a little rather than spin.
                    tracing::warn!(target: "nines::edge", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if open.fetch_add(1, Ordering::AcqRel) >= cfg.max_connections as usize {
            open.fetch_sub(1, Ordering::AcqRel);
            tracing::debug!(target: "nines::edge", %peer, "connection refused: at max_connections");
            drop(stream);
            continue;
        }
        // Streams are many small writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK stall
        // every event after the first by ~40 ms.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let io = TokioIo::new(Stalled::new(stream, cfg.send_timeout, peer, cfg.header_timeout));
        let router = router.clone();
        let (grace, rate, max_header) = (cfg.header_timeout, cfg.min_body_rate, cfg.max_header_bytes);
        let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            use futures_util::future::Either;
            // Headers larger than the gateway takes: refused in the door's own dialect (hyper's own, larger,
            // bound answers a bare 431).
            let size: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
            if size > max_header as usize {
                let dialect = super::routes::dialect_of_path(req.uri().path());
                let resp = super::error::ApiError::HeadersTooLarge { max: max_header }.render(dialect);
                return Either::Left(std::future::ready(Ok::<_, std::convert::Infallible>(resp)));
            }
            let req = req.map(|b| axum::body::Body::new(MinRate::new(b, rate, grace)));
            Either::Right(router.clone().oneshot(req))
        });
        let builder = builder.clone();
        let token = token.clone();
        let open = open.clone();
        tracker.spawn(async move {
            let conn = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(target: "nines::edge", %peer, "connection ended: {e}");
            }
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// A client connection whose writes may not stall longer than `limit`: a client that stopped reading is cut.
struct Stalled {
    inner: TcpStream,
    limit: Duration,
    peer: std::net::SocketAddr,
    /// Armed while a write waits.
    waiting: Option<Pin<Box<Sleep>>>,
    /// Until the first [`SNIFFED`] bytes arrive: the protocol is sniffed (up to HTTP/2's 24-byte preface) before
    /// hyper's header clock starts, so a client that connects and sends nothing, or a few bytes, is timed here.
    first_byte: Option<Pin<Box<Sleep>>>,
    read: usize,
}

/// Bytes after which hyper's own clocks have taken over (the length of HTTP/2's connection preface).
const SNIFFED: usize = 24;

impl Stalled {
    fn new(inner: TcpStream, limit: Duration, peer: std::net::SocketAddr, first_byte: Duration) -> Stalled {
        Stalled {
            inner,
            limit,
            peer,
            waiting: None,
            first_byte: Some(Box::pin(tokio::time::sleep(first_byte))),
            read: 0,
        }
    }

    /// A write could not proceed: arm the clock, or fail when it has run out.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = self.limit;
        let sleep = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if sleep.as_mut().poll(cx).is_ready() {
            tracing::info!(
                target: "nines::edge",
                peer = %self.peer,
                "client too slow: it read nothing for {}s, its connection is cut",
                limit.as_secs()
            );
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "client too slow to read")));
        }
        Poll::Pending
    }
}

impl AsyncRead for Stalled {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.first_byte.is_some() {
            match &r {
                Poll::Ready(Ok(())) => {
                    self.read += buf.filled().len() - before;
                    if self.read >= SNIFFED {
                        self.first_byte = None;
                    }
                }
                Poll::Pending => {
                    if let Some(s) = self.first_byte.as_mut()
                        && s.as_mut().poll(cx).is_ready()
                    {
                        tracing::debug!(target: "nines::edge", peer = %self.peer, "connection cut: no request began");
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request began")));
                    }
                }
                Poll::Ready(Err(_)) => {}
            }
        }
        r
    }
}

impl Stalled {
    /// A write's outcome: pending arms (or trips) the stall clock, anything else disarms it.
    fn written(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if r.is_pending() {
            ready!(self.pending(cx))?;
            return Poll::Pending;
        }
        self.waiting = None;
        r
    }
}

impl AsyncWrite for Stalled {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that must arrive at `rate` bytes a second or better, after `grace`: by any time `t` since its
/// head, at least `rate × (t − grace)` bytes. A slower one ends with an error (the handler's read fails; the
/// connection closes).
pub struct MinRate {
    inner: hyper::body::Incoming,
    rate: u32,
    grace: Duration,
    /// When the body first kept us waiting (a body that arrives with its head never reads the clock).
    start: Option<Instant>,
    received: u64,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// The error a too-slow body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than {0} bytes a second")]
pub struct TooSlow(pub u32);

impl MinRate {
    fn new(inner: hyper::body::Incoming, rate: u32, grace: Duration) -> MinRate {
        MinRate { inner, rate, grace, start: None, received: 0, sleep: None }
    }

    fn deadline(&mut self) -> Instant {
        let allowed = self.received as f64 / f64::from(self.rate.max(1));
        let start = *self.start.get_or_insert_with(Instant::now);
        start + self.grace + Duration::from_secs_f64(allowed.min(86_400.0))
    }
}

impl http_body::Body for MinRate {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.received += d.len() as u64;
                }
                self.sleep = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = self.deadline();
                let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    let rate = self.rate;
                    tracing::info!(target: "nines::edge", "request body too slow: cut below {rate} bytes a second");
                    return Poll::Ready(Some(Err(Box::new(TooSlow(rate)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A client that stops reading: the server's writes stall, and after `limit` the connection errs (and the log
    /// says the client was too slow), rather than holding the answer and its upstream forever.
    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_after_the_send_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let mut s = Stalled::new(server, Duration::from_millis(300), peer, Duration::from_secs(60));
        let chunk = vec![b'x'; 64 * 1024];
        let t0 = Instant::now();
        let mut written = 0usize;
        let err = loop {
            match tokio::time::timeout(Duration::from_secs(20), s.write_all(&chunk)).await {
                Ok(Ok(())) => written += chunk.len(),
                Ok(Err(e)) => break e,
                Err(_) => panic!("a write stalled past the limit without an error"),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(written > 0 && t0.elapsed() < Duration::from_secs(10), "{written} bytes, {:?}", t0.elapsed());
        drop(client);
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_cut_after_the_header_timeout() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let mut s = Stalled::new(server, Duration::from_secs(60), peer, Duration::from_millis(200));
        let mut buf = [0u8; 8];
        let err = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
