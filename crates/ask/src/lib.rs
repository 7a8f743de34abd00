//! Ask your documents (in progress).
pub mod bm25;
pub mod chunk;
pub mod extract;
pub mod pdf;
pub mod retrieve;
pub mod store;
