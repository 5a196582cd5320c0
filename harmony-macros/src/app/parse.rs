//! `app!`'s grammar: `key: value` entries separated by commas, in any order,
//! optionally preceded by `///` doc lines. Entries are split first and read
//! one by one, so one bad value does not hide the errors after it.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Token, bracketed};

const KEYS: &[&str] = &["name", "score", "image", "chart", "stages", "smoke", "topologies", "crate"];

pub(crate) struct App {
    pub doc: String,
    pub name: syn::LitStr,
    /// The Score `apply` deploys; for a release app without one, the chart builder's.
    pub score: Option<syn::Expr>,
    pub release: Option<Release>,
    pub topologies: Option<Vec<syn::Path>>,
    /// `crate: path`: where `harmony` is, if it was renamed.
    pub krate: Option<syn::Path>,
}

/// What `image`, `chart` and `stages` say: how the app is released.
pub(crate) struct Release {
    pub image: Image,
    pub chart: ChartKind,
    pub stages: Vec<syn::Ident>,
    /// `smoke: http_get("/path")`: checked after each stage's delivery.
    pub smoke: Option<syn::LitStr>,
}

pub(crate) enum Image {
    Dockerfile {
        dockerfile: syn::LitStr,
        context: Option<syn::LitStr>,
        /// Workspace packages whose binaries are built static and put into
        /// the context, by name, before the build.
        binaries: Vec<syn::LitStr>,
    },
    Buildable(syn::Expr),
}

pub(crate) enum ChartKind {
    Builder(syn::Path),
    Dir(syn::LitStr),
    Published { url: syn::LitStr, version: syn::LitStr },
}

struct Entry {
    key: syn::Ident,
    value: TokenStream,
}

