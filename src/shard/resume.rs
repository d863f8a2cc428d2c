//! Resume (DESIGN §4, §7): a dropped session reattached to a new connection,
//! with every frame it missed or a clear `resume_failed`, never a part.
//!
//! `{"type":"resume","token":T,"last_seq":S}` arrives on whatever shard the
//! kernel gave the new connection. The session lives on the shard of its old
//! connection, with its history, its place in the directory and the viewer
//! lists of its room; rather than move all of that (and re-address a body
//! whose owner may be sending it events at that very moment), the new
//! connection moves: its socket is handed, by message, to the session's
//! shard, which checks the token and either attaches it to the session or
//! serves it there as a fresh connection that is told `resume_failed`.
//!
//! ```text
//! guest token  "s.<secret>.<session id>"  → the session's shard directly
//! login token  (signed, names the account) → the directory → its session
//! ```
//!
//! Failed resumes count against the login limits, per address and per
//! session, so a token cannot be guessed by trying.

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::time::Instant;

use super::msg::Msg;
use super::session::{Phase, ResumeCredential, ResumePlan};
use super::{SessionId, Shard};
use crate::auth::session_token::SessionToken;

/// A connection on its way to the shard of the session it resumes.
pub struct Handover {
    /// The socket (a duplicate; the sending shard has closed its own).
    pub fd: OwnedFd,
    pub peer_ip: IpAddr,
    /// Bytes read after the `resume` frame, not yet handled.
    pub leftover: Vec<u8>,
    pub target: SessionId,
    pub credential: ResumeCredential,
    pub last_seq: u64,
    /// Whatever the network layer holds for as long as the connection
    /// lives (its place in its address's count), carried along.
    pub held: Held,
}

/// Something kept alive with a connection, opaque to the shard.
pub type Held = Box<dyn std::any::Any + Send>;

/// A connection for this shard's network layer to serve: a handed-over one,
/// attached to session `slot`/`gen` as its connection `epoch`.
pub struct Attachment {
    pub fd: OwnedFd,
    pub slot: u32,
    pub gen: u32,
    pub epoch: u32,
    pub leftover: Vec<u8>,
    pub held: Held,
}

/// How the network layer starts serving an attachment (set when the shard's
/// listener starts; the shard itself knows nothing of sockets).
pub type Attacher = Box<dyn Fn(Attachment)>;

/// The token a guest resumes with: the random secret, and where its
/// session is (so no table of tokens is needed to find it).
pub fn guest_token(secret: &str, sid: SessionId) -> String {
    format!("{secret}.{:x}", sid.to_bits())
}

/// The secret and session of a guest token; `None` for any other string.
pub fn parse_guest_token(token: &str) -> Option<(&str, SessionId)> {
    let (secret, sid_hex) = token.rsplit_once('.')?;
    if !SessionToken::looks_like(secret) || sid_hex.is_empty() || sid_hex.len() > 16 {
        return None;
    }
    let bits = u64::from_str_radix(sid_hex, 16).ok()?;
    Some((secret, SessionId::from_bits(bits)))
}

/// The answer to every resume that cannot be honoured: it must not tell
/// which part was wrong.
const RESUME_FAILED: &str =
    "This session cannot be resumed (expired, unknown, or the missed frames are gone); log in again.";

impl Shard {
    /// `{"type":"resume"}` on a connection of this shard, not logged in.
    pub(super) fn resume(&mut self, slot: u32, token: &str, last_seq: u64) {
        if self.config.limits.resume_window_ms == 0 {
            return self.send_error(
                slot,
                "resume_failed",
                "This server does not keep sessions for resume; log in again.",
            );
        }
        let ip = self.peer_ip(slot);
        let credential = match parse_guest_token(token) {
            Some((secret, target)) => {
                let key = format!("{:x}", target.to_bits());
                if self.refuse_if_limited(slot, &key, ip) {
                    return;
                }
                if target.host() != self.host {
                    // The token names its host: saying which tells a
                    // guesser nothing it did not write itself.
                    let message = match self.config.cluster.hosts.get(usize::from(target.host())) {
                        Some(host) => format!(
                            "This session is kept by host \"{}\" of this world, not this one: \
                             connect to that host to resume it, or log in again here (a guest's \
                             name stays held there until its resume window ends).",
                            host.id
                        ),
                        None => RESUME_FAILED.to_string(),
                    };
                    return self.resume_refused_with(slot, &key, ip, &message);
                }
                if target.shard() >= self.router.shards() {
                    return self.resume_refused_here(slot, &key, ip);
                }
                let credential = ResumeCredential::Guest {
                    secret: Box::from(secret),
                };
                return self.plan_handover(slot, Some(target), credential, last_seq);
            }
            None => match self.signer.verify(token, super::login::unix_now_s()) {
                Ok(key) => ResumeCredential::Account {
                    key: key.into_boxed_str(),
                },
                Err(_) => {
                    if self.refuse_if_limited(slot, "", ip) {
                        return;
                    }
                    return self.resume_refused_here(slot, "", ip);
                }
            },
        };
        let ResumeCredential::Account { key } = &credential else {
            return;
        };
        if self.refuse_if_limited(slot, key, ip) {
            return;
        }
        let Some(gen) = self.sessions.by_slot(slot).map(|s| s.gen) else {
            return;
        };
        let asker = SessionId::new(self.addr(), slot, gen);
        let directory = self.keeper_of(key);
        let lookup = Msg::ResumeLookup {
            key: key.clone(),
            asker,
        };
        self.plan_handover(slot, None, credential, last_seq);
        self.router.post_to(directory, lookup);
    }

