//! Native kernels (rust/exec/jit/) against the interpreter (rust/exec/interp.rs): the same
//! numbers, bit for bit, on random programs with every op, and through the batch path.

use wengert::compile::graph::Graph;
use wengert::compile::guard::{self, Guard};
use wengert::compile::program::Program;
use wengert::exec::interp;
use wengert::exec::isa::best_isa;
use wengert::exec::jit::{self, Kernel, Pass, MAX_KEPT};
use wengert::exec::{self, Arg, Isa, Job, Layout, Reduce};
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

/// [`exec::run_flagged_into`] with buffers of its own, the per-row results moved into the
/// output as [`exec::run`] does.
#[allow(clippy::too_many_arguments)]
fn run_flagged(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    reduce: Reduce,
    isa: Isa,
    native: Option<&Kernel>,
) -> (exec::Output, f64) {
    let mut bufs = exec::flagged_buffer_lens(p, layout, args, n, job, reduce).map(|l| vec![0.0; l]);
    let views = bufs.as_mut().map(|b| b.as_mut_slice());
    let (mut out, flag) =
        exec::run_flagged_into(p, layout, args, n, job, reduce, isa, native, views).unwrap();
    if out.values.is_empty() {
        out.values = bufs.values;
    }
    if out.tangents.is_empty() {
        out.tangents = bufs.tangents;
    }
    for (g, b) in out.grads.iter_mut().zip(bufs.grads) {
        if g.is_empty() {
            *g = b;
        }
    }
    (out, flag)
}

/// A guard flag as a program's last output, summed in the pass (`run_flagged_into`),
/// changes no other result: values, gradients and tangents are those of the program
/// without the flag, bit for bit, per row or reduced, on every ISA this CPU has and on
/// both engines; and the sum counts the rows whose guards hold, as evaluating each row
/// alone node by node says.
#[test]
fn a_summed_flag_changes_no_other_result() {
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let isas: Vec<Isa> = [Isa::Portable, Isa::Avx2Fma, Isa::Avx512]
        .into_iter()
        .filter(|&i| i <= best_isa())
        .collect();
    let cmps = [Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge, Cmp::Eq, Cmp::Ne];
    for case in 0..24 {
        let (mut g, outs) = random_graph(&mut rng, 3, 30);
        let nodes = g.nodes().len();
        let guards: Vec<Guard> = (0..1 + rng.below(3))
            .map(|_| Guard {
                cmp: cmps[rng.below(cmps.len())],
                x: rng.below(nodes) as u32,
                y: rng.below(nodes) as u32,
                outcome: rng.below(2) == 0,
            })
            .collect();
        // Every third case a guard every row passes (a constant comparison): the sum is n.
        let guards = if case % 3 == 0 {
            let (a, b) = (g.constant(0.0), g.constant(1.0));
            vec![Guard {
                cmp: Cmp::Lt,
                x: a,
                y: b,
                outcome: true,
            }]
        } else {
            guards
        };
        let flag = guard::flag(&mut g, &guards);
        let ext_outs: Vec<u32> = outs.iter().copied().chain([flag]).collect();
        let m = outs.len();
        let layout = Layout::new(&[2, 1]);
        let n = 1 + rng.below(2500);
        let x: Vec<f64> = (0..2 * n).map(|_| rng.number()).collect();
        let y: Vec<f64> = (0..n).map(|_| rng.number()).collect();
        let ct: Vec<f64> = (0..n * m).map(|_| rng.number()).collect();
        let tx: Vec<f64> = (0..2 * n).map(|_| rng.number()).collect();
        let ty: Vec<f64> = (0..n).map(|_| rng.number()).collect();
        let shared = case % 2 == 1;
        let y_of = |r: usize| if shared { y[0] } else { y[r] };
        let want = (0..n)
            .filter(|&r| {
                let mut vals = Vec::new();
                guard::extend_values(&g, &mut vals, &[x[2 * r], x[2 * r + 1], y_of(r)]);
                guards
                    .iter()
                    .all(|gd| gd.cmp.holds(vals[gd.x as usize], vals[gd.y as usize]) == gd.outcome)
            })
            .count();
        let y = if shared {
            Arg::shared(&y[..1])
        } else {
            Arg::rows(&y, 1)
        };
        let args = [Arg::rows(&x, 2), y];
        let jobs = [
            Job::Values,
            Job::Vjp {
                cotangent: Arg::rows(&ct, m),
                wrt: vec![true, true],
            },
            Job::Vjp {
                cotangent: Arg::shared(&ct[..m]),
                wrt: vec![false, true],
            },
            Job::Jvp {
                tangents: vec![Arg::rows(&tx, 2), Arg::rows(&ty, 1)],
            },
        ];
        for job in &jobs {
            let (p, e) = match job {
                Job::Values => (Program::new(&g, &outs), Program::new(&g, &ext_outs)),
                _ => (
                    Program::for_gradients(&g, &outs),
                    Program::for_gradients(&g, &ext_outs),
                ),
            };
            let pass = exec::native_pass(job);
            let kernels = |q: &Program| -> Vec<Option<Kernel>> {
                let mut v = vec![None];
                if let Some(pass) = pass {
                    v.push(Some(
                        Kernel::new(q, pass, jit::block_groups(q, pass)).unwrap(),
                    ));
                }
                v
            };
            for (kp, ke) in kernels(&p).iter().zip(kernels(&e).iter()) {
                for reduce in [Reduce::None, Reduce::Sum, Reduce::Mean] {
                    for &isa in &isas {
                        let a = exec::run(&p, &layout, &args, n, job, reduce, isa, kp.as_ref())
                            .unwrap();
                        let (b, sum) =
                            run_flagged(&e, &layout, &args, n, job, reduce, isa, ke.as_ref());
                        let what = format!(
                            "case {case}, {job:?}, {reduce:?}, {isa:?}, native {}",
                            kp.is_some()
                        );
                        assert_eq!(sum, want as f64, "{what}: the flag's sum");
                        assert_eq!(a.values.len(), b.values.len(), "{what}");
                        assert_eq!(a.tangents.len(), b.tangents.len(), "{what}");
                        assert_eq!(a.grads.len(), b.grads.len(), "{what}");
                        let pairs = a
                            .values
                            .iter()
                            .zip(&b.values)
                            .chain(a.tangents.iter().zip(&b.tangents))
                            .chain(a.grads.iter().flatten().zip(b.grads.iter().flatten()));
                        for (u, v) in pairs {
                            assert!(same(*u, *v), "{what}: {u} vs {v}");
                        }
                        for (ga, gb) in a.grads.iter().zip(&b.grads) {
                            assert_eq!(ga.len(), gb.len(), "{what}");
                        }
                    }
                }
            }
        }
    }
}