pub(crate) fn parse(input: TokenStream) -> syn::Result<App> {
    let (attrs, entries) = split.parse2(input)?;
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let (mut name, mut score, mut topologies, mut krate) = (None, None, None, None);
    let (mut image, mut chart, mut stages, mut smoke) = (None, None, None, None);
    let mut smoke_span = None;
    let mut score_span = None;
    let mut image_span = None;
    let mut chart_span = None;
    let mut stages_span = None;
    let mut seen: Vec<String> = Vec::new();
    // Keys a did-you-mean already points at: not also reported as missing.
    let mut suggested: Vec<&str> = Vec::new();
    for entry in entries {
        let key = entry.key.to_string();
        if seen.contains(&key) {
            push(syn::Error::new(
                entry.key.span(),
                format!("`{key}` is given twice\nhelp: keep one `{key}: …`"),
            ));
            continue;
        }
        seen.push(key.clone());
        let value = entry.value;
        let empty = value.is_empty();
        if empty {
            push(syn::Error::new(
                entry.key.span(),
                format!("`{key}` has no value\nhelp: write `{key}: {}`", example(&key)),
            ));
            continue;
        }
        match key.as_str() {
            "name" => match value_of::<syn::LitStr>(&key, value, NAME_HELP).and_then(check_name) {
                Ok(v) => name = Some(v),
                Err(e) => push(e),
            },
            "score" => {
                score_span = Some(entry.key.span());
                match value_of::<syn::Expr>(&key, value, "help: write `score: my_crate::MyScore { … }`").and_then(not_a_type) {
                    Ok(v) => score = Some(v),
                    Err(e) => push(e),
                }
            }
            "image" => {
                image_span = Some(entry.key.span());
                match parse_image.parse2(value) {
                    Ok(v) => image = Some(v),
                    Err(e) => push(e),
                }
            }
            "chart" => {
                chart_span = Some(entry.key.span());
                match parse_chart.parse2(value) {
                    Ok(v) => chart = Some(v),
                    Err(e) => push(e),
                }
            }
            "stages" => {
                stages_span = Some(entry.key.span());
                match parse_stages.parse2(value) {
                    Ok(v) => stages = Some(v),
                    Err(e) => push(e),
                }
            }
            "smoke" => {
                smoke_span = Some(entry.key.span());
                match parse_smoke.parse2(value) {
                    Ok(v) => smoke = Some(v),
                    Err(e) => push(e),
                }
            }
            "topologies" => match parse_topologies.parse2(value) {
                Ok(v) => topologies = Some(v),
                Err(e) => push(e),
            },
            "crate" => match syn::parse2::<syn::Path>(value) {
                Ok(v) => krate = Some(v),
                Err(e) => push(syn::Error::new(
                    e.span(),
                    "`crate` takes the path `harmony` is reachable at\nhelp: write `crate: my_harmony`",
                )),
            },
            other => {
                suggested.extend(crate::suggest::closest(other, KEYS.iter().copied()));
                push(unknown_key(&entry.key, other));
            }
        }
    }
    let missing = |key: &str| {
        syn::Error::new(
            Span::call_site(),
            format!("`app!` is missing `{key}`\nhelp: add `{key}: {}`", example(key)),
        )
    };
    // `apply` deploys `score`; a chart built from a Score can stand in for it.
    // What `apply` deploys: the `score`, or else the chart (a builder's Score, a
    // directory's or a published chart's objects), never both.
    let has_chart = seen.iter().any(|k| k == "chart");
    let mut required = vec!["name"];
    if !has_chart {
        required.push("score");
    }
    for key in required {
        if !seen.iter().any(|k| k == key) && !suggested.contains(&key) {
            push(missing(key));
        }
    }
    let has = |k: &str| seen.iter().any(|s| s == k);
    // An app with `score` is deployed by `apply`; releasing it means the chart replaces the score.
    let release_help = |key: &str| {
        if has("score") {
            format!("help: remove `{key}`, or release this app: replace `score` with `image` and `chart: builder(..)`")
        } else {
            format!("help: add `image` and `chart`, or remove `{key}`")
        }
    };
    if has("image") && !has("chart") && !suggested.contains(&"chart") {
        let help = if has("score") {
            "help: remove `image`: `apply` deploys `score` without one; or release this app: replace `score` with `chart: builder(..)`"
        } else {
            "help: add `chart: builder(crate::my_chart)`, `chart: dir(\"charts/my-app\")` or `chart: published(\"oci://…\", \"1.0.0\")`"
        };
        push(syn::Error::new(
            image_span.unwrap_or_else(Span::call_site),
            format!("an app with an `image` needs a `chart` to deliver it\n{help}"),
        ));
    }
    if has("chart") && !has("image") && !suggested.contains(&"image") {
        push(syn::Error::new(
            chart_span.unwrap_or_else(Span::call_site),
            "an app with a `chart` needs an `image` to release\nhelp: add `image: Dockerfile(\"Dockerfile\")` or `image: Buildable(…)`",
        ));
    }
    // (A chart that failed to parse has its own error.)
    if let (true, Some(chart)) = (has("score"), &chart) {
        let (chart, deploys) = match chart {
            ChartKind::Builder(_) => ("builder(..)", "the Score the chart builder makes"),
            ChartKind::Dir(_) => ("dir(..)", "the chart's objects"),
            ChartKind::Published { .. } => ("published(..)", "the chart's objects, rendered by helm"),
        };
        push(syn::Error::new(
            score_span.unwrap_or_else(Span::call_site),
            format!(
                "`score` and `chart: {chart}` both say what this app deploys: `apply` would deploy one and `release` the other\nhelp: remove `score`; `apply` deploys {deploys}, as a release does"
            ),
        ));
    }
    if has("smoke") && !has("image") {
        push(syn::Error::new(
            smoke_span.unwrap_or_else(Span::call_site),
            format!(
                "`smoke` checks each stage of a release, and this app has no `image` and `chart` to release\n{}; a Score's own check is `#[score(smoke = Self::check)]`",
                release_help("smoke")
            ),
        ));
    }
    if has("stages") && !has("image") {
        push(syn::Error::new(
            stages_span.unwrap_or_else(Span::call_site),
            format!(
                "`stages` are the steps of a release, and this app has no `image` and `chart` to release\n{}",
                release_help("stages")
            ),
        ));
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let release = match (image, chart) {
        (Some(image), Some(chart)) => {
            let default = || {
                ["staging", "production"]
                    .iter()
                    .map(|s| syn::Ident::new(s, Span::call_site()))
                    .collect()
            };
            Some(Release {
                image,
                chart,
                stages: stages.unwrap_or_else(default),
                smoke,
            })
        }
        _ => None,
    };
    Ok(App {
        doc: doc(&attrs),
        name: name.expect("checked above"),
        score,
        release,
        topologies,
        krate,
    })
}

fn example(key: &str) -> &'static str {
    match key {
        "name" => "\"my-app\"",
        "score" => "my_crate::MyScore { … }",
        "crate" => "my_harmony",
        "image" => "Dockerfile(\"Dockerfile\")",
        "chart" => "builder(crate::my_chart)",
        "stages" => "[staging, production]",
        "smoke" => "http_get(\"/healthz\")",
        _ => "[Local]",
    }
}

