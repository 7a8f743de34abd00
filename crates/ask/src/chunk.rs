//! Pages into passages that follow the document's structure: paragraphs (blocks between blank lines) gathered under
//! the heading they belong to, up to about [`TARGET`] words, never across a page (a citation names one page) nor
//! across a heading; a table stays with its caption ("Table 3: …" and the rows after it). Each chunk keeps its page
//! and the byte range of its text on that page, so a citation can point at the passage; the heading is indexed with
//! it (it says what the passage is about) but is not part of the range.

use crate::extract::Page;

/// Words a chunk aims for (all-MiniLM-L6-v2 reads 256 tokens: about 180 words).
pub const TARGET: usize = 110;
/// Words past which a single block is cut at line ends.
pub const MAX: usize = 170;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// 1-based page number.
    pub page: u32,
    /// Byte range of the passage in its page's text.
    pub start: usize,
    pub end: usize,
    /// The heading in force, if any.
    pub heading: Option<String>,
    /// The passage as on the page.
    pub text: String,
}

impl Chunk {
    /// What is indexed and embedded: the heading, then the passage.
    pub fn indexed(&self) -> String {
        match &self.heading {
            Some(h) => format!("{h}\n{}", self.text),
            None => self.text.clone(),
        }
    }
}

/// A run of non-blank lines, by byte range.
#[derive(Clone, Copy, Debug)]
struct Block {
    start: usize,
    end: usize,
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// The blocks of `text`: byte ranges of runs of non-blank lines, the range's surrounding whitespace trimmed.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end();
        if content.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(Block { start: s, end });
            }
        } else {
            let lead = content.len() - content.trim_start().len();
            start.get_or_insert(at + lead);
            end = at + content.len();
        }
        at += line.len();
    }
    if let Some(s) = start {
        out.push(Block { start: s, end });
    }
    out
}

