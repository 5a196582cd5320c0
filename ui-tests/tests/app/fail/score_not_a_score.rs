// `score` must build a Score for each listed topology: a plain value is
// flagged, on the topology, as not a Score for it.
harmony::app! {
    name: "site",
    score: String::new(),
    topologies: [harmony::Local],
}

fn main() {}
