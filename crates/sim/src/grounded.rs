//! A reader for questions asked over numbered sources, as retrieval apps ask them (nines' own "Ask your documents"
//! among them): when the last user text has a `Sources:` block of `[n] …` entries and a `Question:` line, the
//! simulator answers with the one source sentence that shares the most words with the question, followed by its
//! citation (`… [2]`), or with "The documents do not say." when no sentence shares enough. Deterministic, like every
//! answer of the simulator, and enough to check that an app's citations point at the right passage.

/// Words too common to tell one sentence from another.
const STOP: &[&str] = &[
    "the", "and", "for", "are", "was", "were", "what", "which", "who", "whom", "how", "when", "where", "why",
    "does", "did", "can", "could", "should", "would", "will", "with", "that", "this", "these", "those",
    "from", "into", "about", "there", "their", "they", "them", "you", "your", "our", "has", "have", "had",
    "not", "any", "all", "its", "per", "may", "must", "than", "then", "also", "been", "being", "say", "says",
    "tell", "much", "many", "long",
];

/// The answer when no source answers the question.
pub(crate) const UNSUPPORTED: &str = "The documents do not say.";

/// The grounded answer's text (without the simulator's name), if `text` asks a question over sources.
pub(crate) fn answer(text: &str) -> Option<String> {
    let (sources, question) = parse(text)?;
    let asked = terms(&question);
    if asked.is_empty() {
        return Some(UNSUPPORTED.to_owned());
    }
    let mut best: Option<(usize, usize, &str)> = None; // (score, n, sentence)
    for (n, source) in &sources {
        for sentence in sentences(source) {
            let have = terms(sentence);
            let score = asked.iter().filter(|w| have.contains(w)).count();
            if best.is_none_or(|(s, _, _)| score > s) {
                best = Some((score, *n, sentence));
            }
        }
    }
    let needed = if asked.len() <= 2 { 1 } else { 2 };
    match best {
        Some((score, n, sentence)) if score >= needed => {
            let sentence = sentence.trim_end_matches(['.', ';', ':', ',']);
            Some(format!("{sentence} [{n}]."))
        }
        _ => Some(UNSUPPORTED.to_owned()),
    }
}

/// The numbered sources and the question, when `text` has both.
fn parse(text: &str) -> Option<(Vec<(usize, String)>, String)> {
    let start = text.find("Sources:")?;
    let q = text.rfind("Question:")?;
    if q < start {
        return None;
    }
    let question = text[q + "Question:".len()..].trim().to_owned();
    let mut sources: Vec<(usize, String)> = Vec::new();
    for line in text[start + "Sources:".len()..q].lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[')
            && let Some((num, body)) = rest.split_once(']')
            && let Ok(n) = num.parse::<usize>()
        {
            sources.push((n, body.trim().to_owned()));
        } else if let Some((_, body)) = sources.last_mut()
            && !line.is_empty()
        {
            body.push(' ');
            body.push_str(line);
        }
    }
    if sources.is_empty() { None } else { Some((sources, question)) }
}

/// A source's sentences (and table rows), without the `(file, page N)` label an app may put first.
fn sentences(source: &str) -> impl Iterator<Item = &str> {
    let body = match source.strip_prefix('(') {
        Some(rest) => rest.split_once(')').map_or(source, |(_, b)| b),
        None => source,
    };
    body.split_inclusive(['.', '?', '!', '|']).map(str::trim).filter(|s| s.len() > 3)
}

/// The distinct content words of `s`: lowercase, at least 3 letters or a number, a plural's `s` dropped.
fn terms(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in s.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        let numeric = w.chars().any(|c| c.is_ascii_digit());
        if (!numeric && w.len() < 3) || w.is_empty() || STOP.contains(&w.as_str()) {
            continue;
        }
        let w = match w.strip_suffix('s') {
            Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_owned(),
            _ => w,
        };
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "Sources:\n[1] (handbook.pdf, page 2) Returns are accepted within 30 days. Keep the receipt.\n\
        [2] (handbook.pdf, page 3) The warranty on the X200 lasts 24 months\nfrom the date of purchase.\n\n\
        Question: How many months does the X200 warranty last?";

    #[test]
    fn the_sentence_sharing_most_words_is_cited() {
        assert_eq!(
            answer(PROMPT).as_deref(),
            Some("The warranty on the X200 lasts 24 months from the date of purchase [2].")
        );
    }

    #[test]
    fn nothing_shared_means_the_documents_do_not_say() {
        let p = PROMPT.replace("How many months does the X200 warranty last?", "Who painted the ceiling?");
        assert_eq!(answer(&p).as_deref(), Some(UNSUPPORTED));
    }

    #[test]
    fn text_without_sources_is_not_grounded() {
        assert_eq!(answer("Question: why?"), None);
        assert_eq!(answer("hello"), None);
        assert_eq!(answer("Question: x\nSources:\n[1] y"), None);
    }
}
