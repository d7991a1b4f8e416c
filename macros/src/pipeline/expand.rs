//! The expansion: each stage is converted and checked in order, then the pipeline is
//! assembled (see `iomgr::pipeline`'s docs, "The expansion", for an annotated example).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Pat;

use super::parse::{Chain, Item, Stage};
use super::validate::{self, Closure};

/// The tokens that name the runtime's macro support module.
fn private() -> TokenStream {
    quote!(::iomgr::pipeline::__private)
}

/// An identifier only the expansion can see.
fn local(name: String) -> syn::Ident {
    syn::Ident::new(&name, Span::mixed_site())
}

/// A stage text inside a `#[diagnostic::on_unimplemented]` format string.
fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// `stage 2 `|x| x + 1``.
fn describe(i: usize, stage: &Stage) -> String {
    format!("stage {i} `{}`", escape(&stage.text))
}

/// An expression of `value` whose span runs from the stage's first token to its last, so
/// that an error about it underlines the whole stage.
fn spanning(value: &syn::Ident, stage: &Stage) -> TokenStream {
    let mut same = quote_spanned!(stage.first=> #value.__iomgr_same);
    let mut parens =
        proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, TokenStream::new());
    parens.set_span(stage.last);
    same.extend([proc_macro2::TokenTree::Group(parens)]);
    same
}

/// The hop check in front of stage `i`: a local trait whose message names both stages, and
/// which holds only when stage `i` takes what stage `i - 1` gives.
fn hop(
    i: usize,
    chain: &Chain,
    input_of: TokenStream,
    out_prev: &syn::Ident,
    s: &syn::Ident,
) -> TokenStream {
    let p = private();
    let stage = &chain.stages[i];
    let prev = &chain.stages[i - 1];
    let trait_name = local(format!("__IomgrHop{i}"));
    let message = format!(
        "{} takes `{{In}}`, but {} gives `{{Self}}`",
        describe(i, stage),
        describe(i - 1, prev)
    );
    let label = "takes `{In}`".to_string();
    let note = format!(
        "{} gives `{{Self}}`: each stage takes what the stage before it gives; convert between them with a function stage, `=> |item| ...`",
        describe(i - 1, prev)
    );
    let out = spanning(out_prev, stage);
    let call = quote_spanned!(stage.first=> #trait_name::pass);
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name<In, S>: ::core::marker::Sized {
            type Stage;
            fn pass(i: #p::ItemType<In>, o: #p::ItemType<Self>, s: S) -> Self::Stage;
        }
        impl<T, S> #trait_name<T, S> for T {
            type Stage = S;
            #[inline(always)]
            fn pass(_: #p::ItemType<T>, _: #p::ItemType<T>, s: S) -> S {
                s
            }
        }
        let #s = #call(#input_of, #out, #s);
    }
}

