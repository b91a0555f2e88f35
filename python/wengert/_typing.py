"""Type aliases of the public API (for the annotations; nothing here runs)."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

#: Values and derivatives from a compiled function: float64 arrays, with the batch shape in
#: front. A single point with a scalar result gives a NumPy float64 scalar instead, which a
#: checker cannot tell from the argument types, hence ``| Any`` (typeshed's convention for
#: a return type the caller knows but the checker cannot): indexing and array methods check.
Values: TypeAlias = "npt.NDArray[np.float64] | Any"

#: ``reduce=``: per row (None), or summed or averaged over the batch.
Reduce: TypeAlias = 'Literal["sum", "mean"] | None'

#: ``wrt=`` naming one argument (JAX's argnums): one result.
Index: TypeAlias = "int | np.integer[Any]"

#: ``wrt=`` naming several arguments: a tuple of results, in that order.
Indices: TypeAlias = "tuple[int | np.integer[Any], ...] | list[int | np.integer[Any]]"

#: One argument's shape for ``wg.compile(shapes=...)``: () for a scalar, n or a tuple.
ShapeLike: TypeAlias = "int | tuple[int, ...] | None"
