//! "Did you mean" suggestions for unknown names.

/// The closest candidate to `wrong`, if any is close enough to be a likely typo.
///
/// Uses Jaro-Winkler similarity (good at prefixes and transpositions, which is
/// what typos in identifiers look like), plus an exact case-insensitive match.
pub fn did_you_mean<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        if candidate == wrong {
            continue;
        }
        let score = if candidate.to_lowercase() == wrong_lower {
            1.0
        } else {
            strsim::jaro_winkler(&wrong_lower, &candidate.to_lowercase())
        };
        // Ties go to the alphabetically first candidate for stable output.
        let better = match best {
            None => true,
            Some((s, c)) => score > s || (score == s && candidate < c),
        };
        if score >= 0.8 && better {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        let names = ["industry", "employees", "domain"];
        assert_eq!(did_you_mean("industy", names), Some("industry"));
        assert_eq!(did_you_mean("Domain", names), Some("domain"));
        assert_eq!(did_you_mean("zzz", names), None);
    }
}
