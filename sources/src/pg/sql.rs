//! Reading a source's SQL just enough to make its placeholders parameters.
//!
//! A `{{name}}` placeholder becomes `$n` (the same name, the same `n`) so
//! that its value travels in the extended protocol's Bind message, as a
//! value the server never parses as SQL. Finding the placeholders needs a
//! lexer that knows where SQL is *not* code: string literals (`'…'`,
//! `E'…'` with backslash escapes, `$tag$…$tag$`), quoted identifiers
//! (`"…"`) and comments (`--`, nested `/* */`). A placeholder inside a
//! literal or a quoted identifier is refused: it would be text, not a
//! parameter, and splicing a value there is exactly the injection this
//! module exists to prevent. One in a comment stays as written.
//!
//! The lexer also refuses what would defeat binding: a second statement
//! after a `;`, and `$1`-style parameters written by hand (they would
//! collide with the numbers given to placeholders); and `COPY`, whose
//! data does not come back as rows. The server refuses
//! several statements in a prepared statement too; checking here gives a
//! clear error before any connection is made.

use crate::error::SourceError;

/// A query with its placeholders replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewritten {
    /// The SQL sent to the server, with `$1..$n`.
    pub sql: String,
    /// The placeholder name of each parameter: `names[0]` is `$1`.
    pub names: Vec<String>,
}

/// Where the lexer is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// `'…'`; `backslash` for `E'…'`, where `\` escapes the next byte.
    Literal {
        backslash: bool,
    },
    /// `"…"`.
    Identifier,
    LineComment,
    /// `/* */`, which nests in PostgreSQL.
    BlockComment {
        depth: u32,
    },
}

