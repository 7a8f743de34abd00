//! Hybrid retrieval: the keyword ranking (BM25) and the vector ranking (cosine of unit vectors), fused by reciprocal
//! rank: a chunk's score is the sum over both lists of 1 / (K + its rank), so a chunk that either method puts near
//! the top comes up, and one that both do comes first. No score scales to tune between the two.

/// RRF's constant (the one of Cormack et al., 2009).
pub const K: f64 = 60.0;

/// Each ranking's length before fusion.
pub const DEPTH: usize = 20;

/// The ids of `lists` (each best first) fused by reciprocal rank, best first; ties keep the first list's order.
pub fn fuse(lists: &[&[i64]]) -> Vec<i64> {
    let mut scores: Vec<(i64, f64, usize)> = Vec::new(); // (id, score, first seen)
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            let add = 1.0 / (K + rank as f64 + 1.0);
            match scores.iter_mut().find(|(x, _, _)| x == id) {
                Some(entry) => entry.1 += add,
                None => {
                    let seen = scores.len();
                    scores.push((*id, add, seen));
                }
            }
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    scores.into_iter().map(|(id, _, _)| id).collect()
}

/// The `limit` vectors nearest `query` (unit vectors: the largest dot products), best first: what
/// `store::Store::nearest` computes over its rows without holding them, here over vectors in memory.
pub fn nearest(query: &[f32], vectors: &[(i64, Vec<f32>)], limit: usize) -> Vec<i64> {
    let mut scored: Vec<(i64, f32)> = vectors
        .iter()
        .filter(|(_, v)| v.len() == query.len())
        .map(|(id, v)| (*id, v.iter().zip(query).map(|(a, b)| a * b).sum()))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(limit);
    scored.into_iter().map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_both_rankings_like_comes_first() {
        assert_eq!(fuse(&[&[1, 2, 3], &[3, 4, 1]]), vec![1, 3, 2, 4]);
        assert_eq!(fuse(&[&[], &[7, 8]]), vec![7, 8]);
        assert!(fuse(&[]).is_empty());
    }

    #[test]
    fn nearest_ranks_by_dot_product_and_skips_other_lengths() {
        let vs = vec![(1, vec![1.0, 0.0]), (2, vec![0.6, 0.8]), (3, vec![0.0, 1.0]), (4, vec![1.0])];
        assert_eq!(nearest(&[0.0, 1.0], &vs, 2), vec![3, 2]);
    }
}
