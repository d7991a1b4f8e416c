//! The expansion: each stage is converted and checked in order, then the pipeline is
//! assembled (see `iomgr::pipeline`'s docs, "The expansion", for an annotated example).

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};
use syn::Pat;

use super::parse::{Chain, Item, Stage};
use super::validate::{self, Closure};

/// The tokens that name the runtime's macro support module.
fn private() -> TokenStream {
    quote!(::iomgr::pipeline::__private)
}

/// A stage text inside a `#[diagnostic::on_unimplemented]` format string.
fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// `stage 2 `|x| x + 1``.
fn describe(i: usize, stage: &Stage) -> String {
    format!("stage {i} `{}`", escape(&stage.text))
}

/// `#callee(#args)` as one expression spanning the whole stage: the callee's tokens at the
/// stage's first token, the parentheses at its last. rustc underlines such an expression
/// from the one to the other, so an error about it points at the stage as written; and
/// every check of a stage has the same span, so rustc reports a failed bound once.
fn call(stage: &Stage, callee: TokenStream, args: TokenStream) -> TokenStream {
    let mut out: TokenStream = callee
        .into_iter()
        .map(|mut tt| {
            respan(&mut tt, stage.first);
            tt
        })
        .collect();
    let mut parens = Group::new(Delimiter::Parenthesis, args);
    parens.set_span(stage.last);
    out.extend([TokenTree::Group(parens)]);
    out
}

/// `#callee(#args)` spanning only the stage's first token: for the checks that fail only
/// after another check of the stage already failed (with the same cause), so that rustc sees
/// the same cause at the same place and reports it once.
fn call_at_first(stage: &Stage, callee: TokenStream, args: TokenStream) -> TokenStream {
    let first = Stage {
        last: stage.first,
        tokens: TokenStream::new(),
        expr: None,
        first: stage.first,
        text: String::new(),
    };
    call(&first, callee, args)
}

