//! A page without a text layer (a scan) goes through OCR when Debian's `ocrmypdf` (tesseract) is installed: here a
//! document whose second page is only an image of a sentence — made at test time: a typed page rendered to pixels by
//! poppler's `pdftoppm`, then put in a PDF as a bare image — is read back page by page, the scanned page's words in
//! their place, its passage on page 2, under the extractor's usual limits.
//!
//! Skipped without ocrmypdf and pdftoppm, except under NINES_REQUIRE_OCR=1 (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use nines_ask::extract::{self, Limits, Tools};
use nines_ask::{chunk, pdf};

const SCANNED: &str = "The blue cart is collected every Tuesday morning.";

enum Page {
    Text(&'static str),
    /// Width, height and 8-bit gray pixels.
    Image(u32, u32, Vec<u8>),
}

/// A PDF of A4 pages: typed lines in Helvetica, or one image covering the page.
fn write(pages: &[Page]) -> Vec<u8> {
    let mut objects: Vec<Vec<u8>> = vec![
        Vec::new(), // 1: the catalog, below
        Vec::new(), // 2: the page tree, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    let mut kids = Vec::new();
    for page in pages {
        let (resources, content) = match page {
            Page::Text(line) => {
                ("/Font << /F1 3 0 R >>".to_owned(), format!("BT /F1 14 Tf 72 760 Td ({line}) Tj ET"))
            }
            Page::Image(w, h, pixels) => {
                let mut image = format!(
                    "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray \
                     /BitsPerComponent 8 /Length {} >>\nstream\n",
                    pixels.len()
                )
                .into_bytes();
                image.extend_from_slice(pixels);
                image.extend_from_slice(b"\nendstream");
                objects.push(image);
                (
                    format!("/XObject << /Im0 {} 0 R >>", objects.len()),
                    "q 595 0 0 842 0 0 cm /Im0 Do Q".to_owned(),
                )
            }
        };
        objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()).into_bytes());
        let contents = objects.len();
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << {resources} >> \
                 /Contents {contents} 0 R >>"
            )
            .into_bytes(),
        );
        kids.push(format!("{} 0 R", objects.len()));
    }
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
    objects[1] = format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), kids.len()).into_bytes();
    pdf::assemble(&objects)
}

/// `text` typed on a page, rendered to gray pixels at 150 dpi by pdftoppm: what a scanner would give.
fn scan(text: &str, dir: &Path) -> Page {
    let typed = dir.join("typed.pdf");
    std::fs::write(&typed, pdf::write(&[vec![text.to_owned()]])).unwrap();
    let status = std::process::Command::new("pdftoppm")
        .args(["-gray", "-r", "150"])
        .arg(&typed)
        .arg(dir.join("scan"))
        .status()
        .unwrap();
    assert!(status.success());
    let pgm = std::fs::read(dir.join("scan-1.pgm")).unwrap();
    // A binary PGM: "P5\n<w> <h>\n<max>\n" then the pixels.
    let mut fields = pgm.splitn(4, |b| *b == b'\n');
    assert_eq!(fields.next().unwrap(), b"P5");
    let size = String::from_utf8(fields.next().unwrap().to_vec()).unwrap();
    let (w, h) = size.split_once(' ').unwrap();
    let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
    assert_eq!(fields.next().unwrap(), b"255");
    let pixels = fields.next().unwrap().to_vec();
    assert_eq!(pixels.len(), (w * h) as usize);
    Page::Image(w, h, pixels)
}

#[tokio::test]
async fn a_scanned_page_is_read_by_ocr_in_its_place() {
    #[allow(clippy::disallowed_methods)]
    let required = std::env::var("NINES_REQUIRE_OCR").is_ok_and(|v| v == "1");
    let tools = Tools::find();
    let ready = tools.ocrmypdf.is_some()
        && extract::which("pdftoppm").is_some()
        && extract::which("pdftotext").is_some();
    assert!(ready || !required, "needs ocrmypdf and poppler-utils (apt-get install ocrmypdf poppler-utils)");
    if !ready {
        return;
    }
    let dir = std::env::temp_dir().join(format!("nines-ask-ocr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let doc =
        write(&[Page::Text("Recycling guide, page one."), scan(SCANNED, &dir), Page::Text("Page three.")]);
    let path = dir.join("scanned.pdf");
    std::fs::write(&path, &doc).unwrap();

    let got = extract::extract(&path, &tools, &Limits::default()).await.unwrap();
    assert!(got.notices.is_empty(), "{:?}", got.notices);
    assert_eq!(got.pages.iter().map(|p| p.number).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(got.pages[0].text.contains("Recycling guide, page one."), "{:?}", got.pages[0].text);
    let read = &got.pages[1].text;
    println!("page 2, read by OCR: {read:?}");
    for word in ["blue", "cart", "collected", "Tuesday", "morning"] {
        assert!(read.contains(word), "OCR read {read:?}");
    }
    assert!(got.pages[2].text.contains("Page three."), "{:?}", got.pages[2].text);
    let chunks = chunk::chunk(&got.pages);
    assert!(chunks.iter().any(|c| c.page == 2 && c.text.contains("Tuesday")), "{chunks:?}");
    // The OCR'd copy is not left beside the upload.
    assert!(
        std::fs::read_dir(&dir).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains("ocr"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
