//! The `loadgen` command line: parse flags, run, print the table, exit
//! non-zero when the run failed. `loadgen merge FILE…` combines the reports
//! of a run split over `--worker i/n` processes; `loadgen suite` runs the
//! standard benchmark suite (what `scripts/bench.sh` runs).

use clap::Parser;
use loadgen::config::Config;
use loadgen::merge::MergeArgs;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "merge") {
        let args = MergeArgs::parse_from(std::env::args_os().skip(1));
        return match loadgen::merge::run(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(why) => {
                eprintln!("loadgen merge: {why}");
                ExitCode::from(2)
            }
        };
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "suite") {
        return loadgen::suite::main(std::env::args_os().skip(1));
    }
    let config = Config::parse();
    match loadgen::run_and_report(config) {
        Ok(report) => {
            print!("{}", report.table());
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(why) => {
            eprintln!("loadgen: {why}");
            ExitCode::from(2)
        }
    }
}
