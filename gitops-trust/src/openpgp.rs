//! OpenPGP signatures (`gpg.format=openpgp`, git's default), checked with
//! rpgp (the pure-Rust `pgp` crate) against a configured keyring.

use std::fmt;
use std::path::Path;

use gitops_core::SignatureMethod;
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};

use crate::error::Error;
use crate::verdict::{Refusal, Signer, Verdict};

const BEGIN_PUBLIC: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

/// A set of trusted OpenPGP public keys (certificates), each with its
/// subkeys, user ids and self-signatures.
///
/// Every key in the keyring is trusted: there is no web of trust.
#[derive(Clone, Default)]
pub struct OpenPgpKeyring {
    keys: Vec<SignedPublicKey>,
}

impl fmt::Debug for OpenPgpKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenPgpKeyring")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

impl OpenPgpKeyring {
    /// Parses one or more ASCII-armored public key blocks (as
    /// `gpg --export --armor` writes them; several blocks may follow each
    /// other).
    pub fn from_armored(text: &str) -> Result<Self, Error> {
        Self::parse(text, None)
    }

    /// Reads an armored keyring file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, Error> {
        let bad = |message: String| Error::Keyring {
            path: path.map(Path::to_path_buf),
            message,
        };
        let mut keys = Vec::new();
        for (index, block) in text.split(BEGIN_PUBLIC).enumerate().skip(1) {
            let armored = format!("{BEGIN_PUBLIC}{block}");
            let (parsed, _) = SignedPublicKey::from_string_many(&armored)
                .map_err(|e| bad(format!("key block {index}: {e}")))?;
            for key in parsed {
                keys.push(key.map_err(|e| bad(format!("key block {index}: {e}")))?);
            }
        }
        if keys.is_empty() {
            return Err(bad("no public key block found".to_owned()));
        }
        Ok(Self { keys })
    }

    /// The upper-case hex fingerprints of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| hex(&k.primary_key)).collect()
    }

    /// Whether the keyring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn hex(key: &impl KeyDetails) -> String {
    format!("{:X}", key.fingerprint())
}

fn secs(t: pgp::types::Timestamp) -> i64 {
    i64::from(t.as_secs())
}

/// Verifies an armored OpenPGP signature over `payload`.
///
/// As gpg does for git (status `G`), the key (primary and signing subkey)
/// must be valid both at the signature's creation time, which the signer
/// chooses, and now: an expired key cannot be used to backdate signatures.
/// Any valid revocation refuses the key.
pub(crate) fn verify(armored: &str, payload: &[u8], keyring: Option<&OpenPgpKeyring>) -> Verdict {
    verify_at(armored, payload, keyring, unix_now())
}

/// The current time, in seconds since the epoch (0 before it).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// [`verify`], with `now` (seconds since the epoch) as the current time.
fn verify_at(armored: &str, payload: &[u8], keyring: Option<&OpenPgpKeyring>, now: i64) -> Verdict {
    let method = SignatureMethod::OpenPgp;
    let sig = match DetachedSignature::from_string(armored) {
        Ok((sig, _)) => sig.signature,
        Err(e) => {
            return Verdict::Untrusted(Refusal::Malformed {
                method,
                detail: e.to_string(),
            });
        }
    };
    let issuer = issuer_text(&sig);
    let Some(keyring) = keyring.filter(|k| !k.is_empty()) else {
        return Verdict::Untrusted(Refusal::NoTrustedKeys(method));
    };
    if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
        return Verdict::Untrusted(Refusal::Malformed {
            method,
            detail: format!("not a document signature ({:?})", sig.typ()),
        });
    }
    let Some(created) = sig.created().map(secs) else {
        return Verdict::Untrusted(Refusal::Malformed {
            method,
            detail: "the signature has no creation time".to_owned(),
        });
    };

    let mut first_failure: Option<Refusal> = None;
    let mut claimed = false;
    for cert in &keyring.keys {
        // The primary key itself.
        if issued_by(&sig, &cert.primary_key) {
            claimed = true;
            match sig.verify(&cert.primary_key, payload) {
                Ok(()) => return judge(cert, None, &[created, now]),
                Err(e) => {
                    first_failure.get_or_insert(Refusal::BadSignature {
                        method,
                        key: hex(&cert.primary_key),
                        detail: e.to_string(),
                    });
                }
            }
        }
        for sub in &cert.public_subkeys {
            if issued_by(&sig, &sub.key) {
                claimed = true;
                match sig.verify(&sub.key, payload) {
                    Ok(()) => return judge(cert, Some(sub), &[created, now]),
                    Err(e) => {
                        first_failure.get_or_insert(Refusal::BadSignature {
                            method,
                            key: hex(&sub.key),
                            detail: e.to_string(),
                        });
                    }
                }
            }
        }
    }
    match first_failure {
        Some(r) if claimed => Verdict::Untrusted(r),
        _ => Verdict::Untrusted(Refusal::UnknownKey {
            method,
            key: issuer,
            note: String::new(),
        }),
    }
}

