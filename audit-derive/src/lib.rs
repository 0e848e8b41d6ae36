//! Derive macro for [sea-orm-audit](https://docs.rs/sea-orm-audit). Use it through the
//! `sea_orm_audit` crate, which re-exports it as `sea_orm_audit::Audited`.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

mod ast;
mod attr;
mod case;
mod ctxt;
mod expand;
mod fallback;
mod valid;

/// Records every insert, update and delete of a SeaORM entity in the audit log.
///
/// Put it next to `DeriveEntityModel` on the entity's `Model`, and leave out
/// `impl ActiveModelBehavior for ActiveModel {}`: the derive implements
/// `ActiveModelBehavior` itself, so that the audit row is written by the same
/// connection, inside the same transaction, as the change it describes.
///
/// ```
/// # mod article {
/// use sea_orm::entity::prelude::*;
/// use sea_orm_audit::Audited;
///
/// #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
/// #[sea_orm(table_name = "article")]
/// #[audited(exclude(body_html), repr = "title")]
/// pub struct Model {
///     #[sea_orm(primary_key)]
///     pub id: i64,
///     pub title: String,
///     pub body_html: String,
///     #[audited(mask)]
///     pub editor_token: Option<String>,
/// }
///
/// #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// pub enum Relation {}
/// # }
/// # fn main() {}
/// ```
///
/// # Options
///
/// On the struct, `#[audited(...)]` (may be repeated; all are combined):
///
/// - `exclude(field, ...)`: these fields never reach the log, not even the fact that they
///   changed. For derived or bulky columns.
/// - `mask(field, ...)`: the log records that the field changed, never its values.
///   For secrets.
/// - `unmask(field, ...)`: exempts a field from the runtime's default masking of
///   secret-looking column names (`sea_orm_audit::DEFAULT_SECRET_NAMES`).
/// - `repr = "field"`: the audit row's `object_repr` is that field's value, through
///   `ToString`. Without it, `object_repr` is `table#primary-key`.
/// - `custom_hooks`: you have hooks of your own. Implement `sea_orm_audit::AuditBehavior`
///   for `ActiveModel` (same methods as `ActiveModelBehavior`) instead of
///   `ActiveModelBehavior`; the derive calls yours around the audit.
/// - `crate = "path"`: where the runtime crate is, for crates that re-export it
///   (default `::sea_orm_audit`).
///
/// On a field, `#[audited(exclude)]`, `#[audited(mask)]` or `#[audited(unmask)]` is the
/// same as naming that field in the struct-level list.
///
/// With hooks of your own:
///
/// ```
/// # mod article {
/// # use sea_orm::entity::prelude::*;
/// # use sea_orm_audit::Audited;
/// use sea_orm::ActiveValue::Set;
///
/// #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
/// #[sea_orm(table_name = "article")]
/// #[audited(custom_hooks)]
/// pub struct Model {
///     #[sea_orm(primary_key)]
///     pub id: i64,
///     pub revision: i32,
/// }
/// # #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// # pub enum Relation {}
///
/// #[sea_orm_audit::async_trait]
/// impl sea_orm_audit::AuditBehavior for ActiveModel {
///     async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
///     where
///         C: ConnectionTrait,
///     {
///         // Runs before the audit reads the row: the new revision is part of the diff.
///         let revision = if insert { 0 } else { self.revision.clone().take().unwrap_or(0) };
///         self.revision = Set(revision + 1);
///         Ok(self)
///     }
/// }
/// # }
/// # fn main() {}
/// ```
///
/// # Details
///
/// - Fields are named by their Rust name; the log uses column names, so a field with
///   `#[sea_orm(column_name = "...")]`, or under a struct-level
///   `#[sea_orm(rename_all = "...")]`, is recorded under its column name.
/// - The primary key cannot be excluded or masked: it is stored as the row's `object_pk`.
/// - A field may be on one list only, and `repr` cannot name an excluded or masked field
///   (`object_repr` would show the value).
/// - Only columns can be named: not `#[sea_orm(ignore)]` fields, nor the `HasOne`,
///   `HasMany` and `BelongsTo` fields of the `#[sea_orm::model]` format (there the derive
///   also runs on the generated `ModelEx`, where it does nothing).
/// - Every mistake is reported in the same compile, each at the offending token.
#[proc_macro_derive(Audited, attributes(audited))]
pub fn derive_audited(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input).into()
}

fn derive(node: &DeriveInput) -> proc_macro2::TokenStream {
    let cx = ctxt::Ctxt::new();
    let input = ast::Input::from_syn(&cx, node);
    valid::check(&cx, &input);
    match cx.check() {
        Ok(()) => expand::derive(&input),
        Err(error) => fallback::expand(&input, error),
    }
}

