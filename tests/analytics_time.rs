//! Event time read from every message shape, and malformed timestamps as per-field errors.
#![cfg(feature = "json")]

use streamtrack::message::JsonError;
use streamtrack::Message;

const T: i64 = 1_539_202_764_000; // 2018-10-10T20:19:24Z

#[test]
fn timestamps_of_every_shape() {
    let v1 = r#"{"id_str": "1", "text": "hi", "created_at": "Wed Oct 10 20:19:24 +0000 2018", "user": {"screen_name": "a"}}"#;
    assert_eq!(Message::from_json(v1).unwrap().timestamp, Some(T));
    let v2 = r#"{"data": {"id": "1", "text": "hi", "created_at": "2018-10-10T20:19:24.000Z", "author_id": "9"}}"#;
    assert_eq!(Message::from_json(v2).unwrap().timestamp, Some(T));
    let simple = r#"{"id": 1, "text": "hi", "created_at": "2018-10-10T22:19:24+02:00"}"#;
    assert_eq!(Message::from_json(simple).unwrap().timestamp, Some(T));
    let simple = r#"{"id": 1, "text": "hi", "timestamp": 1539202764000}"#;
    assert_eq!(Message::from_json(simple).unwrap().timestamp, Some(T));
    let simple = r#"{"id": 1, "text": "hi", "timestamp": "2018-10-10T20:19:24Z"}"#;
    assert_eq!(Message::from_json(simple).unwrap().timestamp, Some(T));
    let none = r#"{"id": 1, "text": "hi", "timestamp": null}"#;
    assert_eq!(Message::from_json(none).unwrap().timestamp, None);
    assert_eq!(Message::from_json(r#"{"id": 1, "text": "hi"}"#).unwrap().timestamp, None);
}

#[test]
fn malformed_timestamps_name_the_field() {
    for (line, field) in [
        (r#"{"id": 1, "text": "hi", "created_at": "2018-13-10T20:19:24Z"}"#, "created_at"),
        (r#"{"id": 1, "text": "hi", "timestamp": "yesterday"}"#, "timestamp"),
        (r#"{"id": 1, "text": "hi", "timestamp": true}"#, "timestamp"),
        (
            r#"{"id_str": "1", "text": "hi", "created_at": "Wed Foo 10 20:19:24 +0000 2018"}"#,
            "created_at",
        ),
        (
            r#"{"data": {"id": "1", "text": "hi", "created_at": "2018-10-10T25:00:00Z"}}"#,
            "data.created_at",
        ),
    ] {
        match Message::from_json(line) {
            Err(JsonError::InvalidField { field: f, reason }) => {
                assert_eq!(f, field, "{line}");
                assert!(reason.contains("column") || line.contains("true"), "{reason}");
            }
            other => panic!("{line}: {other:?}"),
        }
    }
}
