//! Durations written as one whole number and one unit (`90s`, `30m`, `12h`, `5d`), as settings
//! and hook configuration take them; apart so hooks and health rules share it without a cycle.

use std::time::Duration;

/// A duration such as `90s`, `30m`, `12h` or `5d`: a whole number and one unit.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s > 0 && *s <= 3_650 * 86_400)
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("5d"), Some(Duration::from_secs(432_000)));
        assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration(" 12h "), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1_800)));
        for bad in [
            "",
            "5",
            "d",
            "0s",
            "5 d",
            "1.5h",
            "5w",
            "-1d",
            "99999999999999999999d",
            "3651d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
