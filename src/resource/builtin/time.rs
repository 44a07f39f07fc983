//! `time`: new versions on an interval and/or within a daily window, as
//! concourse/time-resource. A version is `{"time": RFC 3339}`, formatted as
//! Go formats it, so versions round-trip byte for byte (Concourse tells
//! versions apart by their JSON).

use std::io::{self, Write};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ToSpan, ZonedDateTime};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Command;
use crate::duration::InvalidDuration;

#[derive(Debug, Default, Deserialize)]
struct Source {
    initial_version: Option<bool>,
    interval: Option<String>,
    start: Option<String>,
    stop: Option<String>,
    days: Option<Vec<String>>,
    location: Option<String>,
    start_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TimeVersion {
    time: Option<String>,
}

#[derive(Deserialize)]
struct Request {
    source: Option<Source>,
    version: Option<TimeVersion>,
}

/// The source, checked and parsed.
struct Schedule {
    initial_version: bool,
    interval: Option<Duration>,
    /// Minutes after midnight; both or neither.
    window: Option<(u32, u32)>,
    days: Vec<Weekday>,
    location: TimeZone,
    start_after: Option<DateTime>,
}

/// Why a time command failed, worded as concourse/time-resource words it.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    #[error("parse error: {0}")]
    InvalidRequest(#[source] serde_json::Error),
    #[error("usage: in <destination>")]
    NoDestination,
    #[error("unknown location '{name}': {source}")]
    UnknownLocation {
        name: String,
        #[source]
        source: jiff::Error,
    },
    #[error("must configure 'stop' if 'start' is set")]
    StartWithoutStop,
    #[error("must configure 'start' if 'stop' is set")]
    StopWithoutStart,
    #[error(
        "invalid time format: {0}, must be one of: 3:04 PM -0700, 3PM -0700, 3 PM -0700, 15:04 -0700, 1504 -0700, \
         3:04 PM, 3PM, 3 PM, 15:04, 1504"
    )]
    InvalidTimeOfDay(String),
    #[error("unknown weekday: {0}")]
    UnknownWeekday(String),
    #[error(transparent)]
    InvalidInterval(#[from] InvalidDuration),
    #[error(
        "invalid date format: {0}, must be one of: 2006-01-02T15:04:05, 2006-01-02T15:04, 2006-01-02T15, \
         2006-01-02, 2006-01-02 15:04:05"
    )]
    InvalidStartAfter(String),
    #[error("parse error: version time '{text}': {source}")]
    InvalidVersionTime {
        text: String,
        #[source]
        source: jiff::Error,
    },
    #[error("creating destination: {0}")]
    CreateDestination(#[source] io::Error),
    #[error("writing {name} file: {source}")]
    WriteFile {
        name: &'static str,
        #[source]
        source: io::Error,
    },
}

pub fn run(command: Command, dir: Option<&Path>, request: &[u8], log: &mut dyn Write) -> Result<Value, TimeError> {
    let parsed: Request = serde_json::from_slice(request).map_err(TimeError::InvalidRequest)?;
    let schedule = Schedule::parse(&parsed.source.unwrap_or_default())?;
    let previous = match parsed.version.and_then(|version| version.time).filter(|time| !time.is_empty()) {
        Some(time) => Some(parse_version_time(&time)?),
        None => None,
    };
    let now = Timestamp::now().to_zoned_datetime(schedule.location.clone());
    match (command, dir) {
        (Command::Check, _) => Ok(Value::Array(schedule.check(previous, now).iter().map(version).collect())),
        (Command::In, Some(dest)) => get(dest, request, previous, log),
        (Command::Out, _) => Ok(json!({ "version": version(&now), "metadata": null })),
        (Command::In, None) => Err(TimeError::NoDestination),
    }
}

fn version(time: &ZonedDateTime) -> Value {
    json!({ "time": go_rfc3339(time) })
}

fn get(dest: &Path, request: &[u8], previous: Option<ZonedDateTime>, log: &mut dyn Write) -> Result<Value, TimeError> {
    let time = previous.unwrap_or_else(|| Timestamp::now().to_zoned_datetime(TimeZone::UTC));
    std::fs::create_dir_all(dest).map_err(TimeError::CreateDestination)?;
    let input: Value = serde_json::from_slice(request).map_err(TimeError::InvalidRequest)?;
    let files = [
        ("input", format!("{input}\n")),
        ("timestamp", go_timestamp(&time)),
        ("epoch", time.timestamp().as_second().to_string()),
    ];
    for (name, content) in files {
        std::fs::write(dest.join(name), content).map_err(|source| TimeError::WriteFile { name, source })?;
    }
    let _ = writeln!(log, "fetched time {}", go_rfc3339(&time));
    Ok(json!({ "version": version(&time), "metadata": null }))
}

