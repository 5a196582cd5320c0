//! `Link` resources: a symbolic link at a path, pointing at a target, where
//! the device allows it. What a device switches to move from one version of
//! what it holds to another (`/srv/app/current` → `/srv/app/releases/2`).
//!
//! Idempotent: a link that already points at its target is not touched.
//! Atomic: a new or re-pointed link is made beside the old one under a
//! temporary name and renamed over it, so a program that follows it finds the
//! old target or the new one, never nothing.
//!
//! Safe, whatever the manifest says (the device's [`Policy`], as for files):
//! a link is made only under the directories the device allows
//! (`--file-root`), never through another link, never over a file or a link
//! the agent did not make; and it points only under those directories too, so
//! a program on the device that follows it stays where the fleet may write.
//! The agent records the links it made (`<state>/links-created.json`) and
//! removes only those.

use std::fs;
use std::path::{Component, Path};

use fleet_model::{LinkSpec, LinkStatus, Resource, ResourceStatus, State};

use crate::files::{AtPath, AtPaths, Created, Policy, directories, replace};

/// The links of one device, as a [`Reconciler`]: a link a manifest no longer
/// names is removed (if the agent made it), one re-pointed on the device is
/// put back at the next heartbeat.
pub type Links = AtPaths<LinkSpec>;

impl AtPath for LinkSpec {
    const KIND: &'static str = "link";
    const RECORD: &'static str = "links-created.json";
    type Status = LinkStatus;

    fn of(resource: &Resource) -> Option<&Self> {
        match resource {
            Resource::Link(l) => Some(l),
            _ => None,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn make(&self, policy: &Policy, created: &mut Created) -> (LinkStatus, bool) {
        reconcile(self, policy, created)
    }

    fn remove(&self, policy: &Policy, created: &mut Created) -> Result<(), String> {
        remove(self, policy, created)
    }

    fn report(status: &LinkStatus) -> ResourceStatus {
        ResourceStatus::Link(status.clone())
    }
}

/// Make `spec.path` a link to `spec.target`, if `policy` allows both ends and
/// the path is the agent's to make (a new link is recorded in `created`).
/// Also says whether a link was made or re-pointed.
pub fn reconcile(spec: &LinkSpec, policy: &Policy, created: &mut Created) -> (LinkStatus, bool) {
    match apply(spec, policy, created) {
        Ok(made) => (
            LinkStatus {
                state: State::Ready,
                message: None,
            },
            made,
        ),
        Err(why) => (
            LinkStatus {
                state: State::Failed,
                message: Some(why),
            },
            false,
        ),
    }
}

fn apply(spec: &LinkSpec, policy: &Policy, created: &mut Created) -> Result<bool, String> {
    let target = Path::new(&spec.target);
    let inside = target.is_absolute()
        && !target.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        && policy.roots.iter().any(|root| target.starts_with(root));
    if !inside {
        let roots: Vec<String> = policy.roots.iter().map(|r| format!("`{}`", r.display())).collect();
        return Err(format!(
            "link `{}` is not made: it would point at `{}`, and this device lets links point only under {}: point it there, or give the device's agent a `--file-root` that holds its target",
            spec.path,
            spec.target,
            if roots.is_empty() {
                "no directory (its agent is started without `--file-root`)".to_owned()
            } else {
                roots.join(", ")
            }
        ));
    }
    let (root, below) = policy.place(Path::new(&spec.path))?;
    let dir = directories(&policy.seen(root), &below[..below.len() - 1])?;
    let path = dir.join(below[below.len() - 1]);
    let ours = created.contains(&spec.path);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let points = fs::read_link(&path).map_err(|e| format!("cannot read link `{}`: {e}", spec.path))?;
            if points == target {
                // Already so, whoever made it; one the agent did not make stays not its own.
                return Ok(false);
            }
            if !ours {
                return Err(format!(
                    "link `{}` is not made: a link the agent did not make is there (to `{}`), and the agent leaves it alone (remove it, or choose another path)",
                    spec.path,
                    points.display()
                ));
            }
        }
        Ok(meta) if meta.is_dir() => {
            return Err(format!(
                "link `{}` is not made: a directory is there, and the agent never replaces one (remove it, or choose another path)",
                spec.path
            ));
        }
        Ok(_) if !ours => {
            return Err(format!(
                "link `{}` is not made: a file the agent did not make is there, and the agent leaves such files alone (remove it, or choose another path)",
                spec.path
            ));
        }
        // The agent's link, replaced by a file behind its back: put back.
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read `{}`: {e}", spec.path)),
    }
    let new = created.insert(&spec.path);
    replace(&path, |temp| std::os::unix::fs::symlink(target, temp)).map_err(|e| {
        if new {
            created.remove(&spec.path);
        }
        format!("cannot make link `{}`: {e} (it is tried again at the next heartbeat)", spec.path)
    })?;
    Ok(true)
}

