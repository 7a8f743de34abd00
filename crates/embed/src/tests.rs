//! Against the real all-MiniLM-L6-v2 weights (`scripts/fetch-models` puts them in `.cache/models`); skipped when
//! they are absent, except under `NINES_REQUIRE_MODELS=1` (CI). Reference values: a plain numpy forward pass of the
//! same weights (docs/plans/issue19-groundwork.md), which match the model card's published example.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

pub(crate) fn model_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/all-minilm-l6-v2");
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    #[allow(clippy::disallowed_methods)]
    if std::env::var("NINES_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
        panic!("{} has no model: run scripts/fetch-models", dir.display());
    }
    eprintln!("skipped: no model in {} (scripts/fetch-models)", dir.display());
    None
}

#[test]
fn minilm_matches_the_reference_vectors() {
    let Some(dir) = model_dir() else { return };
    let e = Embedder::load(&dir).unwrap();
    assert_eq!(e.dims(), 384);
    let texts = [
        "This is an example sentence",
        "Each sentence is converted",
        "The warranty lasts 24 months.",
        "How long is the guarantee?",
        "Returns are accepted within 30 days.",
    ];
    let v = e.embed(&texts).unwrap();
    assert_eq!(v.len(), 5);
    let want = [0.06766f32, 0.0635, 0.04871, 0.0793, 0.03745, 0.00265];
    for (got, want) in v[0].iter().zip(want) {
        assert!((got - want).abs() < 1e-4, "{:?}", &v[0][..6]);
    }
    for x in &v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
    assert!(close(cosine(&v[2], &v[3]), 0.5201), "{}", cosine(&v[2], &v[3]));
    assert!(close(cosine(&v[2], &v[4]), 0.2741), "{}", cosine(&v[2], &v[4]));
    assert!(close(cosine(&v[0], &v[1]), 0.4046), "{}", cosine(&v[0], &v[1]));
}

#[test]
fn a_batch_gives_what_each_text_gives_alone() {
    let Some(dir) = model_dir() else { return };
    let e = Embedder::load(&dir).unwrap();
    let long = "word ".repeat(400); // past the 256-token cut
    let texts = ["short", long.as_str(), "a sentence of middling length about refunds"];
    let batch = e.embed(&texts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let alone = e.embed(&[t]).unwrap();
        assert!(cosine(&alone[0], &batch[i]) > 0.9999, "text {i}");
    }
    assert_eq!(e.count_tokens(&long).unwrap(), MAX_TOKENS);
    assert!(e.embed(&[]).unwrap().is_empty());
    assert_eq!(e.embed(&[""]).unwrap()[0].len(), 384);
}

#[test]
fn a_missing_folder_is_named() {
    let err = Embedder::load(Path::new("/nonexistent/model")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model/config.json"), "{err}");
}
