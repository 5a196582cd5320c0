// `#[score(secret)]` is checked by type, not by name: a Kubernetes `Secret`
// object (whose Debug and Serialize print its data) is refused on its type.
use harmony::k8s_openapi::api::core::v1::Secret;
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Probe {
    #[score(secret)]
    pub credentials: Secret,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
