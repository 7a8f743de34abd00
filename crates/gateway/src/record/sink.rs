//! Where log lines go: standard error, in batches when it is not a terminal.
//!
//! One line per request, written with its own `write` system call, cost nines about a tenth of its throughput
//! (measured with `bench/run --only plain`, docs/performance.md). Like nginx's `access_log … buffer= flush=`, lines
//! are gathered in memory and written together: when [`FLUSH_AT`] bytes are waiting, every [`FLUSH_EVERY`] (a
//! thread of its own), at once for a warning or an error (together with everything before it, so the order holds),
//! and on shutdown or panic through [`Sink::flush`]. On a terminal every line is written as it comes.
//!
//! This module never formats anything: `tracing-subscriber` hands it whole lines.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Write the batch once this much is waiting.
pub const FLUSH_AT: usize = 32 * 1024;
/// The longest a line waits.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A shared, cloneable handle to the log output.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

/// Where a batch (or a line) is written.
type Out = Box<dyn Fn(&[u8]) -> io::Result<()> + Send + Sync>;

struct Shared {
    /// `None`: every line goes straight out.
    batch: Option<Mutex<Vec<u8>>>,
    out: Out,
}

impl Sink {
    /// Standard error: batched, with a thread flushing it every [`FLUSH_EVERY`], unless it is a terminal (or that
    /// thread cannot start).
    pub fn stderr() -> Sink {
        use std::io::IsTerminal;
        let out = |bytes: &[u8]| io::stderr().lock().write_all(bytes);
        if io::stderr().is_terminal() {
            return Sink::new(false, out);
        }
        let sink = Sink::new(true, out);
        match sink.start_flusher() {
            Ok(()) => sink,
            Err(_) => Sink::new(false, out),
        }
    }

    /// A sink writing through `out`, batched or not.
    pub fn new(batched: bool, out: impl Fn(&[u8]) -> io::Result<()> + Send + Sync + 'static) -> Sink {
        let batch = batched.then(|| Mutex::new(Vec::with_capacity(FLUSH_AT)));
        Sink { shared: Arc::new(Shared { batch, out: Box::new(out) }) }
    }

    /// Write out whatever is waiting.
    pub fn flush(&self) -> io::Result<()> {
        let Some(batch) = &self.shared.batch else { return Ok(()) };
        let mut buf = batch.lock().unwrap_or_else(PoisonError::into_inner);
        self.drain(&mut buf)
    }

    /// Flush every [`FLUSH_EVERY`] from a thread of its own, for as long as the process lives.
    fn start_flusher(&self) -> io::Result<()> {
        let sink = self.clone();
        std::thread::Builder::new().name("nines-log".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                // Nowhere to report a failing standard error; the next flush tries again.
                let _ = sink.flush();
            }
        })?;
        Ok(())
    }

    fn write_line(&self, line: &[u8], urgent: bool) -> io::Result<()> {
        let Some(batch) = &self.shared.batch else { return (self.shared.out)(line) };
        let mut buf = batch.lock().unwrap_or_else(PoisonError::into_inner);
        buf.extend_from_slice(line);
        if urgent || buf.len() >= FLUSH_AT { self.drain(&mut buf) } else { Ok(()) }
    }

    fn drain(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let result = (self.shared.out)(buf);
        buf.clear();
        if buf.capacity() > 4 * FLUSH_AT {
            buf.shrink_to(FLUSH_AT);
        }
        result
    }
}

/// The writer `tracing-subscriber` gets for one line.
pub struct LineWriter<'a> {
    sink: &'a Sink,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.sink.write_line(bytes, self.urgent)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { sink: self, urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        // Warnings and errors are what an operator watches for: they do not wait.
        LineWriter { sink: self, urgent: *meta.level() <= Level::WARN }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(batched: bool) -> (Sink, Arc<Mutex<Vec<Vec<u8>>>>) {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let w = writes.clone();
        let sink = Sink::new(batched, move |b| {
            w.lock().unwrap().push(b.to_vec());
            Ok(())
        });
        (sink, writes)
    }

    #[test]
    fn info_lines_wait_and_go_out_together_in_order() {
        let (sink, writes) = captured(true);
        sink.make_writer().write_all(b"one\n").unwrap();
        sink.make_writer().write_all(b"two\n").unwrap();
        assert!(writes.lock().unwrap().is_empty());
        sink.flush().unwrap();
        assert_eq!(*writes.lock().unwrap(), vec![b"one\ntwo\n".to_vec()]);
        sink.flush().unwrap();
        assert_eq!(writes.lock().unwrap().len(), 1, "nothing waiting, nothing written");
    }

    #[test]
    fn a_warning_goes_out_at_once_after_what_came_before_it() {
        let (sink, writes) = captured(true);
        sink.make_writer().write_all(b"info\n").unwrap();
        LineWriter { sink: &sink, urgent: true }.write_all(b"warn\n").unwrap();
        assert_eq!(*writes.lock().unwrap(), vec![b"info\nwarn\n".to_vec()]);
    }

    #[test]
    fn a_full_batch_is_written_without_waiting() {
        let (sink, writes) = captured(true);
        let line = vec![b'x'; 1000];
        for _ in 0..FLUSH_AT / 1000 + 1 {
            sink.make_writer().write_all(&line).unwrap();
        }
        let writes = writes.lock().unwrap();
        assert_eq!(writes.len(), 1);
        assert!(writes[0].len() >= FLUSH_AT);
    }

    #[test]
    fn unbatched_lines_go_out_one_by_one() {
        let (sink, writes) = captured(false);
        sink.make_writer().write_all(b"one\n").unwrap();
        sink.make_writer().write_all(b"two\n").unwrap();
        assert_eq!(writes.lock().unwrap().len(), 2);
    }
}
