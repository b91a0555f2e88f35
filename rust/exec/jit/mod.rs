//! Native code for a [`Program`], generated at run time with Cranelift.
//!
//! The interpreter in [`crate::exec::interp`] makes one pass over memory per instruction, so a
//! long program is bound by loads and stores, not arithmetic. A [`Kernel`] is one function
//! per program that takes a lane group (four rows) through every instruction, and for
//! gradients back through the reverse sweep, with the values in registers: only the
//! inputs, the outputs, the seeds and the gradients touch memory.
//!
//! Results are identical to the interpreter's bit for bit (tested in `tests/jit.rs`): the
//! arithmetic ops, `sqrt` and `where` are emitted as the same IEEE operations, the
//! adjoints receive the same contributions in the same order (the plan of
//! [`crate::compile::program::Adjoint`], slot for slot, with the plain products of the
//! interpreter's fast path: strong zero is added by the batch driver, see
//! [`crate::exec::interp`]), and every other op calls its rule in
//! [`crate::op`], compiled in Rust, through [`unary_rule`] and [`binary_rule`].
//! The one difference: a NaN's sign and payload, which neither compiler keeps (LLVM
//! turns the interpreter's `-1 * g` into a sign flip, for one).
//!
//! A lane group is four `f64` lanes; the code holds it as two 128-bit vectors, the widest
//! Cranelift emits.

use crate::compile::program::{Adjoint, Instr, Program};
use crate::op::{Binary, Cmp, Unary};
use crate::scalar::lanes::{F64x4, LANES};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{
    types, AbiParam, InstBuilder, MemFlagsData, SigRef, StackSlot, StackSlotData, StackSlotKind,
    Type, UserFuncName, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

/// The unary ops native code runs as calls into their rules (through [`unary_rule`]);
/// the others are emitted inline. A pattern, so the matches over ops stay exhaustive: a
/// new op does not compile until it is listed here or given inline code.
macro_rules! unary_calls {
    () => {
        Unary::Sin
            | Unary::Cos
            | Unary::Tan
            | Unary::Asin
            | Unary::Acos
            | Unary::Atan
            | Unary::Sinh
            | Unary::Cosh
            | Unary::Tanh
            | Unary::Asinh
            | Unary::Acosh
            | Unary::Atanh
            | Unary::Exp
            | Unary::Exp2
            | Unary::Expm1
            | Unary::Log
            | Unary::Log2
            | Unary::Log10
            | Unary::Log1p
            | Unary::Cbrt
            | Unary::Abs
            | Unary::Sigmoid
            | Unary::Relu
            | Unary::Softplus
            | Unary::Erf
            | Unary::Floor
            | Unary::Ceil
            | Unary::Round
            | Unary::Trunc
            | Unary::Sign
            | Unary::Reciprocal
            | Unary::Erfc
            | Unary::Lgamma
            | Unary::Digamma
            | Unary::Trigamma
            | Unary::Sinc
    };
}
/// The binary ops native code runs as calls into their rules, as [`unary_calls!`].
macro_rules! binary_calls {
    () => {
        Binary::Pow
            | Binary::Atan2
            | Binary::Hypot
            | Binary::Max
            | Binary::Min
            | Binary::Fmod
            | Binary::Remainder
            | Binary::Copysign
            | Binary::Logaddexp
    };
}

/// Programs longer than this, or with more slots, stay with the interpreter: Cranelift's
/// time grows faster than the program, and every slot live at once is a value in a
/// register or on the kernel's stack (first-call costs: `benches/engines.py`; figures in
/// `benches/README.md`, "Native code policy").
pub const MAX_INSTRS: usize = 1024;
/// See [`MAX_INSTRS`].
pub const MAX_SLOTS: usize = 1024;

/// Gradient kernels keep at most this many partials (see [`kept_partials`]) from the
/// forward pass for the reverse sweep. All of them are live at once, in registers or
/// spilled; the register allocator's time grows with the square of their number times
/// the lane groups per call, and past about this many the spills cost more than the
/// interpreter's stored partials (`benches/engines.py`; figures in `benches/README.md`,
/// "Native code policy").
pub const MAX_KEPT: usize = 128;

/// Lane groups per block of rows run with native code for `p` and `pass`: as many as keep
/// the block's slots (and adjoints) within 8 KiB, from 4 to 32 and a multiple of 4 (the
/// lane groups of one call). The interpreter wants long blocks, to spread each
/// instruction's dispatch over many rows; native code has no dispatch, and short blocks
/// keep a block's inputs, slots, adjoints and gradients in L1 while the next block's rows
/// are fetched. But each block costs a little, which a short program notices (`cargo
/// bench --bench batch -- native_blocks`; figures in `benches/README.md`, "Native code
/// policy").
pub fn block_groups(p: &Program, pass: Pass) -> usize {
    let per_group = p.n_slots().max(1) * std::mem::size_of::<F64x4>();
    let per_group = match pass {
        Pass::Values => per_group,
        Pass::Gradient => 2 * per_group,
    };
    (8 * 1024 / per_group).clamp(4, 32) / 4 * 4
}

/// The partials a gradient kernel of `p` keeps from the forward pass for the reverse
/// sweep: those that are not constants, of arguments that receive an adjoint.
pub fn kept_partials(p: &Program) -> usize {
    (0..p.instrs().len())
        .filter(|&i| p.fixed_partials()[i].is_none())
        .map(|i| p.plan()[i].iter().filter(|&&a| a != Adjoint::Skip).count())
        .sum()
}

/// Whether native code pays for `p`: ops other than the arithmetic ones, `sqrt` and
/// `where` run as calls into Rust on four lane groups at a time, each paying for its
/// arguments' trip through memory, where the interpreter runs such an op over a whole
/// block in one loop. So: native when at most one op in eight is a call (measured by
/// `benches/engines.py`; figures in `benches/README.md`, "Native code policy").
/// Divisions and square roots count as calls: they are bound by the divider, which takes
/// 256 bits at a time where native code gives it 128.
pub fn worthwhile(p: &Program) -> bool {
    let slow = p
        .instrs()
        .iter()
        .filter(|ins| match **ins {
            Instr::Unary { op, .. } => match op {
                Unary::Neg | Unary::Square | Unary::StopGradient => false,
                Unary::Sqrt | unary_calls!() => true,
            },
            Instr::Binary { op, .. } => match op {
                Binary::Add | Binary::Sub | Binary::Mul => false,
                Binary::Div | binary_calls!() => true,
            },
            Instr::Select { .. } => false,
        })
        .count();
    8 * slow <= p.instrs().len()
}

/// What a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Output values.
    Values,
    /// Output values, then the adjoints of the inputs from the seeds in the output slots
    /// (one reverse sweep, as [`crate::exec::interp::partials`] and [`crate::exec::interp::reverse`]).
    Gradient,
}

