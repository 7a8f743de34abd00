//! What a malicious or broken upload can do to the parser entry: at most its limits. Fuzzed with proptest (random
//! and mutated PDFs through the real `pdftotext` under `prlimit`, arbitrary text through the chunker), plus the
//! hand-made cases: a truncated PDF, bytes that only start like one, a page tree that points at itself, a page
//! count far past the limit, and a document whose text exceeds the bound read back.
//!
//! Skipped without pdftotext, except under NINES_REQUIRE_MODELS=1 (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use nines_ask::extract::{self, ExtractError, Limits, Tools};
use nines_ask::{chunk, pdf};
use proptest::prelude::*;

fn tools() -> Option<Tools> {
    if extract::which("pdftotext").is_none() {
        #[allow(clippy::disallowed_methods)]
        let required = std::env::var("NINES_REQUIRE_MODELS").is_ok_and(|v| v == "1");
        assert!(!required, "pdftotext is missing (apt-get install poppler-utils)");
        return None;
    }
    Some(Tools::find())
}

fn file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nines-ask-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn small() -> Limits {
    Limits { time: Duration::from_secs(10), memory: 512 << 20, max_pages: 50, max_text: 1 << 20 }
}

fn sample() -> Vec<u8> {
    let pages: Vec<Vec<String>> = (1..=3)
        .map(|p| vec![format!("# Page {p}"), format!("The fact on page {p} is number {}.", p * 7)])
        .collect();
    pdf::write(&pages)
}

async fn run(bytes: &[u8], limits: &Limits) -> Result<extract::Extracted, ExtractError> {
    let Some(tools) = tools() else { return Ok(extract::Extracted::default()) };
    let path = file(&format!("f{:016x}.pdf", rand_name(bytes)), bytes);
    let started = tokio::time::Instant::now();
    let out = extract::extract(&path, &tools, limits).await;
    // OCR may run for text-less pages (10× the time); nothing may take longer than that.
    assert!(started.elapsed() < limits.time * 11, "took {:?}", started.elapsed());
    let _ = std::fs::remove_file(&path);
    if let Ok(e) = &out {
        assert!(e.pages.len() <= limits.max_pages as usize);
        assert!(e.pages.iter().map(|p| p.text.len()).sum::<usize>() <= limits.max_text);
    }
    out
}

fn rand_name(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

#[tokio::test]
async fn a_sound_pdf_reads_back_page_by_page() {
    if tools().is_none() {
        return;
    }
    let got = run(&sample(), &small()).await.unwrap();
    assert_eq!(got.pages.len(), 3);
    assert!(got.pages[1].text.contains("The fact on page 2 is number 14."), "{:?}", got.pages[1]);
}

#[tokio::test]
async fn broken_pdfs_are_refused_with_a_reason_or_read_as_far_as_they_go() {
    if tools().is_none() {
        return;
    }
    let good = sample();
    // Truncated in the middle: poppler reconstructs what it can, or refuses; either way quickly.
    let _ = run(&good[..good.len() / 2], &small()).await;
    // Only a header.
    let e = run(b"%PDF-1.7\n%garbage\n", &small()).await;
    assert!(
        matches!(e, Err(ExtractError::Unreadable(_))) || e.as_ref().is_ok_and(|x| x.pages.is_empty()),
        "{e:?}"
    );
    // A page tree whose kid is itself.
    let cyclic = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
        2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let _ = run(cyclic, &small()).await;
}

#[tokio::test]
async fn pages_past_the_limit_and_text_past_the_bound_are_cut_or_refused() {
    if tools().is_none() {
        return;
    }
    let many: Vec<Vec<String>> = (0..80).map(|p| vec![format!("page {p}")]).collect();
    let got = run(&pdf::write(&many), &small()).await.unwrap();
    assert_eq!(got.pages.len(), 50);
    assert!(got.notices.iter().any(|n| n.contains("only the first 50 pages")), "{:?}", got.notices);

    let big: Vec<Vec<String>> = (0..40).map(|_| vec!["x".repeat(80); 45]).collect();
    let tight = Limits { max_text: 10_000, ..small() };
    let e = run(&pdf::write(&big), &tight).await;
    assert!(matches!(e, Err(ExtractError::TooLarge(10_000))), "{e:?}");
}

#[tokio::test]
async fn a_page_without_text_is_named_when_ocr_is_not_installed() {
    let Some(tools) = tools() else { return };
    let tools = Tools { ocrmypdf: None, ..tools };
    let pages = vec![vec!["First page.".to_owned()], vec![], vec!["Third page.".to_owned()]];
    let path = file("blank.pdf", &pdf::write(&pages));
    let got = extract::extract(&path, &tools, &small()).await.unwrap();
    assert_eq!(got.pages.len(), 3);
    assert_eq!(got.pages[2].number, 3);
    assert!(
        got.notices.iter().any(|n| n.contains("1 page(s) have no text layer and OCR is not installed")),
        "{:?}",
        got.notices
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random bytes after a PDF header, and a sound PDF with random bytes overwritten: never a hang, a crash or
    /// more than the limits.
    #[test]
    fn mutated_pdfs_stay_within_their_limits(
        noise in proptest::collection::vec(any::<u8>(), 0..4096),
        at in 0usize..2000,
        header in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut bytes = sample();
        if header {
            bytes = [b"%PDF-1.4\n".as_slice(), &noise].concat();
        } else {
            let at = at.min(bytes.len());
            let end = (at + noise.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&noise[..end - at]);
        }
        let _ = rt.block_on(run(&bytes, &small()));
    }

    /// Any text chunks into passages whose ranges are on the page and hold exactly their text.
    #[test]
    fn any_text_chunks_into_ranges_of_its_pages(texts in proptest::collection::vec(prop_oneof!["(?s).{0,400}", "[A-Za-z0-9 .:|#\n\r\t]{0,400}"], 1..4)) {
        let pages: Vec<extract::Page> =
            texts.iter().enumerate().map(|(i, t)| extract::Page { number: i as u32 + 1, text: t.clone() }).collect();
        for c in chunk::chunk(&pages) {
            let page = &pages[c.page as usize - 1].text;
            prop_assert!(c.start <= c.end && c.end <= page.len());
            prop_assert_eq!(&page[c.start..c.end], c.text.as_str());
            prop_assert!(!c.text.trim().is_empty());
        }
    }
}
