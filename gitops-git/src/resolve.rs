//! Turning a reference into a [`Revision`].

use std::collections::{BTreeSet, HashSet};

use gitops_core::{Person, Revision};
use gix::ObjectId;
use gix::bstr::ByteSlice;

use crate::error::{Error, Result};

/// Resolves `reference`: `HEAD`, a full reference name (`refs/...`), a short
/// name (looked up as `refs/<name>`, `refs/tags/<name>`, `refs/heads/<name>`,
/// `refs/remotes/<name>`, `refs/remotes/<name>/HEAD`; more than one match is
/// ambiguous), a full or abbreviated (at least 4 hex digits) commit id, and
/// finally any other revision expression gix understands (`main~1`).
pub(crate) fn resolve(repo: &gix::Repository, reference: &str) -> Result<Revision> {
    let not_found = || Error::NotFound {
        reference: reference.to_owned(),
    };
    let name = reference.trim();
    if name.is_empty() {
        return Err(not_found());
    }
    if name == "HEAD" || name == "@" {
        let mut head = repo.head().map_err(Error::read("HEAD"))?;
        if head.is_unborn() {
            return Err(not_found());
        }
        let referent = head.referent_name().map(|n| n.as_bstr().to_string());
        let commit = head.peel_to_commit().map_err(|_| Error::NotACommit {
            reference: reference.to_owned(),
        })?;
        return revision_of(&commit, Some(referent.unwrap_or_else(|| "HEAD".to_owned())));
    }

    // References, by the same precedence as git, but refusing ambiguity.
    let candidates: Vec<String> = if name.starts_with("refs/") {
        vec![name.to_owned()]
    } else {
        vec![
            format!("refs/{name}"),
            format!("refs/tags/{name}"),
            format!("refs/heads/{name}"),
            format!("refs/remotes/{name}"),
            format!("refs/remotes/{name}/HEAD"),
        ]
    };
    let mut found = Vec::new();
    for candidate in &candidates {
        // Names that are not valid reference names simply do not match.
        if let Ok(Some(r)) = repo.try_find_reference(candidate.as_str())
            && r.name().as_bstr() == candidate.as_bytes()
        {
            found.push(r);
        }
    }
    if found.len() > 1 {
        return Err(Error::Ambiguous {
            reference: reference.to_owned(),
            candidates: found
                .iter()
                .map(|r| r.name().as_bstr().to_string())
                .collect(),
        });
    }
    if let Some(mut r) = found.pop() {
        let full = r.name().as_bstr().to_string();
        let commit = r.peel_to_commit().map_err(|_| Error::NotACommit {
            reference: reference.to_owned(),
        })?;
        return revision_of(&commit, Some(full));
    }

    // Commit ids, full or abbreviated.
    let hex_len = repo.object_hash().len_in_hex();
    if name.len() >= 4 && name.len() <= hex_len && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let id = if name.len() == hex_len {
            ObjectId::from_hex(name.as_bytes()).map_err(|_| not_found())?
        } else {
            by_prefix(repo, reference, name)?
        };
        let object = repo
            .try_find_object(id)
            .map_err(Error::read(format_args!("object {id}")))?
            .ok_or_else(not_found)?;
        let commit = object.peel_to_commit().map_err(|_| Error::NotACommit {
            reference: reference.to_owned(),
        })?;
        return revision_of(&commit, None);
    }

    // Anything else gix can parse (`main~1`, `v1^{commit}`).
    let id = repo.rev_parse_single(name).map_err(|_| not_found())?;
    let commit = id
        .object()
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| Error::NotACommit {
            reference: reference.to_owned(),
        })?;
    revision_of(&commit, None)
}

/// The one commit (or tag) whose id starts with `prefix`.
fn by_prefix(repo: &gix::Repository, reference: &str, prefix: &str) -> Result<ObjectId> {
    let not_found = || Error::NotFound {
        reference: reference.to_owned(),
    };
    let prefix = gix::hash::Prefix::from_hex(prefix).map_err(|_| not_found())?;
    let mut candidates = HashSet::new();
    let outcome = repo
        .objects
        .lookup_prefix(prefix, Some(&mut candidates))
        .map_err(|e| Error::read(format_args!("objects starting with {prefix}"))(e))?;
    match outcome {
        None => Err(not_found()),
        Some(Ok(id)) => Ok(id),
        Some(Err(())) => {
            // As git does for a commit-ish: if only one candidate is a commit
            // or a tag, that is the one meant.
            let commitish: Vec<ObjectId> = candidates
                .iter()
                .copied()
                .filter(|id| {
                    repo.find_header(*id).is_ok_and(|h| {
                        matches!(h.kind(), gix::object::Kind::Commit | gix::object::Kind::Tag)
                    })
                })
                .collect();
            if let [only] = commitish.as_slice() {
                return Ok(*only);
            }
            let sorted: BTreeSet<String> = candidates.iter().map(|id| id.to_string()).collect();
            Err(Error::Ambiguous {
                reference: reference.to_owned(),
                candidates: sorted.into_iter().collect(),
            })
        }
    }
}

/// The [`Revision`] of a commit.
pub(crate) fn revision_of(commit: &gix::Commit<'_>, reference: Option<String>) -> Result<Revision> {
    let id = commit.id;
    let read = || Error::read(format!("commit {id}"));
    let person = |sig: gix::actor::SignatureRef<'_>| -> Result<Person> {
        let time = sig.time().map_err(read())?;
        Ok(Person::new(
            sig.name.to_str_lossy().trim(),
            sig.email.to_str_lossy().trim(),
            time.seconds,
        )
        .with_offset(time.offset))
    };
    let author = person(commit.author().map_err(read())?)?;
    let committer = person(commit.committer().map_err(read())?)?;
    let tree = commit.tree_id().map_err(read())?;
    let message = commit.message_raw().map_err(read())?;
    Ok(Revision::new(id.to_string())
        .with_tree(tree.to_string())
        .with_reference(reference)
        .with_author(author)
        .with_committer(committer)
        .with_message(message.to_str_lossy())
        .with_parents(commit.parent_ids().map(|p| p.to_string()).collect()))
}
