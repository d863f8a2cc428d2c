//! The report's floor sections: the machine floor's one-way runs and
//! hiccups (before the scenarios), and the echo runs beside rtt.

use super::super::format::{cell, count, get, ms, num, opt, raw};
use super::super::results::FloorReports;
use serde_json::Value;
use std::fmt::Write as _;

/// "Machine floor (no server)" and "Hiccups"; empty when the floor was not run.
pub fn machine(w: &mut String, floor: &FloorReports, split: bool, nproc: usize) {
    let chat_shape = |how: &str, report: &Option<Value>| {
        report.as_ref().map(|r| {
            format!(
                "one per send, {how}, {} connections (chat's shape)",
                num(r, "config.pairs").map_or_else(|| "—".into(), count)
            )
        })
    };
    let runs: Vec<(String, &Value)> = [
        (
            Some("one per send, paced 50,000/s".to_string()),
            &floor.single_paced,
        ),
        (
            chat_shape("paced 50,000/s", &floor.single_paced_chat_shape),
            &floor.single_paced_chat_shape,
        ),
        (
            Some("one per send, flat out".to_string()),
            &floor.single_max,
        ),
        (
            chat_shape("flat out", &floor.single_max_chat_shape),
            &floor.single_max_chat_shape,
        ),
        (
            Some("ten per send, flat out".to_string()),
            &floor.batch10_max,
        ),
    ]
    .into_iter()
    .filter_map(|(label, r)| Some((label?, r.as_ref()?)))
    .collect();
    if !runs.is_empty() {
        let _ = writeln!(w, "## Machine floor (no server)\n");
        let _ = writeln!(
            w,
            "`bench/floor`: one thread sends 90-byte messages over 1,000 loopback TCP \
             connections, one thread receives them with epoll; CPU time per thread. No \
             WebSocket, no runtime, no server: this is what this machine's kernel alone charges \
             per message (the chat-shape rows: over as many connections as chat has players, \
             at most 8,000){}\n",
            if split {
                ", sender pinned to the servers' core, receiver to loadgen's."
            } else {
                "."
            }
        );
        let _ = writeln!(
            w,
            "| run | messages/s | per send | sender µs/send | sender µs/msg | receiver µs/msg | \
             msgs per read | CPUs for 495,000 msgs/s |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (label, r) in &runs {
            let f = |path: &str| cell(get(r, path));
            let _ = writeln!(
                w,
                "| {label} | {} | {} | {} | {} | {} | {} | {} |",
                f("messages_per_s"),
                raw(get(r, "config.batch")),
                f("sender_us_per_send"),
                f("sender_us_per_message"),
                f("receiver_us_per_message"),
                f("messages_per_read"),
                f("cores_for_chat_target"),
            );
        }
        let single = floor.single_max.as_ref().or(floor.single_paced.as_ref());
        if let Some(single) = single {
            let _ = writeln!(
                w,
                "\nThe chat target (495,000 deliveries/s with p99 ≤ 20 ms) gives each of 10,000 \
                 connections ~50 events/s, one every ~20 ms, so within 20 ms there is about one \
                 event per connection to write: each delivery is close to one send. At this \
                 machine's floor that is {} CPUs of kernel time alone, on a machine with \
                 {nproc}. Batching (the last row) is what makes high delivery rates possible, \
                 and it only comes with a backlog, i.e. latency.",
                cell(get(single, "cores_for_chat_target"))
            );
        }
        let _ = writeln!(w);
    }
    let Some(Value::Array(cpus)) = &floor.hiccups else {
        return;
    };
    let _ = writeln!(w, "### Hiccups (no server)\n");
    let _ = writeln!(
        w,
        "`floor --hiccups`: one pinned thread per CPU reads the clock in a loop for 5 s on the \
         otherwise idle machine; a gap of 50 µs or more between two reads is time the machine \
         took away from it (hypervisor, interrupts). Any request in flight during such a gap \
         waits it out.\n"
    );
    let _ = writeln!(
        w,
        "| CPU | time lost | lost in gaps ≥ 1 ms | gaps ≥ 1 ms | gaps ≥ 2 ms | longest (ms) |\n\
         |---:|---:|---:|---:|---:|---:|"
    );
    for h in cpus {
        let pct = |path: &str| num(h, path).map_or_else(|| "—".to_string(), |v| format!("{v:.2}%"));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} |",
            raw(get(h, "cpu")),
            pct("lost_pct"),
            pct("lost_in_gaps_over_1ms_pct"),
            raw(get(h, "gaps_over_1ms")),
            raw(get(h, "gaps_over_2ms")),
            cell(get(h, "longest_ms")),
        );
    }
    let _ = writeln!(w);
}