impl Schedule {
    fn parse(source: &Source) -> Result<Schedule, TimeError> {
        let location = match source.location.as_deref() {
            None | Some("") | Some("UTC") => TimeZone::UTC,
            Some(name) => {
                TimeZone::get(name).map_err(|source| TimeError::UnknownLocation { name: name.to_string(), source })?
            }
        };
        let window = match (&source.start, &source.stop) {
            (Some(start), Some(stop)) => Some((parse_time_of_day(start)?, parse_time_of_day(stop)?)),
            (Some(_), None) => return Err(TimeError::StartWithoutStop),
            (None, Some(_)) => return Err(TimeError::StopWithoutStart),
            (None, None) => None,
        };
        let days = source.days.iter().flatten().map(|day| parse_weekday(day)).collect::<Result<_, _>>()?;
        let interval = match source.interval.as_deref() {
            Some(interval) => Some(crate::duration::parse(interval)?),
            None => None,
        };
        let start_after = source.start_after.as_deref().map(parse_start_after).transpose()?;
        Ok(Schedule {
            initial_version: source.initial_version == Some(true),
            interval,
            window,
            days,
            location,
            start_after,
        })
    }

    fn check(&self, previous: Option<ZonedDateTime>, now: ZonedDateTime) -> Vec<ZonedDateTime> {
        let mut versions = Vec::new();
        match previous {
            Some(previous) => {
                let due = self.is_due(Some(&previous), &now);
                versions.push(previous);
                if due {
                    versions.push(now);
                }
            }
            None if self.initial_version => versions.push(now),
            None => {
                if self.is_due(None, &now) {
                    versions.push(now);
                }
            }
        }
        versions
    }

    /// Whether `now` deserves a new version after `previous`.
    fn is_due(&self, previous: Option<&ZonedDateTime>, now: &ZonedDateTime) -> bool {
        let (start, stop) = self.latest_range_before(now);
        if !self.days.is_empty() && !self.days.contains(&now.with_time_zone(self.location.clone()).weekday()) {
            return false;
        }
        if let Some(start_after) = self.start_after {
            match start_after.to_zoned_datetime(self.location.clone()) {
                Ok(start_after) if start_after < *now => {}
                _ => return false,
            }
        }
        if *now < start || *now >= stop {
            return false;
        }
        let Some(previous) = previous else { return true };
        match self.interval {
            Some(interval) => {
                let elapsed = now.timestamp().as_nanosecond() - previous.timestamp().as_nanosecond();
                elapsed >= interval.as_nanos() as i128
            }
            None => *previous < start,
        }
    }

    /// The latest daily window that starts at or before `reference`.
    fn latest_range_before(&self, reference: &ZonedDateTime) -> (ZonedDateTime, ZonedDateTime) {
        let (start_minutes, stop_minutes) = self.window.unwrap_or((0, 0));
        let local = reference.with_time_zone(self.location.clone());
        let mut start = at_minutes(local.date(), start_minutes, &self.location);
        if start > local {
            start = start.checked_sub(1.day()).unwrap_or(start);
        }
        let mut stop = at_minutes(start.date(), stop_minutes, &self.location);
        if stop <= start {
            stop = stop.checked_add(1.day()).unwrap_or(stop);
        }
        (start, stop)
    }
}

fn at_minutes(date: Date, minutes: u32, location: &TimeZone) -> ZonedDateTime {
    let datetime = date.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
    // A time skipped by a DST change moves forward, as Go's time.Date does.
    datetime
        .to_zoned_datetime(location.clone())
        .unwrap_or_else(|_| Timestamp::UNIX_EPOCH.to_zoned_datetime(location.clone()))
}

static TIME_OF_DAY: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    [
        r"^(?P<h>\d{1,2}):(?P<m>\d{2}) (?P<ampm>AM|PM)(?: (?P<off>[+-]\d{4}))?$",
        r"^(?P<h>\d{1,2}) ?(?P<ampm>AM|PM)(?: (?P<off>[+-]\d{4}))?$",
        r"^(?P<h>\d{1,2}):(?P<m>\d{2})(?: (?P<off>[+-]\d{4}))?$",
        r"^(?P<h>\d{2})(?P<m>\d{2})(?: (?P<off>[+-]\d{4}))?$",
    ]
    .map(|pattern| Regex::new(pattern).expect("time-of-day patterns are valid"))
});

