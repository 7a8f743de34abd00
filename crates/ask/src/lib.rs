//! Ask your documents (in progress).
pub mod extract;
