//! The `#[handler]` attribute behind `wasmlet_sdk::handler`; use it through
//! that crate, which documents it with examples.
//!
//! The attribute leaves the function exactly as written, so tests and other
//! code can still call it, and adds one export per verb that runs it through
//! `wasmlet_sdk::__private`. Misuse is rejected here, at the span of the
//! offending token, so an author reads "a handler cannot be `async`" on the
//! `async` keyword instead of a type error inside generated code.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Error, FnArg, Ident, ItemFn, ReturnType, Signature, Token, Type};

/// The verbs of RFC 9110 plus `patch`, spelled as the ABI's export names
/// spell them (`handle_get`).
const VERBS: &[&str] = &[
    "get", "head", "post", "put", "delete", "connect", "options", "trace", "patch",
];

/// Marks a plain function as the handler of a wasmlet module and exports it:
/// `#[handler]` as `handle` (every verb), `#[handler(get, post)]` as
/// `handle_get` and `handle_post`. Adding `reusable` (`#[handler(reusable)]`,
/// `#[handler(get, reusable)]`) marks the module as reusable: the server
/// then serves it from a pool of warm instances that keep their memory
/// between requests (ASP.NET's `IsReusable`), instead of a fresh instance per
/// request.
///
/// Accepted signatures: `fn() -> impl IntoResponse`,
/// `fn(Request) -> impl IntoResponse`, and the streaming
/// `fn(Request, &mut ResponseWriter) -> Result<(), E>` (or `-> ()`).
/// See `wasmlet_sdk::handler` for examples.
#[proc_macro_attribute]
pub fn handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            // Keep the function as written, so the author sees our one error
            // rather than a cascade of "cannot find function" errors.
            let mut tokens = error.to_compile_error();
            tokens.extend(item);
            tokens.into()
        }
    }
}

/// How the export calls the function, decided by its argument count.
#[derive(Clone, Copy)]
enum Shape {
    /// `fn() -> impl IntoResponse`: needs nothing from the request.
    Unit,
    /// `fn(Request) -> impl IntoResponse`: a buffered response.
    Request,
    /// `fn(Request, &mut ResponseWriter) -> ...`: writes its own body.
    Stream,
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let verbs = Punctuated::<Ident, Token![,]>::parse_terminated
        .parse2(attr)
        .map_err(|error| {
            Error::new(
                error.span(),
                "expected verbs as bare lower-case words: `#[handler(get, post)]`",
            )
        })?;
    let reusable = verbs.iter().any(|v| v == "reusable");
    let verbs: Punctuated<Ident, Token![,]> =
        verbs.into_iter().filter(|v| v != "reusable").collect();
    let exports = export_names(&verbs)?;
    let function: ItemFn = syn::parse2(item).map_err(|error| {
        Error::new(
            error.span(),
            "#[handler] goes on a function: `fn name(req: Request) -> impl IntoResponse`",
        )
    })?;
    let shape = check_signature(&function.sig)?;
    let name = &function.sig.ident;
    if let Some(clash) = exports.iter().find(|export| *export == name) {
        return Err(Error::new(
            name.span(),
            format!(
                "#[handler] generates the export `{clash}`, so the function needs another name \
                 (for example `hello`)"
            ),
        ));
    }

    let call = serve_call(&function.sig, shape);
    let mut tokens = quote!(#function);
    if reusable {
        // A custom section the server looks for by name. Inside an unnamed
        // const, so two reusable handlers in one crate do not clash; their
        // sections merge into one, which is just as good.
        tokens.extend(quote! {
            #[cfg(target_arch = "wasm32")]
            const _: () = {
                #[unsafe(link_section = "wasmlet.reusable")]
                #[used]
                static REUSABLE: [u8; 1] = [1];
            };
        });
    }
    for export in &exports {
        let doc = format!("The `{export}` export of this module: serves requests with `{name}`.");
        tokens.extend(quote! {
            #[cfg(target_arch = "wasm32")]
            #[doc = #doc]
            #[unsafe(no_mangle)]
            #[allow(unreachable_pub, reason = "the export is public to the host wherever the function lives")]
            pub extern "C" fn #export() {
                #call
            }

            #[cfg(not(target_arch = "wasm32"))]
            #[doc = #doc]
            #[allow(unreachable_pub, reason = "tests anywhere in the crate call the export")]
            pub fn #export() {
                #call
            }
        });
    }
    Ok(tokens)
}

/// `handle` for a bare `#[handler]`, else `handle_<verb>` per listed verb.
fn export_names(verbs: &Punctuated<Ident, Token![,]>) -> syn::Result<Vec<Ident>> {
    if verbs.is_empty() {
        return Ok(vec![Ident::new("handle", Span::call_site())]);
    }
    let mut names: Vec<Ident> = Vec::new();
    for verb in verbs {
        let text = verb.to_string();
        if !VERBS.contains(&text.as_str()) {
            let lower = text.to_ascii_lowercase();
            let message = if VERBS.contains(&lower.as_str()) {
                format!("write the verb in lower case: `{lower}`")
            } else {
                format!(
                    "unknown HTTP verb `{text}`; expected one of: {}",
                    VERBS.join(", ")
                )
            };
            return Err(Error::new(verb.span(), message));
        }
        // Spanned at the verb the author wrote, so the export resolves in
        // their code: their tests call it by name.
        let name = format_ident!("handle_{}", text, span = verb.span());
        if names.contains(&name) {
            return Err(Error::new(verb.span(), format!("`{text}` is listed twice")));
        }
        names.push(name);
    }
    Ok(names)
}

