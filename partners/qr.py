"""A voucher's QR code, for a member's phone or a printout, to be scanned at the till.

The QR code holds the displayed code (`XXXX-XXXX-C`), so a scan gives exactly what a person
would type, and `normalise` reads either. Always a full QR code (never a Micro QR, which phone
cameras and many till scanners cannot read) at error correction level M (segno would otherwise
raise the level when it fits the same size; fixing it keeps the output predictable).
"""

from __future__ import annotations

import io

import segno

from .codes import display, normalise

ERROR = "m"


def voucher_qr(code: str) -> segno.QRCode:
    """The QR code for voucher `code` (canonical or as typed); ValueError if not a valid code."""
    canonical = normalise(code)
    if canonical is None:
        raise ValueError("not a valid voucher code")
    return segno.make_qr(display(canonical), error=ERROR, boost_error=False)


def voucher_qr_svg(code: str, *, scale: int = 4) -> str:
    """A standalone SVG document (no XML declaration), `scale` pixels a module."""
    out = io.BytesIO()
    voucher_qr(code).save(out, kind="svg", scale=_scale(scale), xmldecl=False)
    return out.getvalue().decode("utf-8")


def voucher_qr_png(code: str, *, scale: int = 4) -> bytes:
    """A PNG image, `scale` pixels a module."""
    out = io.BytesIO()
    voucher_qr(code).save(out, kind="png", scale=_scale(scale))
    return out.getvalue()


def _scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 64:
        raise ValueError("scale is a whole number of pixels a module, 1 to 64")
    return scale