/// A caption: "Table 2: …", "Figure 3. …".
fn is_caption(s: &str) -> bool {
    let mut w = s.split_whitespace();
    matches!(w.next(), Some("Table" | "Figure" | "TABLE" | "FIGURE"))
        && w.next().is_some_and(|n| n.trim_end_matches([':', '.']).chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A heading: one short line that does not end a sentence, or a Markdown-style `# …` line.
fn is_heading(s: &str) -> bool {
    if s.contains('\n') {
        return false;
    }
    let s = s.trim();
    if s.starts_with('#') {
        return true;
    }
    let n = words(s);
    (1..=10).contains(&n)
        && s.len() <= 80
        && !s.ends_with(['.', ',', ';', ':', '?', '!', '|'])
        && s.chars().next().is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
        && !is_caption(s)
        && s.chars().any(char::is_alphabetic)
}

/// The chunks of a document's pages.
pub fn chunk(pages: &[Page]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut heading: Option<String> = None;
    for page in pages {
        let text = &page.text;
        let mut pending: Option<(usize, usize)> = None; // byte range being gathered
        let flush = |pending: &mut Option<(usize, usize)>, heading: &Option<String>, out: &mut Vec<Chunk>| {
            if let Some((s, e)) = pending.take() {
                out.push(Chunk {
                    page: page.number,
                    start: s,
                    end: e,
                    heading: heading.clone(),
                    text: text[s..e].to_owned(),
                });
            }
        };
        let all = blocks(text);
        let mut i = 0;
        while i < all.len() {
            let mut b = all[i];
            // Headings set tight above their paragraph (no blank line between, as many PDFs lay them out): each
            // leading heading line is taken as the heading, and the paragraph starts after it.
            // Only above a paragraph (ending as a sentence does): a list or a table without a caption, whose every
            // line may look like a heading, stays text.
            while let Some((first, rest)) = text[b.start..b.end].split_once('\n') {
                if !is_heading(first) || !rest.trim_end().ends_with(['.', '!', '?']) {
                    break;
                }
                flush(&mut pending, &heading, &mut out);
                heading = Some(first.trim().trim_start_matches('#').trim().to_owned());
                let skip = first.len() + 1 + (rest.len() - rest.trim_start().len());
                b.start += skip;
            }
            let body = &text[b.start..b.end];
            if is_heading(body) {
                flush(&mut pending, &heading, &mut out);
                heading = Some(body.trim().trim_start_matches('#').trim().to_owned());
                i += 1;
                continue;
            }
            // A caption takes the block after it (its table) along.
            let mut end = b.end;
            if is_caption(body) && i + 1 < all.len() && !is_heading(&text[all[i + 1].start..all[i + 1].end]) {
                i += 1;
                end = all[i].end;
            }
            i += 1;
            for (s, e) in cut(text, b.start, end) {
                let gathered = pending.map_or(0, |(ps, pe)| words(&text[ps..pe]));
                match pending {
                    Some((ps, _)) if gathered + words(&text[s..e]) <= TARGET => pending = Some((ps, e)),
                    _ => {
                        flush(&mut pending, &heading, &mut out);
                        pending = Some((s, e));
                    }
                }
            }
        }
        flush(&mut pending, &heading, &mut out);
    }
    out
}

/// `text[start..end]` in pieces of at most [`MAX`] words (about [`TARGET`] each), cut at line ends.
fn cut(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    if words(&text[start..end]) <= MAX {
        return vec![(start, end)];
    }
    let mut out = Vec::new();
    let mut s = start;
    let mut n = 0;
    let mut at = start;
    for line in text[start..end].split_inclusive('\n') {
        let w = words(line);
        if n > 0 && n + w > TARGET {
            out.push((s, text[s..at].trim_end().len() + s));
            s = at;
            n = 0;
        }
        n += w;
        at += line.len();
    }
    if s < end {
        out.push((s, end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u32, text: &str) -> Page {
        Page { number: n, text: text.to_owned() }
    }

    #[test]
    fn paragraphs_gather_under_their_heading_and_keep_their_place() {
        let text = "Warranty\n\nThe X200 is covered for 24 months.\nKeep the receipt.\n\nReturns\n\n\
                    Returns are accepted within 30 days.\n";
        let chunks = chunk(&[page(3, text)]);
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert_eq!(chunks[0].heading.as_deref(), Some("Warranty"));
        assert_eq!(chunks[0].text, "The X200 is covered for 24 months.\nKeep the receipt.");
        assert_eq!(&text[chunks[0].start..chunks[0].end], chunks[0].text);
        assert_eq!(chunks[1].heading.as_deref(), Some("Returns"));
        assert_eq!(chunks[1].page, 3);
        assert_eq!(chunks[1].indexed(), "Returns\nReturns are accepted within 30 days.");
    }

    #[test]
    fn headings_set_tight_above_their_paragraph_are_headings() {
        let text = "Returns and Refunds\nChange of mind returns\nYou can return an unused appliance.\nKeep the box.\n";
        let chunks = chunk(&[page(5, text)]);
        assert_eq!(chunks.len(), 1, "{chunks:#?}");
        assert_eq!(chunks[0].heading.as_deref(), Some("Change of mind returns"));
        assert_eq!(chunks[0].text, "You can return an unused appliance.\nKeep the box.");
        assert_eq!(&text[chunks[0].start..chunks[0].end], chunks[0].text);
    }

    #[test]
    fn a_list_whose_lines_look_like_headings_stays_text() {
        let text = "Opening hours\nMonday 9 to 5\nTuesday 9 to 5\n";
        let chunks = chunk(&[page(1, text)]);
        assert_eq!(chunks.len(), 1, "{chunks:#?}");
        assert_eq!(chunks[0].text, text.trim_end());
    }

    #[test]
    fn a_table_stays_with_its_caption_and_a_heading_carries_to_the_next_page() {
        let p1 = "Fees\n\nTable 2: Fees by region\n\nNorth 10 EUR\nSouth 12 EUR\n";
        let p2 = "More about fees, on the next page.\n";
        let chunks = chunk(&[page(1, p1), page(2, p2)]);
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert_eq!(chunks[0].text, "Table 2: Fees by region\n\nNorth 10 EUR\nSouth 12 EUR");
        assert_eq!(chunks[1].heading.as_deref(), Some("Fees"));
        assert_eq!(chunks[1].page, 2);
    }

    #[test]
    fn a_long_block_is_cut_at_line_ends_within_bounds() {
        let line = "word ".repeat(20);
        let text = format!("{}\n", [line.trim_end(); 30].join("\n"));
        let chunks = chunk(&[page(1, &text)]);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        for c in &chunks {
            assert!(words(&c.text) <= MAX);
            assert_eq!(&text[c.start..c.end], c.text);
        }
        let covered: usize = chunks.iter().map(|c| words(&c.text)).sum();
        assert_eq!(covered, 600);
    }
}
