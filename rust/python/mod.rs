//! The binding layer: converts arguments, calls one core function, converts the result.

mod dual;
mod math;
pub(crate) mod number;
mod var;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<var::PyVar>()?;
    m.add_class::<dual::PyDual>()?;
    m.add_function(wrap_pyfunction!(var::tape_size, m)?)?;
    m.add_function(wrap_pyfunction!(var::var_gradient, m)?)?;
    math::add_unary(m)?;
    math::add_binary(m)?;
    m.add("BYTES_PER_NODE", crate::arena::Arena::BYTES_PER_NODE)?;
    Ok(())
}
