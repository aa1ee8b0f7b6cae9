//! `Timestamp`: a UTC instant used for relationship expiration, with SpiceDB's text form.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::TypesError;

/// A UTC instant with nanosecond precision, in years 0000 to 9999.
///
/// The text form is RFC 3339 as SpiceDB writes it (Go's `time.RFC3339Nano`): always UTC with
/// a `Z`, and a fractional part only when the nanoseconds are non-zero, without trailing
/// zeros, e.g. `2025-01-01T00:00:00Z` or `2025-01-01T00:00:00.5Z`.
///
/// Parsing accepts RFC 3339 with optional fractional seconds and any numeric offset written
/// with `-` (the value is converted to UTC). As in SpiceDB's relationship grammar, only the
/// characters `[0-9-.:TZ]` are allowed, so `+01:00` offsets, lowercase `t`/`z` and spaces
/// are rejected.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Builds a timestamp from seconds and nanoseconds since the Unix epoch, as in
    /// `google.protobuf.Timestamp`.
    ///
    /// # Errors
    ///
    /// Returns an error when `nanos` is 1,000,000,000 or more or the instant falls outside
    /// years 0000 to 9999.
    pub fn from_unix(seconds: i64, nanos: u32) -> Result<Self, TypesError> {
        let invalid = |reason| TypesError::InvalidTimestamp {
            input: format!("{seconds}s {nanos}ns"),
            reason,
        };
        if nanos >= 1_000_000_000 {
            return Err(invalid("nanoseconds must be below 1000000000"));
        }
        let datetime = DateTime::from_timestamp(seconds, nanos).ok_or(invalid("out of range"))?;
        Self::try_from(datetime).map_err(|_| invalid("year must be between 0000 and 9999"))
    }

    /// Returns the current wall-clock time.
    pub fn now() -> Self {
        Self(Utc::now())
    }

    /// Returns the whole seconds since the Unix epoch (negative before 1970).
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    /// Returns the nanoseconds past [`Timestamp::unix_seconds`], below 1,000,000,000.
    pub fn subsec_nanos(&self) -> u32 {
        self.0.timestamp_subsec_nanos()
    }

    /// Returns the instant as a chrono `DateTime<Utc>`.
    pub fn to_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl TryFrom<DateTime<Utc>> for Timestamp {
    type Error = TypesError;

    fn try_from(datetime: DateTime<Utc>) -> Result<Self, Self::Error> {
        // Years outside 0000..=9999 have no four-digit RFC 3339 form; leap seconds (chrono
        // stores them as nanoseconds of 1e9 or more) have none in Go's time package.
        let year_ok = (0..=9999).contains(&datetime.year());
        let leap = datetime.nanosecond() >= 1_000_000_000;
        if year_ok && !leap {
            Ok(Self(datetime))
        } else {
            Err(TypesError::InvalidTimestamp {
                input: datetime.to_rfc3339(),
                reason: "must be in years 0000 to 9999 and not a leap second",
            })
        }
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(timestamp: Timestamp) -> Self {
        timestamp.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S"))?;
        let nanos = self.0.nanosecond();
        if nanos != 0 {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = TypesError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| TypesError::InvalidTimestamp {
            input: text.to_owned(),
            reason,
        };
        let charset_ok = !text.is_empty()
            && text.bytes().all(|byte| {
                byte.is_ascii_digit() || matches!(byte, b'-' | b'.' | b':' | b'T' | b'Z')
            });
        if !charset_ok {
            return Err(invalid(
                "must be RFC 3339 using only `0-9`, `-`, `.`, `:`, `T` and `Z`, e.g. `2025-01-01T00:00:00Z`",
            ));
        }
        let parsed = DateTime::parse_from_rfc3339(text)
            .map_err(|_| invalid("must be RFC 3339, e.g. `2025-01-01T00:00:00Z`"))?;
        Self::try_from(parsed.with_timezone(&Utc)).map_err(|_| invalid("must not be a leap second"))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(input: &str, expected: Expect) {
        let actual = match input.parse::<Timestamp>() {
            Ok(timestamp) => format!(
                "ok {timestamp} ({}s {}ns)",
                timestamp.unix_seconds(),
                timestamp.subsec_nanos()
            ),
            Err(err) => format!("err {err}"),
        };
        expected.assert_eq(&actual);
    }

    #[test]
    fn parse_and_display() {
        check(
            "2025-01-01T00:00:00Z",
            expect!["ok 2025-01-01T00:00:00Z (1735689600s 0ns)"],
        );
        check(
            "2322-01-02T12:23:34Z",
            expect!["ok 2322-01-02T12:23:34Z (11108147014s 0ns)"],
        );
        check(
            "2025-01-01T00:00:00.500Z",
            expect!["ok 2025-01-01T00:00:00.5Z (1735689600s 500000000ns)"],
        );
        check(
            "2025-01-01T00:00:00.000000001Z",
            expect!["ok 2025-01-01T00:00:00.000000001Z (1735689600s 1ns)"],
        );
        check(
            "2025-01-01T00:00:00.000Z",
            expect!["ok 2025-01-01T00:00:00Z (1735689600s 0ns)"],
        );
        check(
            "2025-01-01T00:00:00-05:00",
            expect!["ok 2025-01-01T05:00:00Z (1735707600s 0ns)"],
        );
        check(
            "0000-01-01T00:00:00Z",
            expect!["ok 0000-01-01T00:00:00Z (-62167219200s 0ns)"],
        );
    }

    #[test]
    fn rejects_bad_text() {
        check(
            "2025-01-01T00:00:00+01:00",
            expect![
                "err invalid timestamp `2025-01-01T00:00:00+01:00`: must be RFC 3339 using only `0-9`, `-`, `.`, `:`, `T` and `Z`, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
        check(
            "2025-01-01 00:00:00Z",
            expect![
                "err invalid timestamp `2025-01-01 00:00:00Z`: must be RFC 3339 using only `0-9`, `-`, `.`, `:`, `T` and `Z`, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
        check(
            "2025-01-01T00:00:00",
            expect![
                "err invalid timestamp `2025-01-01T00:00:00`: must be RFC 3339, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
        check(
            "2025-13-01T00:00:00Z",
            expect![
                "err invalid timestamp `2025-13-01T00:00:00Z`: must be RFC 3339, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
        check(
            "",
            expect![
                "err invalid timestamp ``: must be RFC 3339 using only `0-9`, `-`, `.`, `:`, `T` and `Z`, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
        check(
            "2016-12-31T23:59:60Z",
            expect!["err invalid timestamp `2016-12-31T23:59:60Z`: must not be a leap second"],
        );
    }

    #[test]
    fn from_unix() {
        let timestamp = Timestamp::from_unix(1_735_689_600, 250_000_000).unwrap();
        assert_eq!(timestamp.to_string(), "2025-01-01T00:00:00.25Z");
        assert_eq!(timestamp.to_datetime().timestamp(), 1_735_689_600);
        assert_eq!(
            DateTime::<Utc>::from(timestamp).timestamp_subsec_nanos(),
            250_000_000
        );
        expect!["invalid timestamp `0s 1000000000ns`: nanoseconds must be below 1000000000"]
            .assert_eq(
                &Timestamp::from_unix(0, 1_000_000_000)
                    .unwrap_err()
                    .to_string(),
            );
        expect!["invalid timestamp `253402300800s 0ns`: year must be between 0000 and 9999"]
            .assert_eq(
                &Timestamp::from_unix(253_402_300_800, 0)
                    .unwrap_err()
                    .to_string(),
            );
        assert!(Timestamp::from_unix(253_402_300_799, 999_999_999).is_ok());
    }

    #[test]
    fn order_now_and_serde() {
        let early: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let late: Timestamp = "2025-01-01T00:00:00.1Z".parse().unwrap();
        assert!(early < late);
        assert!(Timestamp::now() > early);
        let json = serde_json::to_string(&late).unwrap();
        assert_eq!(json, "\"2025-01-01T00:00:00.1Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), late);
    }
}