/// `fn(slots, adj)`: the lane groups at `slots` (slot `s` at `slots + s * k`, in lane
/// groups, as many groups as the kernel takes per call), and for [`Pass::Gradient`] their
/// adjoints at `adj`, laid out alike.
type Entry = unsafe extern "C" fn(*mut F64x4, *mut F64x4);

/// A program compiled to native code for one [`Pass`] and blocks of `k` lane groups.
pub struct Kernel {
    /// Owns the code; never touched after construction but to free it.
    _code: Code,
    entry: Entry,
    pass: Pass,
    block_groups: usize,
    /// Lane groups per call of `entry`.
    groups: usize,
    n_slots: usize,
}

// SAFETY: the module is only used while building (in `Kernel::new`, on one thread) and
// in `Code`'s `Drop`; afterwards the code is immutable executable memory, and `entry`
// reads and writes nothing but the buffers passed to it, so calls from several threads at
// once are sound.
unsafe impl Send for Kernel {}
// SAFETY: as for `Send`: `&Kernel` only gives access to `run`, which is reentrant.
unsafe impl Sync for Kernel {}

/// The module that holds a kernel's code, freed on drop: with the kernel, or when
/// building it fails halfway.
struct Code(Option<JITModule>);

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            // SAFETY: the only pointer into the code is a `Kernel`'s `entry`, and the
            // kernel owns this and dies with it; while building, nothing has it yet.
            unsafe { m.free_memory() }
        }
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernel({:?}, k = {})", self.pass, self.block_groups)
    }
}