/// `3:04 PM`, `3PM`, `3 PM`, `15:04`, `1504`, each optionally followed by an
/// offset (`+0700`), into minutes after midnight UTC-adjusted as Go does.
fn parse_time_of_day(text: &str) -> Result<u32, TimeError> {
    let invalid = || TimeError::InvalidTimeOfDay(text.to_string());
    let captures = TIME_OF_DAY.iter().find_map(|pattern| pattern.captures(text)).ok_or_else(invalid)?;
    let number = |name: &str| captures.name(name).map(|m| m.as_str().parse::<i64>().unwrap_or(-1));
    let mut hour = number("h").ok_or_else(invalid)?;
    let minute = number("m").unwrap_or(0);
    match captures.name("ampm").map(|m| m.as_str()) {
        Some(ampm) => {
            if !(1..=12).contains(&hour) {
                return Err(invalid());
            }
            hour = (hour % 12) + if ampm == "PM" { 12 } else { 0 };
        }
        None if !(0..=23).contains(&hour) => return Err(invalid()),
        None => {}
    }
    if !(0..=59).contains(&minute) {
        return Err(invalid());
    }
    let offset_minutes = match captures.name("off").map(|m| m.as_str()) {
        Some(offset) => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let hours: i64 = offset[1..3].parse().map_err(|_| invalid())?;
            let minutes: i64 = offset[3..5].parse().map_err(|_| invalid())?;
            sign * (hours * 60 + minutes)
        }
        None => 0,
    };
    Ok((hour * 60 + minute - offset_minutes).rem_euclid(24 * 60) as u32)
}

fn parse_weekday(day: &str) -> Result<Weekday, TimeError> {
    Ok(match day.to_lowercase().as_str() {
        "sun" | "sunday" => Weekday::Sunday,
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        _ => return Err(TimeError::UnknownWeekday(day.to_string())),
    })
}

static START_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2}))?)?)?$")
        .expect("the start_after pattern is valid")
});

/// `2006-01-02T15:04:05`, `2006-01-02T15:04`, `2006-01-02T15`, `2006-01-02`,
/// `2006-01-02 15:04:05`: a civil time, read in the source's location.
fn parse_start_after(text: &str) -> Result<DateTime, TimeError> {
    let invalid = || TimeError::InvalidStartAfter(text.to_string());
    let captures = START_AFTER.captures(text).ok_or_else(invalid)?;
    let part = |index: usize| captures.get(index).map_or(Ok(0), |m| m.as_str().parse::<i16>()).map_err(|_| invalid());
    let date = Date::new(part(1)?, part(2)? as i8, part(3)? as i8).map_err(|_| invalid())?;
    let time = Time::new(part(4)? as i8, part(5)? as i8, part(6)? as i8, 0).map_err(|_| invalid())?;
    Ok(date.to_datetime(time))
}

/// An RFC 3339 time from a version, kept in the offset it was written with.
fn parse_version_time(text: &str) -> Result<ZonedDateTime, TimeError> {
    let invalid = |source| TimeError::InvalidVersionTime { text: text.to_string(), source };
    let timestamp: Timestamp = text.parse().map_err(invalid)?;
    let pieces = Pieces::parse(text).map_err(invalid)?;
    let offset = match pieces.offset() {
        Some(PiecesOffset::Zulu) | None => Offset::UTC,
        Some(offset) => offset.to_numeric_offset(),
    };
    let zone = if offset == Offset::UTC { TimeZone::UTC } else { TimeZone::fixed(offset) };
    Ok(timestamp.to_zoned_datetime(zone))
}

/// Go's `time.RFC3339Nano`: fraction trimmed of zeros, `Z` for UTC.
fn go_rfc3339(time: &ZonedDateTime) -> String {
    let mut text = format_civil(time, 'T');
    let seconds = time.offset().seconds();
    if seconds == 0 {
        text.push('Z');
    } else {
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.abs() / 60;
        text.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
    }
    text
}

/// Go's `2006-01-02 15:04:05.999999999 -0700 MST`; a fixed offset has no
/// zone name, so Go (and this) prints the offset again in its place.
fn go_timestamp(time: &ZonedDateTime) -> String {
    let seconds = time.offset().seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    let numeric = format!("{sign}{:02}{:02}", minutes / 60, minutes % 60);
    let name = if seconds == 0 { "UTC".to_string() } else { numeric.clone() };
    format!("{} {numeric} {name}", format_civil(time, ' '))
}

