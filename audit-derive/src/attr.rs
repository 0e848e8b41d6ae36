use crate::ctxt::Ctxt;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Token};

/// The three field lists an `#[audited]` option can add a field to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum List {
    Exclude,
    Mask,
    Unmask,
}

impl List {
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            List::Exclude => "exclude",
            List::Mask => "mask",
            List::Unmask => "unmask",
        }
    }

    pub(crate) fn participle(self) -> &'static str {
        match self {
            List::Exclude => "excluded",
            List::Mask => "masked",
            List::Unmask => "unmasked",
        }
    }

    fn from_path(path: &syn::Path) -> Option<Self> {
        [List::Exclude, List::Mask, List::Unmask]
            .into_iter()
            .find(|list| path.is_ident(list.keyword()))
    }
}

/// One field put on a list, by `exclude(name)` on the struct or `#[audited(exclude)]` on
/// the field itself.
pub(crate) struct Entry {
    pub(crate) list: List,
    /// The Rust field name, without `r#`.
    pub(crate) name: String,
    /// What errors point at: the name inside the list, or the keyword on the field.
    pub(crate) token: Ident,
}

/// The struct-level `#[audited(...)]` options, all attributes combined.
#[derive(Default)]
pub(crate) struct Container {
    pub(crate) entries: Vec<Entry>,
    pub(crate) repr: Option<LitStr>,
    pub(crate) krate: Option<syn::Path>,
    pub(crate) custom_hooks: bool,
}

struct Attr<'c, T> {
    cx: &'c Ctxt,
    name: &'static str,
    value: Option<T>,
}

impl<'c, T> Attr<'c, T> {
    fn none(cx: &'c Ctxt, name: &'static str) -> Self {
        Attr {
            cx,
            name,
            value: None,
        }
    }

    fn set<A: ToTokens>(&mut self, obj: A, value: T) {
        if self.value.is_some() {
            self.cx
                .error_spanned_by(obj, format!("duplicate audited attribute `{}`", self.name));
        } else {
            self.value = Some(value);
        }
    }
}

pub(crate) fn container(cx: &Ctxt, attrs: &[Attribute]) -> Container {
    let mut entries = Vec::new();
    let mut repr = Attr::none(cx, "repr");
    let mut krate = Attr::none(cx, "crate");
    let mut custom_hooks = Attr::none(cx, "custom_hooks");

    for attr in attrs.iter().filter(|attr| attr.path().is_ident("audited")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if let Some(list) = List::from_path(&meta.path) {
                parse_list(cx, &meta, list, &mut entries)?;
            } else if meta.path.is_ident("repr") {
                if let Some(lit) = parse_lit_str(cx, &meta, "repr = \"field\"")? {
                    repr.set(&meta.path, lit);
                }
            } else if meta.path.is_ident("crate") {
                if let Some(lit) = parse_lit_str(cx, &meta, "crate = \"path::to::sea_orm_audit\"")?
                {
                    match lit.parse::<syn::Path>() {
                        Ok(path) => krate.set(&meta.path, path),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            format!("`{}` is not a path, like \"::sea_orm_audit\"", lit.value()),
                        ),
                    }
                }
            } else if meta.path.is_ident("custom_hooks") {
                if parse_flag(cx, &meta, "audited attribute")? {
                    custom_hooks.set(&meta.path, ());
                }
            } else {
                cx.error_spanned_by(
                    &meta.path,
                    format!("unknown audited attribute `{}`", path_to_string(&meta.path)),
                );
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = parsed {
            cx.syn_error(err);
        }
    }

    Container {
        entries,
        repr: repr.value,
        krate: krate.value,
        custom_hooks: custom_hooks.value.is_some(),
    }
}

/// Parses the `#[audited(...)]` attributes of one field into list entries for it.
pub(crate) fn field(cx: &Ctxt, name: &str, attrs: &[Attribute]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("audited")) {
        let parsed = attr.parse_nested_meta(|meta| {
            match (List::from_path(&meta.path), meta.path.get_ident()) {
                (Some(list), Some(ident)) => {
                    if parse_flag(cx, &meta, "audited field attribute")? {
                        entries.push(Entry {
                            list,
                            name: name.to_owned(),
                            token: ident.clone(),
                        });
                    }
                }
                _ => {
                    cx.error_spanned_by(
                        &meta.path,
                        format!(
                            "unknown audited field attribute `{}`",
                            path_to_string(&meta.path)
                        ),
                    );
                    skip_value(&meta)?;
                }
            }
            Ok(())
        });
        if let Err(err) = parsed {
            cx.syn_error(err);
        }
    }
    entries
}

fn parse_list(
    cx: &Ctxt,
    meta: &ParseNestedMeta,
    list: List,
    entries: &mut Vec<Entry>,
) -> syn::Result<()> {
    if !meta.input.peek(syn::token::Paren) {
        cx.error_spanned_by(
            &meta.path,
            format!(
                "expected a list of fields: `{}(field, ...)`",
                list.keyword()
            ),
        );
        return skip_value(meta);
    }
    let content;
    syn::parenthesized!(content in meta.input);
    for item in Punctuated::<Expr, Token![,]>::parse_terminated(&content)? {
        match &item {
            Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
                if let Some(ident) = path.path.get_ident() {
                    entries.push(Entry {
                        list,
                        name: ident.unraw().to_string(),
                        token: ident.clone(),
                    });
                }
            }
            Expr::Lit(ExprLit {
                lit: Lit::Str(quoted),
                ..
            }) => cx.error_spanned_by(
                &item,
                format!(
                    "field names are written without quotes: `{}({})`",
                    list.keyword(),
                    quoted.value()
                ),
            ),
            _ => cx.error_spanned_by(
                &item,
                format!("expected a field name in audited `{}`", list.keyword()),
            ),
        }
    }
    Ok(())
}

/// `name = "..."`; reports anything else and returns `None`.
fn parse_lit_str(cx: &Ctxt, meta: &ParseNestedMeta, expected: &str) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        cx.error_spanned_by(&meta.path, format!("expected `{expected}`"));
        skip_value(meta)?;
        return Ok(None);
    }
    match meta.value()?.parse::<Expr>()? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(Some(lit)),
        other => {
            cx.error_spanned_by(other, format!("expected a string: `{expected}`"));
            Ok(None)
        }
    }
}

/// A bare keyword; reports a value given to it and returns `false`.
fn parse_flag(cx: &Ctxt, meta: &ParseNestedMeta, kind: &str) -> syn::Result<bool> {
    if at_end(meta) {
        return Ok(true);
    }
    cx.error_spanned_by(
        &meta.path,
        format!("{kind} `{}` takes no value", path_to_string(&meta.path)),
    );
    skip_value(meta)?;
    Ok(false)
}

fn at_end(meta: &ParseNestedMeta) -> bool {
    meta.input.is_empty() || meta.input.peek(Token![,])
}

/// Consumes `= value` or `(...)` after a key that was already reported, so that the
/// keys after it are still checked.
pub(crate) fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

fn path_to_string(path: &syn::Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.unraw().to_string(),
        None => path
            .to_token_stream()
            .into_iter()
            .map(|tt: proc_macro2::TokenTree| tt.to_string())
            .collect::<Vec<_>>()
            .concat(),
    }
}