impl Kernel {
    /// Compiles `p` for `pass` and blocks of `k` lane groups; `None` when this host has no
    /// Cranelift backend, the program is beyond [`MAX_INSTRS`], [`MAX_SLOTS`] or for
    /// gradients [`MAX_KEPT`], or code generation fails (the caller then interprets).
    ///
    /// ```
    /// use wengert::compile::graph::Graph;
    /// use wengert::exec::jit::{Kernel, Pass};
    /// use wengert::scalar::lanes::F64x4;
    /// use wengert::op::Binary;
    /// use wengert::compile::program::Program;
    /// let mut g = Graph::new(2);
    /// let (x, y) = (g.input(0), g.input(1));
    /// let out = g.binary(Binary::Mul, x, y);
    /// let p = Program::new(&g, &[out]);
    /// let kern = Kernel::new(&p, Pass::Values, 1).unwrap();
    /// let mut slots = vec![F64x4::default(); p.n_slots()];
    /// slots[p.inputs()[0].unwrap() as usize] = F64x4([1.0, 2.0, 3.0, 4.0]);
    /// slots[p.inputs()[1].unwrap() as usize] = F64x4::splat(10.0);
    /// kern.run(&mut slots, &mut []);
    /// assert_eq!(slots[p.outputs()[0] as usize].0, [10.0, 20.0, 30.0, 40.0]);
    /// ```
    pub fn new(p: &Program, pass: Pass, k: usize) -> Option<Kernel> {
        let too_big = p.instrs().len() > MAX_INSTRS
            || p.n_slots() > MAX_SLOTS
            || (pass == Pass::Gradient && kept_partials(p) > MAX_KEPT);
        // Offsets into a block are 32-bit immediates in the code.
        let block_bytes = k
            .checked_mul(MAX_SLOTS)
            .and_then(|n| n.checked_mul(std::mem::size_of::<F64x4>()));
        if too_big || k == 0 || block_bytes.is_none_or(|b| b > i32::MAX as usize) {
            return None;
        }
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").ok()?;
        flags.set("is_pic", "false").ok()?;
        // Spills of many live values can make a frame larger than a page: touch each page
        // on the way down, so a thread with a small stack hits its guard page.
        flags.set("enable_probestack", "true").ok()?;
        flags.set("probestack_strategy", "inline").ok()?;
        let isa = cranelift_native::builder()
            .ok()?
            .finish(settings::Flags::new(flags))
            .ok()?;
        let mut code = Code(Some(JITModule::new(JITBuilder::with_isa(
            isa,
            default_libcall_names(),
        ))));
        let module = code.0.as_mut()?;
        let ptr = module.target_config().pointer_type();
        let mut ctx = module.make_context();
        ctx.func.signature.params.push(AbiParam::new(ptr));
        ctx.func.signature.params.push(AbiParam::new(ptr));
        let id = module
            .declare_function("kernel", Linkage::Local, &ctx.func.signature)
            .ok()?;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut fctx = FunctionBuilderContext::new();
        // Helpers: (op, scratch, lane groups).
        let mut sig_call = module.make_signature();
        sig_call.params.push(AbiParam::new(types::I32));
        sig_call.params.push(AbiParam::new(ptr));
        sig_call.params.push(AbiParam::new(types::I32));
        // Several lane groups per call, interleaved: one group's dependency chains leave
        // the pipelines idle (a chain of 64 multiply-adds ran 1.7x slower than the
        // interpreter), and a helper call on several groups overlaps their latencies. But
        // four times the values in registers: with many live at once (a program's slots
        // count them) the spills cost more than the overlap gains (Rosenbrock's gradient,
        // 65 slots: 10% slower with four groups).
        let most = if p.n_slots() <= 48 { 4 } else { 1 };
        let groups = [4, 2, 1]
            .into_iter()
            .find(|&g| g <= most && k.is_multiple_of(g))?;
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let block = b.create_block();
            b.append_block_params_for_function_params(block);
            b.switch_to_block(block);
            let (slots, adj) = (b.block_params(block)[0], b.block_params(block)[1]);
            let io = b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                (5 * groups * std::mem::size_of::<F64x4>()) as u32,
                5,
            ));
            let call = b.import_signature(sig_call);
            let stride = (k * std::mem::size_of::<F64x4>()) as i32;
            let partials = pass == Pass::Gradient;
            let mut b = match groups {
                4 => Emit::<8>::build(b, ptr, io, call, stride, partials, p, slots, adj)?,
                2 => Emit::<4>::build(b, ptr, io, call, stride, partials, p, slots, adj)?,
                _ => Emit::<2>::build(b, ptr, io, call, stride, partials, p, slots, adj)?,
            };
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        module.define_function(id, &mut ctx).ok()?;
        module.clear_context(&mut ctx);
        module.finalize_definitions().ok()?;
        let f = module.get_finalized_function(id);
        // SAFETY: `f` is the function just defined with the signature (pointer, pointer)
        // and no results in the host's default calling convention, which is `extern "C"`.
        let entry = unsafe { std::mem::transmute::<*const u8, Entry>(f) };
        Some(Kernel {
            _code: code,
            entry,
            pass,
            block_groups: k,
            groups,
            n_slots: p.n_slots(),
        })
    }

    /// The pass this kernel computes.
    pub fn pass(&self) -> Pass {
        self.pass
    }

    /// Lane groups per block.
    pub fn block_groups(&self) -> usize {
        self.block_groups
    }

    /// Runs every lane group of a block: `slots` holds the program's slots (`k` groups
    /// each, inputs loaded), `adj` for [`Pass::Gradient`] the seeds in the output slots.
    /// Afterwards the output slots hold the values, and `adj` the adjoints of the inputs
    /// that have gradients.
    ///
    /// # Panics
    /// If `slots` (or, for gradients, `adj`) has fewer than `n_slots * k` lane groups.
    #[inline(never)]
    pub fn run(&self, slots: &mut [F64x4], adj: &mut [F64x4]) {
        let len = self.n_slots * self.block_groups;
        assert!(
            slots.len() >= len,
            "slots: {} lane groups, need {len}",
            slots.len()
        );
        let adj_ptr = match self.pass {
            Pass::Values => std::ptr::null_mut(),
            Pass::Gradient => {
                assert!(
                    adj.len() >= len,
                    "adj: {} lane groups, need {len}",
                    adj.len()
                );
                adj.as_mut_ptr()
            }
        };
        for g in (0..self.block_groups).step_by(self.groups) {
            // SAFETY: the code reads and writes slot `s` of groups `g..g + groups` at
            // `s * k + g..` for `s < n_slots` only (`groups` divides `k`), in bounds by the asserts; for `Pass::Values` it never
            // touches `adj`. The helpers it calls are the `extern "C"` functions below.
            unsafe {
                (self.entry)(
                    slots.as_mut_ptr().add(g),
                    if adj_ptr.is_null() {
                        adj_ptr
                    } else {
                        adj_ptr.add(g)
                    },
                )
            }
        }
    }
}