/// Replaces the placeholders of `query` by `$1..$n`.
///
/// Refuses ([`SourceError::ParameterRefused`]) a placeholder inside a
/// literal or quoted identifier, and ([`SourceError::InvalidQuery`]) a
/// query with more than one statement or with hand-written `$n`
/// parameters.
pub fn rewrite(query: &str) -> Result<Rewritten, SourceError> {
    let bytes = query.as_bytes();
    let mut sql = String::with_capacity(query.len());
    let mut names: Vec<String> = Vec::new();
    let mut state = State::Code;
    // Set after a `;` in code: anything but blanks and comments after it
    // is a second statement.
    let mut ended = false;
    let mut i = 0;
    // Copied verbatim up to here; `sql` gets the spans between edits.
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => {
                if b == b'-' && next == Some(b'-') {
                    state = State::LineComment;
                    i += 2;
                    continue;
                }
                if b == b'/' && next == Some(b'*') {
                    state = State::BlockComment { depth: 1 };
                    i += 2;
                    continue;
                }
                if b.is_ascii_whitespace() {
                    i += 1;
                    continue;
                }
                if ended {
                    return Err(SourceError::InvalidQuery {
                        reason:
                            "the query holds more than one statement; a source runs exactly one"
                                .into(),
                    });
                }
                match b {
                    b';' => {
                        ended = true;
                        i += 1;
                    }
                    b'\'' => {
                        // E'…' (or e'…'), unless the E ends a longer word.
                        let escape = i > 0
                            && matches!(bytes[i - 1], b'E' | b'e')
                            && !(i > 1 && is_ident_byte(bytes[i - 2]));
                        state = State::Literal { backslash: escape };
                        i += 1;
                    }
                    b'"' => {
                        state = State::Identifier;
                        i += 1;
                    }
                    b'$' => {
                        let after_word = i > 0 && is_ident_byte(bytes[i - 1]);
                        if after_word {
                            // `a$b` is one identifier.
                            i += 1;
                        } else if next.is_some_and(|n| n.is_ascii_digit()) {
                            return Err(SourceError::InvalidQuery {
                                reason: "write {{name}} placeholders, not $1-style parameters"
                                    .into(),
                            });
                        } else if let Some(tag_len) = dollar_tag(&bytes[i..]) {
                            // A dollar-quoted literal: find its closing tag.
                            let tag = &query[i..i + tag_len];
                            let body_start = i + tag_len;
                            let Some(body_len) = query[body_start..].find(tag) else {
                                return Err(SourceError::InvalidQuery {
                                    reason: format!("the literal opened by {tag} is not closed"),
                                });
                            };
                            let body = &query[body_start..body_start + body_len];
                            if let Some(name) = first_placeholder(body) {
                                return Err(inside_literal(&name));
                            }
                            i = body_start + body_len + tag_len;
                        } else {
                            i += 1;
                        }
                    }
                    b'{' if next == Some(b'{') => {
                        match placeholder_at(&query[i..]) {
                            Some((name, len)) => {
                                let n = match names.iter().position(|known| *known == name) {
                                    Some(at) => at + 1,
                                    None => {
                                        names.push(name);
                                        names.len()
                                    }
                                };
                                sql.push_str(&query[copied..i]);
                                // A space on each side keeps `x={{a}}` from
                                // gluing `$1` to a neighbouring operator
                                // or word.
                                sql.push_str(&format!(" ${n} "));
                                i += len;
                                copied = i;
                            }
                            None => i += 2,
                        }
                    }
                    _ => {
                        // Advance by a whole character so slices stay on
                        // boundaries.
                        i += utf8_len(b);
                    }
                }
            }
            State::Literal { backslash } => {
                if backslash && b == b'\\' {
                    i += 2;
                } else if b == b'\'' {
                    if next == Some(b'\'') {
                        i += 2;
                    } else {
                        state = State::Code;
                        i += 1;
                    }
                } else {
                    if b == b'{' && next == Some(b'{') {
                        if let Some((name, _)) = placeholder_at(&query[i..]) {
                            return Err(inside_literal(&name));
                        }
                    }
                    i += utf8_len(b);
                }
            }
            State::Identifier => {
                if b == b'"' {
                    if next == Some(b'"') {
                        i += 2;
                    } else {
                        state = State::Code;
                        i += 1;
                    }
                } else {
                    if b == b'{' && next == Some(b'{') {
                        if let Some((name, _)) = placeholder_at(&query[i..]) {
                            return Err(inside_literal(&name));
                        }
                    }
                    i += utf8_len(b);
                }
            }
            State::LineComment => {
                if b == b'\n' {
                    state = State::Code;
                }
                i += utf8_len(b);
            }
            State::BlockComment { depth } => {
                if b == b'*' && next == Some(b'/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::BlockComment { depth: depth - 1 }
                    };
                    i += 2;
                } else if b == b'/' && next == Some(b'*') {
                    state = State::BlockComment { depth: depth + 1 };
                    i += 2;
                } else {
                    i += utf8_len(b);
                }
            }
        }
    }
    match state {
        State::Literal { .. } => {
            return Err(SourceError::InvalidQuery {
                reason: "a string literal is not closed".into(),
            })
        }
        State::Identifier => {
            return Err(SourceError::InvalidQuery {
                reason: "a quoted identifier is not closed".into(),
            })
        }
        State::BlockComment { .. } => {
            return Err(SourceError::InvalidQuery {
                reason: "a /* comment is not closed".into(),
            })
        }
        State::Code | State::LineComment => {}
    }
    sql.push_str(&query[copied.min(query.len())..]);
    if first_word(query).eq_ignore_ascii_case("copy") {
        // COPY streams its data outside the row protocol the answer is
        // read from; a SELECT reads the same rows.
        return Err(SourceError::InvalidQuery {
            reason: "COPY is not supported; write a SELECT".into(),
        });
    }
    Ok(Rewritten { sql, names })
}

