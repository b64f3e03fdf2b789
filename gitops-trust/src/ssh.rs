//! SSH signatures (SSHSIG), as `git` writes them with `gpg.format=ssh`.

use gitops_core::SignatureMethod;
use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::allowed_signers::{AllowedSigners, TimeRefusal, match_pattern_list};
use crate::openpgp::unix_now;
use crate::verdict::{Refusal, Signer, Verdict};

/// The namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

/// Verifies an armored SSH signature over `payload`, made at `time` (the
/// committer time), against `signers`. `committer_email` is used to name a
/// signer whose principal is a wildcard. Key validity windows are checked
/// against the committer time and, by default, now
/// ([`SshValidity`](crate::allowed_signers::SshValidity)).
pub(crate) fn verify(
    armored: &[u8],
    payload: &[u8],
    time: i64,
    committer_email: &str,
    signers: Option<&AllowedSigners>,
) -> Verdict {
    verify_at(armored, payload, time, committer_email, signers, unix_now())
}

/// [`verify`], with `now` (seconds since the epoch) as the current time.
pub(crate) fn verify_at(
    armored: &[u8],
    payload: &[u8],
    time: i64,
    committer_email: &str,
    signers: Option<&AllowedSigners>,
    now: i64,
) -> Verdict {
    let method = SignatureMethod::Ssh;
    let sig = match SshSig::from_pem(armored) {
        Ok(sig) => sig,
        Err(e) => {
            return Verdict::Untrusted(Refusal::Malformed {
                method,
                detail: e.to_string(),
            });
        }
    };
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let Some(signers) = signers.filter(|s| !s.is_empty()) else {
        return Verdict::Untrusted(Refusal::NoTrustedKeys(method));
    };
    if sig.namespace() != GIT_NAMESPACE {
        return Verdict::Untrusted(Refusal::WrongNamespace {
            key: fingerprint,
            namespace: sig.namespace().to_owned(),
            allowed: None,
        });
    }
    let entries: Vec<_> = signers.entries_for_key(sig.public_key()).collect();
    if entries.is_empty() {
        let note = if signers.has_cert_authorities() {
            " (cert-authority entries are not supported)".to_owned()
        } else {
            String::new()
        };
        return Verdict::Untrusted(Refusal::UnknownKey {
            method,
            key: fingerprint,
            note,
        });
    }
    let key = PublicKey::from(sig.public_key().clone());
    if let Err(e) = key.verify(GIT_NAMESPACE, payload, &sig) {
        return Verdict::Untrusted(Refusal::BadSignature {
            method,
            key: fingerprint,
            detail: e.to_string(),
        });
    }
    // The signature is good; an entry for the key must allow it.
    let mut first_refusal = None;
    for entry in entries {
        let refusal = if !entry.allows_namespace(GIT_NAMESPACE) {
            Some(Refusal::WrongNamespace {
                key: fingerprint.clone(),
                namespace: GIT_NAMESPACE.to_owned(),
                allowed: entry.namespaces.clone(),
            })
        } else {
            match entry.validity_refusal(time, now, signers.validity()) {
                Some((time, TimeRefusal::NotYetValid { valid_after })) => {
                    Some(Refusal::NotYetValid {
                        key: fingerprint.clone(),
                        time,
                        valid_from: valid_after,
                    })
                }
                Some((time, TimeRefusal::Expired { valid_before })) => Some(Refusal::Expired {
                    key: fingerprint.clone(),
                    time,
                    valid_until: valid_before,
                }),
                None => None,
            }
        };
        match refusal {
            None => {
                let identity = if !committer_email.is_empty()
                    && match_pattern_list(committer_email, &entry.principals)
                    && entry.principals.contains(['*', '?'])
                {
                    committer_email.to_owned()
                } else {
                    entry.principals.clone()
                };
                return Verdict::Trusted(Signer {
                    identity,
                    fingerprint,
                    subkey: None,
                    method,
                });
            }
            Some(r) => {
                first_refusal.get_or_insert(r);
            }
        }
    }
    Verdict::Untrusted(first_refusal.unwrap_or(Refusal::UnknownKey {
        method,
        key: fingerprint,
        note: String::new(),
    }))
}
