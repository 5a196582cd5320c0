//! What a release is made of: image and chart references, release tags.
//! Every parser here is total: any input gives a value or an error that says
//! what is wrong and what to write instead; none panics.

pub mod capability;
mod chart_ref;
pub mod pipeline;
pub mod smoke;
mod tag;

pub use capability::{ContainerBuilder, ContinuousDelivery, Delivery, DeliveryError, HelmRegistry, HttpProbe, OciRegistry, PublishError};
pub use chart_ref::{ChartRef, ChartRefError};
pub use pipeline::{AppSpec, ChartSource, ReleaseCx, ReleaseError, ReleasePlan};
pub use smoke::HttpCheck;
pub use tag::{ReleaseTag, TagError};

pub use semver::Version;
