//! The binding layer: converts arguments, calls one core function, converts the result.

mod compiled;
mod debug;
mod derive;
mod dual;
mod hvp;
mod math;
pub(crate) mod number;
mod row;
mod trace;
mod var;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<var::PyVar>()?;
    m.add_class::<dual::PyDual>()?;
    m.add_class::<trace::PyTraced>()?;
    m.add_class::<trace::PyCond>()?;
    m.add_class::<trace::PyTrace>()?;
    m.add_class::<compiled::PyCompiled>()?;
    m.add_class::<row::RowCall>()?;
    m.add_function(wrap_pyfunction!(compiled::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::_reload_settings, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::_engine_settings, m)?)?;
    m.add_function(wrap_pyfunction!(var::tape_size, m)?)?;
    m.add_function(wrap_pyfunction!(var::var_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(debug::_set_debug_nans, m)?)?;
    m.add_function(wrap_pyfunction!(debug::_debug_nans_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(debug::_suspend_debug_nans, m)?)?;
    math::add_unary(m)?;
    math::add_binary(m)?;
    m.add("BYTES_PER_NODE", crate::tape::arena::Arena::BYTES_PER_NODE)?;
    Ok(())
}
