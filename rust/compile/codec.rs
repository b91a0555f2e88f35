//! The pickle format of a [`Program`]: a self-contained little-endian encoding, checked
//! slot by slot on the way back in (a pickle can say anything).

use super::program::{Instr, Program};
use crate::op::{Binary, Cmp, Unary};

/// A malformed serialized program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Whether slots are used as [`Program::new`] uses them: every slot is written by an
/// input, a constant or an instruction; inputs and constants each have their own, and
/// constants keep theirs (the interpreter loads them once per chunk); no instruction reads
/// a slot before it is written or writes one it reads. Both engines
/// rely on this (the native code's addresses are 32-bit offsets, the interpreter borrows
/// an instruction's destination apart from its arguments), and a pickle can say anything.
fn check_slots(
    n_slots: usize,
    inputs: &[Option<u32>],
    consts: &[(u32, f64)],
    instrs: &[Instr],
    outputs: &[u32],
) -> Result<(), &'static str> {
    if n_slots > inputs.len() + consts.len() + instrs.len() {
        return Err("more slots than values");
    }
    let mut written = vec![false; n_slots];
    let starts = inputs.iter().flatten().chain(consts.iter().map(|(s, _)| s));
    for &s in starts {
        if std::mem::replace(&mut written[s as usize], true) {
            return Err("two inputs or constants in one slot");
        }
    }
    let mut constant = vec![false; n_slots];
    for &(s, _) in consts {
        constant[s as usize] = true;
    }
    for ins in instrs {
        let args: &[u32] = match ins {
            Instr::Unary { a, .. } => &[*a],
            Instr::Binary { a, b, .. } => &[*a, *b],
            Instr::Select { x, y, a, b, .. } => &[*x, *y, *a, *b],
        };
        if args.iter().any(|&a| !written[a as usize]) {
            return Err("an instruction reads a slot before it is written");
        }
        if args.contains(&ins.dst()) {
            return Err("an instruction writes a slot it reads");
        }
        if constant[ins.dst() as usize] {
            return Err("an instruction writes a constant's slot");
        }
        written[ins.dst() as usize] = true;
    }
    if outputs.iter().any(|&o| !written[o as usize]) {
        return Err("an output slot is never written");
    }
    Ok(())
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a serialized wengert program: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

const MAGIC: &[u8; 8] = b"wengert2";