/// `Dockerfile("path")`, `Dockerfile("path", "context")`, either followed by
/// `binaries: ["package", …]`, or `Buildable(expr)`.
fn parse_image(input: ParseStream) -> syn::Result<Image> {
    let kind: syn::Ident = input.parse().map_err(|e| syn::Error::new(e.span(), IMAGE_HELP))?;
    if !["Dockerfile", "Buildable"].contains(&kind.to_string().as_str()) {
        return Err(syn::Error::new(
            kind.span(),
            format!("`{kind}` is not an image source\n{IMAGE_HELP}"),
        ));
    }
    let content = arguments(input, &kind, IMAGE_HELP)?;
    match kind.to_string().as_str() {
        "Dockerfile" => {
            let dockerfile: syn::LitStr = content.parse().map_err(|e| syn::Error::new(e.span(), "`Dockerfile(..)` takes the Dockerfile's path as a string\nhelp: write `Dockerfile(\"Dockerfile\")` or `Dockerfile(\"path/Dockerfile\", \"context/dir\")`"))?;
            let mut context = None;
            let mut binaries = Vec::new();
            // `, "context"` then `, binaries: [..]`, each optional; anything
            // else is left for `no_more` to name.
            loop {
                let takes_context = context.is_none() && binaries.is_empty() && content.peek2(syn::LitStr);
                if !content.peek(Token![,]) || !(takes_context || content.peek2(syn::Ident)) {
                    if content.peek(Token![,]) && content.peek2(syn::parse::End) {
                        content.parse::<Token![,]>()?;
                    }
                    break;
                }
                content.parse::<Token![,]>()?;
                if takes_context {
                    context = Some(content.parse::<syn::LitStr>()?);
                    continue;
                }
                let key: syn::Ident = content.parse()?;
                if key != "binaries" || !binaries.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "`{key}` is not an argument of `Dockerfile(..)`\nhelp: `Dockerfile(..)` takes the Dockerfile's path, the build context's, and `binaries: [\"package\"]`"
                        ),
                    ));
                }
                content.parse::<Token![:]>()?;
                let list;
                syn::bracketed!(list in content);
                let names = syn::punctuated::Punctuated::<syn::LitStr, Token![,]>::parse_terminated(&list).map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`binaries` lists workspace packages as strings\nhelp: write `binaries: [\"my-server\"]`",
                    )
                })?;
                binaries = names.into_iter().collect();
                if binaries.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        "`binaries` is empty\nhelp: list the packages whose binaries the Dockerfile copies, or leave the key out",
                    ));
                }
            }
            if dockerfile.value().is_empty() {
                return Err(syn::Error::new(
                    dockerfile.span(),
                    "the Dockerfile path is empty\nhelp: write the Dockerfile's path, relative to the crate's root, e.g. `Dockerfile(\"Dockerfile\")`",
                ));
            }
            no_more(
                &content,
                "`Dockerfile(..)` takes the Dockerfile's path and, optionally, the build context's",
            )?;
            Ok(Image::Dockerfile {
                dockerfile,
                context,
                binaries,
            })
        }
        "Buildable" => {
            let expr: syn::Expr = content.parse().map_err(|e| {
                syn::Error::new(
                    missing_at(&content, &kind, e.span()),
                    format!("`Buildable(..)` takes a value that builds an image\n{IMAGE_HELP}"),
                )
            })?;
            // A crate's name where a recipe belongs: the recipe that builds a crate is `RustBinary`.
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(name), ..
            }) = &expr
            {
                return Err(syn::Error::new(
                    name.span(),
                    format!(
                        "`Buildable(..)` takes a build recipe, not a crate's name\nhelp: `Buildable(harmony::build::RustBinary::new({:?}))` builds the crate `{}` into an image",
                        name.value(),
                        name.value()
                    ),
                ));
            }
            no_more(&content, "`Buildable(..)` takes one value")?;
            Ok(Image::Buildable(expr))
        }
        _ => unreachable!("image sources are checked above"),
    }
}

