//! Faults the proxy in front of the API server injects: extra latency, error answers, dropped
//! connections, hung requests and expired watches.

use std::time::Duration;

/// A fault to inject into the requests the server receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Delays every request by this much (on top of `Options::latency`).
    Latency(Duration),
    /// Answers the next `times` matching requests with this status code and a `Status` body
    /// (429 also carries `Retry-After: 1`).
    Status {
        code: u16,
        times: usize,
        /// Only requests whose path contains this.
        path_contains: Option<String>,
        /// Only requests with this method (`GET`, `PATCH`…).
        method: Option<String>,
    },
    /// Drops the connection of the next `times` matching requests without answering.
    ResetConnection { times: usize, path_contains: Option<String> },
    /// Holds the next `times` matching requests open without ever answering.
    Hang { times: usize, path_contains: Option<String> },
    /// Ends every watch open through the proxy now with `410 Gone` (reason `Expired`), as the
    /// API server does once etcd compacted the revision it would resume from.
    ExpireWatches,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Serve,
    Status(u16),
    Reset,
    Hang,
}

/// The faults in force.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: Vec<Fault>,
}

fn path_matches(filter: &Option<String>, path: &str) -> bool {
    filter.as_deref().is_none_or(|f| path.contains(f))
}

impl Faults {
    pub fn inject(&mut self, fault: Fault) {
        self.active.push(fault);
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// The extra latency in force.
    pub fn latency(&self) -> Duration {
        self.active
            .iter()
            .map(|f| match f {
                Fault::Latency(d) => *d,
                _ => Duration::ZERO,
            })
            .sum()
    }

    /// Decides what happens to a request, using up one of a counted fault's times.
    pub fn decide(&mut self, method: &str, path: &str) -> Action {
        for fault in self.active.iter_mut() {
            match fault {
                Fault::Status {
                    code,
                    times,
                    path_contains,
                    method: want,
                } if *times > 0 && path_matches(path_contains, path) && want.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method)) => {
                    *times -= 1;
                    return Action::Status(*code);
                }
                Fault::ResetConnection { times, path_contains } if *times > 0 && path_matches(path_contains, path) => {
                    *times -= 1;
                    return Action::Reset;
                }
                Fault::Hang { times, path_contains } if *times > 0 && path_matches(path_contains, path) => {
                    *times -= 1;
                    return Action::Hang;
                }
                _ => {}
            }
        }
        Action::Serve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out() {
        let mut f = Faults::default();
        f.inject(Fault::Status {
            code: 503,
            times: 2,
            path_contains: Some("/configmaps".into()),
            method: Some("GET".into()),
        });
        assert_eq!(f.decide("GET", "/api/v1/secrets"), Action::Serve);
        assert_eq!(f.decide("PATCH", "/api/v1/configmaps"), Action::Serve);
        assert_eq!(f.decide("GET", "/api/v1/configmaps"), Action::Status(503));
        assert_eq!(f.decide("get", "/api/v1/configmaps"), Action::Status(503));
        assert_eq!(f.decide("GET", "/api/v1/configmaps"), Action::Serve);
    }

    #[test]
    fn latencies_add_up() {
        let mut f = Faults::default();
        f.inject(Fault::Latency(Duration::from_millis(5)));
        f.inject(Fault::Latency(Duration::from_millis(7)));
        assert_eq!(f.latency(), Duration::from_millis(12));
        f.clear();
        assert_eq!(f.latency(), Duration::ZERO);
    }
}
