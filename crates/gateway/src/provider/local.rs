//! Local model servers that nines runs itself (`[providers.X] command = [...]`): a llama.cpp server, Ollama, vLLM,
//! or any program that serves the provider's API. Started when the gateway starts serving, restarted whenever it
//! exits (after 0.5 s, doubling to 10 s while it keeps failing; back to 0.5 s once it has run a minute), its output
//! logged line by line under `nines::local`, and stopped (killed, then reaped) when the gateway stops.
//!
//! `{port}` in the command and in `base_url` is a free loopback port chosen once at start ([`free_port`]). Once a
//! (re)started server accepts connections on it, `on_ready` is called: the gateway takes that as a successful probe
//! of the provider's targets, so the breakers its start-up opened (every request meanwhile was refused a
//! connection, and each failed trial doubled the cool-down) close at once instead of minutes later.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The first wait before a restart, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A run at least this long resets the wait to the first one.
const STEADY: Duration = Duration::from_secs(60);
/// The longest line of the server's output logged (the rest is cut).
const MAX_LINE: usize = 2048;

/// The placeholder for the chosen port.
pub const PORT: &str = "{port}";

/// A loopback port free now (bound and released: the server binds it a moment later).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// `argv` with `{port}` replaced.
pub fn with_port(argv: &[String], port: Option<u16>) -> Vec<String> {
    match port {
        Some(p) => argv.iter().map(|a| a.replace(PORT, &p.to_string())).collect(),
        None => argv.to_vec(),
    }
}

/// How often a started server's port is tried until it accepts, and for how long.
const READY_POLL: Duration = Duration::from_millis(100);
const READY_WITHIN: Duration = Duration::from_secs(300);

/// Run `argv` for provider `name` until `stop`, restarting it whenever it exits; `on_ready` each time it listens on
/// `port` (when the port is known).
pub async fn supervise(
    name: String,
    argv: Vec<String>,
    port: Option<u16>,
    on_ready: std::sync::Arc<dyn Fn() + Send + Sync>,
    stop: CancellationToken,
) {
    let Some((program, args)) = argv.split_first() else { return };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let mut cmd = Command::new(program);
        // Its own process group: what it starts (a wrapper's server) is stopped with it.
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        match cmd.spawn() {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                let group = Group(pid);
                tracing::info!(target: "nines::local", provider = %name, pid, "started {program}");
                let out = forward(child.stdout.take(), &name);
                let err = forward(child.stderr.take(), &name);
                let exited = async {
                    let (status, (), ()) = tokio::join!(child.wait(), out, err);
                    status
                };
                let announce = async {
                    if let Some(port) = port
                        && listening(port).await
                    {
                        tracing::info!(target: "nines::local", provider = %name, pid, port, "listening");
                        on_ready();
                    }
                    std::future::pending::<()>().await;
                };
                let status = tokio::select! {
                    () = stop.cancelled() => None,
                    status = exited => Some(status),
                    () = announce => None,
                };
                match status {
                    None => {
                        drop(group);
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        tracing::info!(target: "nines::local", provider = %name, pid, "stopped");
                        return;
                    }
                    Some(status) => {
                        // Whatever it left behind would hold its port.
                        drop(group);
                        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                        if started.elapsed() >= STEADY {
                            backoff = FIRST_BACKOFF;
                        }
                        tracing::warn!(target: "nines::local", provider = %name, pid,
                            "exited ({status}): restarting in {backoff:?}");
                    }
                }
            }
            Err(e) => tracing::warn!(target: "nines::local", provider = %name,
                "cannot start {program}: {e}; trying again in {backoff:?}"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A started server's process group, killed when this drops: after it exits or is stopped, and also when the
/// supervisor itself is dropped (a forced exit drops the runtime's tasks before any stop), so nothing it started
/// outlives the gateway holding its port.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        nines_ask::extract::kill_group(self.0);
    }
}

/// Whether something accepts connections on the loopback `port` within [`READY_WITHIN`].
async fn listening(port: u16) -> bool {
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(READY_POLL).await;
    }
    false
}

/// Log each line the server writes.
async fn forward(stream: Option<impl tokio::io::AsyncRead + Unpin>, name: &str) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
                let text = text.trim_end();
                if !text.is_empty() {
                    tracing::info!(target: "nines::local", provider = %name, "{text}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_fills_every_placeholder() {
        let argv = vec!["srv".to_owned(), "--port={port}".to_owned(), "{port}".to_owned()];
        assert_eq!(with_port(&argv, Some(81)), vec!["srv", "--port=81", "81"]);
        assert_eq!(with_port(&argv, None), argv);
    }

    #[tokio::test]
    async fn a_server_that_exits_is_started_again_and_stopped_with_the_gateway() {
        // A "server" that appends a line to a file each time it starts, then exits at once.
        let file =
            std::env::temp_dir().join(format!("nines-local-{}-{}", std::process::id(), free_port().unwrap()));
        let script = format!("echo started >> {}", file.display());
        let stop = CancellationToken::new();
        let argv = vec!["sh".into(), "-c".into(), script];
        #[allow(clippy::disallowed_methods)]
        let task = tokio::spawn(supervise("t".into(), argv, None, std::sync::Arc::new(|| {}), stop.clone()));
        // Started, exited, restarted after 0.5 s, then 1 s: three starts well within 5 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = std::fs::read_to_string(&file).map(|s| s.lines().count()).unwrap_or(0);
            if n >= 3 {
                break;
            }
            assert!(Instant::now() < deadline, "only {n} starts");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        let _ = std::fs::remove_file(&file);
    }

    /// A process that is gone, or a zombie waiting for its reaper.
    fn gone(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(true)
    }

    #[tokio::test]
    async fn what_a_server_started_dies_with_it_when_the_supervisor_is_dropped() {
        // A wrapper that starts the real "server" in the background and waits: a forced exit drops the supervisor
        // without a stop, and the background process must not outlive it.
        let file = std::env::temp_dir().join(format!(
            "nines-local-bg-{}-{}",
            std::process::id(),
            free_port().unwrap()
        ));
        let script = format!("sleep 300 & echo $! > {}; wait", file.display());
        let argv = vec!["sh".into(), "-c".into(), script];
        #[allow(clippy::disallowed_methods)]
        let task = tokio::spawn(supervise(
            "t".into(),
            argv,
            None,
            std::sync::Arc::new(|| {}),
            CancellationToken::new(),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            if let Ok(p) = std::fs::read_to_string(&file)
                && !p.trim().is_empty()
            {
                break p.trim().to_owned();
            }
            assert!(Instant::now() < deadline, "the wrapper did not start its server");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!gone(&pid));
        task.abort();
        let _ = task.await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(&pid) {
            assert!(Instant::now() < deadline, "the background server {pid} outlived its supervisor");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_file(&file);
    }
}
