//! Close codes the server sends (RFC 6455 §7.4.1), and the reason each is
//! used. Every close the server makes names one of these.

pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
pub const INVALID_PAYLOAD: u16 = 1007;
pub const POLICY: u16 = 1008;
pub const TOO_BIG: u16 = 1009;
pub const TRY_AGAIN_LATER: u16 = 1013;
/// Private range (4000–4999): another login took this account over.
pub const TAKEN_OVER: u16 = 4001;

/// Why and how a session is to be closed: the code and the short reason
/// that go in the close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

/// A reader so far behind that its outbound queue passed its bound.
pub const SLOW_READER: CloseReason = CloseReason {
    code: TRY_AGAIN_LATER,
    reason: "outbound queue full: reading too slowly",
};

/// The server is stopping.
pub const SHUTTING_DOWN: CloseReason = CloseReason {
    code: GOING_AWAY,
    reason: "server shutting down",
};

/// No login within the login timeout.
pub const LOGIN_TIMEOUT: CloseReason = CloseReason {
    code: POLICY,
    reason: "login timeout",
};

/// The client kept sending commands over the rate limit
/// (`limits.rate_limited_max` refusals within `rate_limited_window_ms`).
pub const RATE_LIMIT_ABUSE: CloseReason = CloseReason {
    code: POLICY,
    reason: "too many commands over the rate limit",
};

/// Pings went unanswered.
pub const IDLE: CloseReason = CloseReason {
    code: GOING_AWAY,
    reason: "idle: no answer to pings",
};

/// The player quit.
pub const GOODBYE: CloseReason = CloseReason {
    code: NORMAL,
    reason: "goodbye",
};

/// The client closed first; the server answers its close.
pub const BYE: CloseReason = CloseReason {
    code: NORMAL,
    reason: "bye",
};

/// A newer login took this account over.
pub const LOGGED_IN_ELSEWHERE: CloseReason = CloseReason {
    code: TAKEN_OVER,
    reason: "logged in from elsewhere",
};

/// A `resume` on another connection took this session while this one was
/// still open (the same code as a second login: the client should not come
/// back on its own).
pub const RESUMED_ELSEWHERE: CloseReason = CloseReason {
    code: TAKEN_OVER,
    reason: "resumed on another connection",
};

/// The server cannot serve the session now (e.g. no randomness for a token).
pub const UNAVAILABLE: CloseReason = CloseReason {
    code: TRY_AGAIN_LATER,
    reason: "unavailable; try again",
};
