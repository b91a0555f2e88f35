//! Reverse mode for Rust callers: a [`Tape`] and `Copy` variable handles with operator
//! overloading. Each operation evaluates its rule from [`crate::op`] and records the
//! partials; [`Var::grad`] runs the sweep.

/// The arena itself: `pub` for `benches/tape_memory.rs` (bytes per node) and the Python
/// binding, hidden from the docs and not part of the semver surface.
#[doc(hidden)]
pub mod arena;
mod dot;
pub mod managed;
pub mod nonfinite;

use crate::op::{Binary, Unary};
use arena::{Arena, ADJ_OFFSET};
use std::cell::RefCell;
use std::ops::{Add, Div, Index, Mul, Neg, Sub};

/// A recording tape. Variables borrow it, so it outlives them.
///
/// ```
/// use wengert::Tape;
/// let t = Tape::new();
/// let (x1, x2) = (t.var(1.5), t.var(0.5));
/// let y = ((x1 / x2).sin() + x1 / x2 - x2.exp()) * (x1 / x2 - x2.exp());
/// let g = y.grad();
/// assert!((y.value() - 2.016647).abs() < 1e-6);
/// assert!((g[x1] - 3.011843327673907).abs() < 1e-13);
/// assert!((g[x2] + 13.723961509314076).abs() < 1e-12);
/// ```
#[derive(Debug, Default)]
pub struct Tape {
    arena: RefCell<Arena>,
}

impl Tape {
    pub fn new() -> Self {
        Tape {
            arena: RefCell::new(Arena::new()),
        }
    }

    /// A new independent variable with value `value`.
    #[inline]
    pub fn var(&self, value: f64) -> Var<'_> {
        let idx = self.arena.borrow_mut().leaf();
        Var {
            tape: self,
            idx,
            value,
        }
    }

    /// Number of recorded nodes (the internal sink included).
    pub fn len(&self) -> usize {
        self.arena.borrow().len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.arena.borrow().is_empty()
    }

    /// Forgets every node. Needs `&mut`, so no variable of this tape can still be alive.
    pub fn clear(&mut self) {
        self.arena.get_mut().truncate(1);
    }

    #[inline(always)]
    fn unary(&self, op: Unary, x: Var<'_>) -> Var<'_> {
        let (idx, value) = self.arena.borrow_mut().record_unary(op, x.idx, x.value);
        Var {
            tape: self,
            idx,
            value,
        }
    }

    #[inline(always)]
    fn binary<'t>(&'t self, op: Binary, x: Var<'t>, y: Var<'t>) -> Var<'t> {
        debug_assert!(std::ptr::eq(x.tape, y.tape), "variables from two tapes");
        let (idx, value) = self
            .arena
            .borrow_mut()
            .record_binary(op, x.idx, x.value, y.idx, y.value);
        Var {
            tape: self,
            idx,
            value,
        }
    }

    #[inline(always)]
    fn binary_const_rhs<'t>(&'t self, op: Binary, x: Var<'t>, y: f64) -> Var<'t> {
        let (idx, value) = self
            .arena
            .borrow_mut()
            .record_binary_const(op, x.idx, x.value, y, false);
        Var {
            tape: self,
            idx,
            value,
        }
    }

    #[inline(always)]
    fn binary_const_lhs<'t>(&'t self, op: Binary, x: f64, y: Var<'t>) -> Var<'t> {
        let (idx, value) = self
            .arena
            .borrow_mut()
            .record_binary_const(op, y.idx, y.value, x, true);
        Var {
            tape: self,
            idx,
            value,
        }
    }
}

/// A handle to a recorded value: `Copy`, so expressions read like math.
#[derive(Clone, Copy, Debug)]
pub struct Var<'t> {
    tape: &'t Tape,
    idx: u32,
    value: f64,
}

/// The adjoints of one reverse sweep, looked up by variable.
#[derive(Clone)]
pub struct Gradients {
    /// As [`Arena::sweep_shifted`] leaves them: node `i`'s at `i + ADJ_OFFSET`.
    adj: Vec<f64>,
}

impl Gradients {
    /// d(output)/d(`v`); 0 for a variable the output does not depend on.
    #[inline]
    pub fn wrt(&self, v: Var<'_>) -> f64 {
        self[v]
    }
}

