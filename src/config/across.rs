//! Limits of `across`: a step runs once per combination of its vars'
//! values, so a few short lists multiply into a great many steps.

/// The most vars one `across` may have: each is a level of nesting when the
/// step runs. Real pipelines use one to three.
pub const MAX_ACROSS_VARS: usize = 16;

/// The most combinations of values one `across` may run: every one is a
/// step of the build, with its events and its place in the UI. A few
/// thousand is more than any real matrix.
pub const MAX_ACROSS_COMBINATIONS: usize = 4096;

/// The most an across's substeps may come to as JSON text, all together:
/// each is a copy of the step with its combination's values in it, so a
/// long step or long values multiply with the combinations.
pub const MAX_SUBSTEPS_BYTES: usize = 64 * 1024 * 1024;

/// An `across` too big to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooBigAcross {
    #[error("across has {0} vars; at most {MAX_ACROSS_VARS} are allowed")]
    Vars(usize),
    #[error("across has {0} combinations of values; at most {MAX_ACROSS_COMBINATIONS} are allowed")]
    Combinations(usize),
    /// The product of the lengths overflows `usize`.
    #[error(
        "across has more combinations of values than can be counted; at most {MAX_ACROSS_COMBINATIONS} are allowed"
    )]
    Uncountable,
}

/// How many combinations lists of values of these lengths make, or why
/// that is too many to run.
pub fn combinations(lengths: &[usize]) -> Result<usize, TooBigAcross> {
    if lengths.len() > MAX_ACROSS_VARS {
        return Err(TooBigAcross::Vars(lengths.len()));
    }
    let count = lengths.iter().try_fold(1_usize, |count, length| count.checked_mul(*length));
    match count {
        Some(count) if count <= MAX_ACROSS_COMBINATIONS => Ok(count),
        Some(count) => Err(TooBigAcross::Combinations(count)),
        None => Err(TooBigAcross::Uncountable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_multiply_up_to_the_limits() {
        assert_eq!(combinations(&[]), Ok(1));
        assert_eq!(combinations(&[3, 0]), Ok(0));
        assert_eq!(combinations(&[64, 64]), Ok(MAX_ACROSS_COMBINATIONS));
        assert_eq!(
            combinations(&[64, 64, 2]).unwrap_err().to_string(),
            "across has 8192 combinations of values; at most 4096 are allowed"
        );
        assert!(combinations(&[usize::MAX, 2]).unwrap_err().to_string().contains("than can be counted"));
        assert_eq!(combinations(&[1; 17]).unwrap_err().to_string(), "across has 17 vars; at most 16 are allowed");
    }
}
