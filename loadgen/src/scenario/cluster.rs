//! `cluster`: players on two hosts talking across them. Not implemented yet;
//! this is where it goes when the cross-host (Redis) bridge exists.
//!
//! The plan, so the pieces already fit:
//! * targets: `--target a:4000 --target b:4000`; `plan.rs` already spreads
//!   players over targets round-robin, so this scenario changes that to
//!   *talkers* on the first target and *listeners* on the second (player
//!   index parity is enough), all placed in the same grid rooms with `goto`
//!   (rooms are owned by one host; the other host's players are remote
//!   viewers, so every say crosses the bridge).
//! * sending is `chat`'s: the same `send_loop` at `--rate`, lines
//!   `say t=<ns>`, but only from talkers; expected deliveries per say are the
//!   room's listeners on the other host (plus local ones).
//! * the figures are `chat`'s (delivery latency across hosts, expected vs
//!   received); server CPU needs one pid per host, so `--server-pid` becomes
//!   repeatable (or `/healthz` is asked on each target) and the report sums
//!   the CPU of both processes when they run on this machine.

use crate::config::{Config, ScenarioKind};

/// Refuses the scenario until it exists, before any connection is made.
pub fn check(cfg: &Config) -> Result<(), String> {
    if cfg.scenario == ScenarioKind::Cluster {
        return Err(
            "the cluster scenario is not implemented yet (see loadgen/src/scenario/cluster.rs)"
                .into(),
        );
    }
    Ok(())
}