impl<'t> Index<Var<'t>> for Gradients {
    type Output = f64;
    #[inline]
    fn index(&self, v: Var<'t>) -> &f64 {
        self.adj.get(v.idx as usize + ADJ_OFFSET).unwrap_or(&0.0)
    }
}

impl std::fmt::Debug for Gradients {
    /// The adjoints by node index, as the sweep left them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gradients")
            .field("adj", &&self.adj[ADJ_OFFSET.min(self.adj.len())..])
            .finish()
    }
}

macro_rules! var_unary {
    ($($method:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($method), "` of this variable, recorded.")]
            #[inline]
            pub fn $method(self) -> Var<'t> { self.tape.unary(Unary::$op, self) }
        )*
    };
}

macro_rules! var_binary {
    ($($method:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($method), "(self, other)`, recorded.")]
            #[inline]
            pub fn $method(self, other: Var<'t>) -> Var<'t> { self.tape.binary(Binary::$op, self, other) }
        )*
    };
}

impl<'t> Var<'t> {
    /// The value computed when this variable was recorded.
    pub fn value(self) -> f64 {
        self.value
    }

    /// Position on the tape.
    pub fn index(self) -> u32 {
        self.idx
    }

    /// Runs the reverse sweep from this variable.
    pub fn grad(self) -> Gradients {
        let mut adj = Vec::new();
        self.tape.arena.borrow().sweep_shifted(self.idx, &mut adj);
        Gradients { adj }
    }

    /// Graphviz DOT text of the graph this variable depends on.
    pub fn to_dot(self) -> String {
        self.tape.arena.borrow().to_dot(self.idx)
    }

    /// `self ** c` for a constant exponent.
    pub fn powf(self, c: f64) -> Var<'t> {
        self.tape.binary_const_rhs(Binary::Pow, self, c)
    }

    var_unary!(
        sin => Sin, cos => Cos, tan => Tan, asin => Asin, acos => Acos, atan => Atan,
        sinh => Sinh, cosh => Cosh, tanh => Tanh, asinh => Asinh, acosh => Acosh,
        atanh => Atanh, exp => Exp, exp2 => Exp2, expm1 => Expm1, ln => Log, log2 => Log2,
        log10 => Log10, ln_1p => Log1p, sqrt => Sqrt, cbrt => Cbrt, abs => Abs,
        sigmoid => Sigmoid, relu => Relu, softplus => Softplus, erf => Erf,
        floor => Floor, ceil => Ceil, rint => Round, trunc => Trunc, sign => Sign,
        square => Square, reciprocal => Reciprocal, erfc => Erfc, lgamma => Lgamma,
        digamma => Digamma, trigamma => Trigamma, sinc => Sinc, stop_gradient => StopGradient,
    );
    var_binary!(
        pow => Pow, atan2 => Atan2, hypot => Hypot, max => Max, min => Min, fmod => Fmod,
        remainder => Remainder, copysign => Copysign, logaddexp => Logaddexp,
    );
}

macro_rules! var_operator {
    ($($trait:ident $method:ident => $op:ident),* $(,)?) => {
        $(
            impl<'t> $trait for Var<'t> {
                type Output = Var<'t>;
                #[inline]
                fn $method(self, y: Var<'t>) -> Var<'t> { self.tape.binary(Binary::$op, self, y) }
            }
            impl<'t> $trait<f64> for Var<'t> {
                type Output = Var<'t>;
                #[inline]
                fn $method(self, y: f64) -> Var<'t> { self.tape.binary_const_rhs(Binary::$op, self, y) }
            }
            impl<'t> $trait<Var<'t>> for f64 {
                type Output = Var<'t>;
                #[inline]
                fn $method(self, y: Var<'t>) -> Var<'t> { y.tape.binary_const_lhs(Binary::$op, self, y) }
            }
        )*
    };
}

var_operator!(Add add => Add, Sub sub => Sub, Mul mul => Mul, Div div => Div);

impl<'t> Neg for Var<'t> {
    type Output = Var<'t>;
    #[inline]
    fn neg(self) -> Var<'t> {
        self.tape.unary(Unary::Neg, self)
    }
}