fn format_civil(time: &ZonedDateTime, separator: char) -> String {
    let mut text = format!(
        "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    let nanos = time.subsec_nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(source: Value) -> Schedule {
        Schedule::parse(&serde_json::from_value(source).unwrap()).unwrap()
    }

    fn at(text: &str) -> ZonedDateTime {
        parse_version_time(text).unwrap()
    }

    #[test]
    fn times_of_day_parse_in_every_upstream_format() {
        assert_eq!(parse_time_of_day("3:04 PM").unwrap(), 15 * 60 + 4);
        assert_eq!(parse_time_of_day("3PM").unwrap(), 15 * 60);
        assert_eq!(parse_time_of_day("12 AM").unwrap(), 0);
        assert_eq!(parse_time_of_day("15:04").unwrap(), 15 * 60 + 4);
        assert_eq!(parse_time_of_day("1504").unwrap(), 15 * 60 + 4);
        assert_eq!(parse_time_of_day("8:00 PM -0700").unwrap(), 3 * 60);
        assert!(parse_time_of_day("25:00").is_err());
        assert!(parse_time_of_day("noon").is_err());
    }

    #[test]
    fn versions_round_trip_as_go_writes_them() {
        for text in ["2024-03-01T10:00:00Z", "2024-03-01T10:00:00.5+01:00", "2024-03-01T10:00:00.123456789-07:30"] {
            assert_eq!(go_rfc3339(&at(text)), text);
        }
        assert_eq!(go_timestamp(&at("2024-03-01T10:00:00Z")), "2024-03-01 10:00:00 +0000 UTC");
        assert_eq!(go_timestamp(&at("2024-03-01T10:00:00.25+01:00")), "2024-03-01 10:00:00.25 +0100 +0100");
    }

    #[test]
    fn an_interval_gives_a_new_version_once_it_has_passed() {
        let hourly = schedule(json!({"interval": "1h"}));
        let previous = at("2024-03-01T10:00:00Z");
        assert_eq!(hourly.check(Some(previous.clone()), at("2024-03-01T10:59:00Z")).len(), 1);
        let versions = hourly.check(Some(previous), at("2024-03-01T11:00:00Z"));
        assert_eq!(
            versions.iter().map(go_rfc3339).collect::<Vec<_>>(),
            ["2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"]
        );
    }

    #[test]
    fn without_an_interval_there_is_one_version_per_window() {
        let daily = schedule(json!({}));
        assert_eq!(daily.check(None, at("2024-03-01T10:00:00Z")).len(), 1);
        assert_eq!(daily.check(Some(at("2024-03-01T01:00:00Z")), at("2024-03-01T23:00:00Z")).len(), 1);
        assert_eq!(daily.check(Some(at("2024-02-29T23:00:00Z")), at("2024-03-01T00:30:00Z")).len(), 2);
    }

    #[test]
    fn a_window_in_a_location_limits_new_versions() {
        // 9-10 PM in New York is 02:00-03:00 UTC in winter.
        let window =
            schedule(json!({"start": "9:00 PM", "stop": "10:00 PM", "location": "America/New_York", "interval": "1m"}));
        assert_eq!(window.check(None, at("2024-01-10T02:30:00Z")).len(), 1);
        assert!(window.check(None, at("2024-01-10T01:30:00Z")).is_empty());
        assert!(window.check(None, at("2024-01-10T03:00:00Z")).is_empty());
        let days = schedule(json!({"days": ["Saturday"], "location": "Asia/Tokyo"}));
        // Friday 20:00 UTC is already Saturday in Tokyo.
        assert_eq!(days.check(None, at("2024-03-01T20:00:00Z")).len(), 1);
        assert!(days.check(None, at("2024-03-01T10:00:00Z")).is_empty());
    }

    #[test]
    fn initial_version_and_start_after() {
        let initial = schedule(json!({"initial_version": true, "start": "1:00 AM", "stop": "2:00 AM"}));
        assert_eq!(initial.check(None, at("2024-03-01T12:00:00Z")).len(), 1);
        let later = schedule(json!({"start_after": "2024-03-02"}));
        assert!(later.check(None, at("2024-03-01T12:00:00Z")).is_empty());
        assert_eq!(later.check(None, at("2024-03-02T00:01:00Z")).len(), 1);
        assert!(Schedule::parse(&serde_json::from_value(json!({"start": "1:00 AM"})).unwrap()).is_err());
    }
}