/// Whether `sig` names `key` as its issuer (or names no issuer at all).
fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let ids = sig.issuer_key_id();
    let fps = sig.issuer_fingerprint();
    if ids.is_empty() && fps.is_empty() {
        return true;
    }
    ids.iter().any(|id| **id == key.legacy_key_id())
        || fps.iter().any(|fp| **fp == key.fingerprint())
}

fn issuer_text(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return format!("{fp:X}");
    }
    if let Some(id) = sig.issuer_key_id().first() {
        return id.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    }
    "(no issuer)".to_owned()
}

/// The key's validity at each of `times` (the signature's creation time and
/// now), given that the signature verified with the primary key of `cert`
/// (`sub` = `None`) or with the subkey `sub`.
fn judge(cert: &SignedPublicKey, sub: Option<&SignedPublicSubKey>, times: &[i64]) -> Verdict {
    let primary = &cert.primary_key;
    let primary_fp = hex(primary);

    // Revocation of the primary key: refuses everything it or its subkeys signed.
    for rev in &cert.details.revocation_signatures {
        if rev.typ() == Some(SignatureType::KeyRevocation) && rev.verify_key(primary).is_ok() {
            return Verdict::Untrusted(Refusal::Revoked {
                key: primary_fp,
                reason: revocation_reason(rev),
            });
        }
    }

    // The newest valid self-signature of the primary key.
    let mut self_sigs: Vec<&Signature> = Vec::new();
    for user in &cert.details.users {
        for s in &user.signatures {
            let certification = matches!(
                s.typ(),
                Some(
                    SignatureType::CertGeneric
                        | SignatureType::CertPersona
                        | SignatureType::CertCasual
                        | SignatureType::CertPositive
                )
            );
            if certification
                && s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            {
                self_sigs.push(s);
            }
        }
    }
    for s in &cert.details.direct_signatures {
        if s.typ() == Some(SignatureType::Key) && s.verify_key(primary).is_ok() {
            self_sigs.push(s);
        }
    }
    let Some(self_sig) = newest(&self_sigs) else {
        return Verdict::Untrusted(Refusal::NotSigningKey {
            key: primary_fp,
            detail: "the key has no valid self-signature".to_owned(),
        });
    };
    if let Some(r) = times.iter().find_map(|t| validity(primary, self_sig, *t)) {
        return Verdict::Untrusted(r);
    }

    let identity = primary_user_id(cert);
    match sub {
        None => {
            let flags = self_sig.key_flags();
            if flags != pgp::packet::KeyFlags::default() && !flags.sign() {
                return Verdict::Untrusted(Refusal::NotSigningKey {
                    key: primary_fp,
                    detail: "the primary key lacks the signing flag".to_owned(),
                });
            }
            Verdict::Trusted(Signer {
                identity,
                fingerprint: primary_fp,
                subkey: None,
                method: SignatureMethod::OpenPgp,
            })
        }
        Some(sub) => {
            let sub_fp = hex(&sub.key);
            // Every cryptographically valid binding, whatever it allows.
            let mut bindings: Vec<(&Signature, BindingFacts)> = Vec::new();
            for s in &sub.signatures {
                match s.typ() {
                    Some(SignatureType::SubkeyRevocation)
                        if s.verify_subkey_binding(primary, &sub.key).is_ok() =>
                    {
                        return Verdict::Untrusted(Refusal::Revoked {
                            key: sub_fp,
                            reason: revocation_reason(s),
                        });
                    }
                    Some(SignatureType::SubkeyBinding)
                        if s.verify_subkey_binding(primary, &sub.key).is_ok() =>
                    {
                        // A signing subkey must sign the primary back.
                        let backsig = s.embedded_signature().is_some_and(|b| {
                            b.verify_primary_key_binding(&sub.key, primary).is_ok()
                        });
                        let facts = BindingFacts {
                            created: s.created().map(secs).unwrap_or(i64::MIN),
                            sign: s.key_flags().sign(),
                            backsig,
                        };
                        bindings.push((s, facts));
                    }
                    _ => {}
                }
            }
            let facts: Vec<BindingFacts> = bindings.iter().map(|(_, f)| *f).collect();
            let binding = match current_signing_binding(&facts) {
                Ok(index) => bindings[index].0,
                Err(detail) => {
                    return Verdict::Untrusted(Refusal::NotSigningKey {
                        key: sub_fp,
                        detail: detail.to_owned(),
                    });
                }
            };
            if let Some(r) = times.iter().find_map(|t| validity(&sub.key, binding, *t)) {
                return Verdict::Untrusted(r);
            }
            Verdict::Trusted(Signer {
                identity,
                fingerprint: primary_fp,
                subkey: Some(sub_fp),
                method: SignatureMethod::OpenPgp,
            })
        }
    }
}

