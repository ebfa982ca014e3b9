//! Which packets a link loses: independently at random, or in bursts (Gilbert–Elliott).

use super::rng::Rng;

/// A loss model.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Loss {
    /// Nothing lost.
    #[default]
    None,
    /// Each packet lost with probability `p`, independently.
    Random { p: f64 },
    /// Gilbert–Elliott: a two-state chain, good and bad, moving at each packet; a packet is
    /// lost with `loss_good` in the good state and `loss_bad` in the bad one. Bursts last
    /// `1 / to_good` packets on average; the average loss is
    /// `(to_bad * loss_bad + to_good * loss_good) / (to_bad + to_good)`.
    GilbertElliott {
        /// Good → bad, per packet.
        to_bad: f64,
        /// Bad → good, per packet.
        to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

impl Loss {
    /// Bursts of `burst` packets on average (all lost) making up `average` of the packets.
    pub fn bursty(average: f64, burst: f64) -> Loss {
        let to_good = 1.0 / burst;
        Loss::GilbertElliott {
            to_bad: to_good * average / (1.0 - average),
            to_good,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }

    /// The long-run fraction of packets lost.
    pub fn average(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Random { p } => p,
            Loss::GilbertElliott {
                to_bad,
                to_good,
                loss_good,
                loss_bad,
            } => (to_bad * loss_bad + to_good * loss_good) / (to_bad + to_good),
        }
    }
}

/// A [`Loss`] model's state along a link.
#[derive(Clone, Debug, Default)]
pub(crate) struct LossState {
    bad: bool,
}

impl LossState {
    /// Whether the next packet is lost.
    pub fn lose(&mut self, model: &Loss, rng: &mut Rng) -> bool {
        match *model {
            Loss::None => false,
            Loss::Random { p } => rng.chance(p),
            Loss::GilbertElliott {
                to_bad,
                to_good,
                loss_good,
                loss_bad,
            } => {
                let flip = if self.bad { to_good } else { to_bad };
                if rng.chance(flip) {
                    self.bad = !self.bad;
                }
                rng.chance(if self.bad { loss_bad } else { loss_good })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: Loss, n: usize, seed: u64) -> Vec<bool> {
        let mut rng = Rng::new(seed);
        let mut s = LossState::default();
        (0..n).map(|_| s.lose(&model, &mut rng)).collect()
    }

    #[test]
    fn random_loss_is_within_tolerance_and_repeats_for_a_seed() {
        for p in [0.05, 0.15, 0.20] {
            let lost = run(Loss::Random { p }, 100_000, 42);
            let rate = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
            assert!((rate - p).abs() < 0.005, "p {p}: {rate}");
            assert_eq!(lost, run(Loss::Random { p }, 100_000, 42));
        }
        assert!(run(Loss::None, 1000, 1).iter().all(|l| !l));
    }

    #[test]
    fn gilbert_elliott_loses_in_bursts_of_the_set_length() {
        let model = Loss::bursty(0.05, 4.0);
        assert!((model.average() - 0.05).abs() < 1e-9);
        let lost = run(model, 200_000, 9);
        let rate = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((rate - 0.05).abs() < 0.01, "average {rate}");
        let mut bursts = Vec::new();
        let mut len = 0;
        for l in lost {
            if l {
                len += 1;
            } else if len > 0 {
                bursts.push(len);
                len = 0;
            }
        }
        let mean = bursts.iter().sum::<usize>() as f64 / bursts.len() as f64;
        assert!((mean - 4.0).abs() < 0.4, "mean burst {mean}");
        assert!(bursts.iter().any(|b| *b >= 10), "long bursts happen");
        // Random loss at the same rate has bursts near 1 / (1 - p).
        let random = run(Loss::Random { p: 0.05 }, 200_000, 9);
        let runs = random.windows(2).filter(|w| w[0] && !w[1]).count();
        let mean = random.iter().filter(|l| **l).count() as f64 / runs as f64;
        assert!(mean < 1.2, "random mean burst {mean}");
    }
}
