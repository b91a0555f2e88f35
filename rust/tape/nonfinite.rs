//! Where a non-finite adjoint was born on the eager tape: the scan behind `wg.debug_nans`
//! for `backward()`, the switch that turns it on, and the notes (source site, operands)
//! kept per node while it is on. The scan runs only when the check is on, after the
//! ordinary sweep, so the sweep itself stays as it is; when it is off, an eager op pays
//! one relaxed atomic load ([`on`]).

use crate::tape::arena::{Arena, Op, SINK};
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

/// A contribution `adjoint * partial` of node `node` to its argument `arg` (0 or 1) that
/// is not finite although the adjoint is: the first such, walking backwards as the sweep
/// does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BadAdjoint {
    pub node: u32,
    pub op: Op,
    pub arg: usize,
    pub adjoint: f64,
    pub partial: f64,
}

/// The first node (from `out` down) whose finite adjoint, through one of its partials,
/// makes a non-finite contribution, given the adjoints `adj` that [`Arena::sweep`] left.
/// Strong zero: a zero adjoint contributes nothing, whatever the partial, so it is never
/// blamed. `None` when every contribution is finite (an adjoint can still overflow as a
/// sum of finite ones: see [`first_nonfinite`]).
///
/// ```
/// use wengert::tape::arena::{Arena, Op};
/// use wengert::tape::nonfinite::first_bad_adjoint;
/// use wengert::op::Unary;
/// let mut a = Arena::new();
/// let x = a.leaf();
/// let y = a.unary(Op::Unary(Unary::Sqrt), x, f64::INFINITY); // sqrt at 0
/// let mut adj = Vec::new();
/// a.sweep(y, &mut adj);
/// let bad = first_bad_adjoint(&a, &adj, y).unwrap();
/// assert_eq!((bad.node, bad.arg, bad.partial), (y, 0, f64::INFINITY));
/// ```
pub fn first_bad_adjoint(arena: &Arena, adj: &[f64], out: u32) -> Option<BadAdjoint> {
    let top = (out as usize).min(adj.len().saturating_sub(1));
    for i in (1..=top).rev() {
        let g = adj[i];
        if g == 0.0 || !g.is_finite() {
            continue;
        }
        let (op, args, partials) = arena.node(i as u32);
        if op == Op::Leaf {
            continue;
        }
        for k in 0..2 {
            if args[k] == SINK && k == 1 {
                continue;
            }
            if !(g * partials[k]).is_finite() {
                return Some(BadAdjoint {
                    node: i as u32,
                    op,
                    arg: k,
                    adjoint: g,
                    partial: partials[k],
                });
            }
        }
    }
    None
}

/// The highest node at or below `out` whose adjoint is not finite.
pub fn first_nonfinite(adj: &[f64], out: u32) -> Option<u32> {
    let top = (out as usize).min(adj.len().saturating_sub(1));
    (1..=top)
        .rev()
        .find(|&i| !adj[i].is_finite())
        .map(|i| i as u32)
}

/// Whether the check (`wg.debug_nans`) is on: process-wide, like JAX's flag, a switch set
/// around a block of code.
static ON: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Nesting depth of suspensions on this thread: a transform runs its fast path with
    /// eager checks suspended and diagnoses afterwards, where `where` is visible.
    static SUSPENDED: Cell<u32> = const { Cell::new(0) };
    /// Per eager node recorded while the check was on: its source site and operands, and
    /// its op and partials to tell a reused node index from the node the note was for.
    static NOTES: RefCell<FxHashMap<u32, Note>> = RefCell::new(FxHashMap::default());
}

/// Notes kept at most; past it they start afresh (an unknown site is reported as such).
const MAX_NOTES: usize = 1 << 20;

struct Note {
    site: i64,
    op: Op,
    partials: [u64; 2],
    operands: [f64; 2],
    n_operands: u8,
}

/// Turns the check on or off; returns the previous setting.
pub fn set_on(flag: bool) -> bool {
    ON.swap(flag, Ordering::Relaxed)
}

/// Whether the check is on at all: the one load an eager op pays.
#[inline(always)]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether the check is on and not suspended on this thread.
pub fn active() -> bool {
    on() && SUSPENDED.with(|s| s.get() == 0)
}

/// Suspends (`+1`) or resumes (`-1`) the check on this thread.
pub fn suspend(delta: i32) {
    SUSPENDED.with(|s| s.set(s.get().saturating_add_signed(delta)));
}

/// Notes node `idx` of `arena` (just recorded, its operands `operands`) with `site`, an id
/// the caller gives source lines (the Python layer's; -1 unknown). Call when [`active`].
pub fn note(arena: &Arena, idx: u32, site: i64, operands: &[f64]) {
    let (op, _, partials) = arena.node(idx);
    NOTES.with_borrow_mut(|m| {
        if m.len() >= MAX_NOTES {
            m.clear();
        }
        let mut ops = [0.0; 2];
        ops[..operands.len()].copy_from_slice(operands);
        m.insert(
            idx,
            Note {
                site,
                op,
                partials: partials.map(f64::to_bits),
                operands: ops,
                n_operands: operands.len() as u8,
            },
        );
    });
}

/// Where a sweep's adjoints first became non-finite: the node's op, its note (site -1 and
/// no operands without one), the adjoint, and the partial and argument (`NaN`, -1 when
/// the adjoint overflowed as a sum of finite contributions).
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub op: Op,
    pub site: i64,
    pub operands: Vec<f64>,
    pub adjoint: f64,
    pub partial: f64,
    pub arg: i64,
}

/// After a sweep from `out` left `adj`: where an adjoint became non-finite, if the check
/// is [`active`] and one did.
///
/// ```
/// use wengert::tape::arena::{Arena, Op};
/// use wengert::tape::nonfinite::{note, scan, set_on};
/// use wengert::op::Unary;
/// let mut a = Arena::new();
/// let x = a.leaf();
/// let y = a.unary(Op::Unary(Unary::Sqrt), x, f64::INFINITY); // sqrt at 0
/// let before = set_on(true);
/// note(&a, y, 7, &[0.0]);
/// let mut adj = Vec::new();
/// a.sweep(y, &mut adj);
/// let found = scan(&a, &adj, y).unwrap();
/// assert_eq!((found.site, found.operands, found.arg), (7, vec![0.0], 0));
/// set_on(before);
/// ```
pub fn scan(arena: &Arena, adj: &[f64], out: u32) -> Option<Found> {
    if !active() {
        return None;
    }
    let (node, op, adjoint, partial, arg) = match first_bad_adjoint(arena, adj, out) {
        Some(b) => (b.node, b.op, b.adjoint, b.partial, b.arg as i64),
        None => {
            let i = first_nonfinite(adj, out)?;
            (i, arena.node(i).0, adj[i as usize], f64::NAN, -1)
        }
    };
    let (_, _, partials) = arena.node(node);
    let (site, operands) = NOTES.with_borrow(|m| match m.get(&node) {
        Some(n) if n.op == op && n.partials == partials.map(f64::to_bits) => {
            (n.site, n.operands[..n.n_operands as usize].to_vec())
        }
        _ => (-1, vec![]),
    });
    Some(Found {
        op,
        site,
        operands,
        adjoint,
        partial,
        arg,
    })
}
