//! Where a program's inputs come from: each argument's elements, in order.

/// A program with its arguments' sizes: input `i` of the program is element `e` of
/// argument `a`, arguments in order, elements in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub sizes: Vec<usize>,
    /// `(arg, element)` of each program input.
    pub(super) inputs: Vec<(usize, usize)>,
    /// First program input of each argument.
    pub(super) offsets: Vec<usize>,
}

impl Layout {
    pub fn new(sizes: &[usize]) -> Self {
        let mut inputs = Vec::new();
        let mut offsets = Vec::new();
        for (a, &s) in sizes.iter().enumerate() {
            offsets.push(inputs.len());
            inputs.extend((0..s).map(|e| (a, e)));
        }
        Layout {
            sizes: sizes.to_vec(),
            inputs,
            offsets,
        }
    }
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
}