/// Rejects every signature the export cannot call, and says which form the
/// arguments ask for.
fn check_signature(sig: &Signature) -> syn::Result<Shape> {
    if let Some(token) = &sig.asyncness {
        return Err(Error::new(
            token.span(),
            "a handler is a plain `fn`, not an `async fn`: the host suspends the module while \
             it waits for I/O, so calls that look blocking never block the server",
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(Error::new(
            token.span(),
            "a handler cannot be an `unsafe fn`",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(Error::new_spanned(
            abi,
            "a handler has no ABI of its own: #[handler] generates the `extern \"C\"` export",
        ));
    }
    let generic_span = if !sig.generics.params.is_empty() {
        Some(sig.generics.params.span())
    } else {
        sig.generics.where_clause.as_ref().map(Spanned::span)
    };
    if let Some(span) = generic_span {
        return Err(Error::new(
            span,
            "a handler cannot be generic: its export calls one concrete function",
        ));
    }

    let mut types = Vec::new();
    for arg in &sig.inputs {
        let ty = match arg {
            FnArg::Receiver(receiver) => {
                return Err(Error::new_spanned(
                    receiver,
                    "a handler is a free function, not a method",
                ));
            }
            FnArg::Typed(typed) => &*typed.ty,
        };
        if types.len() == 2 {
            return Err(Error::new_spanned(
                arg,
                "a handler takes at most two arguments: `Request`, then `&mut ResponseWriter` \
                 for a streaming handler",
            ));
        }
        if let Some(span) = impl_trait_span(ty) {
            return Err(Error::new(
                span,
                "a handler cannot be generic: name the argument's type instead of `impl Trait`",
            ));
        }
        types.push(ty);
    }
    if let Some(Type::Reference(reference)) = types.first() {
        return Err(Error::new_spanned(
            reference,
            "a handler takes its request by value: `req: Request`",
        ));
    }
    if let Some(writer) = types.get(1)
        && !matches!(writer, Type::Reference(reference) if reference.mutability.is_some())
    {
        return Err(Error::new_spanned(
            writer,
            "the second argument of a streaming handler is the response writer: \
             `&mut ResponseWriter`",
        ));
    }
    Ok(match types.len() {
        0 => Shape::Unit,
        1 => Shape::Request,
        _ => Shape::Stream,
    })
}

/// The span of the first `impl Trait` inside a type, if any.
fn impl_trait_span(ty: &Type) -> Option<Span> {
    struct Finder(Option<Span>);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, node: &syn::TypeImplTrait) {
            self.0.get_or_insert(node.span());
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}

/// The body of an export: hand the function to the matching entry point.
///
/// Each argument and the result pass through a trait whose
/// `#[diagnostic::on_unimplemented]` message says what a handler needs,
/// spanned on the author's own type, so `fn hello(name: String)` is reported
/// on `String` rather than as a mismatch of closure signatures.
fn serve_call(sig: &Signature, shape: Shape) -> TokenStream2 {
    let name = &sig.ident;
    let private = quote!(::wasmlet_sdk::__private);
    // Mixed-site: the generated locals cannot collide with the author's
    // names (a handler called `request`, say).
    let request = Ident::new("request", Span::mixed_site());
    let writer = Ident::new("writer", Span::mixed_site());
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => name.span(),
    };
    let mut types = sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(typed) => Some(&*typed.ty),
        FnArg::Receiver(_) => None,
    });
    let request_arg = types.next().map(
        |ty| quote_spanned!(ty.span()=> <#ty as #private::RequestArg>::from_request(#request)),
    );
    let writer_arg = match types.next() {
        Some(Type::Reference(reference)) => {
            let ty = &reference.elem;
            Some(quote_spanned!(ty.span()=> <#ty as #private::WriterArg>::from_writer(#writer)))
        }
        _ => None,
    };
    // The result is bound to a local located at the return type, so a result
    // that is not a response is reported there, not on the whole signature.
    let output = Ident::new("output", output_span.resolved_at(Span::mixed_site()));
    match shape {
        Shape::Unit => {
            let respond = quote_spanned!(output_span=> #private::respond(#output));
            quote!(#private::serve_unit(|| { let #output = #name(); #respond }))
        }
        Shape::Request => {
            let respond = quote_spanned!(output_span=> #private::respond(#output));
            quote!(#private::serve_request(|#request| {
                let #output = #name(#request_arg);
                #respond
            }))
        }
        Shape::Stream => {
            let finish = quote_spanned!(output_span=> #private::stream_failure(#output));
            quote!(#private::serve_stream(|#request, #writer| {
                let #output = #name(#request_arg, #writer_arg);
                #finish
            }))
        }
    }
}