/// The first word of the statement, after blanks and comments.
fn first_word(query: &str) -> &str {
    let mut rest = query;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if trimmed.starts_with("/*") {
            let bytes = trimmed.as_bytes();
            let (mut depth, mut i) = (0u32, 0);
            while i + 1 < bytes.len() {
                match &bytes[i..i + 2] {
                    b"/*" => {
                        depth += 1;
                        i += 2;
                    }
                    b"*/" => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            rest = &trimmed[i.min(trimmed.len())..];
        } else {
            let end = trimmed
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(trimmed.len());
            return &trimmed[..end];
        }
    }
}

fn inside_literal(name: &str) -> SourceError {
    SourceError::ParameterRefused {
        name: name.to_owned(),
        reason: "the placeholder stands inside a quoted literal or identifier, where it would be \
                 text; write it outside the quotes (it is bound as a value)"
            .into(),
    }
}

/// A byte that may continue an identifier (PostgreSQL allows `$` after
/// the first character; bytes of non-ASCII letters count too).
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn utf8_len(first: u8) -> usize {
    match first {
        // ASCII, or a stray continuation byte (after a `\` escape).
        0x00..=0xbf => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// The length of a dollar-quote tag at the start of `bytes` (`$$` or
/// `$tag$`, the tag an identifier not starting with a digit).
fn dollar_tag(bytes: &[u8]) -> Option<usize> {
    let mut end = 1;
    while end < bytes.len() && bytes[end] != b'$' {
        let b = bytes[end];
        let ok = if end == 1 {
            b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
        } else {
            b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
        };
        if !ok {
            return None;
        }
        end += 1;
    }
    (end < bytes.len()).then_some(end + 1)
}

/// The placeholder at the start of `text` (which starts with `{{`): its
/// name and its length. Names follow
/// [`placeholders`](crate::config::placeholders): letters, digits, `_`,
/// `-` and `.`, with blanks allowed inside the braces.
fn placeholder_at(text: &str) -> Option<(String, usize)> {
    let after = text.strip_prefix("{{")?;
    let end = after.find("}}")?;
    let name = after[..end].trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    valid.then(|| (name.to_owned(), end + 4))
}

fn first_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        if let Some((name, _)) = placeholder_at(&rest[at..]) {
            return Some(name);
        }
        rest = &rest[at + 2..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(query: &str) -> (String, Vec<String>) {
        let r = rewrite(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        (r.sql, r.names)
    }

    fn code(query: &str) -> &'static str {
        rewrite(query).unwrap_err().code()
    }

    #[test]
    fn placeholders_become_numbered_parameters() {
        let (sql, names) =
            ok("SELECT * FROM t WHERE id = {{id}} AND name = {{ name }} OR id={{id}}");
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE id =  $1  AND name =  $2  OR id= $1 "
        );
        assert_eq!(names, vec!["id", "name"]);
    }

    #[test]
    fn a_placeholder_inside_quotes_is_refused() {
        for query in [
            "SELECT '{{x}}'",
            "SELECT E'\\'{{x}}'",
            "SELECT 'it''s {{x}}'",
            "SELECT \"{{x}}\" FROM t",
            "SELECT $$ {{x}} $$",
            "SELECT $body$ {{x}} $body$",
        ] {
            let err = rewrite(query).unwrap_err();
            assert_eq!(err.code(), "parameter_refused", "{query}");
        }
    }

    #[test]
    fn quotes_and_comments_hide_what_looks_like_code() {
        let (sql, names) =
            ok("SELECT 'a;b', \"c;d\", $$;$$ -- ; {{x}}\n/* ; /* {{y}} */ */ FROM t;");
        assert!(names.is_empty());
        assert!(sql.contains("{{x}}"));
        let (_, names) = ok("SELECT E'\\';' , {{z}}");
        assert_eq!(names, vec!["z"]);
        // `a$b` is an identifier, not the start of a dollar quote.
        let (_, names) = ok("SELECT a$b, {{z}} FROM t");
        assert_eq!(names, vec!["z"]);
    }

    #[test]
    fn a_second_statement_is_refused() {
        assert_eq!(code("SELECT 1; DROP TABLE t"), "invalid_query");
        assert_eq!(code("SELECT 1;;"), "invalid_query");
        assert_eq!(code("SELECT 1; /* c */ DELETE FROM t"), "invalid_query");
        // A trailing semicolon, blanks and comments are one statement.
        ok("SELECT 1; -- done\n /* really */ ");
    }

    #[test]
    fn hand_written_parameters_and_open_quotes_are_refused() {
        assert_eq!(code("SELECT $1"), "invalid_query");
        assert_eq!(code("SELECT 'open"), "invalid_query");
        assert_eq!(code("SELECT \"open"), "invalid_query");
        assert_eq!(code("SELECT /* open"), "invalid_query");
        assert_eq!(code("SELECT $q$ open"), "invalid_query");
    }

    #[test]
    fn copy_is_refused() {
        assert_eq!(code("COPY t TO STDOUT"), "invalid_query");
        assert_eq!(
            code(" -- x\n /* a /* b */ */ copy (SELECT 1) TO STDOUT"),
            "invalid_query"
        );
        ok("SELECT copy FROM t");
    }

    #[test]
    fn non_ascii_text_is_kept() {
        let (sql, names) = ok("SELECT 'é', ü FROM t WHERE x = {{ä}}");
        assert!(names.is_empty(), "ä is not a placeholder name");
        assert_eq!(sql, "SELECT 'é', ü FROM t WHERE x = {{ä}}");
        let (sql, _) = ok("SELECT 'é' WHERE x = {{a}} AND y = 'ü'");
        assert_eq!(sql, "SELECT 'é' WHERE x =  $1  AND y = 'ü'");
    }
}
