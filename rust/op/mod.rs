//! The elementary operations: one registry lists each op once, and everything that
//! enumerates ops is generated from it.
//!
//! [`unary_ops!`] and [`binary_ops!`] are the registry. Each calls back a macro with the
//! full list, so the op enums, [`Unary::ALL`], names, codec bytes, the interpreter's
//! dispatch and the Python functions and methods all come from the same lines and cannot
//! miss a variant. The derivative rules live in [`rules`] (a `match` per op kind with no
//! catch-all arm: a new op does not compile until it has its rule), and so do the
//! performance hints that go with them ([`Unary::constant_partial`] and friends).
//!
//! Adding a unary op: one line in [`unary_ops!`], its rule in [`rules`] (and its
//! [`Unary::constant_partial`] arm), its native-code lowering in `exec::jit` (a helper
//! call unless it is cheap to emit inline), its stub lines in `python/wengert/_core.pyi`
//! (checked by `tests/test_stubs.py`), and tests.

mod cmp;
pub mod rules;

pub use cmp::Cmp;

/// The registry of unary ops: calls `path::to::cb! { ($args) entries }` with one entry per op,
/// in declaration order (which is also the codec's byte order: append only).
///
/// An entry is `Variant python_name kind [numpy aliases];` where `kind` is `func` for an
/// op Python offers as `wg.name(x)` and `x.name()`, or `op` for one it reaches only
/// through an operator (`-x`). Aliases are the NumPy spellings offered as methods too,
/// so ufuncs on object arrays (`np.arcsin(arr)`) find them.
macro_rules! unary_ops {
    ($($cb:ident)::+ $(($($args:tt)*))?) => {
        $($cb)::+! { ($($($args)*)?)
            Neg neg op [];
            Sin sin func [];
            Cos cos func [];
            Tan tan func [];
            Asin asin func [arcsin];
            Acos acos func [arccos];
            Atan atan func [arctan];
            Sinh sinh func [];
            Cosh cosh func [];
            Tanh tanh func [];
            Asinh asinh func [arcsinh];
            Acosh acosh func [arccosh];
            Atanh atanh func [arctanh];
            Exp exp func [];
            Exp2 exp2 func [];
            Expm1 expm1 func [];
            Log log func [];
            Log2 log2 func [];
            Log10 log10 func [];
            Log1p log1p func [];
            Sqrt sqrt func [];
            Cbrt cbrt func [];
            Abs abs func [];
            Sigmoid sigmoid func [];
            Relu relu func [];
            Softplus softplus func [];
            Erf erf func [];
            Floor floor func [];
            Ceil ceil func [];
            Round round func [rint];
            Trunc trunc func [];
            Sign sign func [];
            Square square func [];
            Reciprocal reciprocal func [];
            Erfc erfc func [];
            Lgamma lgamma func [];
            Digamma digamma func [];
            Trigamma trigamma func [];
            Sinc sinc func [];
            StopGradient stop_gradient func [];
        }
    };
}
pub(crate) use unary_ops;

/// The registry of binary ops, as [`unary_ops!`]: `Variant python_name kind param
/// [aliases];` with `kind` `func` for `wg.name(x, y)` and `x.name(param)` (`param` is the
/// method's keyword name for the other argument), `op` for an operator only (`_`).
macro_rules! binary_ops {
    ($($cb:ident)::+ $(($($args:tt)*))?) => {
        $($cb)::+! { ($($($args)*)?)
            Add add op _ [];
            Sub sub op _ [];
            Mul mul op _ [];
            Div div op _ [];
            Pow pow func y [];
            Atan2 atan2 func x [arctan2];
            Hypot hypot func y [];
            Max maximum func y [];
            Min minimum func y [];
            Fmod fmod func y [];
            Remainder remainder func y [];
            Copysign copysign func y [];
            Logaddexp logaddexp func y [];
        }
    };
}
pub(crate) use binary_ops;

/// Drops the binary registry's `param` column, so the macros written for unary entries
/// serve both: `binary_entries(cb(args))` calls `cb! { (args) V name kind [aliases]; ... }`.
macro_rules! binary_entries {
    (($($cb:ident)::+ ($($args:tt)*)) $($v:ident $name:ident $kind:ident $param:tt [$($alias:ident)*];)*) => {
        $($cb)::+! { ($($args)*) $($v $name $kind [$($alias)*];)* }
    };
}
pub(crate) use binary_entries;

