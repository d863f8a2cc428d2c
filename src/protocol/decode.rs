//! Decoding client frames (DESIGN §4) with simd-json.
//!
//! The payload is parsed in place (simd-json rewrites the buffer), so strings
//! without escapes borrow from the shard's scratch buffer and cost nothing.

use simd_json::borrowed::{Object, Value};
use simd_json::StaticNode;
use std::borrow::Cow;

use super::MsgId;

/// A frame a client may send.
#[derive(Debug, PartialEq)]
pub enum ClientFrame<'a> {
    Guest {
        name: Option<Cow<'a, str>>,
    },
    Register {
        name: Cow<'a, str>,
        password: Cow<'a, str>,
    },
    Login(Credentials<'a>),
    Resume {
        token: Cow<'a, str>,
        last_seq: u64,
    },
    Cmd {
        id: Option<MsgId>,
        line: Cow<'a, str>,
    },
    Ping {
        id: Option<MsgId>,
    },
}

/// How a `login` frame proves who it is.
#[derive(Debug, PartialEq)]
pub enum Credentials<'a> {
    Password {
        name: Cow<'a, str>,
        password: Cow<'a, str>,
    },
    Token(Cow<'a, str>),
}

/// Why a frame was refused; the connection stays (DESIGN §7).
#[derive(Debug, PartialEq)]
pub struct DecodeError {
    /// Stable machine code: `bad_json`, `unknown_type` or `bad_field`.
    pub code: &'static str,
    pub message: String,
    /// The frame's `id`, when it had a good one: the error echoes it, so
    /// that a client matching answers by id finds this one.
    pub id: Option<MsgId>,
}

impl DecodeError {
    fn bad_field(message: impl Into<String>) -> Self {
        DecodeError {
            code: "bad_field",
            message: message.into(),
            id: None,
        }
    }

    fn for_id(self, id: Option<MsgId>) -> Self {
        DecodeError { id, ..self }
    }
}

/// Decodes one text payload. `payload` is modified in place.
pub fn decode(payload: &mut [u8]) -> Result<ClientFrame<'_>, DecodeError> {
    decode_with(payload, &mut simd_json::Buffers::default())
}

/// Decodes with the parser's working buffers kept by the caller (one set
/// per shard): allocating them afresh was half the cost of a decode.
pub fn decode_with<'a>(
    payload: &'a mut [u8],
    buffers: &mut simd_json::Buffers,
) -> Result<ClientFrame<'a>, DecodeError> {
    let value =
        simd_json::to_borrowed_value_with_buffers(payload, buffers).map_err(|e| DecodeError {
            code: "bad_json",
            message: format!("not valid JSON: {e}"),
            id: None,
        })?;
    let Value::Object(mut obj) = value else {
        return Err(DecodeError {
            code: "bad_json",
            message: "a frame must be a JSON object".into(),
            id: None,
        });
    };
    let kind = match take_str(&mut obj, "type") {
        Ok(Some(kind)) => kind,
        Ok(None) => return Err(DecodeError::bad_field("missing \"type\"").for_id(good_id(&obj))),
        Err(e) => return Err(e.for_id(good_id(&obj))),
    };
    match kind.as_ref() {
        "guest" => Ok(ClientFrame::Guest {
            name: take_str(&mut obj, "name")?,
        }),
        "register" => Ok(ClientFrame::Register {
            name: required_str(&mut obj, "name")?,
            password: required_str(&mut obj, "password")?,
        }),
        "login" => match take_str(&mut obj, "token")? {
            Some(token) => Ok(ClientFrame::Login(Credentials::Token(token))),
            None => Ok(ClientFrame::Login(Credentials::Password {
                name: required_str(&mut obj, "name")?,
                password: required_str(&mut obj, "password")?,
            })),
        },
        "resume" => Ok(ClientFrame::Resume {
            token: required_str(&mut obj, "token")?,
            last_seq: match obj.get("last_seq") {
                Some(Value::Static(StaticNode::U64(n))) => *n,
                Some(Value::Static(StaticNode::I64(n))) if *n >= 0 => *n as u64,
                _ => {
                    return Err(DecodeError::bad_field(
                        "\"last_seq\" must be a non-negative integer",
                    ))
                }
            },
        }),
        "cmd" => {
            let id = take_id(&obj)?;
            let line = required_str(&mut obj, "line").map_err(|e| e.for_id(id))?;
            Ok(ClientFrame::Cmd { id, line })
        }
        "ping" => Ok(ClientFrame::Ping { id: take_id(&obj)? }),
        other => Err(DecodeError {
            code: "unknown_type",
            message: format!(
                "unknown frame type {:?}; expected guest, register, login, resume, cmd or ping",
                truncate(other, 40)
            ),
            id: good_id(&obj),
        }),
    }
}

fn take_str<'a>(obj: &mut Object<'a>, key: &str) -> Result<Option<Cow<'a, str>>, DecodeError> {
    match obj.remove(key) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DecodeError::bad_field(format!(
            "\"{key}\" must be a string"
        ))),
    }
}

