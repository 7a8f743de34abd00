//! A minimal PDF writer for text: one page per list of lines, Helvetica 11 pt (a line starting with `#` is a
//! heading: bold, larger, without its `#`s). Enough to make the documents of the tests, the benchmark and the demo
//! with known text on known pages; not a general PDF library.

/// Escape text for a PDF string literal (the standard fonts' WinAnsi encoding: other characters become `?`).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// The PDF of `pages`, each a list of lines.
pub fn write(pages: &[Vec<String>]) -> Vec<u8> {
    // Object n is at index n - 1. 1: catalog, 2: the page tree (filled in below), 3: Helvetica, 4: Helvetica-Bold;
    // then per page: its content, the page.
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        String::new(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    let mut kids = Vec::new();
    for lines in pages {
        let mut content = String::from("BT\n");
        let mut y = 800.0f32;
        for line in lines {
            let (font, size, text) = match line.strip_prefix('#') {
                Some(h) => ("/F2", 15.0, h.trim_start_matches('#').trim()),
                None => ("/F1", 11.0, line.as_str()),
            };
            y -= size * 1.5;
            content.push_str(&format!("{font} {size} Tf 1 0 0 1 56 {y} Tm ({}) Tj\n", escape(text)));
        }
        content.push_str("ET\n");
        let content_id = objects.len() + 1;
        objects.push(format!("<< /Length {} >>\nstream\n{content}endstream", content.len()));
        let page_id = objects.len() + 1;
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {content_id} 0 R \
             /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>"
        ));
        kids.push(format!("{page_id} 0 R"));
    }
    objects[1] = format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), kids.len());
    assemble(&objects.into_iter().map(String::into_bytes).collect::<Vec<_>>())
}

/// A PDF file around its objects (object n at index n - 1, object 1 the catalog): the header, the objects, the
/// cross-reference table and the trailer.
pub fn assemble(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
            .as_bytes(),
    );
    out
}
