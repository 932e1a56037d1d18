//! Retry timing for deliveries (§5.2): the configurable delay schedule, its ±20 % jitter and
//! the clamping of a receiver's `Retry-After`, kept free of I/O so the sender and the local
//! dev server share one policy and tests can pin every number.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rand::Rng;

const MAX_ENTRIES: usize = 20;
const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Delays between attempts: attempt 1 is immediate, attempt n+1 follows `delays[n-1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over about 27.6 hours.
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 3600;
        Self(
            [
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("retry schedule is empty; expected delays such as \"5s,5m,30m\"")]
    Empty,
    #[error("retry schedule has {0} delays; at most {MAX_ENTRIES} are allowed")]
    TooManyEntries(usize),
    #[error(
        "retry delay #{position} {entry:?} is invalid; expected a whole number followed by ms, s, m, h or d"
    )]
    InvalidEntry { position: usize, entry: String },
    #[error("retry delay #{position} {entry:?} exceeds the maximum of 7 days")]
    TooLong { position: usize, entry: String },
}

impl RetrySchedule {
    /// Parses a comma-separated list of delays such as `5s,5m,30m,2h,5h,10h,10h` or
    /// `500ms, 1s` (units ms, s, m, h, d): 1 to 20 entries, each at most 7 days.
    pub fn parse(s: &str) -> Result<Self, ScheduleError> {
        if s.trim().is_empty() {
            return Err(ScheduleError::Empty);
        }
        let entries: Vec<&str> = s.split(',').map(str::trim).collect();
        if entries.len() > MAX_ENTRIES {
            return Err(ScheduleError::TooManyEntries(entries.len()));
        }
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| parse_delay(i + 1, entry))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.0.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    }

    /// Base delay before attempt `next_attempt` (2..=`max_attempts`); `None` outside that range.
    pub fn delay_before(&self, next_attempt: u32) -> Option<Duration> {
        let index = usize::try_from(next_attempt.checked_sub(2)?).ok()?;
        self.0.get(index).copied()
    }

    pub fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// The schedule of a hook that allows `retries` re-tries after its first attempt (Logto's
    /// `config.retries`): this schedule's first `retries` delays.
    pub fn limited_to(&self, retries: u8) -> Self {
        Self(self.0.iter().take(usize::from(retries)).copied().collect())
    }
}

fn parse_delay(position: usize, entry: &str) -> Result<Duration, ScheduleError> {
    let invalid = || ScheduleError::InvalidEntry {
        position,
        entry: entry.to_owned(),
    };
    let digits_end = entry
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = entry.split_at(digits_end);
    if number.is_empty() {
        return Err(invalid());
    }
    let too_long = || ScheduleError::TooLong {
        position,
        entry: entry.to_owned(),
    };
    // All digits, so the only possible parse failure is overflow.
    let value: u64 = number.parse().map_err(|_| too_long())?;
    let unit_ms: u64 = match unit.trim_start() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    value
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX_DELAY)
        .ok_or_else(too_long)
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RetrySchedule {
    /// The shortest form `parse` reads back, e.g. `5s,5m,30m,2h,5h,10h,10h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u128, &str); 4] = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ];
        for (i, delay) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let ms = delay.as_millis();
            match UNITS.iter().find(|(size, _)| ms > 0 && ms % size == 0) {
                Some((size, unit)) => write!(f, "{}{unit}", ms / size)?,
                None if ms == 0 => f.write_str("0s")?,
                None => write!(f, "{ms}ms")?,
            }
        }
        Ok(())
    }
}

/// Spreads `base` uniformly over [0.8, 1.2] × `base`, so retries after an outage do not
/// arrive in lockstep.
pub fn jitter(base: Duration) -> Duration {
    jitter_with(base, rand::rng().random::<f64>())
}

