//! Column names exactly as sea-orm-macros 2.0.4 derives them (`derives/entity_model.rs`,
//! `derives/column.rs`, `derives/case_style.rs`), so that `AuditMeta` names the same
//! columns the runtime sees.

use heck::{
    ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToTitleCase, ToUpperCamelCase,
};

/// A `#[sea_orm(rename_all = "...")]` style.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CaseStyle {
    Camel,
    Kebab,
    Mixed,
    ShoutySnake,
    Snake,
    Title,
    Upper,
    Lower,
    ScreamingKebab,
    Pascal,
}

impl CaseStyle {
    /// The spellings sea-orm accepts; `None` for the rest (sea-orm reports those).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "camel_case" | "PascalCase" => CaseStyle::Pascal,
            "camelCase" => CaseStyle::Camel,
            "snake_case" | "snek_case" => CaseStyle::Snake,
            "kebab_case" | "kebab-case" => CaseStyle::Kebab,
            "SCREAMING-KEBAB-CASE" => CaseStyle::ScreamingKebab,
            "shouty_snake_case" | "shouty_snek_case" | "SCREAMING_SNAKE_CASE" => {
                CaseStyle::ShoutySnake
            }
            "title_case" => CaseStyle::Title,
            "mixed_case" => CaseStyle::Mixed,
            "lowercase" => CaseStyle::Lower,
            "UPPERCASE" => CaseStyle::Upper,
            _ => return None,
        })
    }

    fn apply(self, ident: &str) -> String {
        match self {
            CaseStyle::Pascal => ident.to_upper_camel_case(),
            CaseStyle::Kebab => ident.to_kebab_case(),
            CaseStyle::Mixed => ident.to_lower_camel_case(),
            CaseStyle::ShoutySnake => ident.to_shouty_snake_case(),
            CaseStyle::Snake => ident.to_snake_case(),
            CaseStyle::Title => ident.to_title_case(),
            CaseStyle::Upper => ident.to_uppercase(),
            CaseStyle::Lower => ident.to_lowercase(),
            CaseStyle::ScreamingKebab => ident.to_kebab_case().to_uppercase(),
            CaseStyle::Camel => {
                let pascal = ident.to_upper_camel_case();
                let mut chars = pascal.chars();
                chars
                    .next()
                    .map(|first| first.to_lowercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        }
    }
}

/// The database column of field `name` (already without `r#`).
///
/// Precedence as in sea-orm: `column_name`, then the struct's `rename_all` (applied to the
/// `UpperCamelCase` variant name), then snake case of the field name, or of `enum_name`
/// when the field name is already in snake case.
pub(crate) fn column_name(
    name: &str,
    rename_all: Option<CaseStyle>,
    column_name: Option<&str>,
    enum_name: Option<&str>,
) -> String {
    if let Some(column_name) = column_name {
        return column_name.to_owned();
    }
    let variant = name.to_upper_camel_case();
    if let Some(style) = rename_all {
        return style.apply(&variant);
    }
    if name != variant.to_snake_case() {
        return name.to_snake_case();
    }
    enum_name.unwrap_or(&variant).to_snake_case()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_keep_their_name() {
        assert_eq!(column_name("body_html", None, None, None), "body_html");
        assert_eq!(column_name("id", None, None, None), "id");
        assert_eq!(column_name("field_1", None, None, None), "field_1");
    }

    #[test]
    fn explicit_column_name_wins() {
        let camel = CaseStyle::parse("camelCase");
        assert_eq!(
            column_name("body_html", camel, Some("body"), Some("X")),
            "body"
        );
    }

    #[test]
    fn rename_all_styles() {
        let cases = [
            ("camelCase", "bodyHtml"),
            ("PascalCase", "BodyHtml"),
            ("kebab-case", "body-html"),
            ("SCREAMING_SNAKE_CASE", "BODY_HTML"),
            ("SCREAMING-KEBAB-CASE", "BODY-HTML"),
            ("snake_case", "body_html"),
            ("mixed_case", "bodyHtml"),
            ("title_case", "Body Html"),
            ("UPPERCASE", "BODYHTML"),
            ("lowercase", "bodyhtml"),
        ];
        for (style, expected) in cases {
            let style = CaseStyle::parse(style);
            assert!(style.is_some());
            assert_eq!(column_name("body_html", style, None, None), expected);
        }
        assert_eq!(CaseStyle::parse("Camel"), None);
    }

    #[test]
    fn non_snake_field_is_snake_cased() {
        assert_eq!(column_name("userID", None, None, None), "user_id");
    }

    #[test]
    fn enum_name_renames_the_default_column() {
        assert_eq!(
            column_name("kind", None, None, Some("Category")),
            "category"
        );
    }
}
