//! Text out of a PDF, page by page: Debian's `pdftotext` (poppler-utils) run as a subprocess under a time limit, a
//! memory limit (`prlimit --as`, util-linux) and a bound on the text read back, so that a malicious or broken PDF
//! costs at most that and never the gateway. Pages without a text layer go through OCR (`ocrmypdf --skip-text`)
//! when it is installed; otherwise the result says which pages were skipped.
//!
//! `pdftotext` ends every page with a form feed, the last one included, so page N is the N-th piece (1-based) and a
//! blank page keeps its place.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// What one extraction may cost.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock time for `pdftotext` (OCR gets ten times this).
    pub time: Duration,
    /// Address space of the subprocess (`prlimit --as`).
    pub memory: u64,
    /// Pages read (`pdftotext -l`); later pages are left out, and said so.
    pub max_pages: u32,
    /// Text read back, in bytes.
    pub max_text: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { time: Duration::from_secs(30), memory: 1 << 30, max_pages: 500, max_text: 16 << 20 }
    }
}

/// The programs used, found on `PATH` unless configured.
#[derive(Clone, Debug)]
pub struct Tools {
    pub pdftotext: PathBuf,
    /// `None` when OCR is not installed.
    pub ocrmypdf: Option<PathBuf>,
    /// `None` when util-linux's `prlimit` is missing: then only the time limit and the output bound hold.
    pub prlimit: Option<PathBuf>,
}

impl Tools {
    /// The tools as found on `PATH` now.
    pub fn find() -> Tools {
        Tools {
            pdftotext: which("pdftotext").unwrap_or_else(|| PathBuf::from("pdftotext")),
            ocrmypdf: which("ocrmypdf"),
            prlimit: which("prlimit"),
        }
    }
}

/// The first executable called `name` in the directories of `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    #[allow(clippy::disallowed_methods)] // the one place the app reads PATH
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// One page's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: u32,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Extracted {
    pub pages: Vec<Page>,
    /// What the reader should know: pages without text that OCR could not read, pages past the limit.
    pub notices: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot run {program}: {source} (install poppler-utils)")]
    Spawn { program: String, source: std::io::Error },
    #[error("reading this PDF took longer than {0:?}: stopped")]
    Timeout(Duration),
    #[error("this PDF's text is larger than {0} bytes: stopped")]
    TooLarge(usize),
    #[error("this file could not be read as a PDF{0}")]
    Unreadable(String),
}

/// Extract `pdf`'s pages.
pub async fn extract(pdf: &Path, tools: &Tools, limits: &Limits) -> Result<Extracted, ExtractError> {
    let mut pages = pdftotext(pdf, tools, limits).await?;
    let mut notices = Vec::new();
    let blank: Vec<u32> = pages.iter().filter(|p| p.text.trim().is_empty()).map(|p| p.number).collect();
    if !blank.is_empty() {
        match &tools.ocrmypdf {
            Some(ocr) => match ocr_pages(pdf, ocr, tools, limits).await {
                Ok(read) => {
                    for page in &mut pages {
                        if page.text.trim().is_empty()
                            && let Some(p) = read.iter().find(|r| r.number == page.number)
                        {
                            page.text.clone_from(&p.text);
                        }
                    }
                    let still = pages.iter().filter(|p| p.text.trim().is_empty()).count();
                    if still > 0 {
                        notices.push(format!("{still} page(s) have no text, even after OCR"));
                    }
                }
                Err(e) => {
                    notices.push(format!("{} page(s) have no text layer and OCR failed: {e}", blank.len()))
                }
            },
            None => notices.push(format!(
                "{} page(s) have no text layer and OCR is not installed (ocrmypdf): they were skipped",
                blank.len()
            )),
        }
    }
    if pages.len() > limits.max_pages as usize {
        pages.truncate(limits.max_pages as usize);
        notices.push(format!("only the first {} pages were read", limits.max_pages));
    }
    Ok(Extracted { pages, notices })
}

/// `pdftotext`'s pages of `pdf`.
async fn pdftotext(pdf: &Path, tools: &Tools, limits: &Limits) -> Result<Vec<Page>, ExtractError> {
    let mut args: Vec<std::ffi::OsString> = vec!["-q".into(), "-enc".into(), "UTF-8".into()];
    // One page past the limit: whether there is more to say so.
    args.extend(["-l".into(), (limits.max_pages + 1).to_string().into()]);
    args.push(pdf.as_os_str().to_owned());
    args.push("-".into());
    let out = run(&tools.pdftotext, &args, tools, limits, limits.time).await?;
    let text = String::from_utf8_lossy(&out);
    Ok(split_pages(&text))
}