const IMAGE_HELP: &str = "help: an image is `Dockerfile(\"path\")` or `Buildable(harmony::build::RustBinary::new(\"my-crate\"))`";
const CHART_HELP: &str =
    "help: a chart is `builder(crate::my_chart)`, `dir(\"charts/my-app\")` or `published(\"oci://registry/ns/chart\", \"1.4.2\")`";

/// `builder(path)`, `dir("path")` or `published("oci://…", "x.y.z")`.
fn parse_chart(input: ParseStream) -> syn::Result<ChartKind> {
    let kind: syn::Ident = input.parse().map_err(|e| syn::Error::new(e.span(), CHART_HELP))?;
    if !["builder", "dir", "published"].contains(&kind.to_string().as_str()) {
        return Err(syn::Error::new(
            kind.span(),
            format!("`{kind}` is not a chart source\n{CHART_HELP}"),
        ));
    }
    let content = arguments(input, &kind, CHART_HELP)?;
    let published = "`published(..)` takes the chart's URL and its version, as strings\nhelp: write `published(\"oci://registry/ns/chart\", \"1.4.2\")`";
    let chart = match kind.to_string().as_str() {
        "builder" => ChartKind::Builder(content.parse().map_err(|e| syn::Error::new(missing_at(&content, &kind, e.span()), "`builder(..)` takes the path of a function `fn(&harmony::release::ReleaseCx) -> impl Score`\nhelp: write `builder(crate::my_chart)`"))?),
        "dir" => ChartKind::Dir(content.parse().map_err(|e| {
            syn::Error::new(e.span(), "`dir(..)` takes the chart's directory as a string\nhelp: write `dir(\"charts/my-app\")`, relative to the crate's root")
        })?),
        "published" => {
            let url: syn::LitStr = content.parse().map_err(|e| syn::Error::new(missing_at(&content, &kind, e.span()), published))?;
            content.parse::<Token![,]>().map_err(|e| syn::Error::new(missing_at(&content, &kind, e.span()), published))?;
            let version: syn::LitStr = content.parse().map_err(|e| syn::Error::new(missing_at(&content, &kind, e.span()), published))?;
            check_published(&url, &version)?;
            ChartKind::Published { url, version }
        }
        _ => unreachable!("chart sources are checked above"),
    };
    if content.peek(Token![,]) {
        content.parse::<Token![,]>()?;
    }
    no_more(&content, CHART_HELP.trim_start_matches("help: "))?;
    Ok(chart)
}

const NAME_HELP: &str =
    "help: write the name as a string, e.g. `name: \"my-app\"`: it is checked when the app compiles, so it cannot come from a constant";

