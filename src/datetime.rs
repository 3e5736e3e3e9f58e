//! RFC 3339 instants and intervals, as the STAC API `datetime` parameter uses them.

use chrono::{DateTime, Utc};

/// A closed interval in microseconds since the Unix epoch; `None` is an open end.
pub type Interval = (Option<i64>, Option<i64>);

/// Parses the `datetime` parameter: an RFC 3339 date-time, or `start/end`
/// where one end may be open (`..` or empty). A bare date such as `2021-06-01`
/// is not an RFC 3339 date-time and is rejected, as the STAC API specifies.
pub fn parse_interval(text: &str) -> Result<Interval, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("expected an RFC 3339 date-time or an interval 'start/end'".into());
    }
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [instant] => {
            if *instant == ".." {
                return Err("'..' is only allowed as one end of an interval".into());
            }
            let point = parse_instant(instant)?;
            Ok((Some(point), Some(point)))
        }
        [start, end] => {
            let start = parse_open_bound(start)?;
            let end = parse_open_bound(end)?;
            match (start, end) {
                (None, None) => Err("at most one end of an interval may be open".into()),
                (Some(s), Some(e)) if s > e => Err("the interval starts after it ends".into()),
                _ => Ok((start, end)),
            }
        }
        _ => Err("an interval has exactly one '/'".into()),
    }
}

fn parse_open_bound(text: &str) -> Result<Option<i64>, String> {
    if text.is_empty() || text == ".." {
        Ok(None)
    } else {
        parse_instant(text).map(Some)
    }
}

/// Parses one RFC 3339 date-time with a time zone into microseconds since the Unix epoch.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|dt| dt.with_timezone(&Utc).timestamp_micros())
        .map_err(|e| format!("'{text}' is not an RFC 3339 date-time such as 2021-06-01T12:00:00Z ({e})"))
}

/// Formats microseconds since the Unix epoch as RFC 3339 in UTC.
pub fn format_micros(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> i64 {
        parse_instant(text).unwrap()
    }

    #[test]
    fn instant_is_a_closed_point() {
        let t = micros("2021-06-01T12:00:00Z");
        assert_eq!(
            parse_interval("2021-06-01T12:00:00Z").unwrap(),
            (Some(t), Some(t))
        );
    }

    #[test]
    fn open_ends_with_dots_or_empty() {
        let t = micros("2021-06-01T00:00:00Z");
        assert_eq!(
            parse_interval("2021-06-01T00:00:00Z/..").unwrap(),
            (Some(t), None)
        );
        assert_eq!(
            parse_interval("../2021-06-01T00:00:00Z").unwrap(),
            (None, Some(t))
        );
        assert_eq!(parse_interval("2021-06-01T00:00:00Z/").unwrap(), (Some(t), None));
        assert_eq!(parse_interval("/2021-06-01T00:00:00Z").unwrap(), (None, Some(t)));
    }

    #[test]
    fn rejects_bad_intervals() {
        for bad in [
            "",
            "..",
            "../..",
            "/",
            "2021-06-02T00:00:00Z/2021-06-01T00:00:00Z",
            "a/b/c",
            "2021-06-01T00:00:00",
            "yesterday",
            "2021-13-01T00:00:00Z",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bare_dates_are_rejected() {
        assert!(parse_interval("1985-04-12").is_err());
        assert!(parse_interval("2021-06-01/2021-06-30").is_err());
    }

    #[test]
    fn offsets_convert_to_utc() {
        assert_eq!(
            micros("2021-06-01T02:00:00+02:00"),
            micros("2021-06-01T00:00:00Z")
        );
    }
}