/// `H / 2` lane groups in registers, two 128-bit halves each (lanes 0-1, lanes 2-3).
type V<const H: usize> = [Value; H];

/// A partial derivative: a constant for every row, or a value.
#[derive(Clone, Copy)]
enum Partial<const H: usize> {
    Const(f64),
    Val(V<H>),
}

struct Emit<'a, const H: usize> {
    b: FunctionBuilder<'a>,
    ptr: Type,
    /// Scratch for calls: up to five lane groups (arguments, value, partials).
    io: StackSlot,
    call: SigRef,
    /// Bytes between consecutive slots of one lane group.
    stride: i32,
    /// Whether the pass needs partials (gradients) or only values.
    partials: bool,
}

impl<'a, const H: usize> Emit<'a, H> {
    /// Emits the body of a kernel into `b` and hands `b` back to be finished.
    #[allow(clippy::too_many_arguments)]
    fn build(
        b: FunctionBuilder<'a>,
        ptr: Type,
        io: StackSlot,
        call: SigRef,
        stride: i32,
        partials: bool,
        p: &Program,
        slots: Value,
        adj: Value,
    ) -> Option<FunctionBuilder<'a>> {
        let mut e = Emit::<H> {
            b,
            ptr,
            io,
            call,
            stride,
            partials,
        };
        e.body(p, slots, adj)?;
        Some(e.b)
    }

    /// Byte offset of half `h` of `slot` from a block's first lane group: groups are
    /// consecutive within a slot.
    fn offset(&self, slot: u32, h: usize) -> i32 {
        slot as i32 * self.stride + 16 * h as i32
    }

    fn load(&mut self, base: Value, slot: u32) -> V<H> {
        let f = MemFlagsData::trusted();
        std::array::from_fn(|h| {
            let off = self.offset(slot, h);
            self.b.ins().load(types::F64X2, f, base, off)
        })
    }

    fn store(&mut self, v: V<H>, base: Value, slot: u32) {
        let f = MemFlagsData::trusted();
        for (h, half) in v.into_iter().enumerate() {
            let off = self.offset(slot, h);
            self.b.ins().store(f, half, base, off);
        }
    }

    fn splat(&mut self, c: f64) -> V<H> {
        let s = self.b.ins().f64const(c);
        [self.b.ins().splat(types::F64X2, s); H]
    }

    fn map1(&mut self, x: V<H>, f: impl Fn(&mut FunctionBuilder, Value) -> Value) -> V<H> {
        std::array::from_fn(|h| f(&mut self.b, x[h]))
    }

    fn map2(
        &mut self,
        x: V<H>,
        y: V<H>,
        f: impl Fn(&mut FunctionBuilder, Value, Value) -> Value,
    ) -> V<H> {
        std::array::from_fn(|h| f(&mut self.b, x[h], y[h]))
    }

    fn mul(&mut self, x: V<H>, y: V<H>) -> V<H> {
        self.map2(x, y, |b, x, y| b.ins().fmul(x, y))
    }

    fn div(&mut self, x: V<H>, y: V<H>) -> V<H> {
        self.map2(x, y, |b, x, y| b.ins().fdiv(x, y))
    }

    fn neg(&mut self, x: V<H>) -> V<H> {
        self.map1(x, |b, x| b.ins().fneg(x))
    }

    /// `if x cmp y { a } else { b }`, lane by lane.
    fn select(&mut self, cmp: Cmp, x: V<H>, y: V<H>, a: V<H>, b: V<H>) -> V<H> {
        let cc = match cmp {
            Cmp::Lt => FloatCC::LessThan,
            Cmp::Le => FloatCC::LessThanOrEqual,
            Cmp::Gt => FloatCC::GreaterThan,
            Cmp::Ge => FloatCC::GreaterThanOrEqual,
            Cmp::Eq => FloatCC::Equal,
            Cmp::Ne => FloatCC::NotEqual,
        };
        std::array::from_fn(|h| {
            let m = self.b.ins().fcmp(cc, x[h], y[h]);
            let m = self.b.ins().bitcast(types::F64X2, MemFlagsData::new(), m);
            self.b.ins().bitselect(m, a[h], b[h])
        })
    }

    /// Calls `f(op, io, groups)` with `args` in the scratch (`H / 2` lane groups each)
    /// and returns the `N` results after them.
    fn call<const N: usize>(&mut self, f: usize, op: u8, args: &[V<H>]) -> [V<H>; N] {
        for (i, v) in args.iter().enumerate() {
            for (h, &half) in v.iter().enumerate() {
                let at = 16 * (i * H + h) as i32;
                self.b.ins().stack_store(self.ptr, half, self.io, at);
            }
        }
        let addr = self.b.ins().stack_addr(self.ptr, self.io, 0);
        let op = self.b.ins().iconst(types::I32, op as i64);
        let groups = self.b.ins().iconst(types::I32, (H / 2) as i64);
        let callee = self.b.ins().iconst(self.ptr, f as i64);
        self.b
            .ins()
            .call_indirect(self.call, callee, &[op, addr, groups]);
        std::array::from_fn(|j| {
            std::array::from_fn(|h| {
                let at = 16 * ((args.len() + j) * H + h) as i32;
                self.b.ins().stack_load(self.ptr, types::F64X2, self.io, at)
            })
        })
    }

    /// The value of one instruction from its arguments' values, with its two partials when
    /// the pass needs them.
    fn instr(&mut self, ins: &Instr, val: &[Option<V<H>>]) -> Option<(V<H>, [Partial<H>; 2])> {
        let get = |s: u32| val[s as usize];
        let none = Partial::Const(0.0);
        Some(match *ins {
            Instr::Unary { op, a, .. } => {
                let x = get(a)?;
                match op {
                    Unary::Neg => (self.neg(x), [Partial::Const(-1.0), none]),
                    // As the rules: the value itself with partial 0, and x * x with 2 * x.
                    Unary::StopGradient => (x, [Partial::Const(0.0), none]),
                    Unary::Square => {
                        let v = self.mul(x, x);
                        let d = if self.partials {
                            let two = self.splat(2.0);
                            Partial::Val(self.mul(two, x))
                        } else {
                            none
                        };
                        (v, [d, none])
                    }
                    Unary::Sqrt => {
                        let v = self.map1(x, |b, x| b.ins().sqrt(x));
                        let half = self.splat(0.5);
                        let d = if self.partials {
                            Partial::Val(self.div(half, v))
                        } else {
                            none
                        };
                        (v, [d, none])
                    }
                    unary_calls!() if self.partials => {
                        let [v, d] = self.call::<2>(unary_fn(true), op.code(), &[x]);
                        (v, [Partial::Val(d), none])
                    }
                    unary_calls!() => {
                        let [v] = self.call::<1>(unary_fn(false), op.code(), &[x]);
                        (v, [none, none])
                    }
                }
            }
            Instr::Binary { op, a, b, .. } => {
                let (x, y) = (get(a)?, get(b)?);
                match op {
                    Binary::Add => (
                        self.map2(x, y, |b, x, y| b.ins().fadd(x, y)),
                        [Partial::Const(1.0), Partial::Const(1.0)],
                    ),
                    Binary::Sub => (
                        self.map2(x, y, |b, x, y| b.ins().fsub(x, y)),
                        [Partial::Const(1.0), Partial::Const(-1.0)],
                    ),
                    Binary::Mul => (self.mul(x, y), [Partial::Val(y), Partial::Val(x)]),
                    Binary::Div => {
                        let v = self.div(x, y);
                        if !self.partials {
                            return Some((v, [none, none]));
                        }
                        // As the rule: r = 1/y, partials r and -v*r.
                        let one = self.splat(1.0);
                        let r = self.div(one, y);
                        let nv = self.neg(v);
                        let dy = self.mul(nv, r);
                        (v, [Partial::Val(r), Partial::Val(dy)])
                    }
                    binary_calls!() if self.partials => {
                        let [v, dx, dy] = self.call::<3>(binary_fn(true), op.code(), &[x, y]);
                        (v, [Partial::Val(dx), Partial::Val(dy)])
                    }
                    binary_calls!() => {
                        let [v] = self.call::<1>(binary_fn(false), op.code(), &[x, y]);
                        (v, [none, none])
                    }
                }
            }
            Instr::Select {
                cmp, x, y, a, b, ..
            } => {
                let (x, y, a, b) = (get(x)?, get(y)?, get(a)?, get(b)?);
                let v = self.select(cmp, x, y, a, b);
                if !self.partials {
                    return Some((v, [none, none]));
                }
                let (one, zero) = (self.splat(1.0), self.splat(0.0));
                let da = self.select(cmp, x, y, one, zero);
                let db = self.select(cmp, x, y, zero, one);
                (v, [Partial::Val(da), Partial::Val(db)])
            }
        })
    }

    /// `p * g`, the contribution of one partial to an argument's adjoint, an IEEE product:
    /// strong zero is the batch driver's, which re-runs a block whose gradients hold a
    /// NaN on the interpreter (see [`crate::exec::interp`]). Multiplying by 1 is exact, so it
    /// is left out (only a NaN's payload can differ).
    fn term(&mut self, p: Partial<H>, g: V<H>) -> V<H> {
        match p {
            Partial::Const(1.0) => g,
            Partial::Const(c) => {
                let c = self.splat(c);
                self.mul(c, g)
            }
            Partial::Val(p) => self.mul(p, g),
        }
    }

    /// The whole function: inputs, instructions, outputs, and for gradients the reverse
    /// sweep. `None` if the program reads a slot nothing wrote (a malformed program).
    fn body(&mut self, p: &Program, slots: Value, adj: Value) -> Option<()> {
        let mut val: Vec<Option<V<H>>> = vec![None; p.n_slots()];
        for &(s, c) in p.consts() {
            val[s as usize] = Some(self.splat(c));
        }
        for s in p.inputs().iter().flatten() {
            val[*s as usize] = Some(self.load(slots, *s));
        }
        let mut parts = Vec::with_capacity(p.instrs().len());
        for ins in p.instrs() {
            let (v, d) = self.instr(ins, &val)?;
            val[ins.dst() as usize] = Some(v);
            parts.push(d);
        }
        for &o in p.outputs() {
            let v = val[o as usize]?;
            self.store(v, slots, o);
        }
        if !self.partials {
            return Some(());
        }

        // The reverse sweep, as `interp::reverse`: adjoints by slot, following the plan.
        let mut adjv: Vec<Option<V<H>>> = vec![None; p.n_slots()];
        for &o in p.outputs() {
            if adjv[o as usize].is_none() {
                adjv[o as usize] = Some(self.load(adj, o));
            }
        }
        for (i, (ins, plan)) in p.instrs().iter().zip(p.plan()).enumerate().rev() {
            if *plan == [Adjoint::Skip; 2] {
                continue;
            }
            let (d, a, b) = ins.sweep_slots();
            let g = adjv[d as usize]?;
            let q = match p.fixed_partials()[i] {
                Some([c0, c1]) => [Partial::Const(c0), Partial::Const(c1)],
                None => parts[i],
            };
            if let (true, [Adjoint::Set, Adjoint::Add], [Partial::Val(p0), Partial::Val(p1)]) =
                (a == b, *plan, q)
            {
                if p0 == p1 {
                    // A square's two contributions to its argument's fresh adjoint: the
                    // interpreter's t + t, with one product.
                    let t = self.mul(p0, g);
                    adjv[a as usize] = Some(self.map2(t, t, |b, x, y| b.ins().fadd(x, y)));
                    continue;
                }
            }
            for ((arg, q), how) in [a, b].into_iter().zip(q).zip(*plan) {
                let at = adjv[arg as usize];
                adjv[arg as usize] = Some(match (how, at, q) {
                    (Adjoint::Skip, ..) => continue,
                    // x + (-1 * g) is x - g exactly; one instruction instead of a
                    // multiplication (or a sign flip, which x86 builds in three) and an add.
                    (Adjoint::Add, Some(x), Partial::Const(-1.0)) => {
                        self.map2(x, g, |b, x, g| b.ins().fsub(x, g))
                    }
                    (Adjoint::Add, Some(x), q) => {
                        let t = self.term(q, g);
                        self.map2(x, t, |b, x, t| b.ins().fadd(x, t))
                    }
                    (Adjoint::Add, None, _) => return None,
                    (Adjoint::Set, ..) => self.term(q, g),
                });
            }
        }
        for (i, s) in p.inputs().iter().enumerate() {
            if let (Some(s), true) = (*s, p.has_gradient(i)) {
                let v = adjv[s as usize]?;
                self.store(v, adj, s);
            }
        }
        Some(())
    }
}