/// The value of `key`, read whole: a value followed by more tokens says so,
/// at the first of them.
fn value_of<T: syn::parse::Parse>(key: &str, value: TokenStream, help: &str) -> syn::Result<T> {
    let read = |input: ParseStream| {
        let what = match std::any::type_name::<T>() {
            t if t.ends_with("LitStr") => "a string",
            _ => "an expression",
        };
        let parsed: T = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), format!("`{key}` takes {what}\n{help}")))?;
        if !input.is_empty() {
            let extra: TokenTree = input.parse()?;
            return Err(syn::Error::new(
                extra.span(),
                format!("unexpected `{extra}` after the value of `{key}`\nhelp: end the value here, and separate entries with commas"),
            ));
        }
        Ok(parsed)
    };
    read.parse2(value)
}

/// The parenthesized arguments after `kind`, or an error at `kind` saying so.
fn arguments<'a>(input: ParseStream<'a>, kind: &syn::Ident, help: &str) -> syn::Result<syn::parse::ParseBuffer<'a>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            kind.span(),
            format!("`{kind}` takes its arguments in parentheses\n{help}"),
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    Ok(content)
}

/// Where an error about an argument goes: at the argument, or, when it is
/// missing (nothing left before the `)`), at the source's name (`builder`).
fn missing_at(content: ParseStream, kind: &syn::Ident, at: Span) -> Span {
    if content.is_empty() { kind.span() } else { at }
}

/// Nothing left in the parentheses; else an error at what is, saying `what`.
fn no_more(content: ParseStream, what: &str) -> syn::Result<()> {
    if content.is_empty() {
        Ok(())
    } else {
        // At the argument after the comma, not the comma.
        let _ = content.parse::<Option<Token![,]>>();
        let at = if content.is_empty() {
            content.span()
        } else {
            content.cursor().span()
        };
        Err(syn::Error::new(
            at,
            format!("unexpected extra argument\nhelp: {what}; remove this one"),
        ))
    }
}

/// The checks that can be made here; the rest happen when the reference is parsed.
fn check_published(url: &syn::LitStr, version: &syn::LitStr) -> syn::Result<()> {
    let u = url.value();
    let host = u.strip_prefix("oci://").and_then(|rest| rest.split_once('/')).map(|(h, _)| h);
    if host.is_none_or(str::is_empty) {
        return Err(syn::Error::new(
            url.span(),
            format!("`{u}` is not a chart URL\nhelp: write `oci://registry/namespace/chart`"),
        ));
    }
    let v = version.value();
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let semver = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')));
    if !semver {
        let help = match v.strip_prefix('v') {
            Some(bare) => format!("write it without the `v`: `\"{bare}\"`"),
            None => "pin an exact version such as `\"1.4.2\"`".to_owned(),
        };
        return Err(syn::Error::new(
            version.span(),
            format!("`{v}` is not a semver version\nhelp: {help}"),
        ));
    }
    Ok(())
}

/// `http_get("/path")`: the one smoke check a release runs after each delivery.
fn parse_smoke(input: ParseStream) -> syn::Result<syn::LitStr> {
    let help = "help: write `smoke: http_get(\"/healthz\")`";
    let kind: syn::Ident = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("`smoke` takes an HTTP check\n{help}")))?;
    if kind != "http_get" {
        return Err(syn::Error::new(kind.span(), format!("`{kind}` is not a smoke check\n{help}")));
    }
    let content = arguments(input, &kind, help)?;
    let path: syn::LitStr = content
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("`http_get(..)` takes the path as a string\n{help}")))?;
    no_more(&content, "`http_get(..)` takes one path")?;
    if !path.value().starts_with('/') || path.value().chars().any(char::is_whitespace) {
        return Err(syn::Error::new(
            path.span(),
            format!(
                "`{}` is not an absolute path\nhelp: write it from the root, e.g. `\"/healthz\"`",
                path.value()
            ),
        ));
    }
    Ok(path)
}

