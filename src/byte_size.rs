//! Sizes in bytes as flags take them: `1048576`, `512KB`, `100MB`, `1GB`.
//! Units are powers of 1024 and their case does not matter (`k`, `kb`,
//! `KiB` are all 1024), as in Concourse's memory limits.

/// Text that is not a size atc accepts; carries the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSize {
    #[error("invalid size '{0}': expected a number of bytes, optionally with a unit (KB, MB, GB, TB)")]
    Malformed(String),
    /// More bytes than fit in a `u64`.
    #[error("invalid size '{0}': too large")]
    TooLarge(String),
}

/// Parses a size; the unit is optional (bytes).
pub fn parse(input: &str) -> Result<u64, InvalidSize> {
    let invalid = || InvalidSize::Malformed(input.to_string());
    let text = input.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let power = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        _ => return Err(invalid()),
    };
    number.checked_mul(1024u64.pow(power)).ok_or_else(|| InvalidSize::TooLarge(input.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_with_binary_units() {
        assert_eq!(parse("1048576"), Ok(1 << 20));
        assert_eq!(parse("512KB"), Ok(512 << 10));
        assert_eq!(parse("100 mb"), Ok(100 << 20));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("2t"), Ok(2 << 40));
        assert!(parse("").is_err());
        assert!(parse("1.5GB").is_err());
        assert!(parse("ten").is_err());
        assert!(parse("10PB").is_err());
        assert_eq!(parse("99999999999TB"), Err(InvalidSize::TooLarge("99999999999TB".to_string())));
        assert_eq!(parse("99999999999TB").unwrap_err().to_string(), "invalid size '99999999999TB': too large");
    }
}
