//! Askama templates (under `audit-core/templates/admin/`) and the values they show.
//!
//! Every value from the database reaches HTML through `{{ }}`, which askama escapes for
//! `.html` templates; no filter in these templates marks anything safe. Values are turned
//! into display text here, in Rust, so the templates have no logic worth testing.

use askama::Template;
use serde_json::Value as Json;

/// The stylesheet, served at `<mount>/admin.css`.
pub(crate) const CSS: &str = include_str!("../../templates/admin/admin.css");

/// Values shorter than this (and on one line) are shown inline; longer ones are folded.
const FOLD_CHARS: usize = 200;
/// Longest text shown in a list cell.
const CELL_CHARS: usize = 80;

/// What every page needs: where the admin is mounted, who is looking, the CSRF token.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chrome {
    pub(crate) base: String,
    /// The dashboard: `base` itself, since a router nested at `/audit` answers `/audit`
    /// and not `/audit/`.
    pub(crate) home: String,
    pub(crate) user: String,
    pub(crate) superuser: bool,
    pub(crate) csrf: String,
    pub(crate) notices: Vec<String>,
}

/// A displayed value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    /// SQL NULL or JSON null.
    Null,
    /// Not recorded (e.g. no old value on CREATE).
    Absent,
    /// A masked field.
    Masked,
    Text(String),
    /// Preformatted (pretty JSON, stack traces).
    Pre(String),
    Link(String, String),
    /// A long value: a one-line summary and the whole value in `<details>`.
    Folded(String, String),
}

impl Val {
    pub(crate) fn opt(s: Option<&str>) -> Self {
        s.map_or(Val::Null, Val::text)
    }

    /// Text, folded when long or multi-line.
    pub(crate) fn text(s: &str) -> Self {
        if s.chars().count() > FOLD_CHARS || s.contains('\n') {
            Val::Folded(summary(s), s.to_owned())
        } else {
            Val::Text(s.to_owned())
        }
    }

    /// Preformatted text (a stack trace), folded when long.
    pub(crate) fn pre(s: Option<&str>) -> Self {
        match s {
            None => Val::Null,
            Some(s) if s.lines().count() > 12 || s.chars().count() > 2000 => {
                Val::Folded(summary(s), s.to_owned())
            }
            Some(s) => Val::Pre(s.to_owned()),
        }
    }

    /// A JSON value: strings as text, null as null, anything else pretty-printed.
    pub(crate) fn json(v: Option<&Json>) -> Self {
        match v {
            None | Some(Json::Null) => Val::Null,
            Some(Json::String(s)) => Val::text(s),
            Some(v @ (Json::Bool(_) | Json::Number(_))) => Val::Text(v.to_string()),
            Some(v) => {
                let pretty = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
                if pretty.lines().count() > 12 || pretty.chars().count() > FOLD_CHARS {
                    Val::Folded(summary(&v.to_string()), pretty)
                } else {
                    Val::Pre(pretty)
                }
            }
        }
    }
}

