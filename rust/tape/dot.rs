//! DOT export of an eager tape: the graph a node depends on, edges labelled with the
//! recorded partials.

use super::arena::{Arena, Op, SINK};

impl Arena {
    /// Graphviz DOT text of the nodes `out` depends on.
    pub fn to_dot(&self, out: u32) -> String {
        let mut reach = vec![false; out as usize + 1];
        reach[out as usize] = true;
        let mut s = String::from("digraph wengert {\n  rankdir=BT;\n");
        for i in (1..=out as usize).rev() {
            if !reach[i] {
                continue;
            }
            let (op, args, partials) = self.node(i as u32);
            let label = match op {
                Op::Leaf => "input".to_string(),
                Op::Unary(u) => u.name().to_string(),
                Op::Binary(b) => b.name().to_string(),
            };
            s.push_str(&format!("  n{i} [label=\"{label} #{i}\"];\n"));
            for (k, &a) in args.iter().enumerate() {
                if a != SINK {
                    reach[a as usize] = true;
                    let p = partials[k];
                    s.push_str(&format!("  n{a} -> n{i} [label=\"{p:.6}\"];\n"));
                }
            }
        }
        s.push_str("}\n");
        s
    }
}