/// The expression form: a block whose value is the `Pipeline`.
pub fn chain(chain: &Chain) -> TokenStream {
    let p = private();
    let stages = &chain.stages;
    let n = stages.len();
    let s = |i: usize| local(format!("__iomgr_s{i}"));
    let t = |i: usize| local(format!("__iomgr_t{i}"));
    let mut body = TokenStream::new();

    // Stage 0: the source.
    let (s0, t0) = (s(0), t(0));
    let e0 = &stages[0].tokens;
    let at = stages[0].first;
    body.extend(quote_spanned! {at=>
        let #s0 = #p::SourceProbe::new(#e0);
        let #s0 = (&&&&&#s0).__iomgr_source().stage(#s0);
        let #t0 = #p::out_of_source(&#s0);
    });

    // The middle stages.
    for i in 1..n - 1 {
        let (si, ti, tp) = (s(i), t(i), t(i - 1));
        let stage = &stages[i];
        let e = &stage.tokens;
        let at = stage.first;
        let probe = match validate::closure(stage) {
            // The closure's argument is the item: rustc gives it the previous stage's type.
            Closure::Untyped => quote_spanned!(at=> #tp.deduce(#e)),
            Closure::Typed | Closure::No => quote_spanned!(at=> #p::StageProbe::new(#e)),
        };
        body.extend(quote_spanned! {at=>
            let #si = #probe;
            let #si = (&&&&&&&&&&&&#si).__iomgr_stage().stage(#si);
        });
        let input_of = quote_spanned!(at=> #p::input_of_adapter(&#si));
        body.extend(hop(i, chain, input_of, &tp, &si));
        body.extend(quote_spanned! {at=>
            let #ti = #p::out_of_adapter(&#si);
        });
    }

    // The last stage: the sink.
    let k = n - 1;
    let (sk, tp) = (s(k), t(k - 1));
    let ek = &stages[k].tokens;
    let at = stages[k].first;
    body.extend(quote_spanned! {at=>
        let #sk = #p::SinkProbe::new(#ek);
        let #sk = (&&&&&&#sk).__iomgr_sink().stage(#sk);
    });
    let input_of = quote_spanned!(at=> #p::input_of_sink(&#sk));
    body.extend(hop(k, chain, input_of, &tp, &sk));

    let texts = stages.iter().map(|s| &s.text);
    let thens = (1..k).map(s);
    quote! {
        {
            #[allow(unused_imports)]
            use #p::{
                ViaSource as _, ViaSinkFirst as _, ViaAdapterFirst as _, ViaDecoderFirst as _,
                ViaNotASource as _, ViaAdapter as _, ViaDecoder as _, ViaEncoder as _,
                ViaFilterFn as _, ViaTryFn as _, ViaAsyncFilterFn as _, ViaAsyncTryFn as _,
                ViaAsyncFn as _, ViaMapFn as _, ViaSinkInMiddle as _, ViaSourceInMiddle as _,
                ViaNotAStage as _, ViaSink as _, ViaAdapterLast as _, ViaDecoderLast as _,
                ViaEncoderLast as _, ViaSourceLast as _, ViaNotASink as _,
            };
            #body
            #p::start(&[#(#texts),*], #s0)
                #(.then(#thens))*
                .sink(#sk)
        }
    }
}

/// What stands in for a pipeline that has errors: a pipeline of nothing, so that the code
/// around it compiles and only the real errors show.
pub fn degraded_chain() -> TokenStream {
    let p = private();
    quote!(#p::degraded())
}

/// The item form: a named type, its constructor, and how it runs.
pub fn item(item: &Item, body_chain: TokenStream) -> TokenStream {
    let p = private();
    let Item {
        attrs,
        vis,
        name,
        args,
        ..
    } = item;
    let body = format_ident!("__Iomgr{}Body", name);
    let future = format_ident!("__Iomgr{}Future", name);
    let name_str = name.to_string();
    let arg_types = args.iter().map(|a| &a.ty);
    let arg_pats: Vec<&Pat> = args.iter().map(|a| &*a.pat).collect();
    let arg_names: Vec<TokenStream> = args
        .iter()
        .map(|a| match &*a.pat {
            Pat::Ident(p) => {
                let ident = &p.ident;
                quote!(#ident)
            }
            other => quote!(#other),
        })
        .collect();
    quote! {
        #(#attrs)*
        #vis struct #name(#future);

        #[doc(hidden)]
        #vis struct #body;

        impl #p::Body for #body {
            type Args = (#(#arg_types,)*);
            const NAME: &'static str = #name_str;
            #[allow(unused_mut)]
            fn call(
                args: Self::Args,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::iomgr::pipeline::PipelineError>,
            > {
                let (#(#arg_pats,)*) = args;
                async move { #body_chain.await }
            }
        }

        #[doc(hidden)]
        #vis type #future = #p::Named<
            #body,
            { #p::size_of_body::<#body>() },
            { #p::align_of_body::<#body>() },
        >;

        impl #name {
            /// Makes the pipeline. It runs nothing until it is awaited (or run, or spawned):
            /// its stages are made then, from these arguments.
            #vis fn new(#(#args),*) -> Self {
                #name(#p::Named::new((#(#arg_names,)*)))
            }

            /// The pipeline's future, to await in the current task.
            #vis fn run(self) -> #future {
                self.0
            }

            /// Runs the pipeline as a task of its own; awaiting the handle gives its result.
            ///
            /// # Panics
            /// If no runtime is running on this thread.
            #vis fn spawn(
                self,
            ) -> ::iomgr::JoinHandle<::core::result::Result<(), ::iomgr::pipeline::PipelineError>>
            {
                self.0.spawn()
            }
        }

        impl ::core::future::IntoFuture for #name {
            type Output = ::core::result::Result<(), ::iomgr::pipeline::PipelineError>;
            type IntoFuture = #future;
            fn into_future(self) -> #future {
                self.0
            }
        }

        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#name_str)
            }
        }
    }
}
