use crate::attr::{self, Container, Entry};
use crate::case::{self, CaseStyle};
use crate::ctxt::Ctxt;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Type};

/// A `#[derive(Audited)]` input, borrowed from the syn tree.
pub(crate) struct Input<'a> {
    pub(crate) original: &'a DeriveInput,
    pub(crate) ident: &'a Ident,
    pub(crate) role: Role,
    pub(crate) shape: Shape<'a>,
    pub(crate) table_name: Option<LitStr>,
    /// `#[sea_orm(model_ex)]`, which `#[sea_orm::model]` puts on the `Model` it keeps:
    /// the relation fields were moved out of this struct into `ModelEx`.
    pub(crate) relations_moved: bool,
    pub(crate) attrs: Container,
    pub(crate) fields: Vec<Field<'a>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// Anything but a `ModelEx`; `valid` decides whether it is a SeaORM `Model`.
    Model,
    /// The `ModelEx` that `#[sea_orm::model]` / `#[sea_orm::compact_model]` makes from the
    /// user's struct. It inherits the derive list (so `Audited` runs on it too), all of the
    /// user's fields, and the struct's `#[audited]`, while `Model` keeps only the columns.
    /// Only its relation fields are looked at: `Model` already checks everything else.
    ModelEx,
}

pub(crate) enum Shape<'a> {
    Named,
    Tuple(&'a syn::FieldsUnnamed),
    Unit,
    Enum(&'a syn::token::Enum),
    Union(&'a syn::token::Union),
}

pub(crate) struct Field<'a> {
    pub(crate) original: &'a syn::Field,
    pub(crate) ident: &'a Ident,
    /// The Rust name, without `r#`.
    pub(crate) name: String,
    /// The database column name.
    pub(crate) column: String,
    pub(crate) kind: FieldKind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FieldKind {
    Column,
    PrimaryKey,
    /// `#[sea_orm(ignore)]`: on the struct, not in the table.
    Ignored,
    /// `HasOne`/`HasMany`/`BelongsTo` of the 2.0 entity format.
    Relation,
}

impl<'a> Input<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, node: &'a DeriveInput) -> Self {
        let role = if node.ident == "ModelEx" {
            Role::ModelEx
        } else {
            Role::Model
        };
        let (shape, named) = match &node.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => (Shape::Named, Some(&fields.named)),
                Fields::Unnamed(fields) => (Shape::Tuple(fields), None),
                Fields::Unit => (Shape::Unit, None),
            },
            Data::Enum(data) => (Shape::Enum(&data.enum_token), None),
            Data::Union(data) => (Shape::Union(&data.union_token), None),
        };
        let sea_orm = SeaOrmContainer::from_attrs(&node.attrs);
        let mut attrs = match role {
            Role::Model => attr::container(cx, &node.attrs),
            Role::ModelEx => Container::default(),
        };

        let mut fields = Vec::new();
        for field in named.into_iter().flatten() {
            let Some(ident) = &field.ident else { continue };
            let field = Field::from_syn(field, ident, sea_orm.rename_all);
            if role == Role::Model || field.kind == FieldKind::Relation {
                attrs
                    .entries
                    .extend(attr::field(cx, &field.name, &field.original.attrs));
            }
            fields.push(field);
        }

        Input {
            original: node,
            ident: &node.ident,
            role,
            shape,
            table_name: sea_orm.table_name,
            relations_moved: sea_orm.model_ex,
            attrs,
            fields,
        }
    }

    pub(crate) fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|field| field.name == name)
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.attrs.entries
    }

    /// A struct with named fields called `Model`: enough for a fallback
    /// `ActiveModelBehavior` impl to be what the user expects.
    pub(crate) fn is_struct_named_model(&self) -> bool {
        matches!(self.shape, Shape::Named) && self.ident == "Model"
    }
}

impl<'a> Field<'a> {
    fn from_syn(node: &'a syn::Field, ident: &'a Ident, rename_all: Option<CaseStyle>) -> Self {
        let sea_orm = SeaOrmField::from_attrs(&node.attrs);
        let name = ident.unraw().to_string();
        let column = case::column_name(
            &name,
            rename_all,
            sea_orm.column_name.as_deref(),
            sea_orm.enum_name.as_deref(),
        );
        let kind = if sea_orm.relation || is_relation_type(&node.ty) {
            FieldKind::Relation
        } else if sea_orm.ignore {
            FieldKind::Ignored
        } else if sea_orm.primary_key {
            FieldKind::PrimaryKey
        } else {
            FieldKind::Column
        };
        Field {
            original: node,
            ident,
            name,
            column,
            kind,
        }
    }
}

// === #[sea_orm] ===
//
// Read leniently: mistakes in these attributes are sea-orm's to report.

#[derive(Default)]
struct SeaOrmContainer {
    table_name: Option<LitStr>,
    rename_all: Option<CaseStyle>,
    model_ex: bool,
}

impl SeaOrmContainer {
    fn from_attrs(attrs: &[syn::Attribute]) -> Self {
        let mut this = SeaOrmContainer::default();
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("sea_orm")) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table_name") {
                    this.table_name = Some(meta.value()?.parse()?);
                } else if meta.path.is_ident("rename_all") {
                    let style: LitStr = meta.value()?.parse()?;
                    this.rename_all = CaseStyle::parse(&style.value());
                } else if meta.path.is_ident("model_ex") {
                    this.model_ex = true;
                } else {
                    attr::skip_value(&meta)?;
                }
                Ok(())
            });
        }
        this
    }
}

#[derive(Default)]
struct SeaOrmField {
    primary_key: bool,
    ignore: bool,
    relation: bool,
    column_name: Option<String>,
    enum_name: Option<String>,
}

impl SeaOrmField {
    fn from_attrs(attrs: &[syn::Attribute]) -> Self {
        let mut this = SeaOrmField::default();
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("sea_orm")) {
            let _ = attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                if path.is_ident("primary_key") {
                    this.primary_key = true;
                } else if path.is_ident("ignore") {
                    this.ignore = true;
                } else if ["has_one", "has_many", "belongs_to"]
                    .iter()
                    .any(|kind| path.is_ident(kind))
                {
                    this.relation = true;
                } else if path.is_ident("column_name") {
                    this.column_name = Some(meta.value()?.parse::<LitStr>()?.value());
                    return Ok(());
                } else if path.is_ident("enum_name") {
                    this.enum_name = Some(meta.value()?.parse::<LitStr>()?.value());
                    return Ok(());
                }
                attr::skip_value(&meta)
            });
        }
        this
    }
}

/// Mirrors sea-orm's `CompoundType::matches_type`: the last path segment names the wrapper.
fn is_relation_type(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    path.path.segments.last().is_some_and(|segment| {
        segment.ident == "HasOne" || segment.ident == "HasMany" || segment.ident == "BelongsTo"
    })
}
