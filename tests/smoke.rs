mod common;
use common::*;

#[test]
fn a_guest_logs_in_and_looks() {
    let server = ServerProc::start(&["--shards", "2"]);
    let mut c = Client::guest(server.addr, Some("alice"));
    assert_eq!(c.welcome["name"], "alice");
    let reply = c.cmd("look");
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(reply["room"]["id"].is_string());
}