/// What choosing a subkey binding needs to know of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BindingFacts {
    /// Its creation time (seconds since the epoch).
    created: i64,
    /// Whether its key flags allow signing.
    sign: bool,
    /// Whether it embeds a valid primary key binding (back-signature).
    backsig: bool,
}

/// The binding that states the subkey's current use, among its
/// cryptographically valid bindings: the newest one (on a tie, one that does
/// not allow signing). It must allow signing and carry a valid
/// back-signature; an older binding that did no longer counts. Returns its
/// index, or why the subkey may not sign.
fn current_signing_binding(bindings: &[BindingFacts]) -> Result<usize, &'static str> {
    let (index, newest) = bindings
        .iter()
        .enumerate()
        .max_by_key(|(_, b)| (b.created, !(b.sign && b.backsig)))
        .ok_or("no valid binding of this subkey")?;
    if !newest.sign {
        return Err("the newest binding of this subkey does not allow signing");
    }
    if !newest.backsig {
        return Err("the newest binding of this subkey has no valid back-signature");
    }
    Ok(index)
}

fn newest<'a>(sigs: &[&'a Signature]) -> Option<&'a Signature> {
    sigs.iter()
        .copied()
        .max_by_key(|s| s.created().map(secs).unwrap_or(i64::MIN))
}

/// Whether `key`, whose expiry `binding` states, is valid at `time`.
fn validity(key: &impl KeyDetails, binding: &Signature, time: i64) -> Option<Refusal> {
    let created = secs(key.created_at());
    if time < created {
        return Some(Refusal::NotYetValid {
            key: hex(key),
            time,
            valid_from: created,
        });
    }
    let expiry = binding
        .key_expiration_time()
        .map(|d| i64::from(d.as_secs()))
        .unwrap_or(0);
    if expiry > 0 && time >= created + expiry {
        return Some(Refusal::Expired {
            key: hex(key),
            time,
            valid_until: created + expiry,
        });
    }
    None
}

fn revocation_reason(sig: &Signature) -> Option<String> {
    let code = sig.revocation_reason_code().map(|c| format!("{c:?}"));
    let text = sig
        .revocation_reason_string()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .filter(|s| !s.is_empty());
    match (code, text) {
        (Some(c), Some(t)) => Some(format!("{c} ({t})")),
        (c, t) => c.or(t),
    }
}

fn primary_user_id(cert: &SignedPublicKey) -> String {
    let users = &cert.details.users;
    users
        .iter()
        .find(|u| u.is_primary())
        .or_else(|| users.first())
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
        .unwrap_or_else(|| hex(&cert.primary_key))
}

#[cfg(test)]
mod tests {
    use super::{BindingFacts, current_signing_binding};

    fn b(created: i64, sign: bool, backsig: bool) -> BindingFacts {
        BindingFacts {
            created,
            sign,
            backsig,
        }
    }

    #[test]
    fn newest_binding_decides_whether_a_subkey_may_sign() {
        // No binding at all.
        assert!(current_signing_binding(&[]).is_err());
        // A single signing binding with its back-signature.
        assert_eq!(current_signing_binding(&[b(10, true, true)]), Ok(0));
        // Signing removed by a newer binding: the old one no longer counts,
        // in whatever order the bindings come.
        assert!(current_signing_binding(&[b(10, true, true), b(20, false, false)]).is_err());
        assert!(current_signing_binding(&[b(20, false, false), b(10, true, true)]).is_err());
        // Signing added by a newer binding.
        assert_eq!(
            current_signing_binding(&[b(10, false, false), b(20, true, true)]),
            Ok(1)
        );
        // The newest binding allows signing but lacks the back-signature.
        let err = current_signing_binding(&[b(10, true, true), b(20, true, false)]).unwrap_err();
        assert!(err.contains("back-signature"), "{err}");
        // A tie: the binding that does not allow signing wins.
        assert!(current_signing_binding(&[b(10, true, true), b(10, false, false)]).is_err());
        assert!(current_signing_binding(&[b(10, false, false), b(10, true, true)]).is_err());
    }
}