/// [`jitter`] with an injected uniform sample `u` in [0, 1): `base × (0.8 + 0.4 u)`, computed
/// in whole nanoseconds so the bounds are exact.
pub fn jitter_with(base: Duration, u: f64) -> Duration {
    let u = if u.is_nan() { 0.5 } else { u.clamp(0.0, 1.0) };
    let nanos = base.as_nanos();
    let (low, span) = (nanos * 4 / 5, nanos * 2 / 5);
    // The float cast saturates; the min keeps rounding from overshooting the upper bound.
    let extra = ((span as f64 * u) as u128).min(span);
    duration_from_nanos(low + extra)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// Parses a `Retry-After` value, delta-seconds or an HTTP-date, relative to `now`. Dates in the
/// past give zero; anything else unparsable gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to fit u64 seconds is still "a very long time".
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Clamps a receiver-requested delay to [`scheduled`, 2 × `scheduled`]: a receiver may slow
/// retries down, but neither speed them up nor push them out indefinitely.
pub fn clamp_retry_after(scheduled: Duration, requested: Duration) -> Duration {
    requested.max(scheduled).min(scheduled.saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn default_schedule() {
        let s = RetrySchedule::default();
        assert_eq!(
            s.delays(),
            [
                secs(5),
                secs(300),
                secs(1800),
                secs(7200),
                secs(18_000),
                secs(36_000),
                secs(36_000)
            ]
        );
        assert_eq!(s.max_attempts(), 8);
        let total: Duration = s.delays().iter().sum();
        assert_eq!(total, secs(27 * 3600 + 35 * 60 + 5));
        assert!((total.as_secs_f64() / 3600.0 - 27.6).abs() < 0.05);
        assert_eq!(s.to_string(), "5s,5m,30m,2h,5h,10h,10h");
        assert_eq!(RetrySchedule::parse("5s,5m,30m,2h,5h,10h,10h"), Ok(s));
    }

    #[test]
    fn parses_good_inputs() {
        let p = |s: &str| RetrySchedule::parse(s).expect(s);
        assert_eq!(p("1s,2s").delays(), [secs(1), secs(2)]);
        assert_eq!(
            p("500ms,1s").delays(),
            [Duration::from_millis(500), secs(1)]
        );
        assert_eq!(
            p(" 1 s , 2m ,\t3h,1d ").delays(),
            [secs(1), secs(120), secs(10_800), secs(86_400)]
        );
        assert_eq!(p("0s").delays(), [Duration::ZERO]);
        assert_eq!(p("7d").delays(), [secs(7 * 86_400)]);
        assert_eq!(p(&vec!["1s"; 20].join(",")).max_attempts(), 21);
        assert_eq!("1s,2s".parse::<RetrySchedule>(), Ok(p("1s,2s")));
    }

    #[test]
    fn rejects_bad_inputs_naming_the_entry() {
        assert_eq!(RetrySchedule::parse(""), Err(ScheduleError::Empty));
        assert_eq!(RetrySchedule::parse("  "), Err(ScheduleError::Empty));
        assert_eq!(
            RetrySchedule::parse(&vec!["1s"; 21].join(",")),
            Err(ScheduleError::TooManyEntries(21))
        );
        for (input, position, entry) in [
            ("1s,,2s", 2, ""),
            ("1s,5", 2, "5"),
            ("5x", 1, "5x"),
            ("s", 1, "s"),
            ("-1s", 1, "-1s"),
            ("1.5s", 1, "1.5s"),
            ("1s,2m,3H", 3, "3H"),
        ] {
            let err = RetrySchedule::parse(input).expect_err(input);
            assert_eq!(
                err,
                ScheduleError::InvalidEntry {
                    position,
                    entry: entry.into()
                },
                "{input}"
            );
            assert!(err.to_string().contains(&format!("{entry:?}")));
        }
        assert_eq!(
            RetrySchedule::parse("1s,8d"),
            Err(ScheduleError::TooLong {
                position: 2,
                entry: "8d".into()
            })
        );
        for huge in ["18446744073709551615d", "99999999999999999999s"] {
            assert_eq!(
                RetrySchedule::parse(huge),
                Err(ScheduleError::TooLong {
                    position: 1,
                    entry: huge.into()
                })
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "1s,2s",
            "500ms,1s",
            "1500ms,90s,90m,36h,7d",
            "0s,60s,24h",
            "5s,5m,30m,2h,5h,10h,10h",
        ] {
            let s = RetrySchedule::parse(input).expect(input);
            assert_eq!(
                RetrySchedule::parse(&s.to_string()),
                Ok(s.clone()),
                "{input}"
            );
        }
        assert_eq!(
            RetrySchedule::parse("60s,24h,1000ms")
                .expect("valid")
                .to_string(),
            "1m,1d,1s"
        );
    }

    #[test]
    fn delay_before_bounds() {
        let s = RetrySchedule::parse("1s,2s").expect("valid");
        assert_eq!(s.max_attempts(), 3);
        assert_eq!(s.delay_before(0), None);
        assert_eq!(s.delay_before(1), None);
        assert_eq!(s.delay_before(2), Some(secs(1)));
        assert_eq!(s.delay_before(3), Some(secs(2)));
        assert_eq!(s.delay_before(4), None);
        assert_eq!(s.delay_before(u32::MAX), None);
        let d = RetrySchedule::default();
        assert_eq!(d.delay_before(8), Some(secs(36_000)));
        assert_eq!(d.delay_before(9), None);
    }

    #[test]
    fn jitter_bounds() {
        let base = secs(300);
        assert_eq!(jitter_with(base, 0.0), secs(240));
        assert_eq!(jitter_with(base, 0.5), base);
        let top = jitter_with(base, 1.0 - f64::EPSILON);
        assert!(
            top <= secs(360) && top > Duration::from_millis(359_999),
            "{top:?}"
        );
        assert_eq!(jitter_with(secs(5), 0.0), secs(4));
        assert_eq!(
            jitter_with(Duration::from_nanos(7), 0.0),
            Duration::from_nanos(5)
        );
        assert_eq!(jitter_with(base, 7.0), secs(360));
        assert_eq!(jitter_with(base, -1.0), secs(240));
        assert_eq!(jitter_with(Duration::ZERO, 0.7), Duration::ZERO);
        assert_eq!(jitter_with(Duration::MAX, 1.0), Duration::MAX);
        assert!(jitter_with(Duration::MAX, 0.0) < Duration::MAX);
        for _ in 0..1000 {
            let j = jitter(base);
            assert!(j >= secs(240) && j <= secs(360), "{j:?}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::MAX)
        );
        for bad in ["", "soon", "-5", "1.5", "12 s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn clamp() {
        let scheduled = secs(300);
        assert_eq!(clamp_retry_after(scheduled, secs(10)), secs(300));
        assert_eq!(clamp_retry_after(scheduled, secs(450)), secs(450));
        assert_eq!(clamp_retry_after(scheduled, secs(3600)), secs(600));
        assert_eq!(clamp_retry_after(scheduled, Duration::MAX), secs(600));
        assert_eq!(clamp_retry_after(Duration::ZERO, secs(5)), Duration::ZERO);
    }

    #[test]
    fn logtos_retries_take_the_first_delays() {
        let schedule = RetrySchedule::parse("5s,5m,30m").unwrap();
        assert_eq!(schedule.limited_to(0).max_attempts(), 1);
        let one = schedule.limited_to(1);
        assert_eq!(one.max_attempts(), 2);
        assert_eq!(one.delay_before(2), Some(Duration::from_secs(5)));
        assert_eq!(schedule.limited_to(9), schedule);
    }
}