/// The helper for unary op rules: values and partials, or values only.
fn unary_fn(partials: bool) -> usize {
    let f: unsafe extern "C" fn(u32, *mut F64x4, u32) = match (partials, avx2()) {
        #[cfg(target_arch = "x86_64")]
        (true, true) => unary_rule_avx2,
        #[cfg(target_arch = "x86_64")]
        (false, true) => unary_value_avx2,
        (true, _) => unary_rule,
        (false, _) => unary_value,
    };
    f as usize
}

/// The helper for binary op rules.
fn binary_fn(partials: bool) -> usize {
    let f: unsafe extern "C" fn(u32, *mut F64x4, u32) = match (partials, avx2()) {
        #[cfg(target_arch = "x86_64")]
        (true, true) => binary_rule_avx2,
        #[cfg(target_arch = "x86_64")]
        (false, true) => binary_value_avx2,
        (true, _) => binary_rule,
        (false, _) => binary_value,
    };
    f as usize
}

/// Whether the helpers compiled for AVX2 and FMA run: where the interpreter runs its AVX2
/// or AVX-512 build (the helpers' bits are the same in every build, their speed is not
/// worth a third copy).
fn avx2() -> bool {
    crate::exec::isa::detect_isa() >= crate::exec::isa::Isa::Avx2Fma
}

