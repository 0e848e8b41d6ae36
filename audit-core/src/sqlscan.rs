//! A small lexer for the SQL that sea-query generates, so the auditing connection can
//! find a statement's target table, its WHERE clause and its bound parameters.
//!
//! It is not a SQL parser: it only tracks quoting (so `'… WHERE …'` inside a literal
//! or `"where"` as an identifier never counts as a clause) and parenthesis depth, and
//! reports top-level keywords and parameter placeholders by byte offset. Statements
//! built by SeaORM's typed API have a fixed shape, which is all it needs to handle.

use std::sync::{Arc, LazyLock};

use sea_orm::DbBackend;

use crate::memo::Memo;

/// One significant token of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// A bare word (keyword or unquoted identifier), uppercased, with its start offset
    /// and parenthesis depth.
    Word { text: String, at: usize, depth: u32 },
    /// A quoted identifier (`"x"` or `` `x` ``), unquoted.
    Ident { text: String, at: usize, depth: u32 },
    /// A parameter placeholder (`?` or `$n`), with its start offset.
    Param { at: usize },
}

/// Lexes `sql` into words, identifiers and placeholders.
pub(crate) fn lex(sql: &str, backend: DbBackend) -> Vec<Token> {
    lex_with(sql, backend, false, 0)
}

/// How deep dollar-quoted bodies are lexed as code inside each other, so no statement
/// can make the lexer recurse without bound. A body deeper than that is read for its
/// words only, every one of them, with no quote or comment hiding any.
const MAX_NESTING: u32 = 8;

/// Every word of `sql` (see [`MAX_NESTING`]).
fn words_only(sql: &str) -> Vec<Token> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if word(b[i]) {
            let start = i;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            out.push(Token::Word {
                text: sql[start..i].to_ascii_uppercase(),
                at: start,
                depth: 1,
            });
        } else {
            i += 1;
        }
    }
    out
}

