//! What a batch call asks for and what it gets back: arguments, the job, the reduction,
//! the output and the errors reported instead of panicking.

/// One argument's data: `size` numbers per row, either one row per batch row
/// (`per_row`, `data.len() == n * size`) or one row shared by all (`data.len() == size`).
#[derive(Clone, Copy, Debug)]
pub struct Arg<'a> {
    pub data: &'a [f64],
    pub size: usize,
    pub per_row: bool,
}

impl<'a> Arg<'a> {
    /// Per-row data, `size` numbers per row.
    pub fn rows(data: &'a [f64], size: usize) -> Self {
        Arg {
            data,
            size,
            per_row: true,
        }
    }
    /// One row shared by every batch row.
    pub fn shared(data: &'a [f64]) -> Self {
        Arg {
            data,
            size: data.len(),
            per_row: false,
        }
    }
}

/// How per-row results are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Per-row results.
    None,
    /// Values summed over rows; gradients are those of the sum.
    Sum,
    /// Values averaged over rows; gradients are those of the mean.
    Mean,
}

/// What a batch call computes besides the values.
#[derive(Clone, Debug)]
pub enum Job<'a> {
    /// Values only.
    Values,
    /// Values and the vector-Jacobian product with `cotangent` (`n_outputs` per row),
    /// for the arguments marked in `wrt`.
    Vjp { cotangent: Arg<'a>, wrt: Vec<bool> },
    /// Values and the Jacobian-vector product with one tangent per argument.
    Jvp { tangents: Vec<Arg<'a>> },
    /// Values and the full Jacobian with respect to the arguments marked in `wrt`.
    Jacobian { wrt: Vec<bool> },
}

/// Results of a batch call. Per-row results are row-major; reduced ones hold one row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// `n_outputs` per row (or one row when reduced).
    pub values: Vec<f64>,
    /// Per argument: its VJP (`size` per row, or one row when the argument is shared and
    /// the call reduces); empty for arguments not differentiated.
    pub grads: Vec<Vec<f64>>,
    /// JVP: `n_outputs` per row (or one row when reduced).
    pub tangents: Vec<f64>,
    /// Jacobian: per row, `n_outputs` rows of as many columns as the `wrt` arguments have
    /// elements, in argument order.
    pub jacobian: Vec<f64>,
}

/// Errors a batch call reports instead of panicking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// Argument `arg` has the wrong number of elements.
    Shape {
        arg: usize,
        expected: usize,
        got: usize,
    },
    /// A request the job cannot serve.
    Invalid(String),
    /// A result too large to allocate (refused before any work).
    Memory(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Shape { arg, expected, got } => {
                write!(f, "argument {arg}: expected {expected} numbers, got {got}")
            }
            BatchError::Invalid(s) | BatchError::Memory(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for BatchError {}

/// The per-row result buffers of a batch call, by name (see
/// [`run_into`](crate::exec::run_into)): one of each, and one gradient per argument.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buffers<T> {
    /// `n_outputs` per row.
    pub values: T,
    /// JVP: `n_outputs` per row.
    pub tangents: T,
    /// Jacobian: `n_outputs` times the `wrt` inputs per row.
    pub jacobian: T,
    /// Per argument: its VJP, `size` per row.
    pub grads: Vec<T>,
}

impl<T> Buffers<T> {
    /// Every buffer, in the order values, tangents, Jacobian, gradients.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.values, &self.tangents, &self.jacobian]
            .into_iter()
            .chain(&self.grads)
    }

    /// `f` of every buffer, each in its place.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Buffers<U> {
        Buffers {
            values: f(self.values),
            tangents: f(self.tangents),
            jacobian: f(self.jacobian),
            grads: self.grads.into_iter().map(f).collect(),
        }
    }

    /// As [`Buffers::map`], stopping at the first error.
    pub fn try_map<U, E>(self, mut f: impl FnMut(T) -> Result<U, E>) -> Result<Buffers<U>, E> {
        Ok(Buffers {
            values: f(self.values)?,
            tangents: f(self.tangents)?,
            jacobian: f(self.jacobian)?,
            grads: self.grads.into_iter().map(f).collect::<Result<_, E>>()?,
        })
    }

    /// References to every buffer, each in its place.
    pub fn as_ref(&self) -> Buffers<&T> {
        Buffers {
            values: &self.values,
            tangents: &self.tangents,
            jacobian: &self.jacobian,
            grads: self.grads.iter().collect(),
        }
    }

    /// Mutable references to every buffer, each in its place.
    pub fn as_mut(&mut self) -> Buffers<&mut T> {
        Buffers {
            values: &mut self.values,
            tangents: &mut self.tangents,
            jacobian: &mut self.jacobian,
            grads: self.grads.iter_mut().collect(),
        }
    }

    /// Pairs of this buffer and `other`'s, each in its place (`None` when the two have
    /// different numbers of gradients).
    pub fn zip<U>(self, other: Buffers<U>) -> Option<Buffers<(T, U)>> {
        if self.grads.len() != other.grads.len() {
            return None;
        }
        Some(Buffers {
            values: (self.values, other.values),
            tangents: (self.tangents, other.tangents),
            jacobian: (self.jacobian, other.jacobian),
            grads: self.grads.into_iter().zip(other.grads).collect(),
        })
    }
}
