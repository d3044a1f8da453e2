//! How the benchmarks spread pods over bindings.

/// `pods` spread evenly over at least one binding, each binding's share rounded up (so the pods
/// created can be a few more than asked for: 1,000 over 3 bindings are 3 x 334).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub bindings: usize,
    pub per_binding: usize,
}

impl Spread {
    pub fn new(pods: usize, bindings: usize) -> Self {
        let bindings = bindings.max(1);
        Self {
            bindings,
            per_binding: pods.div_ceil(bindings),
        }
    }

    /// The pods created in all.
    pub fn pods(&self) -> usize {
        self.bindings * self.per_binding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_spread_evenly_rounded_up_over_at_least_one_binding() {
        assert_eq!(Spread::new(1000, 100).per_binding, 10);
        assert_eq!(Spread::new(1000, 3).pods(), 1002);
        assert_eq!(
            Spread::new(5, 0),
            Spread {
                bindings: 1,
                per_binding: 5
            }
        );
    }
}