/// A flagged call refuses what it cannot serve: a Jacobian, a program without outputs, a
/// cotangent with a number for the flag.
#[test]
fn a_flagged_call_refuses_what_it_cannot_serve() {
    let mut g = Graph::new(1);
    let s = g.unary(Unary::Sin, 0);
    let z = g.constant(0.0);
    let flag = guard::flag(
        &mut g,
        &[Guard {
            cmp: Cmp::Gt,
            x: 0,
            y: z,
            outcome: true,
        }],
    );
    let e = Program::for_gradients(&g, &[s, flag]);
    let layout = Layout::new(&[1]);
    let x = [0.5, -0.5];
    let args = [Arg::rows(&x, 1)];
    let isa = exec::detect_isa();
    let jac = Job::Jacobian { wrt: vec![true] };
    let lens = exec::flagged_buffer_lens(&e, &layout, &args, 2, &jac, Reduce::None);
    let mut bufs = lens.map(|l| vec![0.0; l]);
    let r = exec::run_flagged_into(
        &e,
        &layout,
        &args,
        2,
        &jac,
        Reduce::None,
        isa,
        None,
        bufs.as_mut().map(|b| b.as_mut_slice()),
    );
    assert!(r.is_err());
    let ct = [1.0, 0.0];
    let vjp = Job::Vjp {
        cotangent: Arg::shared(&ct),
        wrt: vec![true],
    };
    let lens = exec::flagged_buffer_lens(&e, &layout, &args, 2, &vjp, Reduce::None);
    let mut bufs = lens.map(|l| vec![0.0; l]);
    let r = exec::run_flagged_into(
        &e,
        &layout,
        &args,
        2,
        &vjp,
        Reduce::None,
        isa,
        None,
        bufs.as_mut().map(|b| b.as_mut_slice()),
    );
    assert!(matches!(r, Err(exec::BatchError::Shape { .. })), "{r:?}");
    let empty = Program::new(&g, &[]);
    let lens = exec::flagged_buffer_lens(&empty, &layout, &args, 2, &Job::Values, Reduce::None);
    let mut bufs = lens.map(|l| vec![0.0; l]);
    let r = exec::run_flagged_into(
        &empty,
        &layout,
        &args,
        2,
        &Job::Values,
        Reduce::None,
        isa,
        None,
        bufs.as_mut().map(|b| b.as_mut_slice()),
    );
    assert!(r.is_err());
    // The values of the other outputs, and the sum of the flag (1 for x > 0).
    let (out, sum) = run_flagged(&e, &layout, &args, 2, &Job::Values, Reduce::None, isa, None);
    assert_eq!(sum, 1.0);
    let plain = Program::new(&g, &[s]);
    let want = exec::run(
        &plain,
        &layout,
        &args,
        2,
        &Job::Values,
        Reduce::None,
        isa,
        None,
    )
    .unwrap();
    assert_eq!(out.values, want.values);
}