/// The floor's request/reply runs beside the rtt figures, when there are any.
pub fn rtt(w: &mut String, floor: &FloorReports) {
    let mut runs: Vec<(String, &Value)> = [
        ("sleeping", &floor.rtt_sleeping),
        (
            "polling, first attempt (disturbed: made once more)",
            &floor.rtt_polling_first,
        ),
        ("polling", &floor.rtt_polling),
    ]
    .into_iter()
    .filter_map(|(mode, r)| r.as_ref().map(|r| (mode.to_string(), r)))
    .collect();
    runs.extend(floor.rtt_shape.iter().map(|(threads, r)| {
        (
            format!("sleeping, {threads} echo thread(s), servers' layout"),
            r,
        )
    }));
    runs.extend(floor.rtt_glommio.iter().map(|(threads, r)| {
        (
            format!(
                "sleeping, {threads} glommio executor(s) as mudshard's shards, servers' layout"
            ),
            r,
        )
    }));
    let Some((_, first)) = runs.first() else {
        return;
    };
    let _ = writeln!(w, "### rtt: the machine's own request→reply latency\n");
    let _ = writeln!(
        w,
        "`floor --rtt`, run just before the servers in the same shape (players as connections, \
         the same rate, warm-up and window, {}-byte replies): an epoll echo thread answering \
         each 40-byte request with one `send`, and a paced open-loop client timing each reply \
         from its intended send time — no WebSocket, no JSON, no game, no runtime (the CPUs \
         column says where each thread ran). *Sleeping* waits in `epoll_pwait2` between \
         events, as servers do: a plain reference, not a bound (a runtime that batches its \
         system calls can do better). *Polling* never sleeps, so what remains of its tail is \
         what the machine itself adds (the hypervisor taking a CPU away, interrupts): no \
         server can expect a lower p99 here. The *servers' layout* runs have as many echo \
         threads as a mudshard run has shards, each with its own epoll set and its share of \
         the connections, placed on the cores as mudshard and loadgen are; their echo CPU is \
         the threads' sum. The *glommio executor* runs are the same with each echo thread a \
         glommio executor set up as a mudshard shard is (its ring depth and runtime \
         switches, a task per connection reading and answering): the runtime's own cost, \
         with no WebSocket, JSON or game.\n",
        raw(get(first, "config.reply_bytes"))
    );
    let _ = writeln!(
        w,
        "| floor run | CPUs (echo, client) | achieved/s | p50 (ms) | p90 (ms) | p99 (ms) | \
         p99.9 (ms) | max (ms) | client µs/req | echo µs/req |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (mode, r) in &runs {
        let cpus = cpus(r);
        let lat = |p: &str| opt(ms(num(r, &format!("latency_us.{p}"))));
        let _ = writeln!(
            w,
            "| {mode} | {cpus} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(get(r, "achieved_per_s")),
            lat("p50"),
            lat("p90"),
            lat("p99"),
            lat("p999"),
            lat("max"),
            cell(get(r, "client_us_per_request")),
            cell(get(r, "echo_us_per_request")),
        );
    }
    let _ = writeln!(w);
    if let Some(first) = &floor.rtt_polling_first {
        let p99 = |r: Option<&Value>| opt(ms(r.and_then(|r| num(r, "latency_us.p99"))));
        let _ = writeln!(
            w,
            "The polling echo was made twice: its first attempt's p99, {} ms, was no lower than \
             that of the sleeping echo made just before it, {} ms, which a thread that never \
             sleeps on a CPU of its own shows only when the machine took that CPU away in its \
             window. The second attempt is the floor the targets are judged against.\n",
            p99(Some(first)),
            p99(floor.rtt_sleeping.as_ref()),
        );
    }
}

/// Where an echo run's threads ran: `echo, client`, several echo CPUs
/// joined by `+`, or `unpinned`.
fn cpus(r: &Value) -> String {
    let echo = match get(r, "config.echo_cores") {
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|c| raw(Some(c)))
            .collect::<Vec<_>>()
            .join("+"),
        _ => match get(r, "config.echo_core") {
            Some(e) if !e.is_null() => raw(Some(e)),
            _ => return "unpinned".into(),
        },
    };
    match get(r, "config.client_core") {
        Some(c) if !c.is_null() => format!("{echo}, {}", raw(Some(c))),
        _ => format!("{echo}, unpinned"),
    }
}
