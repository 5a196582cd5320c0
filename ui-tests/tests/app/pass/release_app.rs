// An app with an image, a chart built from typed Rust, stages, an HTTP
// smoke test and topologies: released on `Local` and `Ci`, deployed by `apply` too.
use harmony::release::ReleaseCx;
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score, Default)]
pub struct Site {
    pub image: String,
}

impl Render for Site {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn site(cx: &ReleaseCx) -> Site {
    Site { image: cx.image.to_string() }
}

harmony::app! {
    /// A site, released from a Dockerfile.
    name: "site-web",
    image: Dockerfile("Dockerfile", "."),
    chart: builder(site),
    stages: [staging, production],
    smoke: http_get("/healthz"),
    topologies: [harmony::Local, harmony::Ci],
}

// A chart directory, or a published chart, is also what `apply` deploys: no `score`.
harmony::app! {
    name: "site-api",
    image: Buildable(harmony::build::RustBinary::new("site-api")),
    chart: dir("charts/site-api"),
}

harmony::app! {
    name: "site-proxy",
    image: Dockerfile("proxy/Dockerfile"),
    chart: published("oci://registry.example.com/charts/proxy", "1.4.2"),
}

harmony::app! {
    /// A worker whose Dockerfile copies a binary harmony builds static.
    name: "site-worker",
    image: Dockerfile("worker/Dockerfile", "worker", binaries: ["site-worker"],),
    chart: builder(site),
}

fn main() {
    let releases: Vec<_> = harmony_registry::releases().iter().map(|r| r.name).collect();
    assert_eq!(releases, ["site-api", "site-proxy", "site-web", "site-worker"]);
    let web = harmony_registry::releases().into_iter().find(|r| r.name == "site-web").unwrap();
    assert!((web.needs)().contains(&"HttpProbe"), "its smoke test needs `HttpProbe`");
    assert!(harmony_registry::app("site-web").is_some(), "a release app is deployed by `apply` too");
    let api = harmony_registry::app("site-api").expect("a chart directory's app is deployed by `apply`");
    assert!((api.score)().ends_with("ChartObjects"), "it deploys the chart's objects: {}", (api.score)());
}