/// Reads lane group `i` of `io`.
///
/// # Safety
/// `io` points to at least `i + 1` lane groups.
#[inline(always)]
unsafe fn get(io: *mut F64x4, i: usize) -> F64x4 {
    // SAFETY: in bounds by the caller's contract. Unaligned: Cranelift aligns stack
    // slots to the frame's 16 bytes, not the 32 of `F64x4`.
    unsafe { io.add(i).read_unaligned() }
}

/// Writes lane group `i` of `io`.
///
/// # Safety
/// As [`get`].
#[inline(always)]
unsafe fn set(io: *mut F64x4, i: usize, v: F64x4) {
    // SAFETY: as in `get`.
    unsafe { io.add(i).write_unaligned(v) }
}

macro_rules! helpers {
    ($($name:ident $avx:ident ($op:ident, $io:ident, $n:ident) $body:block)*) => {$(
        /// A rule called from generated code with its lane groups in `io`.
        ///
        /// # Safety
        /// `op` is the index of an op in its `ALL` table, and `io` points to the scratch
        /// of `n` lane groups per argument and result that the rule reads and writes.
        #[inline(never)]
        unsafe extern "C" fn $name($op: u32, $io: *mut F64x4, $n: u32) $body

        /// As its portable twin, compiled for AVX2 and FMA.
        ///
        /// # Safety
        /// As its portable twin, and the CPU has AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[inline(never)]
        unsafe extern "C" fn $avx($op: u32, $io: *mut F64x4, $n: u32) $body
    )*};
}

