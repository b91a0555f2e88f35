//! Comparisons, as `where(x < y, a, b)` records them: the truth of a comparison on plain
//! numbers and the lane-wise select every [`Real`] builds from its two selects.

use crate::scalar::real::Real;

/// A comparison, as recorded by `where(x < y, a, b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    /// Every comparison, in declaration order (a codec byte is an index into it).
    pub const ALL: [Cmp; 6] = [Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge, Cmp::Eq, Cmp::Ne];

    /// The byte that stands for `self` in an encoded program.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The comparison [`Cmp::code`] gave `c`, if any.
    pub fn from_code(c: u8) -> Option<Cmp> {
        Self::ALL.get(c as usize).copied()
    }

    /// The truth of `x self y`, with IEEE semantics (every comparison with nan is false
    /// except `!=`).
    pub fn holds(self, x: f64, y: f64) -> bool {
        match self {
            Cmp::Lt => x < y,
            Cmp::Le => x <= y,
            Cmp::Gt => x > y,
            Cmp::Ge => x >= y,
            Cmp::Eq => x == y,
            Cmp::Ne => x != y,
        }
    }

    /// The operator's symbol, for DOT output.
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
        }
    }

    /// `if x self y { a } else { b }` lane-wise, from the two selects every [`Real`] has.
    ///
    /// [`Real`]: crate::Real
    #[inline(always)]
    pub fn select<T: Real>(self, x: T, y: T, a: T, b: T) -> T {
        match self {
            Cmp::Lt => T::sel_gt(y, x, a, b),
            Cmp::Le => T::sel_gt(y, x, a, T::sel_eq(x, y, a, b)),
            Cmp::Gt => T::sel_gt(x, y, a, b),
            Cmp::Ge => T::sel_gt(x, y, a, T::sel_eq(x, y, a, b)),
            Cmp::Eq => T::sel_eq(x, y, a, b),
            Cmp::Ne => T::sel_eq(x, y, b, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cmp;

    #[test]
    fn all_is_in_declaration_order() {
        for (i, c) in Cmp::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i);
            assert_eq!(Cmp::from_code(c.code()), Some(c));
        }
        assert_eq!(Cmp::from_code(Cmp::ALL.len() as u8), None);
    }
}
