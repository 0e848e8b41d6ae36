use crate::ast::Input;
use crate::expand;
use proc_macro2::TokenStream;
use quote::quote;

/// The errors, plus the `ActiveModelBehavior` impl the derive replaces, so that the user
/// does not also get "`ActiveModelBehavior` is not implemented for `ActiveModel`" at every
/// use of the entity (as thiserror's `fallback.rs`).
///
/// Only for a struct called `Model`: anything else has no `ActiveModel` next to it.
pub(crate) fn expand(input: &Input, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    if !input.is_struct_named_model() {
        return error;
    }
    let krate = expand::krate(input);
    quote! {
        #error

        const _: () = {
            #[allow(unused_qualifications)]
            #[automatically_derived]
            impl #krate::__private::sea_orm::ActiveModelBehavior for ActiveModel {}
        };
    }
}
