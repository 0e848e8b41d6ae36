use crate::ast::{Input, Role};
use crate::attr::List;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Ident;

pub(crate) fn derive(input: &Input) -> TokenStream {
    if input.role == Role::ModelEx {
        return TokenStream::new();
    }
    let krate = krate(input);
    let model = input.ident;
    let active_model = Ident::new("ActiveModel", Span::call_site());
    let exclude = columns(input, List::Exclude);
    let mask = columns(input, List::Mask);
    let unmask = columns(input, List::Unmask);
    let repr = repr(input);
    let repr_column = input
        .attrs
        .repr
        .as_ref()
        .and_then(|lit| input.field(&lit.value()))
        .map(|field| {
            let column = field.column.as_str();
            quote!(.with_repr(#column))
        });

    let audit_behavior = if input.attrs.custom_hooks {
        quote!()
    } else {
        quote! {
            #[automatically_derived]
            impl #krate::AuditBehavior for #active_model {}
        }
    };
    let sea_orm = quote!(#krate::__private::sea_orm);
    let hooks = quote!(#krate::__private::hooks);

    quote! {
        const _: () = {
            #[allow(unused_qualifications)]
            #[automatically_derived]
            impl #krate::AuditedModel for #model {
                fn audit_meta() -> &'static #krate::AuditMeta {
                    static META: #krate::AuditMeta = #krate::AuditMeta::new(
                        &[#(#exclude),*],
                        &[#(#mask),*],
                        &[#(#unmask),*],
                        ::core::module_path!(),
                    )#repr_column;
                    &META
                }
                #repr
            }

            #audit_behavior

            #[allow(unused_qualifications)]
            #[automatically_derived]
            #[#krate::__private::async_trait]
            impl #sea_orm::ActiveModelBehavior for #active_model {
                fn new() -> Self {
                    <Self as #krate::AuditBehavior>::new()
                }

                async fn before_save<C>(self, db: &C, insert: bool) -> ::core::result::Result<Self, #sea_orm::DbErr>
                where
                    C: #sea_orm::ConnectionTrait,
                {
                    #hooks::before_save(self, db, insert).await
                }

                async fn after_save<C>(model: #model, db: &C, insert: bool) -> ::core::result::Result<#model, #sea_orm::DbErr>
                where
                    C: #sea_orm::ConnectionTrait,
                {
                    #hooks::after_save::<Self, C>(model, db, insert).await
                }

                async fn before_delete<C>(self, db: &C) -> ::core::result::Result<Self, #sea_orm::DbErr>
                where
                    C: #sea_orm::ConnectionTrait,
                {
                    #hooks::before_delete(self, db).await
                }

                async fn after_delete<C>(self, db: &C) -> ::core::result::Result<Self, #sea_orm::DbErr>
                where
                    C: #sea_orm::ConnectionTrait,
                {
                    #hooks::after_delete(self, db).await
                }
            }
        };
    }
}

pub(crate) fn krate(input: &Input) -> TokenStream {
    match &input.attrs.krate {
        Some(path) => quote!(#path),
        None => quote!(::sea_orm_audit),
    }
}

/// The column names on `list`, in the order the user listed them.
fn columns<'i>(input: &'i Input, list: List) -> impl Iterator<Item = &'i str> {
    input
        .entries()
        .iter()
        .filter(move |entry| entry.list == list)
        .filter_map(|entry| input.field(&entry.name))
        .map(|field| field.column.as_str())
}

fn repr(input: &Input) -> TokenStream {
    let Some(field) = input
        .attrs
        .repr
        .as_ref()
        .and_then(|lit| Some((lit, input.field(&lit.value())?)))
    else {
        return TokenStream::new();
    };
    let (lit, field) = field;
    // Spanned at the literal, so "doesn't implement `Display`" points at `repr = "..."`.
    let mut member = field.ident.clone();
    member.set_span(lit.span());
    let to_string = quote_spanned!(lit.span()=> ::std::string::ToString::to_string(&self.#member));
    quote! {
        fn audit_repr(&self) -> ::core::option::Option<::std::string::String> {
            ::core::option::Option::Some(#to_string)
        }
    }
}