    /// The directory said whose session an account's resume is for.
    pub(super) fn on_resume_target(&mut self, asker: SessionId, holder: Option<SessionId>) {
        let ip = self.peer_ip(asker.slot());
        let Some(session) = self.sessions.get_mut(asker.slot(), asker.gen()) else {
            return;
        };
        let Some(plan) = session.resuming.as_mut() else {
            return;
        };
        match holder {
            Some(holder) if holder.host() == self.host => {
                plan.target = Some(holder);
                session.wake();
            }
            _ => {
                let key = match &plan.credential {
                    ResumeCredential::Account { key } => key.to_string(),
                    ResumeCredential::Guest { .. } => String::new(),
                };
                session.resuming = None;
                self.resume_refused_here(asker.slot(), &key, ip);
            }
        }
    }

    /// Marks the connection of `slot` as resuming: nothing more is read from
    /// it here, and once the target is known its task hands it over.
    fn plan_handover(
        &mut self,
        slot: u32,
        target: Option<SessionId>,
        credential: ResumeCredential,
        last_seq: u64,
    ) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        session.resuming = Some(Box::new(ResumePlan {
            target,
            credential,
            last_seq,
        }));
        session.wake();
    }

    /// The plan of a connection whose task is to hand it over now, if any.
    pub fn take_handover(&mut self, slot: u32) -> Option<ResumePlan> {
        let session = self.sessions.by_slot(slot)?;
        // Not yet: the directory has still to say whose session it is.
        session.resuming.as_ref()?.target?;
        session.resuming.take().map(|plan| *plan)
    }

    /// Sends a connection (its socket already duplicated) to the shard of
    /// the session it resumes. The connection's own session here is gone.
    pub fn hand_over(&mut self, handover: Handover) {
        self.counters.stats.resumes_handed_over += u64::from(handover.target.shard() != self.id);
        let to = handover.target.shard();
        self.router.post(to, Msg::Handover(Box::new(handover)));
    }

    /// A connection handed to this shard to resume one of its sessions.
    pub(super) fn on_handover(&mut self, handover: Handover) {
        let Handover {
            fd,
            peer_ip,
            leftover,
            target,
            credential,
            last_seq,
            held,
        } = handover;
        let now = self.now_ms();
        match self.attach(target, &credential, last_seq, now) {
            Some((epoch, was_detached)) => {
                self.counters.stats.resumes += 1;
                if was_detached {
                    self.tell_link(target, false);
                }
                self.serve_attached(Attachment {
                    fd,
                    slot: target.slot(),
                    gen: target.gen(),
                    epoch,
                    leftover,
                    held,
                });
            }
            None => {
                let key = match &credential {
                    ResumeCredential::Guest { .. } => format!("{:x}", target.to_bits()),
                    ResumeCredential::Account { key } => key.to_string(),
                };
                self.limiter.record_failure(&key, peer_ip, Instant::now());
                self.counters.stats.resumes_failed += 1;
                // Served here as a fresh connection that is told why.
                let (slot, gen) = self.open_session(peer_ip, Instant::now());
                self.send_error(slot, "resume_failed", RESUME_FAILED);
                self.serve_attached(Attachment {
                    fd,
                    slot,
                    gen,
                    epoch: 0,
                    leftover,
                    held,
                });
            }
        }
    }

    /// Attaches a new connection to `target` if the credential is its own
    /// and every frame after `last_seq` is held; returns the connection's
    /// epoch and whether the session was detached.
    fn attach(
        &mut self,
        target: SessionId,
        credential: &ResumeCredential,
        last_seq: u64,
        now_ms: u64,
    ) -> Option<(u32, bool)> {
        let session = self.sessions.get_mut(target.slot(), target.gen())?;
        if !matches!(session.phase, Phase::Playing | Phase::Detached) {
            return None;
        }
        let owned = match credential {
            ResumeCredential::Guest { secret } => {
                !session.account && SessionToken::matches(&session.resume_token, secret)
            }
            ResumeCredential::Account { key } => session.account && *session.name_key == **key,
        };
        if !owned {
            return None;
        }
        let was_detached = session.phase == Phase::Detached;
        // A connection still live loses its session to this one: it is
        // closed with a close frame (`superseded`) unless it stopped inside
        // a frame, where a close frame would be read as part of it.
        let superseded = (!was_detached).then_some((session.conn_epoch, session.unsent.is_empty()));
        if was_detached {
            self.detached -= 1;
        } else {
            // The client says its old connection is gone; from now on it is:
            // its task sees another epoch and ends, its queue is held.
            session.wake();
            session.detach(now_ms);
            session.conn_epoch = session.conn_epoch.wrapping_add(1);
        }
        match session.attach(last_seq, now_ms) {
            Ok(_) => {
                let epoch = session.conn_epoch;
                if let Some((old_epoch, true)) = superseded {
                    self.superseded.insert((target.slot(), old_epoch));
                }
                Some((epoch, was_detached))
            }
            Err(_) => {
                // Detached it stays (until its window ends).
                self.detached += 1;
                if !was_detached {
                    self.tell_link(target, true);
                }
                None
            }
        }
    }

    fn serve_attached(&mut self, attachment: Attachment) {
        match &self.attacher {
            Some(attach) => attach(attachment),
            None => tracing::error!("resume: this shard serves no connections"),
        }
    }

    /// Refuses a resume on this shard's connection `slot` (the token went
    /// nowhere): counted against `key` and the address.
    fn resume_refused_here(&mut self, slot: u32, key: &str, ip: IpAddr) {
        self.resume_refused_with(slot, key, ip, RESUME_FAILED);
    }

    fn resume_refused_with(&mut self, slot: u32, key: &str, ip: IpAddr, message: &str) {
        self.limiter.record_failure(key, ip, Instant::now());
        self.counters.stats.resumes_failed += 1;
        if let Some(session) = self.sessions.by_slot(slot) {
            session.resuming = None;
            // Its task stopped reading while the resume was looked up: it
            // reads again (the refusal itself goes by the write pass).
            session.wake();
        }
        self.send_error(slot, "resume_failed", message);
    }

    /// True (and the client told) when `key` or the address has failed too often.
    pub(super) fn refuse_if_limited(&mut self, slot: u32, key: &str, ip: IpAddr) -> bool {
        match self.limiter.check(key, ip, Instant::now()) {
            Ok(()) => false,
            Err(retry) => {
                self.counters.stats.rate_limited += 1;
                let message = format!(
                    "Too many failed attempts; try again in {} s.",
                    retry.after_s
                );
                self.send_error(slot, "rate_limited", &message);
                true
            }
        }
    }

    /// Tells the owner of `sid`'s body that its player's link dropped or
    /// came back.
    pub(super) fn tell_link(&mut self, sid: SessionId, dead: bool) {
        let Some(owner) = self
            .sessions
            .get_mut(sid.slot(), sid.gen())
            .and_then(|s| s.body_at)
        else {
            return;
        };
        self.router.post_to(owner, Msg::LinkDead { sid, dead });
    }

    /// Lets the network layer serve handed-over connections on this shard.
    pub fn set_attacher(&mut self, attacher: Attacher) {
        self.attacher = Some(attacher);
    }

    /// A session's connection epoch, for its task to check it is still the one.
    pub fn conn_epoch(&mut self, slot: u32, gen: u32) -> Option<u32> {
        self.sessions.get_mut(slot, gen).map(|s| s.conn_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::addr::ShardAddr;

    #[test]
    fn a_guest_token_names_its_session_and_keeps_its_secret() {
        let sid = SessionId::new(ShardAddr::new(0, 1), 77, 3);
        let secret = SessionToken::generate().expect("randomness");
        let token = guest_token(&secret, sid);
        assert_eq!(parse_guest_token(&token), Some((secret.as_str(), sid)));
    }

    #[test]
    fn anything_else_is_not_a_guest_token() {
        for token in [
            "",
            "s.",
            "s.abc.12",
            "bob.1700000000.abcdef",
            "s.AAAAAAAAAAAAAAAAAAAAAA.",
            "s.AAAAAAAAAAAAAAAAAAAAAA.xyz",
            "s.AAAAAAAAAAAAAAAAAAAAAA.11112222333344445",
        ] {
            assert_eq!(parse_guest_token(token), None, "{token:?}");
        }
    }
}
