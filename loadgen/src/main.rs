//! The `loadgen` command line: parse flags, run, print the table, exit
//! non-zero when the run failed.

use clap::Parser;
use loadgen::config::Config;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
