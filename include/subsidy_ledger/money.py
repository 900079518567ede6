"""Exact money: amounts are integer fen in code and two-decimal yuan strings at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

FEN_PER_YUAN = 100
# Uplift rates are held as integer parts-per-10,000 so that amount x (1 + rate) stays integer arithmetic.
RATE_SCALE = 10_000


def yuan_to_fen(value: str | Decimal | int) -> int:
    """Convert an exact yuan amount ('1500.00') to integer fen, refusing sub-fen precision."""
    d = Decimal(str(value))
    fen = d * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"amount {value} has more than two decimals")
    return int(fen)


def rate_to_units(value: str | Decimal) -> int:
    """Convert a rate such as '0.20' to integer parts per 10,000."""
    d = Decimal(str(value)) * RATE_SCALE
    if d != d.to_integral_value():
        raise ValueError(f"rate {value} has more than four decimals")
    return int(d)


def fen_to_yuan_text(fen: pd.Series) -> pd.Series:
    """Format integer fen as yuan strings with two decimals ('-1500.00')."""
    fen = fen.astype("int64")
    sign = np.where(fen < 0, "-", "")
    a = fen.abs()
    return pd.Series(sign, index=fen.index) + (a // 100).astype(str) + "." + (a % 100).astype(str).str.zfill(2)


def rate_text(units: int) -> str:
    """A parts-per-10,000 rate as a decimal string with at least two places ('0.20', '0.125'); 0 is '0'."""
    if units == 0:
        return "0"
    text = f"{Decimal(units) / RATE_SCALE:.4f}".rstrip("0")
    return text if len(text.split(".")[1]) >= 2 else f"{Decimal(units) / RATE_SCALE:.2f}"


def rate_units_to_text(units: pd.Series) -> pd.Series:
    """Vector form of rate_text (NA counts as 0)."""
    units = units.fillna(0).astype("int64")
    return units.map({u: rate_text(int(u)) for u in pd.unique(units)}).astype("string")


def apply_uplift(fen: pd.Series, rate_units: pd.Series) -> pd.Series:
    """Multiply fen amounts by (1 + rate), rounding half up to the fen, in integer arithmetic (R3)."""
    scaled = fen.astype("int64") * (RATE_SCALE + rate_units.astype("int64"))
    # Amounts are non-negative, so floor((x + half) / scale) is round-half-up.
    return (scaled + RATE_SCALE // 2) // RATE_SCALE


def decimal_yuan(fen: int) -> Decimal:
    """Integer fen as an exact Decimal yuan amount."""
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