/// `value` as an argument spanning the whole stage (see [`call`]).
fn arg(stage: &Stage, value: TokenStream) -> TokenStream {
    let p = private();
    call(stage, quote!(#p::same), value)
}

fn respan(tt: &mut TokenTree, span: Span) {
    match tt {
        TokenTree::Group(g) => {
            let stream = g
                .stream()
                .into_iter()
                .map(|mut t| {
                    respan(&mut t, span);
                    t
                })
                .collect();
            let mut new = Group::new(g.delimiter(), stream);
            new.set_span(span);
            *g = new;
        }
        // The expansion's own locals keep their hygiene (only where they point changes);
        // paths are absolute, and take the stage's span whole, so that rustc can join it
        // with the span of the closing parenthesis.
        TokenTree::Ident(i) if i.to_string().starts_with("__iomgr_") => {
            i.set_span(i.span().located_at(span))
        }
        TokenTree::Ident(i) => i.set_span(span),
        TokenTree::Punct(p) => p.set_span(span),
        TokenTree::Literal(l) => l.set_span(span),
    }
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
    let trait_name = syn::Ident::new(&format!("__IomgrHop{i}"), Span::call_site());
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
    let out = arg(stage, quote!(#out_prev));
    let s_arg = arg(stage, quote!(#s));
    let pass = call(
        stage,
        quote!(#trait_name::pass),
        quote!(#input_of, #out, #s_arg),
    );
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
        let #s = #pass;
    }
}

/// `(&&...&probe).method().stage(probe)`, spanning the stage; `refs` is how many layers the
/// probe's traits have.
fn probe(stage: &Stage, value: &syn::Ident, refs: usize, method: &str) -> TokenStream {
    let amps: TokenStream = std::iter::repeat_n(quote!(&), refs).collect();
    let method = syn::Ident::new(method, Span::call_site());
    // `(&&..&probe).method()`: a call spanning the stage, as the conversion after it.
    let layer = call(stage, quote!((#amps #value).#method), TokenStream::new());
    call(stage, quote!(#layer.stage), arg(stage, quote!(#value)))
}

/// The expression form: a block whose value is the `Pipeline`.
pub fn chain(chain: &Chain) -> TokenStream {
    let p = private();
    let stages = &chain.stages;
    let n = stages.len();
    let s = |i: usize| syn::Ident::new(&format!("__iomgr_s{i}"), Span::mixed_site());
    let t = |i: usize| syn::Ident::new(&format!("__iomgr_t{i}"), Span::mixed_site());
    let mut body = TokenStream::new();

    // Stage 0: the source.
    let (s0, t0) = (s(0), t(0));
    let stage = &stages[0];
    let e0 = &stage.tokens;
    let new = call(stage, quote!(#p::SourceProbe::new), quote!(#e0));
    let conv = probe(stage, &s0, 5, "__iomgr_source");
    let out = call(stage, quote!(#p::out_of_source), arg(stage, quote!(&#s0)));
    body.extend(quote! {
        let #s0 = #new;
        let #s0 = #conv;
        let #t0 = #out;
    });

    // The middle stages.
    for (i, stage) in stages.iter().enumerate().take(n - 1).skip(1) {
        let (si, ti, tp) = (s(i), t(i), t(i - 1));
        let e = &stage.tokens;
        let new = match validate::closure(stage) {
            // The closure's argument is the item: rustc gives it the previous stage's type.
            Closure::Untyped => call(stage, quote!(#p::same(#tp).deduce), quote!(#e)),
            Closure::Typed | Closure::No => call(stage, quote!(#p::StageProbe::new), quote!(#e)),
        };
        let conv = probe(stage, &si, 12, "__iomgr_stage");
        let input = syn::Ident::new("__iomgr_in", Span::mixed_site());
        let input_of = call(stage, quote!(#p::stage_input), arg(stage, quote!(&#si)));
        body.extend(quote! {
            let #si = #new;
            let #input = #input_of;
            let #si = #conv;
        });
        body.extend(hop(i, chain, arg(stage, quote!(#input)), &tp, &si));
        let si_ref = call_at_first(stage, quote!(#p::same), quote!(&#si));
        let out = call_at_first(stage, quote!(#p::out_of_adapter), si_ref);
        body.extend(quote! {
            let #ti = #out;
        });
    }

    // The last stage: the sink.
    let k = n - 1;
    let (sk, tp) = (s(k), t(k - 1));
    let stage = &stages[k];
    let ek = &stage.tokens;
    let new = call(stage, quote!(#p::SinkProbe::new), quote!(#ek));
    let input = syn::Ident::new("__iomgr_in", Span::mixed_site());
    let input_of = call(stage, quote!(#p::sink_input), arg(stage, quote!(&#sk)));
    let conv = probe(stage, &sk, 6, "__iomgr_sink");
    body.extend(quote! {
        let #sk = #new;
        let #input = #input_of;
        let #sk = #conv;
    });
    body.extend(hop(k, chain, arg(stage, quote!(#input)), &tp, &sk));

    // Assembly: each step spans its stage, so a failure there points at the stage.
    let texts = stages.iter().map(|s| &s.text);
    let s0_arg = arg(&stages[0], quote!(#s0));
    let mut assembled = call(
        &stages[0],
        quote!(#p::start),
        quote!(&[#(#texts),*], #s0_arg),
    );
    for (i, stage) in stages.iter().enumerate().take(k).skip(1) {
        let si = s(i);
        let si_arg = call_at_first(stage, quote!(#p::same), quote!(#si));
        let then = call_at_first(stage, quote!(.then), si_arg);
        assembled.extend(then);
    }
    assembled.extend(call(
        &stages[k],
        quote!(.sink),
        arg(&stages[k], quote!(#sk)),
    ));
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
            #assembled
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
            type Output = ::core::result::Result<(), ::iomgr::pipeline::PipelineError>;
            const NAME: &'static str = #name_str;
            type Awaits = #p::NoAwaits;
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
                ::iomgr::spawn(self.0)
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