/// `pdftotext`'s output as pages: one per form feed.
pub fn split_pages(text: &str) -> Vec<Page> {
    let mut pieces: Vec<&str> = text.split('\u{c}').collect();
    if pieces.last().is_some_and(|p| p.trim().is_empty()) {
        pieces.pop();
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, t)| Page { number: i as u32 + 1, text: t.replace("\r\n", "\n") })
        .collect()
}

/// OCR of the pages of `pdf` that have no text layer, read back with `pdftotext`.
async fn ocr_pages(
    pdf: &Path,
    ocr: &Path,
    tools: &Tools,
    limits: &Limits,
) -> Result<Vec<Page>, ExtractError> {
    let out = pdf.with_extension("ocr.pdf");
    let args: Vec<std::ffi::OsString> =
        vec!["--skip-text".into(), "-q".into(), pdf.as_os_str().to_owned(), out.as_os_str().to_owned()];
    let result = run(ocr, &args, tools, limits, limits.time * 10).await;
    let pages = match result {
        Ok(_) => pdftotext(&out, tools, limits).await,
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&out).await;
    pages
}

/// Run `program` under the limits; its standard output, bounded.
async fn run(
    program: &Path,
    args: &[std::ffi::OsString],
    tools: &Tools,
    limits: &Limits,
    time: Duration,
) -> Result<Vec<u8>, ExtractError> {
    let mut cmd = match &tools.prlimit {
        Some(prlimit) => {
            let mut c = Command::new(prlimit);
            c.arg(format!("--as={}", limits.memory))
                .arg(format!("--cpu={}", time.as_secs().max(1)))
                .arg(program);
            c
        }
        None => Command::new(program),
    };
    // Its own process group: a time-out stops whatever it started too (ocrmypdf runs tesseract and ghostscript).
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let shown = program.display().to_string();
    let mut child = cmd.spawn().map_err(|source| ExtractError::Spawn { program: shown, source })?;
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        // Both read at once (a child blocked writing one while we wait on the other would wait for the time-out).
        let read_out = async {
            let mut out = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let mut bounded = s.take(limits.max_text as u64 + 1);
                bounded
                    .read_to_end(&mut out)
                    .await
                    .map_err(|e| ExtractError::Unreadable(format!(": {e}")))?;
            }
            if out.len() > limits.max_text {
                // At once: the child is still writing, and its standard error stays open until it ends.
                return Err(ExtractError::TooLarge(limits.max_text));
            }
            Ok(out)
        };
        let read_err = async {
            let mut err = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(4096).read_to_end(&mut err).await;
            }
            Ok::<_, ExtractError>(err)
        };
        let (out, err) = tokio::try_join!(read_out, read_err)?;
        let status = child.wait().await.map_err(|e| ExtractError::Unreadable(format!(": {e}")))?;
        if !status.success() {
            let why = String::from_utf8_lossy(&err);
            let why = why.lines().next().unwrap_or("").trim();
            return Err(ExtractError::Unreadable(if why.is_empty() {
                format!(" ({status})")
            } else {
                // The subprocess names our own file path: keep the reader to the reason.
                format!(": {}", why.rsplit(": ").next().unwrap_or(why))
            }));
        }
        Ok(out)
    };
    let result = match tokio::time::timeout(time, work).await {
        Ok(result) => result,
        Err(_) => Err(ExtractError::Timeout(time)),
    };
    if result.is_err()
        && let Some(pid) = pid
    {
        kill_group(pid);
    }
    result
}

/// Kill the process group `pid` leads (the child itself is also killed when it is dropped).
pub fn kill_group(pid: u32) {
    // `kill -0` would be the caller's own group.
    if pid == 0 {
        return;
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_ends_with_a_form_feed_and_a_blank_page_keeps_its_place() {
        let pages = split_pages("First page.\n\u{c}\u{c}Third page.\n\u{c}");
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[0], Page { number: 1, text: "First page.\n".into() });
        assert_eq!(pages[1].text, "");
        assert_eq!(pages[2].number, 3);
        assert!(split_pages("").is_empty());
    }
}
