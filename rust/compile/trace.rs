//! Tracing Rust code into a [`Graph`]: [`Traced`] is a [`Real`] whose operations record
//! themselves, so any function generic over `Real` compiles as it is.

use crate::compile::graph::Graph;
use crate::op::{Binary, Cmp, Unary};
use crate::scalar::real::Real;
use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Neg, Sub};

thread_local! {
    /// The graph being traced on this thread. `Real::cst` has no receiver, so the graph
    /// cannot travel in the values themselves.
    static GRAPH: RefCell<Option<Graph>> = const { RefCell::new(None) };
}

/// A value being traced: a node of the graph under construction on this thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traced(pub u32);

fn with_graph<R>(f: impl FnOnce(&mut Graph) -> R) -> R {
    GRAPH.with(|g| {
        let mut g = g.borrow_mut();
        let g = g
            .as_mut()
            .expect("a Traced value used outside wengert::compile::trace::trace");
        f(g)
    })
}

/// Traces `f` over `n_inputs` inputs, returning the graph and the output nodes.
///
/// ```
/// use wengert::Real;
/// use wengert::compile::trace::trace;
/// fn f<T: Real>(x: &[T]) -> Vec<T> { vec![x[0] * x[1].sin() + T::cst(1.0)] }
/// let (g, out) = trace(2, |x| f(x));
/// assert_eq!(out.len(), 1);
/// assert!(g.len() >= 5);
/// ```
pub fn trace(n_inputs: u32, f: impl FnOnce(&[Traced]) -> Vec<Traced>) -> (Graph, Vec<u32>) {
    let previous = GRAPH.with(|g| g.replace(Some(Graph::new(n_inputs))));
    // Restores any enclosing trace even if `f` panics.
    struct Restore(Option<Option<Graph>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(p) = self.0.take() {
                GRAPH.with(|g| *g.borrow_mut() = p);
            }
        }
    }
    let mut restore = Restore(Some(previous));
    let inputs: Vec<Traced> = (0..n_inputs).map(Traced).collect();
    let outputs: Vec<u32> = f(&inputs).into_iter().map(|t| t.0).collect();
    let graph = GRAPH
        .with(|g| g.replace(restore.0.take().unwrap()))
        .unwrap();
    (graph, outputs)
}

impl Traced {
    /// The constant this value is, when the graph folded it to one (tracing only).
    pub fn constant(self) -> Option<f64> {
        with_graph(|g| match g.nodes()[self.0 as usize] {
            crate::compile::graph::Node::Const(c) => Some(c),
            _ => None,
        })
    }

    fn unary(self, op: Unary) -> Self {
        Traced(with_graph(|g| g.unary(op, self.0)))
    }
    fn binary(self, op: Binary, o: Self) -> Self {
        Traced(with_graph(|g| g.binary(op, self.0, o.0)))
    }
}

macro_rules! traced_operator {
    ($($trait:ident $method:ident $op:ident),*) => {
        $(impl $trait for Traced {
            type Output = Self;
            fn $method(self, o: Self) -> Self { self.binary(Binary::$op, o) }
        })*
    };
}
traced_operator!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div);

impl Neg for Traced {
    type Output = Self;
    fn neg(self) -> Self {
        self.unary(Unary::Neg)
    }
}

macro_rules! traced_functions {
    ($($method:ident $op:ident),* $(,)?) => {
        $(fn $method(self) -> Self { self.unary(Unary::$op) })*
    };
}

impl Real for Traced {
    fn cst(c: f64) -> Self {
        Traced(with_graph(|g| g.constant(c)))
    }
    fn sel_gt(x: Self, y: Self, a: Self, b: Self) -> Self {
        Traced(with_graph(|g| g.select(Cmp::Gt, x.0, y.0, a.0, b.0)))
    }
    fn sel_eq(x: Self, y: Self, a: Self, b: Self) -> Self {
        Traced(with_graph(|g| g.select(Cmp::Eq, x.0, y.0, a.0, b.0)))
    }
    traced_functions!(
        sin Sin, cos Cos, tan Tan, asin Asin, acos Acos, atan Atan, sinh Sinh, cosh Cosh,
        tanh Tanh, asinh Asinh, acosh Acosh, atanh Atanh, exp Exp, exp2 Exp2, exp_m1 Expm1,
        ln Log, log2 Log2, log10 Log10, ln_1p Log1p, sqrt Sqrt, cbrt Cbrt, abs Abs, erf Erf,
        floor Floor, ceil Ceil, rint Round, trunc Trunc, sign Sign, erfc Erfc, lgamma Lgamma,
        digamma Digamma, trigamma Trigamma, sinc Sinc, stop_gradient StopGradient,
    );
    fn fmod(self, y: Self) -> Self {
        self.binary(Binary::Fmod, y)
    }
    fn remainder(self, y: Self) -> Self {
        self.binary(Binary::Remainder, y)
    }
    fn copysign(self, y: Self) -> Self {
        self.binary(Binary::Copysign, y)
    }
    fn logaddexp(self, y: Self) -> Self {
        self.binary(Binary::Logaddexp, y)
    }
    fn powf(self, y: Self) -> Self {
        self.binary(Binary::Pow, y)
    }
    fn atan2(self, x: Self) -> Self {
        self.binary(Binary::Atan2, x)
    }
    fn hypot(self, y: Self) -> Self {
        self.binary(Binary::Hypot, y)
    }
}
