//! Event time: the timestamps messages carry, as milliseconds since the Unix epoch (UTC).
//!
//! Accepted forms: Twitter v1.1's `Wed Oct 10 20:19:24 +0000 2018`, RFC 3339 / ISO 8601
//! (`2018-10-10T20:19:24.000Z`, `2018-10-10T22:19:24+02:00`; a space may replace the `T`;
//! without an offset the time is UTC, which also covers `2018-10-10 20:19:24`), and epoch
//! milliseconds (a JSON number or a string of digits). No calendar crate: the civil-date
//! arithmetic is Howard Hinnant's `days_from_civil`.

use std::fmt;

/// Why a timestamp could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimeError {
    /// 1-based column (in characters) of the timestamp text where reading failed.
    pub column: usize,
    /// What was expected there.
    pub reason: &'static str,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.reason)
    }
}

impl std::error::Error for TimeError {}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count from 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Formats epoch milliseconds as RFC 3339 in UTC, `2018-10-10T20:19:24Z` (with `.mmm` when the
/// milliseconds are not zero).
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
    if milli == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{milli:03}Z")
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn err(&self, reason: &'static str) -> TimeError {
        TimeError { column: self.i + 1, reason }
    }
    fn digits(&mut self, n: usize, reason: &'static str) -> Result<u32, TimeError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.b.get(self.i) {
                Some(c) if c.is_ascii_digit() => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => return Err(self.err(reason)),
            }
        }
        Ok(v)
    }
    fn byte(&mut self, want: &[u8], reason: &'static str) -> Result<u8, TimeError> {
        match self.b.get(self.i) {
            Some(c) if want.contains(c) => {
                self.i += 1;
                Ok(*c)
            }
            _ => Err(self.err(reason)),
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
}

fn epoch_ms(
    c: &Cursor<'_>,
    (y, mo, d): (i64, u32, u32),
    (h, mi, s): (u32, u32, u32),
    milli: u32,
    offset_min: i64,
) -> Result<i64, TimeError> {
    let col = |reason| TimeError { column: 1, reason };
    if !(1..=12).contains(&mo) {
        return Err(col("month out of range (1-12)"));
    }
    if d == 0 || d > days_in_month(y, mo) {
        return Err(col("day out of range for its month"));
    }
    if h > 23 || mi > 59 || s > 60 {
        return Err(col("time out of range"));
    }
    let _ = c;
    let s = s.min(59); // a leap second is read as :59
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset_min * 60;
    Ok(secs * 1000 + i64::from(milli))
}

/// Reads `YYYY-MM-DD[T| ]HH:MM:SS[.fff][Z|±HH:MM|±HHMM]` (no offset: UTC).
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    let mut c = Cursor { b: t.as_bytes(), i: 0 };
    let y = c.digits(4, "expected a 4-digit year")?;
    c.byte(b"-", "expected '-' after the year")?;
    let mo = c.digits(2, "expected a 2-digit month")?;
    c.byte(b"-", "expected '-' after the month")?;
    let d = c.digits(2, "expected a 2-digit day")?;
    c.byte(b"Tt ", "expected 'T' or a space before the time")?;
    let h = c.digits(2, "expected a 2-digit hour")?;
    c.byte(b":", "expected ':' after the hour")?;
    let mi = c.digits(2, "expected 2-digit minutes")?;
    c.byte(b":", "expected ':' after the minutes")?;
    let s = c.digits(2, "expected 2-digit seconds")?;
    let mut milli = 0u32;
    if c.peek() == Some(b'.') || c.peek() == Some(b',') {
        c.i += 1;
        let start = c.i;
        while c.peek().is_some_and(|b| b.is_ascii_digit()) {
            if c.i - start < 3 {
                milli = milli * 10 + u32::from(c.b[c.i] - b'0');
            }
            c.i += 1;
        }
        if c.i == start {
            return Err(c.err("expected digits after the decimal point"));
        }
        for _ in (c.i - start)..3 {
            milli *= 10;
        }
    }
    let offset = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(b'+' | b'-') => {
            let sign = if c.byte(b"+-", "")? == b'-' { -1 } else { 1 };
            let oh = c.digits(2, "expected a 2-digit offset hour")?;
            if c.peek() == Some(b':') {
                c.i += 1;
            }
            let om = c.digits(2, "expected 2-digit offset minutes")?;
            if oh > 23 || om > 59 {
                return Err(c.err("offset out of range"));
            }
            sign * i64::from(oh * 60 + om)
        }
        Some(_) => return Err(c.err("expected 'Z', an offset or the end")),
    };
    if c.i != c.b.len() {
        return Err(c.err("unexpected text after the timestamp"));
    }
    epoch_ms(&c, (i64::from(y), mo, d), (h, mi, s), milli, offset)
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Reads Twitter v1.1's `Wed Oct 10 20:19:24 +0000 2018`.
pub fn parse_twitter_v1(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    let parts: Vec<(usize, &str)> = {
        let mut v = Vec::new();
        let mut start = None;
        for (i, ch) in t.char_indices() {
            match (ch == ' ', start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    v.push((s, &t[s..i]));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            v.push((s, &t[s..]));
        }
        v
    };
    let col = |i: usize| t[..i.min(t.len())].chars().count() + 1;
    if parts.len() != 6 {
        return Err(TimeError {
            column: 1,
            reason: "expected 'Www Mmm DD HH:MM:SS +ZZZZ YYYY' (6 fields)",
        });
    }
    let (mi, mon) = parts[1];
    let mo = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(mon))
        .ok_or(TimeError { column: col(mi), reason: "expected a month name (Jan-Dec)" })?
        as u32
        + 1;
    let at = |p: usize, reason| TimeError { column: col(parts[p].0), reason };
    let d: u32 = parts[2].1.parse().map_err(|_| at(2, "expected the day of the month"))?;
    let y: i64 = parts[5]
        .1
        .parse()
        .ok()
        .filter(|_| parts[5].1.len() == 4)
        .ok_or(at(5, "expected a 4-digit year"))?;
    let hms = parts[3].1;
    let mut c = Cursor { b: hms.as_bytes(), i: 0 };
    let fix = |e: TimeError| TimeError { column: col(parts[3].0) + e.column - 1, reason: e.reason };
    let h = c.digits(2, "expected HH:MM:SS").map_err(fix)?;
    c.byte(b":", "expected HH:MM:SS").map_err(fix)?;
    let m = c.digits(2, "expected HH:MM:SS").map_err(fix)?;
    c.byte(b":", "expected HH:MM:SS").map_err(fix)?;
    let s = c.digits(2, "expected HH:MM:SS").map_err(fix)?;
    if c.i != hms.len() {
        return Err(fix(c.err("expected HH:MM:SS")));
    }
    let off = parts[4].1.as_bytes();
    if off.len() != 5 || !matches!(off[0], b'+' | b'-') || !off[1..].iter().all(u8::is_ascii_digit)
    {
        return Err(at(4, "expected an offset such as +0000"));
    }
    let oh = i64::from(off[1] - b'0') * 10 + i64::from(off[2] - b'0');
    let om = i64::from(off[3] - b'0') * 10 + i64::from(off[4] - b'0');
    let offset = if off[0] == b'-' { -(oh * 60 + om) } else { oh * 60 + om };
    epoch_ms(&c, (y, mo, d), (h, m, s), 0, offset)
        .map_err(|e| TimeError { column: col(parts[1].0), reason: e.reason })
}

