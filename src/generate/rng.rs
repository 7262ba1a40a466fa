//! The data set's random numbers: a seed in, a stream that never changes between versions out.

/// splitmix64: small, fast, and stable across versions, so a seed always means the same data.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub(super) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    pub(super) fn request_id(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed means the same data set in every version: these values come from a separate
    /// port of splitmix64, not from this code.
    #[test]
    fn a_seed_always_gives_the_same_stream() {
        let mut rng = Rng::new(7);
        assert_eq!(
            [rng.next(), rng.next(), rng.next()],
            [
                0xec77_9c36_93f8_8501,
                0xfed9_eeb4_936d_e39d,
                0x6f9f_b04b_092b_d30a
            ]
        );
        assert_eq!(
            Rng::new(7).request_id(),
            "ec779c36-93f8-8501-fed9-eeb4936de39d"
        );
    }
}
