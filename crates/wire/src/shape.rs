//! A request's shape, measured on its bytes before anything parses them: how many JSON objects and arrays it holds,
//! and how deep they nest. Parsing a body into values costs far more memory than its bytes when it is made of many
//! tiny parts (a 31 MB body of one-word messages took 1.35 GB), so a body with more parts than any real
//! conversation has is refused first, whatever its size in bytes. One pass, no allocation.

use std::fmt;

/// At most this many objects and arrays in a request (a long agent session has a few tens of thousands).
pub const MAX_CONTAINERS: usize = 100_000;
/// At most this deep (a tool's JSON schema nests a dozen levels at most).
pub const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// More objects and arrays than the limit (counted up to the limit + 1).
    TooMany {
        limit: usize,
    },
    TooDeep {
        limit: usize,
    },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::TooMany { limit } => {
                write!(f, "the request holds more than {limit} JSON objects and arrays; split it")
            }
            ShapeError::TooDeep { limit } => write!(f, "the request nests JSON deeper than {limit} levels"),
        }
    }
}

/// Check `body` against the limits. Not a JSON validator: what is not JSON is left for the parser to refuse.
pub fn check(body: &[u8], max_containers: usize, max_depth: usize) -> Result<(), ShapeError> {
    let mut containers = 0usize;
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                // Skip the string (most of a request's bytes): to its closing quote, over escapes, with memchr's
                // vectorised search.
                i += 1;
                loop {
                    // An unterminated string is not JSON: left to the parser.
                    let Some(at) = memchr::memchr2(b'"', b'\\', body.get(i..).unwrap_or_default()) else {
                        return Ok(());
                    };
                    i += at;
                    if body[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => {
                containers += 1;
                depth += 1;
                if containers > max_containers {
                    return Err(ShapeError::TooMany { limit: max_containers });
                }
                if depth > max_depth {
                    return Err(ShapeError::TooDeep { limit: max_depth });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_and_depth_are_counted_outside_strings_only() {
        assert_eq!(check(br#"{"a":[1,{"b":"[[[{{{"}],"c":"\"{"}"#, 3, 3), Ok(()));
        assert_eq!(check(br#"{"a":[{},{}]}"#, 3, 9), Err(ShapeError::TooMany { limit: 3 }));
        assert_eq!(check(b"[[[[]]]]", 9, 3), Err(ShapeError::TooDeep { limit: 3 }));
        assert_eq!(check(b"[][][][]", 9, 1), Ok(()), "siblings are not depth");
        // Not JSON: left to the parser.
        assert_eq!(check(b"\"unterminated \\", 1, 1), Ok(()));
        assert_eq!(check(b"}}}]]", 1, 1), Ok(()));
    }
}