/// `[staging, production]`: lowercase names, each once.
fn parse_stages(input: ParseStream) -> syn::Result<Vec<syn::Ident>> {
    if !input.peek(syn::token::Bracket) {
        return Err(syn::Error::new(
            input.span(),
            "`stages` takes a list in brackets\nhelp: write `stages: [staging, production]`",
        ));
    }
    let content;
    let brackets = bracketed!(content in input);
    if let Ok(quoted) = content.fork().parse::<syn::LitStr>() {
        return Err(syn::Error::new(
            quoted.span(),
            format!(
                "stage names are written bare, not as strings\nhelp: write `{}` without the quotes, e.g. `stages: [staging, production]`",
                quoted.value()
            ),
        ));
    }
    let list = Punctuated::<syn::Ident, Token![,]>::parse_terminated(&content).map_err(|e| {
        syn::Error::new(
            e.span(),
            "`stages` lists stage names, separated by commas\nhelp: write `stages: [staging, production]`",
        )
    })?;
    if list.is_empty() {
        return Err(syn::Error::new(
            brackets.span.join(),
            "`stages` is empty\nhelp: list at least one, e.g. `stages: [production]`, or leave the key out for `[staging, production]`",
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for stage in &list {
        let s = stage.to_string();
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(syn::Error::new(
                stage.span(),
                format!("stage `{s}` is not valid\nhelp: stage names are lowercase, e.g. `staging`"),
            ));
        }
        if seen.contains(&s) {
            return Err(syn::Error::new(
                stage.span(),
                format!("stage `{s}` is listed twice\nhelp: remove the second `{s}`: a release reaches each stage once"),
            ));
        }
        seen.push(s);
    }
    Ok(list.into_iter().collect())
}

fn split(input: ParseStream) -> syn::Result<(Vec<syn::Attribute>, Vec<Entry>)> {
    let attrs = input.call(syn::Attribute::parse_outer)?;
    let mut entries = Vec::new();
    while !input.is_empty() {
        // `crate` is a keyword; `Ident::parse_any` reads it as a key too.
        let key: syn::Ident = input
            .call(syn::ext::IdentExt::parse_any)
            .map_err(|e| syn::Error::new(e.span(), "expected a key such as `name`, `score` or `topologies`"))?;
        if input.peek(Token![=]) {
            let eq: Token![=] = input.parse()?;
            return Err(syn::Error::new(
                eq.span,
                format!("`app!` entries are written `key: value`, with a colon\nhelp: write `{key}: …`"),
            ));
        }
        input.parse::<Token![:]>().map_err(|_| {
            syn::Error::new(
                key.span(),
                format!("expected `:` after `{key}`\nhelp: write `{key}: {}`", example(&key.to_string())),
            )
        })?;
        let mut value = TokenStream::new();
        let mut previous: Option<TokenTree> = None;
        while !input.is_empty() && !input.peek(Token![,]) {
            if input.peek(Token![;]) {
                let semi: Token![;] = input.parse()?;
                return Err(syn::Error::new(
                    semi.span,
                    "`app!` entries are separated by commas, not `;`\nhelp: write `,` here",
                ));
            }
            let tree = input.parse::<TokenTree>()?;
            // `… score: …` inside a value: the comma before `score` is missing.
            if let (Some(TokenTree::Ident(next_key)), TokenTree::Punct(colon)) = (&previous, &tree)
                && colon.as_char() == ':'
                && colon.spacing() == proc_macro2::Spacing::Alone
                && KEYS.contains(&next_key.to_string().as_str())
                && !value.is_empty()
            {
                return Err(syn::Error::new(
                    next_key.span(),
                    format!("expected `,` before `{next_key}`\nhelp: separate the entries with commas: `{key}: …, {next_key}: …`"),
                ));
            }
            if let Some(done) = previous.replace(tree) {
                value.extend([done]);
            }
        }
        value.extend(previous);
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        entries.push(Entry { key, value });
    }
    Ok((attrs, entries))
}

fn parse_topologies(input: ParseStream) -> syn::Result<Vec<syn::Path>> {
    if !input.peek(syn::token::Bracket) {
        let span = input.span();
        let written: proc_macro2::TokenStream = input.parse()?;
        let written = if written.is_empty() {
            "harmony::Local".to_owned()
        } else {
            written.to_string().replace(' ', "")
        };
        return Err(syn::Error::new(
            span,
            format!("`topologies` takes a list in brackets\nhelp: write `topologies: [{written}]`"),
        ));
    }
    let content;
    let brackets = bracketed!(content in input);
    let list = Punctuated::<syn::Path, Token![,]>::parse_terminated(&content)?;
    if list.is_empty() {
        return Err(syn::Error::new(
            brackets.span.join(),
            "`topologies` is empty\nhelp: list at least one, e.g. `topologies: [Local]`, or leave the key out",
        ));
    }
    Ok(list.into_iter().collect())
}

/// App names name directories, Kubernetes labels and Helm releases.
fn check_name(lit: syn::LitStr) -> syn::Result<syn::LitStr> {
    let name = lit.value();
    if ["registry", "stages"].contains(&name.as_str()) {
        return Err(syn::Error::new(
            lit.span(),
            format!("app name `{name}` is reserved: the local state directory uses it\nhelp: pick another name, e.g. `\"{name}-app\"`"),
        ));
    }
    let rule = "help: use 1 to 53 lowercase letters, digits and `-`, starting and ending with a letter or digit, e.g. `\"my-app\"`";
    let why = if name.is_empty() {
        "the app name is empty".to_owned()
    } else if name.len() > 53 {
        format!(
            "app name `{name}` is {} characters long, and a Helm release name allows 53",
            name.len()
        )
    } else if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        format!("app name `{name}` is not valid")
    } else if name.starts_with('-') || name.ends_with('-') {
        format!("app name `{name}` starts or ends with `-`")
    } else {
        return Ok(lit);
    };
    Err(syn::Error::new(lit.span(), format!("{why}\n{rule}")))
}

fn unknown_key(key: &syn::Ident, name: &str) -> syn::Error {
    let hint = match crate::suggest::closest(name, KEYS.iter().copied()) {
        Some(k) => format!("help: did you mean `{k}`?"),
        None => format!(
            "help: the keys are {}",
            KEYS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ),
    };
    syn::Error::new(key.span(), format!("unknown key `{name}` in `app!`\n{hint}"))
}

fn doc(attrs: &[syn::Attribute]) -> String {
    crate::score::doc_of(attrs)
}

/// `score: Site` names the Score's type where its value belongs. A Score is a
/// struct with named fields (never a unit struct), so a bare path whose last
/// segment is written like a type (`Site`, `scores::Site`) is always this
/// mistake; a constant (`SITE`) or a function's path (`site()`) is not.
fn not_a_type(expr: syn::Expr) -> syn::Result<syn::Expr> {
    let syn::Expr::Path(syn::ExprPath { qself: None, path, .. }) = &expr else {
        return Ok(expr);
    };
    let Some(last) = path.segments.last() else {
        return Ok(expr);
    };
    let type_like = |ident: &syn::Ident| {
        let name = ident.to_string();
        name != "Self" && name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().any(|c| c.is_ascii_lowercase())
    };
    let written = quote::ToTokens::to_token_stream(path).to_string().replace(' ', "");
    // `Site::default`: a type's function, where the value it makes belongs.
    let n = path.segments.len();
    if n >= 2 && type_like(&path.segments[n - 2].ident) && last.ident.to_string().starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(syn::Error::new_spanned(
            path,
            format!("`score` takes a value of the Score, and `{written}` is a function\nhelp: call it: `{written}()`"),
        ));
    }
    if !type_like(&last.ident) {
        return Ok(expr);
    }
    Err(syn::Error::new_spanned(
        path,
        format!(
            "`score` takes a value of the Score, and `{written}` is its type\nhelp: write `{written} {{ … }}` with its fields, or `{written}::default()` if it implements `Default`"
        ),
    ))
}