helpers! {
    unary_rule unary_rule_avx2 (op, io, n) {
        let (op, n) = (Unary::ALL[op as usize], n as usize);
        for g in 0..n {
            // SAFETY: io holds n groups each of x, value, partial (see `Emit::instr`).
            unsafe {
                let (v, d) = op.rule(get(io, g));
                set(io, n + g, v);
                set(io, 2 * n + g, d);
            }
        }
    }
    unary_value unary_value_avx2 (op, io, n) {
        let (op, n) = (Unary::ALL[op as usize], n as usize);
        for g in 0..n {
            // SAFETY: io holds n groups each of x, value.
            unsafe { set(io, n + g, op.rule(get(io, g)).0) }
        }
    }
    binary_rule binary_rule_avx2 (op, io, n) {
        let (op, n) = (Binary::ALL[op as usize], n as usize);
        for g in 0..n {
            // SAFETY: io holds n groups each of x, y, value, two partials.
            unsafe {
                let (v, dx, dy) = op.rule(get(io, g), get(io, n + g));
                set(io, 2 * n + g, v);
                set(io, 3 * n + g, dx);
                set(io, 4 * n + g, dy);
            }
        }
    }
    binary_value binary_value_avx2 (op, io, n) {
        let (op, n) = (Binary::ALL[op as usize], n as usize);
        for g in 0..n {
            // SAFETY: io holds n groups each of x, y, value.
            unsafe { set(io, 2 * n + g, op.rule(get(io, g), get(io, n + g)).0) }
        }
    }
}

const _: () = assert!(LANES == 4, "a lane group is two 128-bit vectors");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_tables_are_in_declaration_order() {
        // The helpers find an op by its discriminant in `ALL`.
        for (i, op) in Unary::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
        }
        for (i, op) in Binary::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
        }
    }
}
