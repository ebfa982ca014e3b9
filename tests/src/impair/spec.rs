//! An [`Impairment`] written as text, for the `impair-relay` binary and its callers:
//! space-separated `key=value` fields, or `none`.
//!
//! `loss=0.05` (random), `bursty=0.05:4` (Gilbert–Elliott: average, mean burst length in
//! packets), `cap=500000` (bits per second), `delay=20` (ms), `duplicate=0.01`,
//! `reorder=0.02:15` (probability, ms held back).

use std::str::FromStr;
use std::time::Duration;

use super::link::Impairment;
use super::loss::Loss;
use super::shaper::Cap;

/// Why a spec was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct SpecError(pub String);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

fn number<T: FromStr>(key: &str, v: &str) -> Result<T, SpecError> {
    v.parse()
        .map_err(|_| SpecError(format!("{key}: not a number: {v:?}")))
}

fn probability(key: &str, v: &str) -> Result<f64, SpecError> {
    let p: f64 = number(key, v)?;
    if (0.0..1.0).contains(&p) {
        Ok(p)
    } else {
        Err(SpecError(format!("{key}: {p} is not in [0, 1)")))
    }
}

fn pair<'a>(key: &str, v: &'a str) -> Result<(&'a str, &'a str), SpecError> {
    v.split_once(':')
        .ok_or_else(|| SpecError(format!("{key}: expected A:B, got {v:?}")))
}

impl FromStr for Impairment {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let mut out = Impairment::default();
        for field in s.split_whitespace() {
            if field == "none" {
                continue;
            }
            let (key, v) = field
                .split_once('=')
                .ok_or_else(|| SpecError(format!("expected key=value, got {field:?}")))?;
            match key {
                "loss" => {
                    out.loss = Loss::Random {
                        p: probability(key, v)?,
                    }
                }
                "bursty" => {
                    let (average, burst) = pair(key, v)?;
                    let burst: f64 = number(key, burst)?;
                    if burst < 1.0 {
                        return Err(SpecError(format!("{key}: bursts of {burst} < 1 packet")));
                    }
                    out.loss = Loss::bursty(probability(key, average)?, burst);
                }
                "cap" => out.cap = Some(Cap::new(number(key, v)?)),
                "delay" => out.delay = Duration::from_millis(number(key, v)?),
                "duplicate" => out.duplicate = probability(key, v)?,
                "reorder" => {
                    let (p, by) = pair(key, v)?;
                    out.reorder = probability(key, p)?;
                    out.reorder_by = Duration::from_millis(number(key, by)?);
                }
                _ => return Err(SpecError(format!("unknown impairment {key:?}"))),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_impairments() {
        assert_eq!("none".parse(), Ok(Impairment::default()));
        assert_eq!("".parse(), Ok(Impairment::default()));
        assert_eq!("loss=0.05".parse(), Ok(Impairment::random_loss(0.05)));
        assert_eq!("cap=500000".parse(), Ok(Impairment::capped(500_000)));
        let i: Impairment = "bursty=0.05:4 delay=20 reorder=0.1:15 duplicate=0.01"
            .parse()
            .unwrap();
        assert_eq!(i.loss, Loss::bursty(0.05, 4.0));
        assert_eq!(i.delay, Duration::from_millis(20));
        assert_eq!((i.reorder, i.reorder_by), (0.1, Duration::from_millis(15)));
        assert_eq!(i.duplicate, 0.01);
    }

    #[test]
    fn bad_specs_say_why() {
        for bad in [
            "loss=1.5",
            "loss=x",
            "cap",
            "bursty=0.05",
            "bursty=0.1:0",
            "jitter=3",
        ] {
            let e = bad.parse::<Impairment>().unwrap_err();
            assert!(!e.0.is_empty(), "{bad}");
        }
    }
}
