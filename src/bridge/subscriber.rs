//! The subscriber thread: reads this host's inbox channel and the global
//! channel, checks each envelope and hands it to the shards. It reads with a
//! timeout, so it notices a stop, and a wedged connection (one that Redis
//! keeps open but sends nothing on: the probes the publisher sends to this
//! host's own inbox stop arriving) is dropped and made again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::link::{self, Backoff};
use super::publisher::monotonic_us;
use super::sequence::{Receipts, Verdict};
use super::{inbox_channel, BridgeConfig, BridgeStats, Sink, GLOBAL_CHANNEL};
use crate::game::wire;

/// Probes missed in a row before the connection counts as wedged.
const PROBES_MISSED_MAX: u32 = 3;

pub fn run(
    config: BridgeConfig,
    stats: Arc<BridgeStats>,
    sink: Arc<dyn Sink>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Backoff::new(config.boot_epoch ^ 0x5851_f42d_4c95_7f2d);
    let mut receipts = Receipts::default();
    let mut receipts_run = config.boot_epoch;
    let inbox = inbox_channel(&config.hosts[usize::from(config.me)]);
    let probe_every = Duration::from_millis(config.probe_interval_ms);
    let mut connected_before = false;
    while !stop.load(Ordering::Relaxed) {
        let mut con = match link::connect(&config.url) {
            Ok(con) => con,
            Err(e) => {
                if !connected_before {
                    tracing::warn!(error = %e, "bridge: subscriber cannot reach redis; retrying with backoff");
                    connected_before = true;
                }
                backoff.sleep(&stop);
                continue;
            }
        };
        let mut pubsub = con.as_pubsub();
        let subscribed = pubsub
            .subscribe(&[inbox.as_str(), GLOBAL_CHANNEL])
            .and_then(|()| pubsub.set_read_timeout(Some(super::tick())));
        if let Err(e) = subscribed {
            tracing::warn!(error = %e, "bridge: subscribe failed; retrying with backoff");
            backoff.sleep(&stop);
            continue;
        }
        if connected_before {
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        connected_before = true;
        tracing::info!(url = %config.url, channel = %inbox, "bridge: subscribed");
        stats.subscriber_up.store(true, Ordering::Relaxed);
        backoff.reset();
        let mut last_probe = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match pubsub.get_message() {
                Ok(msg) => {
                    let global = msg.get_channel_name() == GLOBAL_CHANNEL;
                    let payload = msg.get_payload_bytes();
                    let run = stats.run_epoch.load(Ordering::Relaxed);
                    if run != receipts_run {
                        // This host started a new run: the others number
                        // their envelopes to it from 1 again.
                        receipts = Receipts::default();
                        receipts_run = run;
                    }
                    match wire::decode(payload) {
                        Ok(env) if env.source_host == config.me => {
                            // Our own probe (or our own shout on the global
                            // channel, which our shards already had).
                            if env.messages.is_empty() && !global && env.boot_epoch == run {
                                stats.record_hop_us(monotonic_us().saturating_sub(env.seq));
                                stats.probe_ok.store(true, Ordering::Relaxed);
                                last_probe = Instant::now();
                            }
                        }
                        Ok(env) => {
                            let now = Instant::now();
                            let verdict = if global {
                                receipts.accept(env.source_host, true, env.boot_epoch, env.seq, now)
                            } else {
                                receipts.accept_inbox(
                                    env.source_host,
                                    env.boot_epoch,
                                    env.dest_epoch,
                                    run,
                                    env.seq,
                                    now,
                                )
                            };
                            match verdict {
                                Verdict::Deliver | Verdict::Unnumbered => {}
                                Verdict::Duplicate => continue,
                                Verdict::Gap => {
                                    stats.sequence_gaps.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                                Verdict::Skip { lost } => {
                                    stats.lost.fetch_add(lost, Ordering::Relaxed);
                                    tracing::warn!(
                                        source = env.source_host,
                                        lost,
                                        "bridge: envelopes lost for good were skipped"
                                    );
                                }
                            }
                            if let Ok(mut acks) = stats.acks.lock() {
                                *acks = receipts.render();
                            }
                            stats.envelopes_received.fetch_add(1, Ordering::Relaxed);
                            stats
                                .messages_received
                                .fetch_add(env.messages.len() as u64, Ordering::Relaxed);
                            sink.deliver(env);
                        }
                        Err(e) => {
                            stats.envelopes_refused.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "bridge: envelope refused");
                        }
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    tracing::warn!(error = %e, "bridge: subscriber connection lost; breaker open, reconnecting");
                    break;
                }
            }
            let silent = last_probe.elapsed();
            if silent > probe_every * 2 {
                stats.probe_ok.store(false, Ordering::Relaxed);
            }
            // Only a publisher that is up sends probes: their absence then
            // says this connection hears nothing.
            if silent > probe_every * PROBES_MISSED_MAX
                && stats.publisher_up.load(Ordering::Relaxed)
            {
                stats.wedged.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    silent_ms = silent.as_millis() as u64,
                    "bridge: subscriber hears nothing (wedged); reconnecting"
                );
                break;
            }
        }
        stats.subscriber_up.store(false, Ordering::Relaxed);
        stats.probe_ok.store(false, Ordering::Relaxed);
        drop(pubsub);
        drop(con);
        if !stop.load(Ordering::Relaxed) {
            backoff.sleep(&stop);
        }
    }
    stats.subscriber_up.store(false, Ordering::Relaxed);
}