/// The first line of `s`, cut to 80 characters with an ellipsis when anything was left out.
fn summary(s: &str) -> String {
    let first = s.lines().next().unwrap_or_default();
    let cut: String = first.chars().take(CELL_CHARS).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// `n` bytes as B, KB, MB, GB or TB with one decimal (1 KB = 1024 B).
pub(crate) fn human_size(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    if n.unsigned_abs() < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// One cell of a list.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cell {
    pub(crate) text: String,
    pub(crate) href: Option<String>,
    pub(crate) class: &'static str,
}

impl Cell {
    /// Text cut to fit a list column; nulls shown as an empty cell.
    pub(crate) fn text(s: Option<&str>) -> Self {
        Self {
            text: s.map(summary).unwrap_or_default(),
            ..Self::default()
        }
    }

    pub(crate) fn link(s: impl Into<String>, href: String) -> Self {
        Self {
            text: s.into(),
            href: Some(href),
            class: "",
        }
    }

    pub(crate) fn class(mut self, class: &'static str) -> Self {
        self.class = class;
        self
    }
}

/// An option of a select.
#[derive(Clone, Debug)]
pub(crate) struct Opt {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// How a filter is entered.
#[derive(Clone, Debug)]
pub(crate) enum FieldKind {
    Text,
    Date,
    Select(Vec<Opt>),
}

/// One filter of a list page.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) value: String,
    pub(crate) kind: FieldKind,
}

impl Field {
    pub(crate) fn text(name: &'static str, label: &'static str, value: &Option<String>) -> Self {
        Self {
            name,
            label,
            value: value.clone().unwrap_or_default(),
            kind: FieldKind::Text,
        }
    }

    pub(crate) fn date(name: &'static str, label: &'static str, value: &Option<String>) -> Self {
        Self {
            kind: FieldKind::Date,
            ..Self::text(name, label, value)
        }
    }

    /// A select with an "any" first option; `choices` are values shown as themselves.
    pub(crate) fn select(
        name: &'static str,
        label: &'static str,
        value: &Option<String>,
        choices: &[(&str, &str)],
    ) -> Self {
        let current = value.clone().unwrap_or_default();
        let mut options = vec![Opt {
            value: String::new(),
            label: "any".into(),
            selected: current.is_empty(),
        }];
        options.extend(choices.iter().map(|(v, l)| Opt {
            value: (*v).into(),
            label: (*l).into(),
            selected: current == *v,
        }));
        Self {
            name,
            label,
            value: current,
            kind: FieldKind::Select(options),
        }
    }
}

/// A list page: filters, optional date drill-down, rows, keyset pager.
#[derive(Template)]
#[template(path = "admin/list.html")]
pub(crate) struct ListPage {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) action: String,
    pub(crate) filters: Vec<Field>,
    pub(crate) drill: Vec<Cell>,
    pub(crate) headers: Vec<&'static str>,
    pub(crate) rows: Vec<Vec<Cell>>,
    pub(crate) first: Option<String>,
    pub(crate) next: Option<String>,
}

/// One changed field: name, then the old and new values.
#[derive(Clone, Debug)]
pub(crate) struct ChangeRow {
    pub(crate) field: String,
    pub(crate) cells: [Val; 2],
}

/// Builds the changes table from `{"field": {"old": …, "new": …}}` (or `{"masked": true}`).
/// A value that is not in that shape is shown as one pretty-printed row rather than lost.
pub(crate) fn change_rows(changes: Option<&Json>) -> Vec<ChangeRow> {
    let Some(Json::Object(map)) = changes else {
        return match changes {
            None | Some(Json::Null) => Vec::new(),
            Some(other) => vec![ChangeRow {
                field: "(changes)".into(),
                cells: [Val::Absent, Val::json(Some(other))],
            }],
        };
    };
    map.iter()
        .map(|(field, change)| {
            let cells = match change {
                Json::Object(c) if c.get("masked") == Some(&Json::Bool(true)) => {
                    [Val::Masked, Val::Masked]
                }
                Json::Object(c) if c.contains_key("old") || c.contains_key("new") => {
                    let side = |k: &str| c.get(k).map_or(Val::Absent, |v| Val::json(Some(v)));
                    [side("old"), side("new")]
                }
                other => [Val::Absent, Val::json(Some(other))],
            };
            ChangeRow {
                field: field.clone(),
                cells,
            }
        })
        .collect()
}

/// The resolve form of an unresolved system event.
#[derive(Clone, Debug)]
pub(crate) struct ResolveForm {
    pub(crate) action: String,
}

/// A detail page: every column, then optionally the changes table and the resolve form.
#[derive(Template)]
#[template(path = "admin/detail.html")]
pub(crate) struct DetailPage {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) links: Vec<(String, String)>,
    pub(crate) fields: Vec<(&'static str, Val)>,
    pub(crate) changes: Option<Vec<ChangeRow>>,
    pub(crate) resolve: Option<ResolveForm>,
}