fn required_str<'a>(obj: &mut Object<'a>, key: &str) -> Result<Cow<'a, str>, DecodeError> {
    take_str(obj, key)?.ok_or_else(|| DecodeError::bad_field(format!("missing \"{key}\"")))
}

fn take_id(obj: &Object<'_>) -> Result<Option<MsgId>, DecodeError> {
    let id = match obj.get("id") {
        None | Some(Value::Static(StaticNode::Null)) => return Ok(None),
        Some(Value::String(s)) => MsgId::from_str_value(s),
        Some(Value::Static(StaticNode::I64(n))) => MsgId::from_int(*n),
        Some(Value::Static(StaticNode::U64(n))) => MsgId::from_int(*n),
        Some(Value::Static(StaticNode::F64(f))) if f.is_finite() => MsgId::from_float(*f),
        Some(_) => None,
    };
    id.map(Some).ok_or_else(|| {
        DecodeError::bad_field(format!(
            "\"id\" must be a string or a number of at most {} bytes",
            MsgId::BYTES_MAX
        ))
    })
}

/// The frame's `id` if it has a good one, for an error to echo.
fn good_id(obj: &Object<'_>) -> Option<MsgId> {
    take_id(obj).ok().flatten()
}

fn truncate(s: &str, chars_max: usize) -> &str {
    match s.char_indices().nth(chars_max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<ClientFrame<'static>, DecodeError> {
        let buf: &'static mut [u8] = Box::leak(s.as_bytes().to_vec().into_boxed_slice());
        decode(buf)
    }

    #[test]
    fn guest_with_and_without_a_name() {
        assert_eq!(
            dec(r#"{"type":"guest"}"#),
            Ok(ClientFrame::Guest { name: None })
        );
        assert_eq!(
            dec(r#"{"type":"guest","name":"bob"}"#),
            Ok(ClientFrame::Guest {
                name: Some("bob".into())
            })
        );
    }

    #[test]
    fn cmd_ids_echo_exactly_as_json() {
        let ClientFrame::Cmd { id, line } = dec(r#"{"type":"cmd","id":42,"line":"look"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(id.unwrap().as_json(), "42");
        assert_eq!(line, "look");
        let ClientFrame::Cmd { id, .. } = dec(r#"{"type":"cmd","id":"a\"b","line":"l"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(id.unwrap().as_json(), r#""a\"b""#);
        let ClientFrame::Cmd { id, .. } = dec(r#"{"line":"l","type":"cmd"}"#).unwrap() else {
            panic!()
        };
        assert_eq!(id, None);
    }

    #[test]
    fn escaped_text_is_unescaped() {
        let ClientFrame::Cmd { line, .. } =
            dec(r#"{"type":"cmd","line":"say h\u00e9 \"x\""}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(line, "say hé \"x\"");
    }

    #[test]
    fn login_by_password_or_token() {
        assert!(matches!(
            dec(r#"{"type":"login","name":"ann","password":"secretpw"}"#),
            Ok(ClientFrame::Login(Credentials::Password { .. }))
        ));
        assert!(matches!(
            dec(r#"{"type":"login","token":"t.1.x"}"#),
            Ok(ClientFrame::Login(Credentials::Token(_)))
        ));
        assert!(matches!(
            dec(r#"{"type":"resume","token":"t","last_seq":3}"#),
            Ok(ClientFrame::Resume { last_seq: 3, .. })
        ));
    }

    #[test]
    fn refusals_have_stable_codes() {
        assert_eq!(dec("not json").unwrap_err().code, "bad_json");
        assert_eq!(dec("[1,2]").unwrap_err().code, "bad_json");
        assert_eq!(dec(r#"{"type":"dance"}"#).unwrap_err().code, "unknown_type");
        assert_eq!(dec(r#"{"name":"x"}"#).unwrap_err().code, "bad_field");
        assert_eq!(dec(r#"{"type":"cmd"}"#).unwrap_err().code, "bad_field");
        // The error echoes a good id, so a client waiting on it hears.
        let e = dec(r#"{"type":"cmd","id":7,"line":3}"#).unwrap_err();
        assert_eq!((e.code, e.id), ("bad_field", MsgId::from_int(7i64)));
        let e = dec(r#"{"type":"cmmd","id":"x"}"#).unwrap_err();
        assert_eq!((e.code, e.id.is_some()), ("unknown_type", true));
        assert_eq!(dec(r#"{"type":"cmd","id":[1]}"#).unwrap_err().id, None);
        assert!(dec(r#"{"type":5,"id":20}"#).unwrap_err().id.is_some());
        assert!(dec(r#"{"id":22,"line":"look"}"#).unwrap_err().id.is_some());
        assert_eq!(
            dec(r#"{"type":"cmd","line":5}"#).unwrap_err().code,
            "bad_field"
        );
        assert_eq!(
            dec(r#"{"type":"cmd","line":"l","id":[1]}"#)
                .unwrap_err()
                .code,
            "bad_field"
        );
        assert_eq!(dec(r#"{"type":7}"#).unwrap_err().code, "bad_field");
        let long = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(100));
        assert_eq!(dec(&long).unwrap_err().code, "bad_field");
    }
}
