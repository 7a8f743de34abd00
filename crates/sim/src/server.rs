//! Accepting and serving connections: our own accept loop over hyper-util (HTTP/1 and HTTP/2), so that a `Reset`
//! fault can drop a connection with an RST, and so that shutdown can drop every connection at once.
//!
//! Every task this module starts goes through the simulator's `TaskTracker`. It never parses or answers a request
//! (that is `routes`), and it never sets SO_LINGER except on a connection that a `Reset` fault is killing.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::tls::HANDSHAKE_TIMEOUT;

/// How connections are served: plain or TLS, and HTTP/2's stream limit.
#[derive(Clone)]
pub(crate) struct Serve {
    /// Present when it serves TLS (cloned per connection: an `Arc` inside).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub h2_max_streams: Option<u32>,
}

/// Per-connection controls, given to every request as an extension.
#[derive(Clone, Debug)]
pub(crate) struct ConnCtl {
    /// Cancel to drop the connection with a TCP RST.
    pub reset: CancellationToken,
    /// Cancelled once the connection is gone (it ended, was reset, or the simulator stopped).
    pub closed: CancellationToken,
}

/// Accept connections until `shutdown` is cancelled, serving each in its own tracked task.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    open: tokio::sync::watch::Sender<usize>,
    serve: Serve,
) {
    let open = std::sync::Arc::new(open);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                open.send_modify(|n| *n += 1);
                let gauge = OpenGuard(open.clone());
                let serve = serve_connection(
                    stream,
                    router.clone(),
                    shutdown.clone(),
                    tracker.clone(),
                    serve.clone(),
                );
                tracker.spawn(async move {
                    let _gauge = gauge;
                    serve.await;
                });
            }
            Err(err) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(error = %err, "nines-sim: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    serve: Serve,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "nines-sim: set_nodelay failed");
    }
    let reset = CancellationToken::new();
    // Not a child of `shutdown`: a hanging handler must never get to answer, so `closed` fires only once the
    // connection is already gone (dropped below, with the handler inside it).
    let closed = CancellationToken::new();
    let _closed_when_done = closed.clone().drop_guard();
    let ctl = ConnCtl { reset: reset.clone(), closed };
    let stream = ResettableStream { stream, reset: reset.clone() };
    let h2_max = serve.h2_max_streams;
    let Some(tls) = serve.tls else {
        return serve_io(TokioIo::new(stream), router, ctl, shutdown, tracker, h2_max).await;
    };
    let handshake = tokio::select! {
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)) => done,
        () = shutdown.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => serve_io(TokioIo::new(stream), router, ctl, shutdown, tracker, h2_max).await,
        Ok(Err(err)) => tracing::debug!(error = %err, "nines-sim: TLS handshake failed"),
        Err(_) => tracing::debug!("nines-sim: TLS handshake timed out"),
    }
}

/// Serve HTTP/1 or HTTP/2 on one connection (plain or TLS) until it ends, is reset, or the simulator stops.
async fn serve_io<I>(
    io: I,
    router: Router,
    ctl: ConnCtl,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    h2_max_streams: Option<u32>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let reset = ctl.reset.clone();
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        router.clone().oneshot(req)
    });
    let mut builder = auto::Builder::new(TrackedExecutor(tracker));
    if let Some(max) = h2_max_streams {
        builder.http2().max_concurrent_streams(max);
    }
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::select! {
        result = connection => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "nines-sim: connection ended with an error");
            }
        }
        () = reset.cancelled() => tracing::debug!("nines-sim: resetting a connection"),
        () = shutdown.cancelled() => {}
    }
}

/// Counts a connection as open until its task ends.
struct OpenGuard(std::sync::Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Runs hyper's background tasks (HTTP/2 streams) on the simulator's tracker.
#[derive(Clone)]
struct TrackedExecutor(TaskTracker);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// A TCP stream that, when dropped after its `reset` token was cancelled, closes with an RST instead of a FIN.
struct ResettableStream {
    stream: TcpStream,
    reset: CancellationToken,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.is_cancelled()
            && let Err(err) = self.stream.set_zero_linger()
        {
            tracing::debug!(error = %err, "nines-sim: could not set SO_LINGER 0 for a reset");
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
