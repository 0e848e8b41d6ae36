use crate::ast::{Field, FieldKind, Input, Role, Shape};
use crate::attr::{Entry, List};
use crate::ctxt::Ctxt;
use quote::ToTokens;
use std::collections::HashMap;

pub(crate) const NOT_A_MODEL: &str = "#[derive(Audited)] must be used on a SeaORM entity `Model` struct with #[sea_orm(table_name = \"...\")]";

pub(crate) fn check(cx: &Ctxt, input: &Input) {
    if input.role == Role::ModelEx {
        check_entries(cx, input);
        return;
    }
    check_shape(cx, input);
    if matches!(input.shape, Shape::Named) {
        check_entries(cx, input);
        check_repr(cx, input);
    }
}

// The generated code names `Model` and `ActiveModel`, and the rules need the primary key
// and the column names, all of which only the `DeriveEntityModel` format spells out on the
// struct (the expanded format keeps them in hand-written enums, without a table_name).
// One error is enough: the message lists every requirement.
fn check_shape(cx: &Ctxt, input: &Input) {
    let culprit = match input.shape {
        Shape::Enum(token) => Some(token.into_token_stream()),
        Shape::Union(token) => Some(token.into_token_stream()),
        Shape::Tuple(fields) => Some(fields.into_token_stream()),
        Shape::Unit => Some(input.ident.into_token_stream()),
        Shape::Named if input.ident != "Model" || input.table_name.is_none() => {
            Some(input.ident.into_token_stream())
        }
        Shape::Named => None,
    };
    if let Some(culprit) = culprit {
        cx.error_spanned_by(culprit, NOT_A_MODEL);
    }
    // The impls are written for the plain type `Model`; SeaORM models are never generic.
    if !input.original.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.original.generics,
            "#[derive(Audited)] does not support generic parameters",
        );
    }
}

fn check_entries(cx: &Ctxt, input: &Input) {
    // Where each field name was first listed, to catch a second listing.
    let mut seen: HashMap<&str, List> = HashMap::new();
    for entry in input.entries() {
        let Some(field) = column_named(cx, input, &entry.name, &entry.token) else {
            continue;
        };
        match seen.get(entry.name.as_str()) {
            None => {
                seen.insert(&entry.name, entry.list);
                check_primary_key(cx, entry, field);
            }
            // Listing a field twice is harmless but always a slip, often a copy-paste of
            // the line meant for another field.
            Some(&first) if first == entry.list => cx.error_spanned_by(
                &entry.token,
                format!(
                    "duplicate field `{}` in audited `{}`",
                    entry.name,
                    entry.list.keyword()
                ),
            ),
            // Each pair contradicts itself: an excluded field is never recorded, so masking
            // or unmasking it means nothing, and a field cannot be both hidden and exempt
            // from hiding. The user has to say which one they meant.
            Some(&first) => {
                let (a, b) = if first < entry.list {
                    (first, entry.list)
                } else {
                    (entry.list, first)
                };
                cx.error_spanned_by(
                    &entry.token,
                    format!(
                        "`{}` is both {} and {}; keep one",
                        entry.name,
                        a.participle(),
                        b.participle()
                    ),
                );
            }
        }
    }
}

// The primary key is stored apart from the diff, as the audit row's `object_pk`, and is
// what finds an object's history: hiding it would be pointless (it is in `object_pk`
// anyway) and dropping it would orphan the rows.
fn check_primary_key(cx: &Ctxt, entry: &Entry, field: &Field) {
    if field.kind == FieldKind::PrimaryKey && entry.list != List::Unmask {
        cx.error_spanned_by(
            &entry.token,
            format!(
                "cannot {} primary key `{}`: it is recorded as the audit row's object_pk",
                entry.list.keyword(),
                field.name
            ),
        );
    }
}

// `repr` is stored verbatim in `object_repr`, next to the diff: taken from an excluded or
// masked field it would leak exactly the value those options keep out of the log.
fn check_repr(cx: &Ctxt, input: &Input) {
    let Some(lit) = &input.attrs.repr else { return };
    let name = lit.value();
    if column_named(cx, input, &name, lit).is_none() {
        return;
    }
    let hidden = input
        .entries()
        .iter()
        .find(|entry| entry.name == name && entry.list != List::Unmask);
    if let Some(entry) = hidden {
        cx.error_spanned_by(
            lit,
            format!(
                "`repr` cannot use `{name}`: it is {}, and object_repr would show its value",
                entry.list.participle()
            ),
        );
    }
}

// Only columns reach the audit log: a name that is not a field is a typo, and a field that
// is not a column (`#[sea_orm(ignore)]`, a relation) is never recorded, so an option on it
// would silently do nothing.
fn column_named<'i, 'a>(
    cx: &Ctxt,
    input: &'i Input<'a>,
    name: &str,
    token: impl ToTokens,
) -> Option<&'i Field<'a>> {
    let Some(field) = input.field(name) else {
        // Under `#[sea_orm::model]` a relation field the user can see in their struct is
        // already gone from this one, so "not a field" would read as nonsense.
        let mut message = if input.relations_moved {
            format!("`{name}` is not a column of this Model (relation fields are never audited)")
        } else {
            format!("`{name}` is not a field of this Model")
        };
        if let Some(close) = closest_column(input, name) {
            message = format!("{message}; did you mean `{close}`?");
        }
        cx.error_spanned_by(token, message);
        return None;
    };
    match field.kind {
        FieldKind::Column | FieldKind::PrimaryKey => Some(field),
        FieldKind::Ignored => {
            cx.error_spanned_by(
                token,
                format!(
                    "`{name}` is not a column (it has #[sea_orm(ignore)]), so it is never audited"
                ),
            );
            None
        }
        FieldKind::Relation => {
            cx.error_spanned_by(
                token,
                format!("`{name}` is a relation, not a column, so it is never audited"),
            );
            None
        }
    }
}

/// The column whose name is a likely typo of `name`.
fn closest_column<'i>(input: &'i Input, name: &str) -> Option<&'i str> {
    let limit = (name.chars().count() / 3).max(1);
    input
        .fields
        .iter()
        .filter(|field| matches!(field.kind, FieldKind::Column | FieldKind::PrimaryKey))
        .map(|field| (edit_distance(name, &field.name), field.name.as_str()))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance, in chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("editor_tokn", "editor_token"), 1);
        assert_eq!(edit_distance("titel", "title"), 2);
        assert_eq!(edit_distance("", "id"), 2);
        assert_eq!(edit_distance("body", "body_html"), 5);
    }
}