/// [`lex`]. `ansi_quotes` reads MySQL's `"..."` as an identifier, as under
/// `ANSI_QUOTES`, instead of a string with backslash escapes. (MySQL's `'...'` always
/// takes backslash escapes: `NO_BACKSLASH_ESCAPES` would break sea-query's own MySQL
/// literals, which escape with backslashes.) `nesting` counts the dollar-quoted bodies
/// this text is inside.
fn lex_with(sql: &str, backend: DbBackend, ansi_quotes: bool, nesting: u32) -> Vec<Token> {
    if nesting >= MAX_NESTING {
        return words_only(sql);
    }
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth: u32 = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => {
                let backslash = backslash_escapes(b, i, backend);
                i = skip_quoted(b, i, b'\'', backslash).0;
            }
            // SQLite's `[name]`: an identifier up to the closing bracket.
            b'[' if backend == DbBackend::Sqlite => {
                let end = b[i + 1..]
                    .iter()
                    .position(|&x| x == b']')
                    .map_or(b.len(), |p| i + 1 + p);
                out.push(Token::Ident {
                    text: sql[i + 1..end].to_owned(),
                    at: i,
                    depth,
                });
                i = (end + 1).min(b.len());
            }
            b'"' | b'`' => {
                // MySQL's `"..."` is a string (unless ANSI_QUOTES) and takes backslash
                // escapes; it is kept as a name too, so a quoted table name under
                // ANSI_QUOTES is still seen.
                let backslash = c == b'"' && backend == DbBackend::MySql && !ansi_quotes;
                let (end, closed) = skip_quoted(b, i, c, backslash);
                // An unclosed run (malformed SQL, which the database will refuse) takes
                // the rest of the text; never cut inside a character.
                let inner = &sql[i + 1..if closed { end - 1 } else { end }];
                let doubled = if c == b'"' { "\"\"" } else { "``" };
                out.push(Token::Ident {
                    text: inner.replace(doubled, &doubled[..1]),
                    at: i,
                    depth,
                });
                i = end;
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            // `--` starts a comment, on MySQL only before a space or a control
            // character (`1--1` is arithmetic there); `#` too on MySQL.
            b'-' if b.get(i + 1) == Some(&b'-')
                && (backend != DbBackend::MySql
                    || b.get(i + 2)
                        .is_none_or(|x| x.is_ascii_whitespace() || x.is_ascii_control())) =>
            {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' if backend == DbBackend::MySql => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            // MySQL runs what is inside `/*! ... */` and `/*M! ... */`: lex it as code.
            b'/' if backend == DbBackend::MySql
                && (sql[i..].starts_with("/*!") || sql[i..].starts_with("/*M!")) =>
            {
                i += if b[i + 2] == b'!' { 3 } else { 4 };
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'?' if backend != DbBackend::Postgres => {
                out.push(Token::Param { at: i });
                i += 1;
            }
            b'$' if backend == DbBackend::Postgres
                && b.get(i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                out.push(Token::Param { at: i });
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // PostgreSQL's dollar quoting, `$$...$$` or `$tag$...$tag$`. Its body may be
            // code (`DO $$ ... $$`, a function body), so it is lexed as code on its own:
            // its names count, and no quote inside it reaches past its end.
            b'$' if backend == DbBackend::Postgres => {
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|&x| !(x.is_ascii_alphanumeric() || x == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(t) if b[t] == b'$' => {
                        let tag = &sql[i..=t];
                        let close = sql[t + 1..].find(tag).map_or(b.len(), |p| t + 1 + p);
                        let body = lex_with(&sql[t + 1..close], backend, ansi_quotes, nesting + 1);
                        // Its words and names, not its `$n`: those are not parameters.
                        out.extend(body.into_iter().filter_map(|token| match token {
                            Token::Word { text, at, depth: d } => Some(Token::Word {
                                text,
                                at: at + t + 1,
                                depth: depth + 1 + d,
                            }),
                            Token::Ident { text, at, depth: d } => Some(Token::Ident {
                                text,
                                at: at + t + 1,
                                depth: depth + 1 + d,
                            }),
                            Token::Param { .. } => None,
                        }));
                        i = (close + tag.len()).min(b.len());
                    }
                    _ => i += 1,
                }
            }
            // A word; non-ASCII letters belong to it (`é$x$` is one PostgreSQL name, not
            // `é` and a dollar quote).
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'$'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                out.push(Token::Word {
                    text: sql[start..i].to_ascii_uppercase(),
                    at: start,
                    depth,
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether a backslash escapes the next character in the string literal whose opening
/// quote is at `quote`: always on MySQL and MariaDB (unless `NO_BACKSLASH_ESCAPES`,
/// which sea-query does not assume either), only in an `E'...'` literal on PostgreSQL,
/// never on SQLite. Reading a backslash as an escape where it is not one would hide
/// the rest of the statement from the scan.
fn backslash_escapes(b: &[u8], quote: usize, backend: DbBackend) -> bool {
    match backend {
        DbBackend::MySql => true,
        DbBackend::Postgres => {
            let prefix = quote.checked_sub(1).map(|p| b[p]);
            let before = quote.checked_sub(2).map(|p| b[p]);
            matches!(prefix, Some(b'E' | b'e'))
                && !before.is_some_and(|c| {
                    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
                })
        }
        _ => false,
    }
}

/// Index just past the closing quote of a quoted run starting at `start`, and whether
/// the run was closed; a doubled quote character inside the run is an escaped quote,
/// and so is one after a backslash when `backslash` says so.
fn skip_quoted(b: &[u8], start: usize, q: u8, backslash: bool) -> (usize, bool) {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        i += 1;
    }
    (b.len(), false)
}

/// What kind of data change a statement makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Insert,
    Update,
    Delete,
    /// Anything else that can change data or schema (REPLACE, MERGE, TRUNCATE, ALTER,
    /// DROP, a write hidden in a CTE, ...).
    OtherWrite,
    /// A statement that does not write (SELECT, SHOW, PRAGMA read, ...).
    Read,
}

/// The parts of a statement the auditing connection needs.
#[derive(Clone, Debug)]
pub(crate) struct Scan {
    pub(crate) kind: Kind,
    /// The target table of INSERT/UPDATE/DELETE (last part of a qualified name).
    pub(crate) table: Option<String>,
    /// Byte offset of the top-level `WHERE`, if any.
    pub(crate) where_at: Option<usize>,
    /// Byte offset of the top-level `RETURNING`, if any.
    pub(crate) returning_at: Option<usize>,
    /// Whether the statement has an upsert or conflict clause.
    pub(crate) conflict_clause: bool,
    /// Byte offsets of the parameter placeholders, in order.
    pub(crate) params: Vec<usize>,
    /// Every identifier and word, for matching table names in raw SQL.
    pub(crate) names: Vec<String>,
    /// The column list of an INSERT, in order.
    pub(crate) insert_columns: Vec<String>,
    /// Per VALUES row of an INSERT, per column: the parameter index, or `None` for an
    /// expression such as `DEFAULT`.
    pub(crate) insert_rows: Vec<Vec<Option<usize>>>,
    /// Identifiers between SET and WHERE of an UPDATE that are assigned to.
    pub(crate) set_columns: Vec<String>,
}

const WRITE_WORDS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "TRUNCATE", "ALTER", "DROP", "CREATE",
    "RENAME", "UPSERT",
];

/// [`scan`], kept per backend and statement text. SeaORM sends the same few texts again
/// and again (one per entity and set of columns), and looking one up costs a tenth of
/// lexing it again (about 15,000 instructions for an UPDATE of six columns). Bounded:
/// past 512 texts per backend, that backend's cache starts over, so raw SQL with
/// literals cannot grow it.
pub(crate) fn scan_cached(sql: &str, backend: DbBackend) -> Arc<Scan> {
    static MEMO: LazyLock<Memo<&'static str, String, Arc<Scan>>> = LazyLock::new(|| Memo::new(512));
    let group = crate::backend::name(backend);
    if let Some(hit) = MEMO.get(&group, sql) {
        return hit;
    }
    let scanned = Arc::new(scan(sql, backend));
    MEMO.insert(group, sql.to_owned(), Arc::clone(&scanned));
    scanned
}

/// Whether token `n` of a statement that does not start with INSERT, UPDATE or DELETE
/// is a write: a write keyword, except the `UPDATE` of a locking read (`FOR UPDATE`,
/// `FOR NO KEY UPDATE`) and a string function of the same name (`REPLACE(...)`,
/// MySQL's `INSERT(...)`), which read.
fn writes_data(sql: &str, backend: DbBackend, tokens: &[Token], n: usize, t: &Token) -> bool {
    let Token::Word { text, at, .. } = t else {
        return false;
    };
    if !WRITE_WORDS.contains(&text.as_str()) {
        return false;
    }
    // The words right before this one, nearest first, while only whitespace separates
    // them at the same depth. SQLite has no locking reads.
    let Token::Word { depth, .. } = t else {
        return false;
    };
    let mut before = tokens[..n].iter().rev();
    let mut end = *at;
    let mut prev = move || match before.next() {
        Some(Token::Word { text, at, depth: d })
            if d == depth && sql[at + text.len()..end].trim().is_empty() =>
        {
            end = *at;
            Some(text.as_str())
        }
        _ => None,
    };
    let locking = text == "UPDATE"
        && backend != DbBackend::Sqlite
        && match prev() {
            Some("FOR") => true,
            Some("KEY") => prev() == Some("NO") && prev() == Some("FOR"),
            _ => false,
        };
    let call = matches!(text.as_str(), "REPLACE" | "INSERT")
        && sql[at + text.len()..].trim_start().starts_with('(');
    !locking && !call
}

/// Whether the statement lexed into `tokens` is a write, when it does not start with
/// INSERT, UPDATE or DELETE.
fn other_write(sql: &str, backend: DbBackend, tokens: &[Token]) -> bool {
    tokens
        .iter()
        .enumerate()
        .any(|(n, t)| writes_data(sql, backend, tokens, n, t))
}

/// The first word of each statement in `sql` (statements end at a `;` outside quotes).
fn statement_starts<'t>(sql: &str, tokens: &'t [Token]) -> Vec<&'t str> {
    let mut starts = Vec::new();
    let mut last_end = 0;
    let mut first = true;
    for t in tokens {
        let (at, len) = match t {
            Token::Word { text, at, .. } | Token::Ident { text, at, .. } => (*at, text.len()),
            Token::Param { at } => (*at, 1),
        };
        if sql.get(last_end..at).is_some_and(|gap| gap.contains(';')) {
            first = true;
        }
        if first && let Token::Word { text, .. } = t {
            starts.push(text.as_str());
        }
        first = false;
        last_end = at + len;
    }
    starts
}

/// Scans `sql`.
pub(crate) fn scan(sql: &str, backend: DbBackend) -> Scan {
    let tokens = lex(sql, backend);
    let first_word = tokens.iter().find_map(|t| match t {
        Token::Word { text, .. } => Some(text.as_str()),
        _ => None,
    });
    // MySQL raw SQL is also read as under ANSI_QUOTES, and the more cautious reading
    // wins: the server's sql_mode is not known here.
    let other = (backend == DbBackend::MySql).then(|| lex_with(sql, backend, true, 0));
    // SQL run from a string: PostgreSQL's `DO '...'` (always a possible write) and
    // MySQL's `PREPARE s FROM '...'` (a write if that SQL is one) are read again with
    // their strings as code. (`PREPARE s FROM @variable` cannot be seen into.)
    // Any statement of the text counts, not only the first. Quotes become spaces and
    // backslashes go (MySQL drops one before an ordinary character: 'art\icle').
    let starts = statement_starts(sql, &tokens);
    let pg_do = backend == DbBackend::Postgres && starts.contains(&"DO");
    let strings_as_code = (pg_do || (backend == DbBackend::MySql && starts.contains(&"PREPARE")))
        .then(|| {
            let blanked = sql.replace(['\'', '"'], " ").replace('\\', "");
            let tokens = lex(&blanked, backend);
            let writes = other_write(&blanked, backend, &tokens);
            (tokens, writes)
        });
    let kind = match first_word {
        Some("INSERT") => Kind::Insert,
        Some("UPDATE") => Kind::Update,
        Some("DELETE") => Kind::Delete,
        _ => {
            let writes = pg_do
                || other_write(sql, backend, &tokens)
                || other.as_ref().is_some_and(|o| other_write(sql, backend, o))
                || strings_as_code.as_ref().is_some_and(|(_, w)| *w);
            if writes { Kind::OtherWrite } else { Kind::Read }
        }
    };
    let mut s = Scan {
        kind,
        table: None,
        where_at: None,
        returning_at: None,
        conflict_clause: false,
        params: Vec::new(),
        names: Vec::new(),
        insert_columns: Vec::new(),
        insert_rows: Vec::new(),
        set_columns: Vec::new(),
    };
    // 0: before INTO/UPDATE/FROM, 1: expecting the table name, 2: after it.
    let mut table_state = 0u8;
    let mut values_at = None;
    let mut set_at = None;
    for t in &tokens {
        match t {
            Token::Param { at } => s.params.push(*at),
            Token::Word { text, depth, at } => {
                s.names.push(text.to_ascii_lowercase());
                if *depth != 0 {
                    continue;
                }
                match text.as_str() {
                    "WHERE" if s.where_at.is_none() => s.where_at = Some(*at),
                    "RETURNING" => s.returning_at = Some(*at),
                    "ON" if kind == Kind::Insert => s.conflict_clause = true,
                    "IGNORE" | "DUPLICATE" | "CONFLICT" => s.conflict_clause = true,
                    "INTO" | "UPDATE" | "FROM" if table_state == 0 => table_state = 1,
                    "SET" if kind == Kind::Update && set_at.is_none() => set_at = Some(*at + 3),
                    "VALUES" if kind == Kind::Insert && values_at.is_none() => {
                        values_at = Some(*at + 6)
                    }
                    other if table_state == 1 => {
                        s.table = Some(other.to_ascii_lowercase());
                        table_state = 2;
                    }
                    _ => {}
                }
            }
            Token::Ident { text, depth, .. } => {
                s.names.push(text.clone());
                let in_name = table_state == 1
                    || (table_state == 2
                        && values_at.is_none()
                        && set_at.is_none()
                        && s.where_at.is_none()
                        && s.insert_columns.is_empty());
                if *depth == 0 && in_name {
                    // `"schema"."table"`: the last identifier before the body wins.
                    s.table = Some(text.clone());
                    table_state = 2;
                } else if *depth == 1
                    && kind == Kind::Insert
                    && table_state == 2
                    && values_at.is_none()
                {
                    s.insert_columns.push(text.clone());
                }
            }
        }
    }
    if let Some(v) = values_at {
        let end = s.returning_at.unwrap_or(sql.len());
        s.insert_rows = values_rows(sql, v, end, &s.params, backend);
        if s.insert_rows
            .iter()
            .any(|r| r.len() != s.insert_columns.len())
        {
            s.insert_rows.clear();
        }
    }
    if let Some(set) = set_at {
        let end = s.where_at.or(s.returning_at).unwrap_or(sql.len());
        s.set_columns = top_level_items(sql, set, end, backend)
            .into_iter()
            .filter_map(|item| {
                let lhs = item.split('=').next()?.trim();
                let name = lhs.rsplit('.').next()?.trim();
                let unquoted = name.trim_matches(|c| c == '"' || c == '`');
                (!unquoted.is_empty()).then(|| unquoted.to_owned())
            })
            .collect();
    }
    // Names the other readings see: MySQL's other sql_mode, and the SQL inside the
    // strings of a statement that runs them.
    let mut extra = other.unwrap_or_default();
    extra.extend(strings_as_code.map(|(t, _)| t).unwrap_or_default());
    for t in extra {
        match t {
            Token::Word { text, .. } => s.names.push(text.to_ascii_lowercase()),
            Token::Ident { text, .. } => s.names.push(text),
            Token::Param { .. } => {}
        }
    }
    s
}

/// Splits `sql[start..end]` on commas outside parentheses and quotes.
fn top_level_items(sql: &str, start: usize, end: usize, backend: DbBackend) -> Vec<&str> {
    let b = sql.as_bytes();
    let end = end.min(sql.len());
    let mut items = Vec::new();
    let mut d = 0u32;
    let mut i = start;
    let mut item_start = start;
    while i < end {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i = skip_quoted(b, i, q, q == b'\'' && backslash_escapes(b, i, backend)).0;
                continue;
            }
            b'(' => d += 1,
            b')' => d = d.saturating_sub(1),
            b',' if d == 0 => {
                items.push(&sql[item_start..i]);
                item_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    items.push(&sql[item_start..end]);
    items
}

/// The rows of `VALUES (..), (..)`: per item, the index of its placeholder when the
/// item is exactly one placeholder, else `None` (`DEFAULT`, a function call, ...).
fn values_rows(
    sql: &str,
    start: usize,
    end: usize,
    params: &[usize],
    backend: DbBackend,
) -> Vec<Vec<Option<usize>>> {
    let b = sql.as_bytes();
    let mut rows = Vec::new();
    let mut d = 0u32;
    let mut i = start;
    let mut row_start = None;
    while i < end {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i = skip_quoted(b, i, q, q == b'\'' && backslash_escapes(b, i, backend)).0;
                continue;
            }
            b'(' => {
                if d == 0 {
                    row_start = Some(i + 1);
                }
                d += 1;
            }
            b')' => {
                d = d.saturating_sub(1);
                if let (0, Some(rs)) = (d, row_start) {
                    row_start = None;
                    let mut offset = rs;
                    let row = top_level_items(sql, rs, i, backend)
                        .into_iter()
                        .map(|item| {
                            let item_at = offset;
                            offset += item.len() + 1;
                            let t = item.trim();
                            let is_param = match backend {
                                DbBackend::Postgres => {
                                    t.len() > 1
                                        && t.starts_with('$')
                                        && t[1..].bytes().all(|c| c.is_ascii_digit())
                                }
                                _ => t == "?",
                            };
                            if !is_param {
                                return None;
                            }
                            let lead = item.len() - item.trim_start().len();
                            params.iter().position(|&p| p == item_at + lead)
                        })
                        .collect();
                    rows.push(row);
                }
            }
            _ => {}
        }
        i += 1;
    }
    rows
}

/// The statement's WHERE clause and its parameters re-numbered from 1, ready to be
/// appended to a SELECT. `None` when there is no WHERE (the whole table).
pub(crate) fn where_clause(
    sql: &str,
    scan: &Scan,
    backend: DbBackend,
) -> (String, std::ops::Range<usize>) {
    let Some(start) = scan.where_at else {
        return (String::new(), 0..0);
    };
    let end = scan
        .returning_at
        .filter(|&r| r > start)
        .unwrap_or(sql.len());
    let first = scan.params.iter().take_while(|&&p| p < start).count();
    let last = scan.params.iter().take_while(|&&p| p < end).count();
    let clause = &sql[start..end];
    if backend != DbBackend::Postgres || first == 0 {
        return (clause.to_owned(), first..last);
    }
    // PostgreSQL numbers its placeholders: `$3` in the UPDATE is `$1` in our SELECT.
    let mut out = String::with_capacity(clause.len());
    let mut cursor = start;
    for (k, &p) in scan.params[first..last].iter().enumerate() {
        out.push_str(&sql[cursor..p]);
        out.push_str(&format!("${}", k + 1));
        let b = sql.as_bytes();
        let mut i = p + 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        cursor = i;
    }
    out.push_str(&sql[cursor..end]);
    (out, first..last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_scans_are_kept_per_backend_and_text() {
        let sql = r#"UPDATE "cache_probe" SET "a" = ? WHERE "id" = ?"#;
        let first = scan_cached(sql, DbBackend::Sqlite);
        assert_eq!(first.table.as_deref(), Some("cache_probe"));
        assert_eq!(first.params.len(), 2);
        assert!(Arc::ptr_eq(&first, &scan_cached(sql, DbBackend::Sqlite)));
        // Each backend has its own entries: a text's scan depends on the backend.
        let mysql = scan_cached(sql, DbBackend::MySql);
        assert!(!Arc::ptr_eq(&first, &mysql));
        assert_eq!(mysql.table, scan(sql, DbBackend::MySql).table);
    }

    #[test]
    fn update_where_and_params() {
        let sql = r#"UPDATE "article" SET "title" = $1, "views" = "views" + $2 WHERE "article"."id" > $3 AND "title" <> 'x WHERE y' RETURNING "id""#;
        let s = scan(sql, DbBackend::Postgres);
        assert_eq!(s.kind, Kind::Update);
        assert_eq!(s.table.as_deref(), Some("article"));
        assert_eq!(s.set_columns, ["title", "views"]);
        let (w, range) = where_clause(sql, &s, DbBackend::Postgres);
        assert_eq!(
            w,
            r#"WHERE "article"."id" > $1 AND "title" <> 'x WHERE y' "#
        );
        assert_eq!(range, 2..3);
    }

    #[test]
    fn mysql_delete() {
        let sql = "DELETE FROM `shop`.`article` WHERE `article`.`id` IN (?, ?)";
        let s = scan(sql, DbBackend::MySql);
        assert_eq!(s.kind, Kind::Delete);
        assert_eq!(s.table.as_deref(), Some("article"));
        let (w, range) = where_clause(sql, &s, DbBackend::MySql);
        assert_eq!(w, "WHERE `article`.`id` IN (?, ?)");
        assert_eq!(range, 0..2);
    }

    #[test]
    fn insert_rows_and_columns() {
        let sql = r#"INSERT INTO "t" ("id", "name", "n") VALUES ($1, $2, DEFAULT), ($3, lower($4), $5) RETURNING "id""#;
        let s = scan(sql, DbBackend::Postgres);
        assert_eq!(s.kind, Kind::Insert);
        assert_eq!(s.table.as_deref(), Some("t"));
        assert_eq!(s.insert_columns, ["id", "name", "n"]);
        assert_eq!(
            s.insert_rows,
            vec![vec![Some(0), Some(1), None], vec![Some(2), None, Some(4)]]
        );
        assert!(s.returning_at.is_some());
        assert!(!s.conflict_clause);
        let upsert = scan(
            r#"INSERT INTO "t" ("id") VALUES ($1) ON CONFLICT ("id") DO NOTHING"#,
            DbBackend::Postgres,
        );
        assert!(upsert.conflict_clause);
    }

    #[test]
    fn raw_writes_are_classified() {
        let s = scan(
            "with x as (delete from article returning *) select * from x",
            DbBackend::Sqlite,
        );
        assert_eq!(s.kind, Kind::OtherWrite);
        assert!(s.names.contains(&"article".to_owned()));
        assert_eq!(
            scan("SELECT 'delete' FROM \"article\"", DbBackend::Sqlite).kind,
            Kind::Read
        );
        assert_eq!(
            scan("TRUNCATE article", DbBackend::Postgres).kind,
            Kind::OtherWrite
        );
        assert_eq!(
            scan("REPLACE INTO `article` (`id`) VALUES (1)", DbBackend::MySql).kind,
            Kind::OtherWrite
        );
        assert_eq!(
            scan(
                "SELECT 1 FROM x FOR UPDATE; DELETE FROM article",
                DbBackend::MySql
            )
            .kind,
            Kind::OtherWrite
        );
    }

    #[test]
    fn locking_reads_and_string_functions_read() {
        for (sql, backend) in [
            (
                "SELECT \"id\" FROM \"article\" WHERE \"id\" = $1 FOR UPDATE",
                DbBackend::Postgres,
            ),
            (
                "SELECT \"id\" FROM \"article\" FOR NO KEY UPDATE",
                DbBackend::Postgres,
            ),
            ("SELECT `id` FROM `article` FOR UPDATE", DbBackend::MySql),
            (
                "SELECT REPLACE(`title`, 'a', 'b'), INSERT (`title`, 1, 2, 'x') FROM `article`",
                DbBackend::MySql,
            ),
        ] {
            assert_eq!(scan(sql, backend).kind, Kind::Read, "{sql}");
        }
    }

    #[test]
    fn a_write_behind_a_lookalike_is_still_a_write() {
        for (sql, backend) in [
            // `key` is a column on SQLite and PostgreSQL, not part of FOR NO KEY UPDATE.
            (
                "SELECT v FROM kv ORDER BY key; UPDATE article SET views = 0",
                DbBackend::Sqlite,
            ),
            (
                "SELECT v FROM kv ORDER BY key; UPDATE article SET views = 0",
                DbBackend::Postgres,
            ),
            ("SELECT 1; UPDATE (article) SET views = 0", DbBackend::MySql),
            // Quoting and comment forms that end sooner, or later, than they seem to.
            (
                "SELECT \"x\\\"\"; DELETE FROM article; SELECT \"y\"",
                DbBackend::MySql,
            ),
            ("SELECT 1--1; DELETE FROM article", DbBackend::MySql),
            ("SELECT 1 /*! ; DELETE FROM article */", DbBackend::MySql),
            (
                "SELECT $$'$$; DELETE FROM article; SELECT $$'$$",
                DbBackend::Postgres,
            ),
            ("SELECT $q$'$q$; DELETE FROM article", DbBackend::Postgres),
            (
                "SELECT 1 AS [']; DELETE FROM article; SELECT 1 AS [']",
                DbBackend::Sqlite,
            ),
        ] {
            let s = scan(sql, backend);
            assert_eq!(s.kind, Kind::OtherWrite, "{sql}");
            assert!(s.names.contains(&"article".to_owned()), "{sql}");
        }
        // Comments that really are comments hide what is in them. (A dollar-quoted
        // body is read as code, since `DO` and functions run it.)
        for (sql, backend) in [
            ("SELECT 1 # DELETE FROM article", DbBackend::MySql),
            ("SELECT 1 -- DELETE FROM article", DbBackend::MySql),
        ] {
            assert_eq!(scan(sql, backend).kind, Kind::Read, "{sql}");
        }
    }

    #[test]
    fn code_in_bodies_and_odd_names_is_seen() {
        for (sql, backend) in [
            (
                "DO $$ BEGIN DELETE FROM article; END $$",
                DbBackend::Postgres,
            ),
            ("DO 'BEGIN DELETE FROM article; END'", DbBackend::Postgres),
            ("PREPARE s FROM 'DELETE FROM article'", DbBackend::MySql),
            ("PREPARE s FROM \"DELETE FROM article\"", DbBackend::MySql),
            ("PREPARE s FROM 'DELETE FROM art\\icle'", DbBackend::MySql),
            (
                "SELECT 1; DO 'BEGIN DELETE FROM article; END'",
                DbBackend::Postgres,
            ),
            (
                "SELECT naïvE'\\'; DELETE FROM article; SELECT '",
                DbBackend::Postgres,
            ),
            (
                "CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM article $$ LANGUAGE sql",
                DbBackend::Postgres,
            ),
            (
                "WITH a AS (SELECT 1 AS é$x$), d AS (DELETE FROM article RETURNING 1) SELECT 1 AS é$x$ FROM d",
                DbBackend::Postgres,
            ),
            (
                "WITH t AS (SELECT 1 AS for) UPDATE article SET views = 0",
                DbBackend::Postgres,
            ),
            (
                "SELECT 1 FOR /* x */ UPDATE; DELETE FROM article",
                DbBackend::MySql,
            ),
            // Under ANSI_QUOTES this is an identifier, then a DELETE.
            (
                "SELECT \"x\\\"; DELETE FROM article; SELECT \"",
                DbBackend::MySql,
            ),
        ] {
            let s = scan(sql, backend);
            assert_eq!(s.kind, Kind::OtherWrite, "{sql}");
            assert!(s.names.contains(&"article".to_owned()), "{sql}");
        }
        assert_eq!(
            scan(
                "WITH t AS (SELECT 1 AS x) UPDATE article SET views = 0",
                DbBackend::Sqlite
            )
            .kind,
            Kind::OtherWrite
        );
        // Reads stay reads: an escaped quote in a MySQL string, SQL prepared as a read,
        // MySQL's DO of an expression.
        for (sql, backend) in [
            (
                "SELECT * FROM article WHERE title = 'don\\'t drop it'",
                DbBackend::MySql,
            ),
            ("PREPARE s FROM 'SELECT * FROM article'", DbBackend::MySql),
            ("PREPARE q AS SELECT * FROM article", DbBackend::Postgres),
            ("DO GET_LOCK('article', 1)", DbBackend::MySql),
        ] {
            assert_eq!(scan(sql, backend).kind, Kind::Read, "{sql}");
        }
        // Dollar quotes nested past the limit are read as text, without recursing.
        let deep: String = (0..5000).map(|n| format!("$t{n}$ ")).collect();
        let deep = format!("SELECT {deep}");
        assert_eq!(scan(&deep, DbBackend::Postgres).kind, Kind::Read);
        // Past the limit every word counts: no quote or comment hides one.
        let open: String = (0..9).map(|n| format!("DO $a{n}$ ")).collect();
        let hidden = format!("{open}PERFORM $z$/*$z$; DELETE FROM article;");
        let s = scan(&hidden, DbBackend::Postgres);
        assert_eq!(s.kind, Kind::OtherWrite);
        assert!(s.names.contains(&"article".to_owned()));
    }

    #[test]
    fn backslashes_escape_only_where_the_backend_says_so() {
        // On SQLite and PostgreSQL 'C:\' is a whole literal: the DELETE after it is seen.
        let sql = "UPDATE note SET p = 'C:\\'; DELETE FROM article";
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            assert!(scan(sql, backend).names.contains(&"article".to_owned()));
        }
        // On MySQL the backslash escapes the quote, so the literal runs on.
        let mysql = "UPDATE note SET p = 'it\\'s'; DELETE FROM article";
        assert!(
            scan(mysql, DbBackend::MySql)
                .names
                .contains(&"article".to_owned())
        );
        // PostgreSQL's E'' strings take backslash escapes.
        let e = "SELECT E'it\\'s' FROM t; DELETE FROM article";
        assert!(
            scan(e, DbBackend::Postgres)
                .names
                .contains(&"article".to_owned())
        );
        let not_e = "SELECT name'x\\' FROM t";
        assert!(
            scan(not_e, DbBackend::Postgres)
                .names
                .contains(&"t".to_owned())
        );
    }

    #[test]
    fn an_unclosed_identifier_never_cuts_a_character() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
            let s = scan("SELECT \"é", backend);
            assert!(s.names.contains(&"é".to_owned()));
            let s = scan("SELECT `é", backend);
            assert_eq!(s.kind, Kind::Read);
        }
    }
}