impl Program {
    /// A self-contained little-endian encoding (what `pickle` stores).
    ///
    /// ```
    /// use wengert::compile::graph::Graph;
    /// use wengert::op::Unary;
    /// use wengert::compile::program::Program;
    /// let mut g = Graph::new(1);
    /// let y = g.unary(Unary::Exp, 0);
    /// let p = Program::new(&g, &[y]);
    /// assert_eq!(Program::from_bytes(&p.to_bytes()).unwrap(), p);
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(MAGIC);
        w.push(self.is_for_gradients() as u8);
        let u = |w: &mut Vec<u8>, x: u32| w.extend_from_slice(&x.to_le_bytes());
        u(&mut w, self.n_slots() as u32);
        u(&mut w, self.inputs().len() as u32);
        for s in self.inputs() {
            u(&mut w, s.unwrap_or(u32::MAX));
        }
        u(&mut w, self.consts().len() as u32);
        for &(s, c) in self.consts() {
            u(&mut w, s);
            w.extend_from_slice(&c.to_le_bytes());
        }
        u(&mut w, self.instrs().len() as u32);
        for ins in self.instrs() {
            let (tag, code, args): (u8, u8, Vec<u32>) = match *ins {
                Instr::Unary { op, dst, a } => (0, op.code(), vec![dst, a]),
                Instr::Binary { op, dst, a, b } => (1, op.code(), vec![dst, a, b]),
                Instr::Select {
                    cmp,
                    dst,
                    x,
                    y,
                    a,
                    b,
                } => (2, cmp.code(), vec![dst, x, y, a, b]),
            };
            w.push(tag);
            w.push(code);
            for a in args {
                u(&mut w, a);
            }
        }
        u(&mut w, self.outputs().len() as u32);
        for &o in self.outputs() {
            u(&mut w, o);
        }
        w
    }

    /// Decodes [`Program::to_bytes`], checking every slot against the slot count.
    pub fn from_bytes(b: &[u8]) -> Result<Program, DecodeError> {
        let err = |m: &str| DecodeError(m.to_string());
        if b.len() < 8 || &b[..8] != MAGIC {
            return Err(err("bad header"));
        }
        let for_gradients = match b.get(8) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(err("bad layout flag")),
        };
        let mut pos = 9;
        let u8_ = |pos: &mut usize| -> Result<u8, DecodeError> {
            let v = *b.get(*pos).ok_or_else(|| err("truncated"))?;
            *pos += 1;
            Ok(v)
        };
        let u32_ = |pos: &mut usize| -> Result<u32, DecodeError> {
            let s = b.get(*pos..*pos + 4).ok_or_else(|| err("truncated"))?;
            *pos += 4;
            Ok(u32::from_le_bytes(s.try_into().unwrap()))
        };
        let n_slots = u32_(&mut pos)?;
        let slot = |pos: &mut usize| -> Result<u32, DecodeError> {
            let s = u32_(pos)?;
            if s >= n_slots {
                return Err(err("slot out of range"));
            }
            Ok(s)
        };
        let n = u32_(&mut pos)? as usize;
        let mut inputs = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let s = u32_(&mut pos)?;
            inputs.push(if s == u32::MAX {
                None
            } else if s < n_slots {
                Some(s)
            } else {
                return Err(err("slot out of range"));
            });
        }
        let n = u32_(&mut pos)? as usize;
        let mut consts = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let s = slot(&mut pos)?;
            let c = b.get(pos..pos + 8).ok_or_else(|| err("truncated"))?;
            pos += 8;
            consts.push((s, f64::from_le_bytes(c.try_into().unwrap())));
        }
        let n = u32_(&mut pos)? as usize;
        let mut instrs = Vec::with_capacity(n.min(1 << 20));
        let mut labels = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let tag = u8_(&mut pos)?;
            let code = u8_(&mut pos)?;
            let ins = match tag {
                0 => {
                    let op = Unary::from_code(code).ok_or_else(|| err("bad op"))?;
                    labels.push(op.name().to_string());
                    Instr::Unary {
                        op,
                        dst: slot(&mut pos)?,
                        a: slot(&mut pos)?,
                    }
                }
                1 => {
                    let op = Binary::from_code(code).ok_or_else(|| err("bad op"))?;
                    labels.push(op.name().to_string());
                    Instr::Binary {
                        op,
                        dst: slot(&mut pos)?,
                        a: slot(&mut pos)?,
                        b: slot(&mut pos)?,
                    }
                }
                2 => {
                    let cmp = Cmp::from_code(code).ok_or_else(|| err("bad comparison"))?;
                    labels.push(format!("where {}", cmp.symbol()));
                    let [dst, x, y, a, b] = [0; 5].map(|_| slot(&mut pos));
                    Instr::Select {
                        cmp,
                        dst: dst?,
                        x: x?,
                        y: y?,
                        a: a?,
                        b: b?,
                    }
                }
                _ => return Err(err("bad instruction")),
            };
            instrs.push(ins);
        }
        let n = u32_(&mut pos)? as usize;
        let mut outputs = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            outputs.push(slot(&mut pos)?);
        }
        if pos != b.len() {
            return Err(err("trailing bytes"));
        }
        check_slots(n_slots as usize, &inputs, &consts, &instrs, &outputs).map_err(err)?;
        Ok(Program::planned(
            n_slots,
            inputs,
            consts,
            instrs,
            outputs,
            labels,
            for_gradients,
        ))
    }
}