/// Reads a timestamp in any accepted text form: all digits (optionally `-`) is epoch
/// milliseconds; a leading weekday name is Twitter v1.1; anything else RFC 3339.
pub fn parse_timestamp(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(TimeError { column: 1, reason: "empty timestamp" });
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map_err(|_| TimeError { column: 1, reason: "epoch milliseconds out of range" });
    }
    if t.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        return parse_twitter_v1(t);
    }
    parse_rfc3339(t)
}

/// The event time of a JSON message: v1.1 `created_at`, v2 `created_at` (in `data` or at the
/// top), the simple shape's `created_at` or `timestamp` (RFC 3339 text or epoch milliseconds).
/// `Ok(None)` when absent or `null`; a malformed value is an error naming the field.
#[cfg(feature = "json")]
pub(crate) fn timestamp_of(
    map: &serde_json::Map<String, serde_json::Value>,
    format: super::MessageFormat,
) -> Result<Option<i64>, super::JsonError> {
    use serde_json::Value;
    let mut candidates: Vec<(String, &Value)> = Vec::new();
    if format == super::MessageFormat::TwitterV2 {
        if let Some(Value::Object(data)) = map.get("data") {
            if let Some(v) = data.get("created_at") {
                candidates.push(("data.created_at".into(), v));
            }
        }
    }
    for key in ["created_at", "timestamp"] {
        if key == "timestamp" && format != super::MessageFormat::Simple {
            continue;
        }
        if let Some(v) = map.get(key) {
            candidates.push((key.into(), v));
        }
    }
    for (field, v) in candidates {
        let bad = |reason: String| super::JsonError::InvalidField { field: field.clone(), reason };
        return match v {
            Value::Null => continue,
            Value::String(s) => {
                parse_timestamp(s).map(Some).map_err(|e| bad(format!("timestamp {s:?}: {e}")))
            }
            Value::Number(n) => match n.as_i64() {
                Some(ms) => Ok(Some(ms)),
                None => match n.as_f64() {
                    Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(Some(f.round() as i64)),
                    _ => Err(bad("epoch milliseconds out of range".into())),
                },
            },
            _ => Err(bad("expected a timestamp string or epoch milliseconds".into())),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 59, 10_957, 17_814, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn all_forms_agree() {
        let want = 1_539_202_764_000; // 2018-10-10T20:19:24Z
        assert_eq!(parse_timestamp("Wed Oct 10 20:19:24 +0000 2018"), Ok(want));
        assert_eq!(parse_timestamp("2018-10-10T20:19:24.000Z"), Ok(want));
        assert_eq!(parse_timestamp("2018-10-10T22:19:24+02:00"), Ok(want));
        assert_eq!(parse_timestamp("2018-10-10 20:19:24"), Ok(want));
        assert_eq!(parse_timestamp("1539202764000"), Ok(want));
        assert_eq!(parse_timestamp("Wed Oct 10 15:19:24 -0500 2018"), Ok(want));
        assert_eq!(parse_timestamp("2018-10-10T20:19:24.5Z"), Ok(want + 500));
        assert_eq!(format_rfc3339(want), "2018-10-10T20:19:24Z");
        assert_eq!(format_rfc3339(want + 7), "2018-10-10T20:19:24.007Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse_timestamp("2018-13-10T20:19:24Z").unwrap_err();
        assert!(e.reason.contains("month"), "{e}");
        let e = parse_timestamp("2018-10-10X20:19:24Z").unwrap_err();
        assert_eq!(e.column, 11);
        let e = parse_timestamp("2018-02-30 00:00:00").unwrap_err();
        assert!(e.reason.contains("day"), "{e}");
        let e = parse_timestamp("Wed Foo 10 20:19:24 +0000 2018").unwrap_err();
        assert_eq!(e.column, 5);
        let e = parse_timestamp("Wed Oct 10 20:1x:24 +0000 2018").unwrap_err();
        assert_eq!(e.column, 16);
        assert!(parse_timestamp("2018-10-10T20:19:24Zjunk").is_err());
        assert!(parse_timestamp("").is_err());
        assert!(parse_timestamp("99999999999999999999").is_err());
    }
}
