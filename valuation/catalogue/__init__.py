"""The valuation catalogue: versioned, sourced money values that price hours and outcomes.

The shipped catalogue (`shipped_catalogue()`, data/uk-2026.1.json) holds only values that may be
redistributed; a licensee adds its licensed values with `merge_licensed`, and a scheme its local
ones with `derive`. Each result is a new immutable version whose `based_on` names its parent's
content hash. See ../shared/VALUATION.md section 7 for the design.
"""

from .check import CatalogueError
from .load import (
    derive,
    dump_catalogue,
    format_catalogue,
    load_catalogue,
    merge_licensed,
    shipped_catalogue,
)
from .model import (
    Catalogue,
    DiscountBand,
    ExchangeRate,
    OccupationProxy,
    OptimismBand,
    OptimismBias,
    Outcome,
    PricePoint,
    Source,
    ValuationEntry,
    WageRate,
)

__all__ = [
    "Catalogue",
    "CatalogueError",
    "DiscountBand",
    "ExchangeRate",
    "OccupationProxy",
    "OptimismBand",
    "OptimismBias",
    "Outcome",
    "PricePoint",
    "Source",
    "ValuationEntry",
    "WageRate",
    "derive",
    "dump_catalogue",
    "format_catalogue",
    "load_catalogue",
    "merge_licensed",
    "shipped_catalogue",
]