/// Remove a link a manifest no longer holds, if the agent made it and it is
/// still a link (a file put there since is left as it is); one already gone
/// is fine. Never through a directory that has become a link since.
pub fn remove(spec: &LinkSpec, policy: &Policy, created: &mut Created) -> Result<(), String> {
    if !created.contains(&spec.path) {
        return Ok(());
    }
    if let Some(path) = policy.to_remove(&spec.path)?
        && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
    {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove link `{}`: {e}", spec.path));
            }
            _ => {}
        }
    }
    created.remove(&spec.path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::tests::Device;
    use crate::reconcile::{Log, Reconciler as _};

    fn link(path: &Path, target: &Path) -> LinkSpec {
        LinkSpec {
            name: "current".into(),
            path: path.to_str().unwrap().into(),
            target: target.to_str().unwrap().into(),
        }
    }

    #[test]
    fn a_link_is_made_with_its_parents_then_left_alone_then_re_pointed_in_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, v2) = (dir.path().join("releases/1"), dir.path().join("releases/2"));
        let current = dir.path().join("app/current");
        let mut device = Device::under(dir.path());
        let (status, made) = device.make(&link(&current, &v1));
        assert_eq!((status.state, made), (State::Ready, true), "{status:?}");
        assert_eq!(fs::read_link(&current).unwrap(), v1);
        assert!(!device.make(&link(&current, &v1)).1, "already so: untouched");
        assert!(device.make(&link(&current, &v2)).1);
        assert_eq!(fs::read_link(&current).unwrap(), v2);
        let left: Vec<_> = fs::read_dir(dir.path().join("app"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["current"], "no temporary link is left behind");
    }

    #[test]
    fn a_link_re_pointed_or_replaced_on_the_device_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, elsewhere) = (dir.path().join("releases/1"), dir.path().join("releases/0"));
        let current = dir.path().join("current");
        let mut device = Device::under(dir.path());
        device.make(&link(&current, &v1));
        fs::remove_file(&current).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &current).unwrap();
        assert_eq!(
            device.make(&link(&current, &v1)),
            (
                LinkStatus {
                    state: State::Ready,
                    message: None
                },
                true
            )
        );
        assert_eq!(fs::read_link(&current).unwrap(), v1);
        fs::remove_file(&current).unwrap();
        fs::write(&current, "a file where the link was").unwrap();
        assert!(device.make(&link(&current, &v1)).1);
        assert_eq!(fs::read_link(&current).unwrap(), v1);
    }

    #[test]
    fn a_link_points_only_where_the_device_allows_files() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("fleet");
        let mut device = Device::under(&allowed);
        let current = allowed.join("current");
        for target in [
            Path::new("/etc"),
            &dir.path().join("other"),
            &allowed.join("../other"),
            Path::new("relative"),
        ] {
            let message = device.refused(&link(&current, target));
            assert!(message.contains("lets links point only under"), "{target:?}: {message}");
        }
        assert!(fs::symlink_metadata(&current).is_err(), "nothing was made");
        let message = device.refused(&link(&dir.path().join("outside"), &allowed.join("x")));
        assert!(message.contains("allows files only under"), "{message}");
        let message = Device {
            policy: Policy::default(),
            created: Created::default(),
        }
        .refused(&link(&current, &allowed.join("x")));
        assert!(message.contains("without `--file-root`"), "{message}");
    }

    #[test]
    fn a_link_is_never_made_through_a_link_nor_over_what_the_agent_did_not_make() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mut device = Device::under(dir.path());
        let target = dir.path().join("releases/1");
        // A directory on the way that is a link to elsewhere.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("app")).unwrap();
        let message = device.refused(&link(&dir.path().join("app/current"), &target));
        assert!(message.contains("symbolic link"), "{message}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "nothing made outside");
        // A file, a directory and someone else's link at the path.
        let theirs = dir.path().join("theirs");
        fs::write(&theirs, "kept").unwrap();
        assert!(device.refused(&link(&theirs, &target)).contains("did not make"));
        assert_eq!(fs::read_to_string(&theirs).unwrap(), "kept");
        fs::create_dir(dir.path().join("a-dir")).unwrap();
        assert!(device.refused(&link(&dir.path().join("a-dir"), &target)).contains("a directory"));
        let their_link = dir.path().join("their-link");
        std::os::unix::fs::symlink(dir.path().join("x"), &their_link).unwrap();
        assert!(device.refused(&link(&their_link, &target)).contains("did not make"));
        assert_eq!(fs::read_link(&their_link).unwrap(), dir.path().join("x"));
        // Someone else's link that already points there is ready, and stays theirs.
        std::os::unix::fs::symlink(&target, dir.path().join("same")).unwrap();
        let spec = link(&dir.path().join("same"), &target);
        assert_eq!(device.make(&spec).0.state, State::Ready);
        remove(&spec, &device.policy, &mut device.created).unwrap();
        assert!(fs::symlink_metadata(dir.path().join("same")).is_ok(), "not the agent's to remove");
    }

    #[test]
    fn only_the_agents_own_links_are_removed_and_the_record_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let current = dir.path().join("app/current");
        let spec = link(&current, &dir.path().join("releases/1"));
        let mut links = Links::new(state.path(), Policy::under([dir.path()]), Log::new("test"));
        links.hold(&[Resource::Link(spec.clone())]);
        assert_eq!(
            links.statuses()[0].1,
            ResourceStatus::Link(LinkStatus {
                state: State::Ready,
                message: None
            })
        );
        // A restarted agent holds its manifest again, then a manifest without the link.
        let mut restarted = Links::new(state.path(), Policy::under([dir.path()]), Log::new("test"));
        restarted.hold(&[Resource::Link(spec.clone())]);
        restarted.hold(&[]);
        assert!(fs::symlink_metadata(&current).is_err(), "the agent's link is removed");
        assert!(restarted.statuses().is_empty());
        assert!(!Created::load(&state.path().join("links-created.json")).contains(&spec.path));

        // A file put where the agent's link was is not the agent's to remove.
        let mut links = Links::new(state.path(), Policy::under([dir.path()]), Log::new("test"));
        links.hold(&[Resource::Link(spec.clone())]);
        fs::remove_file(&current).unwrap();
        fs::write(&current, "theirs now").unwrap();
        links.hold(&[]);
        assert_eq!(fs::read_to_string(&current).unwrap(), "theirs now");

        // Nor one behind a directory that became a link since.
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("releases/1"), outside.path().join("current")).unwrap();
        fs::remove_file(&current).unwrap();
        links.hold(&[Resource::Link(spec.clone())]);
        fs::remove_file(&current).unwrap();
        fs::remove_dir(dir.path().join("app")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("app")).unwrap();
        let mut created = Created::load(&state.path().join("links-created.json"));
        let err = remove(&spec, &Policy::under([dir.path()]), &mut created).unwrap_err();
        assert!(
            err.contains("has become a symbolic link") && err.contains("is not removed"),
            "{err}"
        );
        assert!(fs::symlink_metadata(outside.path().join("current")).is_ok(), "left alone");
    }
}