/// Defines an op enum with `ALL`, `name`, `code` and `from_code` from a registry list.
macro_rules! define_ops {
    (($ty:ident, $doc:literal) $($v:ident $name:ident $kind:ident [$($alias:ident)*];)*) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $ty {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                $v,
            )*
        }

        impl $ty {
            /// Every operation, in declaration order (generated from the registry, so it
            /// cannot miss one).
            pub const ALL: [$ty; [$(stringify!($v)),*].len()] = [$($ty::$v),*];

            /// The name used by the Python API (`wg.sin`, `v.sin()`) and in DOT output.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$v => stringify!($name),)*
                }
            }

            /// The byte that stands for `self` in an encoded program: its index in `ALL`.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The op [`Self::code`] gave `c`, if any.
            pub fn from_code(c: u8) -> Option<$ty> {
                Self::ALL.get(c as usize).copied()
            }
        }
    };
}

unary_ops!(define_ops(Unary, "An operation of one argument."));
binary_ops!(binary_entries(define_ops(
    Binary,
    "An operation of two arguments."
)));

/// `with_unary!(op, C => body)`: runs `body` with `C` a constant equal to `op`, one arm
/// per variant (generated from the registry, no catch-all): inside each arm the rule's
/// own `match` folds away, so the loop in `body` is straight-line code for that op.
macro_rules! with_unary {
    ($op:expr, $c:ident => $body:expr) => {
        $crate::op::unary_ops!($crate::op::with_op_arms(Unary, $op, $c, $body))
    };
}
pub(crate) use with_unary;

/// The binary counterpart of [`with_unary!`].
macro_rules! with_binary {
    ($op:expr, $c:ident => $body:expr) => {
        $crate::op::binary_ops!($crate::op::binary_entries($crate::op::with_op_arms(
            Binary, $op, $c, $body
        )))
    };
}
pub(crate) use with_binary;

/// The arms of [`with_unary!`] and [`with_binary!`], one per registry entry.
macro_rules! with_op_arms {
    (($ty:ident, $op:expr, $c:ident, $body:expr) $($v:ident $name:ident $kind:ident [$($alias:ident)*];)*) => {
        match $op {
            $($crate::op::$ty::$v => {
                const $c: $crate::op::$ty = $crate::op::$ty::$v;
                $body
            })*
        }
    };
}
pub(crate) use with_op_arms;

/// The comparison counterpart of [`with_unary!`].
macro_rules! with_cmp {
    ($cmp:expr, $c:ident => $body:expr) => {
        match $cmp {
            $crate::op::Cmp::Lt => {
                const $c: $crate::op::Cmp = $crate::op::Cmp::Lt;
                $body
            }
            $crate::op::Cmp::Le => {
                const $c: $crate::op::Cmp = $crate::op::Cmp::Le;
                $body
            }
            $crate::op::Cmp::Gt => {
                const $c: $crate::op::Cmp = $crate::op::Cmp::Gt;
                $body
            }
            $crate::op::Cmp::Ge => {
                const $c: $crate::op::Cmp = $crate::op::Cmp::Ge;
                $body
            }
            $crate::op::Cmp::Eq => {
                const $c: $crate::op::Cmp = $crate::op::Cmp::Eq;
                $body
            }
            $crate::op::Cmp::Ne => {
                const $c: $crate::op::Cmp = $crate::op::Cmp::Ne;
                $body
            }
        }
    };
}
pub(crate) use with_cmp;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_follow_declaration_order() {
        for (i, op) in Unary::ALL.into_iter().enumerate() {
            assert_eq!(op.code() as usize, i);
            assert_eq!(Unary::from_code(op.code()), Some(op));
        }
        for (i, op) in Binary::ALL.into_iter().enumerate() {
            assert_eq!(op.code() as usize, i);
            assert_eq!(Binary::from_code(op.code()), Some(op));
        }
        assert_eq!(Unary::from_code(Unary::ALL.len() as u8), None);
        assert_eq!(Binary::from_code(Binary::ALL.len() as u8), None);
    }

    #[test]
    fn dispatch_reaches_every_op() {
        for op in Unary::ALL {
            assert_eq!(with_unary!(op, C => C), op);
        }
        for op in Binary::ALL {
            assert_eq!(with_binary!(op, C => C), op);
        }
        for c in Cmp::ALL {
            assert_eq!(with_cmp!(c, C => C), c);
        }
    }
}
