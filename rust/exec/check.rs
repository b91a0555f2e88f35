//! Validation of a batch call before any work: argument sizes and the job's extras.

use super::layout::Layout;
use super::request::{Arg, BatchError, Job};
use crate::compile::program::Program;

/// One argument against its declared size: `size` numbers, or `n * size` when per row.
fn check_arg(i: usize, a: &Arg, size: usize, n: usize) -> Result<(), BatchError> {
    let expected = if a.per_row { n * size } else { size };
    if a.size != size || a.data.len() != expected {
        return Err(BatchError::Shape {
            arg: i,
            expected,
            got: a.data.len(),
        });
    }
    Ok(())
}

/// The arguments against the declared sizes, one per argument, over `n` rows.
pub(crate) fn check_args(sizes: &[usize], args: &[Arg], n: usize) -> Result<(), BatchError> {
    if args.len() != sizes.len() {
        return Err(BatchError::Invalid(format!(
            "expected {} arguments, got {}",
            sizes.len(),
            args.len()
        )));
    }
    for (i, (a, &size)) in args.iter().zip(sizes).enumerate() {
        check_arg(i, a, size, n)?;
    }
    Ok(())
}

/// The call against the program: arguments, and the job's extras; `m` outputs take a
/// cotangent (all of the program's, or all but a flag).
pub(super) fn check(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    m: usize,
) -> Result<(), BatchError> {
    if layout.n_inputs() != p.n_inputs() {
        return Err(BatchError::Invalid(format!(
            "layout has {} inputs, program {}",
            layout.n_inputs(),
            p.n_inputs()
        )));
    }
    check_args(&layout.sizes, args, n)?;
    match job {
        Job::Values => {}
        Job::Vjp { cotangent, wrt } => {
            check_arg(args.len(), cotangent, m, n)?;
            if wrt.len() != args.len() {
                return Err(BatchError::Invalid(
                    "wrt needs one flag per argument".into(),
                ));
            }
        }
        Job::Jvp { tangents } => {
            if tangents.len() != args.len() {
                return Err(BatchError::Invalid(
                    "jvp needs one tangent per argument".into(),
                ));
            }
            for (i, t) in tangents.iter().enumerate() {
                check_arg(i, t, layout.sizes[i], n)?;
            }
        }
        Job::Jacobian { wrt } => {
            if wrt.len() != args.len() {
                return Err(BatchError::Invalid(
                    "wrt needs one flag per argument".into(),
                ));
            }
        }
    }
    Ok(())
}
