"""Vouchers' QR codes: valid SVG and PNG holding the displayed code, full QR at level M."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import segno

from partners.codes import check_symbol, display, new_code
from partners.qr import voucher_qr, voucher_qr_png, voucher_qr_svg

CODE = "K7M3Q9W2" + check_symbol("K7M3Q9W2")  # fixed: the same test ids in every process
SVG_NS = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_encodes_the_displayed_code_as_full_qr_level_m() -> None:
    qr = voucher_qr(CODE)
    expected = segno.make_qr(display(CODE), error="m", boost_error=False)
    assert qr.matrix == expected.matrix
    assert not qr.is_micro
    assert qr.error == "M"
    assert qr.designator == "1-M"  # 11 alphanumeric characters fit version 1
    assert qr.mode == "alphanumeric"


def test_typed_forms_give_the_same_code() -> None:
    assert voucher_qr(display(CODE).lower()).matrix == voucher_qr(CODE).matrix


def test_different_codes_give_different_matrices() -> None:
    codes = {new_code() for _ in range(20)} | {CODE}
    matrices = {tuple(bytes(row) for row in voucher_qr(c).matrix) for c in codes}
    assert len(matrices) == len(codes)


def test_svg_is_a_standalone_svg_document() -> None:
    text = voucher_qr_svg(CODE)
    assert not text.startswith("<?xml")
    root = ET.fromstring(text)
    assert root.tag == f"{SVG_NS}svg"
    size = (21 + 2 * 4) * 4  # version 1 is 21 modules, a quiet zone of 4 each side, scale 4
    assert (root.get("width"), root.get("height")) == (str(size), str(size))
    assert root.find(f"{SVG_NS}path") is not None
    big = ET.fromstring(voucher_qr_svg(CODE, scale=10))
    assert big.get("width") == str((21 + 8) * 10)


def test_png_is_a_png_of_the_right_size() -> None:
    data = voucher_qr_png(CODE)
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == height == (21 + 8) * 4
    assert int.from_bytes(voucher_qr_png(CODE, scale=2)[16:20], "big") == (21 + 8) * 2


@pytest.mark.parametrize("code", ["", "ABCD", "not-a-code", CODE[:-1] + "!"])
def test_invalid_codes_refused(code: str) -> None:
    with pytest.raises(ValueError, match="not a valid voucher code"):
        voucher_qr_svg(code)
    with pytest.raises(ValueError, match="not a valid voucher code"):
        voucher_qr_png(code)


@pytest.mark.parametrize("scale", [0, -1, 65, True])
def test_bad_scale_refused(scale: int) -> None:
    with pytest.raises(ValueError, match="scale"):
        voucher_qr_svg(CODE, scale=scale)
    with pytest.raises(ValueError, match="scale"):
        voucher_qr_png(CODE, scale=scale)
