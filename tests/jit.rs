//! Native kernels (rust/exec/jit/) against the interpreter (rust/exec/interp.rs): the same
//! numbers, bit for bit, on random programs with every op, and through the batch path.

use wengert::compile::graph::Graph;
use wengert::compile::program::Program;
use wengert::exec::interp;
use wengert::exec::jit::{self, Kernel, Pass, MAX_KEPT};
use wengert::exec::{self, Arg, Job, Layout, Reduce};
use wengert::op::Cmp;
use wengert::op::{Binary, Unary};
use wengert::scalar::lanes::F64x4;

/// A small xorshift generator: a fixed pseudo-random sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Ordinary numbers mostly, and now and then the awkward ones.
    fn number(&mut self) -> f64 {
        const ODD: [f64; 8] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e300,
        ];
        if self.below(10) == 0 {
            ODD[self.below(ODD.len())]
        } else {
            4.0 * self.unit() - 2.0
        }
    }
}

/// A random graph over `n_in` inputs with `n_ops` operations of every kind (shared
/// arguments, constants, selects), and a few outputs: some repeated, one may be an input.
fn random_graph(rng: &mut Rng, n_in: u32, n_ops: usize) -> (Graph, Vec<u32>) {
    let mut g = Graph::new(n_in);
    let mut nodes: Vec<u32> = (0..n_in).map(|i| g.input(i)).collect();
    for _ in 0..n_ops {
        let pick = |rng: &mut Rng, nodes: &[u32]| {
            // Recent nodes more often, so chains grow deep.
            let n = nodes.len();
            if rng.below(2) == 0 {
                nodes[n - 1 - rng.below(n.min(4))]
            } else {
                nodes[rng.below(n)]
            }
        };
        let a = pick(rng, &nodes);
        let b = if rng.below(8) == 0 {
            let c = rng.number();
            g.constant(c)
        } else {
            pick(rng, &nodes)
        };
        let node = match rng.below(10) {
            0..=2 => g.unary(Unary::ALL[rng.below(Unary::ALL.len())], a),
            3..=8 => g.binary(Binary::ALL[rng.below(Binary::ALL.len())], a, b),
            _ => {
                let cmp = [Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge, Cmp::Eq, Cmp::Ne][rng.below(6)];
                let (x, y) = (pick(rng, &nodes), pick(rng, &nodes));
                g.select(cmp, x, y, a, b)
            }
        };
        nodes.push(node);
    }
    let n = nodes.len();
    let mut outs = vec![nodes[n - 1]];
    for _ in 0..rng.below(3) {
        outs.push(nodes[rng.below(n)]);
    }
    if rng.below(4) == 0 {
        outs.push(outs[0]);
    }
    (g, outs)
}