/// One entry of an object's timeline.
#[derive(Clone, Debug)]
pub(crate) struct TimelineEntry {
    pub(crate) when: String,
    pub(crate) href: String,
    pub(crate) action: String,
    pub(crate) actor: String,
    pub(crate) summary: String,
}

/// An object's history: its state at a chosen time, and its timeline.
#[derive(Template)]
#[template(path = "admin/history.html")]
pub(crate) struct HistoryPage {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) action: String,
    pub(crate) table: String,
    pub(crate) pk: String,
    pub(crate) at: String,
    pub(crate) at_label: String,
    /// Whether any CREATE/UPDATE/DELETE row was at or before the time.
    pub(crate) recorded: bool,
    /// Deleted by then (`fields` is then the state just before).
    pub(crate) deleted: bool,
    pub(crate) fields: Vec<(String, Val)>,
    pub(crate) timeline: Vec<TimelineEntry>,
    pub(crate) truncated: bool,
}

/// One row of a dashboard table.
#[derive(Clone, Debug)]
pub(crate) struct SummaryRow {
    pub(crate) key: String,
    pub(crate) href: String,
    pub(crate) day: i64,
    pub(crate) week: i64,
    pub(crate) month: i64,
}

/// One dashboard table.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub(crate) title: &'static str,
    pub(crate) key_label: &'static str,
    pub(crate) rows: Vec<SummaryRow>,
    pub(crate) total: (i64, i64, i64),
}

/// The dashboard: counts for the last 1, 7 and 30 days.
#[derive(Template)]
#[template(path = "admin/dashboard.html")]
pub(crate) struct DashboardPage {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) unresolved: i64,
    pub(crate) sections: Vec<Section>,
}

/// The prune page: pick a date, see the counts, confirm with a POST.
#[derive(Template)]
#[template(path = "admin/prune.html")]
pub(crate) struct PrunePage {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) action: String,
    pub(crate) before: String,
    pub(crate) counts: Option<Vec<(&'static str, u64)>>,
    pub(crate) total: u64,
}

/// A message (an error, or the result of a write) with an optional link.
#[derive(Template)]
#[template(path = "admin/message.html")]
pub(crate) struct MessagePage {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) link: Option<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_human_readable() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GB");
    }

    #[test]
    fn changes_become_rows() {
        let rows = change_rows(Some(&json!({
            "title": {"old": "a", "new": "b"},
            "secret": {"masked": true},
            "tags": {"new": ["x", "y"]},
            "gone": {"old": null},
        })));
        let by = |f: &str| rows.iter().find(|r| r.field == f).map(|r| r.cells.clone());
        assert_eq!(
            by("title"),
            Some([Val::Text("a".into()), Val::Text("b".into())])
        );
        assert_eq!(by("secret"), Some([Val::Masked, Val::Masked]));
        assert_eq!(
            by("tags"),
            Some([Val::Absent, Val::Pre("[\n  \"x\",\n  \"y\"\n]".into())])
        );
        assert_eq!(by("gone"), Some([Val::Null, Val::Absent]));
    }

    #[test]
    fn long_text_is_folded() {
        let long = "é".repeat(500);
        let Val::Folded(summary, full) = Val::text(&long) else {
            panic!("not folded")
        };
        assert_eq!(full, long);
        assert_eq!(summary.chars().count(), 81);
    }

    #[test]
    fn values_are_escaped() {
        let page = MessagePage {
            chrome: Chrome::default(),
            title: "<script>t</script>".into(),
            message: "\"><img src=x onerror=alert(1)>".into(),
            link: None,
        };
        let html = page.render().unwrap_or_default();
        assert!(!html.contains("<script>t"));
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&#60;script&#62;t&#60;/script&#62;"));
    }
}
