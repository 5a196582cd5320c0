//! The cluster's refusals, in the words of [`DeployError`]: which verb on
//! which resource, which field, which other manager, and what to do.

use harmony::ObjectRef;
use harmony::capability::DeployError;
use kube::core::Status;

/// Turn a `Status` the API server answered with into a deploy error.
/// `message` is the status message with secret values already redacted.
pub fn from_status(status: &Status, message: String, verb: &str, subject: Subject<'_>, target: String, tries: &str) -> DeployError {
    let object = || match subject {
        Subject::Object(id) => id.clone(),
        Subject::Named(name) => ObjectRef {
            api_version: String::new(),
            kind: String::new(),
            namespace: None,
            name: name.to_owned(),
        },
    };
    let causes = status.details.as_ref().map(|d| d.causes.as_slice()).unwrap_or_default();
    match status.code {
        401 => DeployError::Unauthenticated {
            target,
            why: format!("{verb} {subject} was refused (401 Unauthorized): {message}"),
        },
        403 => DeployError::Forbidden {
            verb: verb.to_owned(),
            resource: subject.to_string(),
            why: message,
        },
        409 if status.reason == "Conflict" && causes.iter().any(|c| c.reason == "FieldManagerConflict") => {
            let conflicts: Vec<_> = causes.iter().filter(|c| c.reason == "FieldManagerConflict").collect();
            let manager = conflicts
                .first()
                .and_then(|c| c.message.split('"').nth(1))
                .unwrap_or("another field manager")
                .to_owned();
            let fields: Vec<&str> = conflicts.iter().map(|c| c.field.as_str()).collect();
            DeployError::Conflict {
                object: Box::new(object()),
                field: fields.join("`, `"),
                manager,
            }
        }
        422 => {
            let field = causes
                .first()
                .map(|c| c.field.clone())
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "?".into());
            DeployError::Invalid {
                object: Box::new(object()),
                field,
                why: message,
            }
        }
        404 if message.starts_with("namespaces ") => DeployError::Rejected {
            object: Box::new(object()),
            why: message,
            help: "deploy its Namespace in an earlier step of the Score tree (or create it), then apply again".into(),
        },
        404 => DeployError::Rejected {
            object: Box::new(object()),
            why: format!("the cluster does not serve it: {message}"),
            help: "check its apiVersion and kind; a custom resource needs its CustomResourceDefinition applied first".into(),
        },
        429 | 500..=599 => DeployError::Unreachable {
            target,
            why: format!("{verb} {subject} failed{tries}: {message} ({} {})", status.code, status.reason),
        },
        _ => DeployError::Rejected {
            object: Box::new(object()),
            why: format!("{message} ({} {})", status.code, status.reason),
            help: "fix the Score that renders it, then apply again".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use kube::core::response::{StatusCause, StatusDetails};

    use super::*;

    fn status(code: u16, reason: &str, message: &str, causes: Vec<StatusCause>) -> Status {
        Status::failure(message, reason).with_code(code).with_details(StatusDetails {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes,
            retry_after_seconds: 0,
        })
    }

    fn cause(reason: &str, message: &str, field: &str) -> StatusCause {
        StatusCause {
            reason: reason.into(),
            message: message.into(),
            field: field.into(),
        }
    }

    fn web() -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
        }
    }

    #[test]
    fn a_conflict_names_the_field_and_the_other_manager() {
        let s = status(
            409,
            "Conflict",
            "Apply failed with 1 conflict",
            vec![cause(
                "FieldManagerConflict",
                "conflict with \"hpa-controller\" using apps/v1",
                ".spec.replicas",
            )],
        );
        let id = web();
        let e = from_status(&s, s.message.clone(), "apply", Subject::Object(&id), "t".into(), "");
        match e {
            DeployError::Conflict { field, manager, .. } => {
                assert_eq!(field, ".spec.replicas");
                assert_eq!(manager, "hpa-controller");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_names_the_field_and_forbidden_the_verb() {
        let s = status(
            422,
            "Invalid",
            "spec.selector: Required value",
            vec![cause("FieldValueRequired", "Required value", "spec.selector")],
        );
        let id = web();
        assert!(matches!(
            from_status(&s, s.message.clone(), "apply", Subject::Object(&id), "t".into(), ""),
            DeployError::Invalid { field, .. } if field == "spec.selector"
        ));
        let s = status(
            403,
            "Forbidden",
            "deployments.apps is forbidden: User \"ci\" cannot patch resource",
            vec![],
        );
        let e = from_status(&s, s.message.clone(), "apply", Subject::Object(&id), "t".into(), "");
        assert!(e.to_string().starts_with("not allowed to apply apps/v1 Deployment shop/web"), "{e}");
    }
}

/// What a request is about, for its span and its errors.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Object(&'a ObjectRef),
    Named(&'a str),
}

impl std::fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Object(id) => write!(f, "{id}"),
            Self::Named(name) => f.write_str(name),
        }
    }
}