fn same(a: f64, b: f64) -> bool {
    // NaN is NaN: the sign and payload of a NaN are not results.
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Runs `p` over one block of `k` lane groups with random inputs and seeds, natively and
/// interpreted, and compares the outputs and input adjoints.
fn check_block(rng: &mut Rng, p: &Program, k: usize, case: usize) {
    let ns = p.n_slots();
    let mut slots = vec![F64x4::default(); ns * k];
    interp::load_consts(p, &mut slots, k);
    for s in p.inputs().iter().flatten() {
        for g in 0..k {
            slots[*s as usize * k + g] = F64x4(std::array::from_fn(|_| rng.number()));
        }
    }
    let mut seeds = vec![F64x4::default(); ns * k];
    for &o in p.outputs() {
        for g in 0..k {
            seeds[o as usize * k + g] = F64x4(std::array::from_fn(|_| rng.number()));
        }
    }

    // Values.
    let mut interp = slots.clone();
    interp::values(p, &mut interp, k);
    let kern = Kernel::new(p, Pass::Values, k).expect("a native kernel");
    let mut native = slots.clone();
    kern.run(&mut native, &mut []);
    for &o in p.outputs() {
        for g in 0..k {
            let (a, b) = (interp[o as usize * k + g], native[o as usize * k + g]);
            for l in 0..4 {
                assert!(
                    same(a.0[l], b.0[l]),
                    "case {case}: value {} vs {}",
                    a.0[l],
                    b.0[l]
                );
            }
        }
    }

    // Values and one reverse sweep.
    let mut interp = slots.clone();
    let mut parts = vec![F64x4::default(); 2 * p.instrs().len() * k];
    interp::partials(p, &mut interp, &mut parts, k);
    let mut adj_i = seeds.clone();
    // Native code has plain products only: the batch driver adds strong zero (see `interp`).
    interp::reverse(p, &parts, &interp, &mut adj_i, k, false);
    let kern = Kernel::new(p, Pass::Gradient, k).expect("a native kernel");
    let mut native = slots.clone();
    let mut adj_n = seeds.clone();
    kern.run(&mut native, &mut adj_n);
    for &o in p.outputs() {
        for g in 0..k {
            let (a, b) = (interp[o as usize * k + g], native[o as usize * k + g]);
            for l in 0..4 {
                assert!(
                    same(a.0[l], b.0[l]),
                    "case {case}: value {} vs {}",
                    a.0[l],
                    b.0[l]
                );
            }
        }
    }
    for (i, s) in p.inputs().iter().enumerate() {
        let Some(s) = s.filter(|_| p.has_gradient(i)) else {
            continue;
        };
        for g in 0..k {
            let (a, b) = (adj_i[s as usize * k + g], adj_n[s as usize * k + g]);
            for l in 0..4 {
                assert!(
                    same(a.0[l], b.0[l]),
                    "case {case}: adjoint of input {i}: {} vs {}",
                    a.0[l],
                    b.0[l]
                );
            }
        }
    }
}

#[test]
fn native_kernels_equal_the_interpreter_bit_for_bit() {
    let mut rng = Rng(0x2545F4914F6CDD1D);
    for case in 0..200 {
        let n_in = 1 + rng.below(5) as u32;
        let n_ops = 1 + rng.below(40);
        let (g, outs) = random_graph(&mut rng, n_in, n_ops);
        // Both layouts: slots reused early (values) and pinned (for gradients).
        for p in [Program::new(&g, &outs), Program::for_gradients(&g, &outs)] {
            // Group counts that give 1, 2 and 4 lane groups per native call.
            for k in [1, 6, 8] {
                check_block(&mut rng, &p, k, case);
            }
        }
    }
}

#[test]
fn batch_results_do_not_depend_on_the_engine() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for case in 0..40 {
        let (g, outs) = random_graph(&mut rng, 3, 30);
        let p = Program::for_gradients(&g, &outs);
        let layout = Layout::new(&[2, 1]);
        // Past 1024 rows: several chunks.
        let n = 1 + rng.below(2500);
        let x: Vec<f64> = (0..2 * n).map(|_| rng.number()).collect();
        let y: Vec<f64> = (0..n).map(|_| rng.number()).collect();
        let ct: Vec<f64> = (0..n * outs.len()).map(|_| rng.number()).collect();
        // Every other case a shared `y`: its reduced gradient is a sum over rows.
        let y = if case % 2 == 0 {
            Arg::rows(&y, 1)
        } else {
            Arg::shared(&y[..1])
        };
        let args = [Arg::rows(&x, 2), y];
        let job = Job::Vjp {
            cotangent: Arg::rows(&ct, outs.len()),
            wrt: vec![true, true],
        };
        let isa = exec::detect_isa();
        // Native blocks of any size (the one used, and odd ones) cut the rows elsewhere
        // than the interpreter's; sums must not notice.
        for (reduce, k) in [Reduce::None, Reduce::Sum]
            .into_iter()
            .flat_map(|r| [(r, jit::block_groups(&p, Pass::Gradient)), (r, 3)])
        {
            let kern = Kernel::new(&p, Pass::Gradient, k).unwrap();
            let a = exec::run(&p, &layout, &args, n, &job, reduce, isa, None).unwrap();
            let b = exec::run(&p, &layout, &args, n, &job, reduce, isa, Some(&kern)).unwrap();
            let pairs = a
                .values
                .iter()
                .zip(&b.values)
                .chain(a.grads.iter().flatten().zip(b.grads.iter().flatten()));
            for (u, v) in pairs {
                assert!(same(*u, *v), "case {case}, {reduce:?}: {u} vs {v}");
            }
        }
    }
}

/// Kernels whose compile time would explode are refused, so the caller interprets: a
/// chain of divisions keeps two partials per division for the reverse sweep (at 1023
/// divisions, Cranelift took 19 s), and its value kernel keeps none.
#[test]
fn gradient_kernels_keep_a_bounded_number_of_partials() {
    for (n, fits) in [(MAX_KEPT / 2, true), (MAX_KEPT / 2 + 1, false)] {
        let mut g = Graph::new(2);
        let (x, y) = (g.input(0), g.input(1));
        let mut v = x;
        for _ in 0..n {
            v = g.binary(Binary::Div, v, y);
        }
        let p = Program::for_gradients(&g, &[v]);
        assert_eq!(jit::kept_partials(&p), 2 * n);
        assert_eq!(Kernel::new(&p, Pass::Gradient, 4).is_some(), fits);
        assert!(Kernel::new(&Program::new(&g, &[v]), Pass::Values, 4).is_some());
    }
}
