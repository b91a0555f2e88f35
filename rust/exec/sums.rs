//! Reductions over rows, in an order fixed by the rows alone.

use crate::scalar::lanes::{F64x4, LANES};

/// A chunk's running sums of per-row results (for `reduce`), one per accumulator entry:
/// whole lane groups added as vectors, four sums per entry, one per lane (so the adds do
/// not wait on each other row by row); rows of a partial group, only ever the chunk's
/// last, apart. The order depends on the chunk's rows only, not on where blocks cut them:
/// native code and the interpreter cut different blocks and agree to the bit.
pub(super) struct Sums {
    lanes: Vec<F64x4>,
    tail: Vec<f64>,
}

impl Sums {
    pub(super) fn new(len: usize) -> Self {
        Sums {
            lanes: vec![F64x4::default(); len],
            tail: vec![0.0; len],
        }
    }

    /// Adds the first `rows` lane values of `src` to entry `i`.
    #[inline(always)]
    pub(super) fn add(&mut self, i: usize, src: &[F64x4], rows: usize) {
        let full = rows / LANES;
        let mut acc = self.lanes[i];
        for &v in &src[..full] {
            acc = acc + v;
        }
        self.lanes[i] = acc;
        for r in full * LANES..rows {
            self.tail[i] += src[full].0[r % LANES];
        }
    }

    /// Each entry's sum: its lanes, then its partial group.
    pub(super) fn total(&self) -> Vec<f64> {
        let lanes = self.lanes.iter().map(|v| {
            let [a, b, c, d] = v.0;
            (a + b) + (c + d)
        });
        lanes.zip(&self.tail).map(|(s, t)| s + t).collect()
    }
}