#[cfg(test)]
mod tests {
    use super::derive;
    use syn::parse_quote;

    fn expand(input: syn::DeriveInput) -> String {
        derive(&input).to_string()
    }

    fn errors(input: syn::DeriveInput) -> Vec<String> {
        let cx = crate::ctxt::Ctxt::new();
        let ast = crate::ast::Input::from_syn(&cx, &input);
        crate::valid::check(&cx, &ast);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn meta_lists_column_names() {
        let out = expand(parse_quote! {
            #[sea_orm(table_name = "article")]
            #[audited(exclude(body_html), mask(token), unmask(password_hint))]
            pub struct Model {
                #[sea_orm(primary_key)]
                pub id: i64,
                #[sea_orm(column_name = "body")]
                pub body_html: String,
                pub r#token: String,
                pub password_hint: String,
            }
        });
        assert!(
            out.contains(r#"AuditMeta :: new (& ["body"] , & ["token"] , & ["password_hint"] ,"#),
            "{out}"
        );
        assert!(out.contains("impl :: sea_orm_audit :: AuditBehavior for ActiveModel { }"));
        assert!(!out.contains("audit_repr"));
    }

    #[test]
    fn rename_all_applies_to_columns() {
        let out = expand(parse_quote! {
            #[sea_orm(table_name = "article", rename_all = "camelCase")]
            #[audited(exclude(body_html))]
            pub struct Model {
                #[sea_orm(primary_key)]
                pub id: i64,
                pub body_html: String,
            }
        });
        assert!(out.contains(r#"& ["bodyHtml"]"#), "{out}");
    }

    #[test]
    fn crate_override_and_custom_hooks() {
        let out = expand(parse_quote! {
            #[sea_orm(table_name = "article")]
            #[audited(crate = "my_app::audit", custom_hooks, repr = "id")]
            pub struct Model {
                #[sea_orm(primary_key)]
                pub id: i64,
            }
        });
        assert!(!out.contains("sea_orm_audit"), "{out}");
        assert!(out.contains("impl my_app :: audit :: AuditedModel for Model"));
        assert!(!out.contains("AuditBehavior for ActiveModel"));
        assert!(out.contains("ToString :: to_string (& self . id)"));
    }

    #[test]
    fn model_ex_expands_to_nothing() {
        let out = expand(parse_quote! {
            #[sea_orm(table_name = "article")]
            #[audited(mask(nope))]
            pub struct ModelEx {
                #[sea_orm(primary_key)]
                pub id: i64,
                #[sea_orm(has_many)]
                pub comments: HasMany<super::comment::Entity>,
            }
        });
        assert_eq!(out, "");
    }

    #[test]
    fn errors_are_accumulated_in_source_order() {
        let errors = errors(parse_quote! {
            #[sea_orm(table_name = "article")]
            #[audited(exclude(nope, id), frobnicate, repr = "secret", repr = "id")]
            #[audited(mask(secret, secret))]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub id: i64,
                #[audited(exclude)]
                pub secret: String,
                #[sea_orm(ignore)]
                #[audited(unmask)]
                pub cache: String,
            }
        });
        assert_eq!(
            errors,
            [
                "unknown audited attribute `frobnicate`",
                "duplicate audited attribute `repr`",
                "`nope` is not a field of this Model",
                "cannot exclude primary key `id`: it is recorded as the audit row's object_pk",
                "duplicate field `secret` in audited `mask`",
                "`secret` is both excluded and masked; keep one",
                "`cache` is not a column (it has #[sea_orm(ignore)]), so it is never audited",
                "`repr` cannot use `secret`: it is masked, and object_repr would show its value",
            ]
        );
    }

    #[test]
    fn not_a_model() {
        let message = crate::valid::NOT_A_MODEL;
        assert_eq!(
            errors(parse_quote!(
                pub struct Model {
                    pub id: i64,
                }
            )),
            [message]
        );
        assert_eq!(
            errors(parse_quote!(
                #[sea_orm(table_name = "a")]
                pub struct Article {
                    pub id: i64,
                }
            )),
            [message]
        );
        assert_eq!(
            errors(parse_quote!(
                #[sea_orm(table_name = "a")]
                pub enum Model {
                    A,
                }
            )),
            [message]
        );
        // Not even a struct called `Model`: no fallback impl, only the error.
        let out = expand(parse_quote!(
            #[sea_orm(table_name = "a")]
            pub enum Model {
                A,
            }
        ));
        assert!(!out.contains("ActiveModelBehavior"), "{out}");
    }
}
