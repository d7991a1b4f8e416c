//! Where the attribute sits: a task must be a free function, because it declares a type and
//! an impl beside itself, which an `impl` or `trait` block cannot hold. An attribute cannot
//! see its surroundings, so this reads the source file: it scans the tokens up to the
//! function, tracking which braces belong to `impl` and `trait` blocks, and tells whether the
//! function's line is inside one. When the file cannot be read (code made by another macro),
//! it says nothing and rustc reports the misplaced items itself.

use proc_macro2::Span;

/// Whether the item at `span` is inside an `impl` or `trait` block, and which keyword.
pub fn enclosing_block(span: Span) -> Option<&'static str> {
    if !proc_macro::is_available() {
        return None;
    }
    let span = span.unwrap();
    let path = span.local_file()?;
    let text = std::fs::read_to_string(path).ok()?;
    block_at_line(&text, span.line())
}

/// The kind of the innermost block open at the start of `line` (1-based), if it is an
/// `impl` or a `trait`.
fn block_at_line(text: &str, line: usize) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Option<&'static str>> = Vec::new();
    // The words since the last `;`, `{` or `}`: the head of the item a `{` opens.
    let mut head: Vec<&str> = Vec::new();
    let mut current_line = 1;
    let mut i = 0;
    while i < bytes.len() {
        if current_line >= line {
            return stack.last().copied().flatten();
        }
        let c = bytes[i];
        match c {
            b'\n' => {
                current_line += 1;
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        current_line += usize::from(bytes[i] == b'\n');
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    current_line += usize::from(bytes[i] == b'\n');
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'r' if raw_string_hashes(&bytes[i..]).is_some() => {
                let hashes = raw_string_hashes(&bytes[i..]).unwrap_or(0);
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                i += 2 + hashes;
                while i < bytes.len() && !bytes[i..].starts_with(&close) {
                    current_line += usize::from(bytes[i] == b'\n');
                    i += 1;
                }
                i += close.len();
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): skip a literal.
                if bytes.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if bytes.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            b'{' => {
                let kind = head
                    .iter()
                    .find(|w| matches!(**w, "impl" | "trait" | "fn" | "mod" | "struct" | "enum"))
                    .and_then(|w| match *w {
                        "impl" => Some("impl"),
                        "trait" => Some("trait"),
                        _ => None,
                    });
                stack.push(kind);
                head.clear();
                i += 1;
            }
            b'}' => {
                stack.pop();
                head.clear();
                i += 1;
            }
            b';' => {
                head.clear();
                i += 1;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                head.push(&text[start..i]);
            }
            _ => i += 1,
        }
    }
    None
}

/// `Some(n)` if `s` starts a raw string `r#*"`, with `n` hashes.
fn raw_string_hashes(s: &[u8]) -> Option<usize> {
    let hashes = s[1..].iter().take_while(|&&b| b == b'#').count();
    (s.get(1 + hashes) == Some(&b'"')).then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::block_at_line;

    #[test]
    fn finds_impl_and_trait_blocks() {
        let text = r#"
struct S;                       // 2
impl S {                        // 3
    #[iomgr::task]              // 4
    async fn a() {}             // 5
}                               // 6
fn free() {                     // 7
    let s = "impl { ";          // 8
    let c = '{';                // 9
}                               // 10
trait T {                       // 11
    fn f(&self) {               // 12
        /* } */ let _ = r"}";   // 13
    }                           // 14
    async fn g() {}             // 15
}                               // 16
impl<'a> std::fmt::Debug for S where S: 'a { // 17
    fn fmt(&self) {}            // 18
}                               // 19
#[iomgr::task]                  // 20
async fn b() {}                 // 21
"#;
        assert_eq!(block_at_line(text, 5), Some("impl"));
        assert_eq!(block_at_line(text, 8), None);
        assert_eq!(block_at_line(text, 13), None);
        assert_eq!(block_at_line(text, 15), Some("trait"));
        assert_eq!(block_at_line(text, 18), Some("impl"));
        assert_eq!(block_at_line(text, 21), None);
    }
}
