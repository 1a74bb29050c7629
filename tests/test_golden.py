"""Golden models: numba kernels vs the plain-Python references, and gemm vs both."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from models import golden
from models.errors import MacforgeError, UnknownNameError
from models.formats import get_format
from models.units import UnitSpec, get_unit, signed_bits, unit_names

MAC_UNITS = [n for n in unit_names() if get_unit(n).kind == "mac"]
DOT_UNITS = [n for n in unit_names() if get_unit(n).kind == "dot" and n.startswith(("dot4", "dot16"))]


def _stream(u, n, rng, clr_rate=0.03):
    w = rng.integers(0, 1 << u.decode.bits, n)
    lo, hi = u.act_range
    a = rng.integers(lo, hi + 1, n)
    en = (rng.random(n) < 0.9).astype(np.uint8)
    clr = (rng.random(n) < clr_rate).astype(np.uint8)
    z = rng.integers(0, u.decode.zp_max + 1, n) if u.decode.zp_mask is not None else None
    return w, a, en, clr, z


@pytest.mark.parametrize("name", MAC_UNITS)
def test_mac_products_exhaustive_match_reference(name):
    """Every (w, a[, z]) product of the numba path equals the reference derived from values."""
    u = get_unit(name)
    zs = range(u.decode.zp_max + 1) if u.decode.zp_mask is not None else [None]
    lo, hi = u.act_range
    codes = np.arange(1 << u.decode.bits)
    for z in zs:
        w, a = np.meshgrid(codes, np.arange(lo, hi + 1), indexing="ij")
        got = golden.products(u, w, a, z=z)
        want = np.array([golden.ref_weight_int(u, int(c), z or 0) for c in codes])[:, None] * a
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("overflow,small", [("wrap", False), ("wrap", True), ("saturate", True)])
@pytest.mark.parametrize("name", MAC_UNITS)
def test_mac_trace_matches_reference(name, overflow, small):
    """small: an accumulator one bit narrower than the exact running sum of the stream needs
    (but never narrower than one product), so the overflow rule is really exercised."""
    rng = np.random.default_rng(zlib.crc32(f"{name}-{overflow}-{small}".encode()))
    u = get_unit(name, overflow=overflow)
    w, a, en, clr, z = _stream(u, 3000, rng, clr_rate=0.002)
    exact = golden.mac(get_unit(name, acc_bits=62), w, a, en=en, clr=clr, z=z)
    if small:
        need = signed_bits(int(exact.min()), int(exact.max()))
        u = get_unit(name, overflow=overflow, acc_bits=max(u.product_bits, need - 1))
    got = golden.mac(u, w, a, en=en, clr=clr, z=z)
    want = golden.ref_mac(u, w, a, en, clr, z)
    np.testing.assert_array_equal(got, np.array(want))
    if small:
        assert (exact != got).any(), "the stream must overflow the small accumulator"
        half = 1 << (u.acc_bits - 1)
        if overflow == "saturate":
            assert (got == half - 1).any() or (got == -half).any()


@pytest.mark.parametrize("name", DOT_UNITS)
def test_dot_trace_matches_reference(name):
    u = get_unit(name, acc_bits=20)
    rng = np.random.default_rng(7)
    t = 500
    w = rng.integers(0, 1 << u.decode.bits, (t, u.lanes))
    lo, hi = u.act_range
    a = rng.integers(lo, hi + 1, (t, u.lanes))
    en = (rng.random(t) < 0.9).astype(np.uint8)
    clr = (rng.random(t) < 0.01).astype(np.uint8)
    z = rng.integers(0, u.decode.zp_max + 1, t) if u.decode.zp_mask is not None else None
    got = golden.dot(u, w, a, en=en, clr=clr, z=z)
    np.testing.assert_array_equal(got, golden.ref_dot(u, w, a, en, clr, z))


def test_dot_equals_sum_of_macs():
    u = get_unit("dot8_dint4_sym_xint8")
    rng = np.random.default_rng(3)
    w = rng.integers(0, 16, (200, 8))
    a = rng.integers(-128, 128, (200, 8))
    dot_final = golden.dot(u, w, a)[-1]
    mac_final = sum(golden.mac_dint4_sym_xint8(w[:, ln], a[:, ln])[-1] for ln in range(8))
    assert dot_final == mac_final


def test_programmable_lut():
    u = get_unit("mac_lut4xint8")
    rng = np.random.default_rng(5)
    lut = rng.integers(-128, 128, 16)
    w, a, en, clr, _ = _stream(u, 1000, rng)
    got = golden.mac(u, w, a, en=en, clr=clr, lut=lut)
    np.testing.assert_array_equal(got, golden.ref_mac(u, w, a, en, clr, lut=lut))
    with pytest.raises(MacforgeError, match=r"lut out of range \[-128, 127\]"):
        golden.mac(u, w, a, lut=np.full(16, 200))
    with pytest.raises(MacforgeError, match="has no programmable LUT"):
        golden.mac("mac_int4xint8", [1], [1], lut=np.zeros(16, dtype=int))


def test_dint_half_units_are_twice_the_value():
    """dINT products are exact in half-units: p = 2·value·a (PAPERS.md §1.1)."""
    for name, fmt in [("mac_dint4_sym_xint8", "dint4_sym"), ("mac_dint4_asym_xint8", "dint4_asym")]:
        u = get_unit(name)
        f = get_format(fmt)
        for z in ([None] if f.zp_codes is None else range(14)):
            vals = f.decode(np.arange(16), z)
            p = golden.products(u, np.arange(16), np.full(16, 3), z=z)
            np.testing.assert_array_equal(p, (2 * vals * 3).astype(np.int64))


def test_dq_group_mac_matches_reference_and_real_arithmetic():
    u = get_unit("dq_int2_group_mac")
    g = u.group_size
    rng = np.random.default_rng(11)
    ng = 20
    q = rng.integers(0, 4, ng * g)
    a = rng.integers(-128, 128, ng * g)
    s = rng.uniform(0.001, 0.05, ng)
    z = rng.uniform(-0.05, 0.05, ng)
    s_fx = golden.to_fixed(s, u.coef_bits, u.frac_bits)
    z_fx = golden.to_fixed(z, u.coef_bits, u.frac_bits)
    got = golden.dq_group_mac(u, q, a, s_fx, z_fx)
    np.testing.assert_array_equal(got, golden.ref_dq_group(u, q, a, s_fx, z_fx))
    # the fixed-point result is the real affine dot product up to the coefficient rounding
    qv = get_format("decoupleq_int2").decode(q).reshape(ng, g)
    ar = a.reshape(ng, g)
    real = np.cumsum(((qv * (s_fx / 2**u.frac_bits)[:, None] + (z_fx / 2**u.frac_bits)[:, None]) * ar).sum(1))
    np.testing.assert_allclose(got / 2**u.frac_bits, real, rtol=0, atol=1e-9)


GEMM_CASES = [("int8", None), ("int4", None), ("dint4_sym", None), ("dint4_asym", 8), ("fp4_e2m1", None),
              ("int4_asym", 8)]


@pytest.mark.parametrize("fmt,group", GEMM_CASES)
@pytest.mark.parametrize("overflow,acc_bits", [("wrap", 32), ("wrap", 16), ("saturate", 16), ("saturate", 32)])
def test_gemm_matches_reference(fmt, group, overflow, acc_bits):
    f = get_format(fmt)
    rng = np.random.default_rng(zlib.crc32(f"{fmt}-{overflow}-{acc_bits}".encode()))
    m, n, k = 3, 5, 32
    codes = rng.integers(0, 1 << f.bits, (n, k)).astype(np.uint8)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    zp = rng.integers(0, f.zero_point_max + 1, (n, k // group)) if group else None
    if acc_bits == 16 and fmt == "int8":
        acc_bits = 17
    got = golden.gemm(codes, acts, f, acc_bits=acc_bits, overflow=overflow, zero_points=zp, group_size=group)
    spec = UnitSpec(name="ref", kind="mac", weight_format=fmt, acc_bits=acc_bits, overflow=overflow)
    want = golden.ref_gemm(spec, codes.tolist(), acts.tolist(), None if zp is None else zp.tolist(), group)
    np.testing.assert_array_equal(got, np.array(want))


def test_gemm_equals_mac_final_values():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 16, (4, 300)).astype(np.uint8)
    acts = rng.integers(-128, 128, (3, 300)).astype(np.int8)
    g = golden.gemm(codes, acts, "dint4_sym")
    for i in range(3):
        for j in range(4):
            assert g[i, j] == golden.mac_dint4_sym_xint8(codes[j], acts[i])[-1]


def test_gemm_exact_beyond_float32_mantissa():
    """All products -128·-128 over K=4096: Σ = 2^26 > 2^24, so an unblocked float32 GEMM
    would round; the blocked one must be exact."""
    k = 4096
    codes = np.full((2, k), 0x80, dtype=np.uint8)  # int8 code 0x80 = -128
    acts = np.full((2, k), -128, dtype=np.int8)
    got = golden.gemm(codes, acts, "int8", acc_bits=40)
    assert (got == k * 128 * 128).all()
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 256, (16, k)).astype(np.uint8)
    acts = rng.integers(-128, 128, (8, k)).astype(np.int8)
    wint = get_format("int8").values[codes].astype(np.int64)
    np.testing.assert_array_equal(golden.gemm(codes, acts, "int8", acc_bits=40), acts.astype(np.int64) @ wint.T)


def test_gemm_k_blocked_with_zero_points():
    """dINT4-A over K=9216 (max |w·a| = 26·128, so float32 blocks hold 5041 terms: 2 blocks),
    zero points per group of 128, full-scale activations: equals the int64 matmul of the
    decoded weights (models.units.weight_decode) bit for bit, and the table decode kernel of
    the BLAS path equals the per-element one."""
    from models.golden import _kernels as K
    from models.units import weight_decode

    f = get_format("dint4_asym")
    rng = np.random.default_rng(12)
    n, k, group = 6, 9216, 128
    codes = rng.integers(0, 16, (n, k)).astype(np.uint8)
    acts = rng.choice(np.array([-128, 127, -3, 5], dtype=np.int8), (4, k))
    zp = rng.integers(0, f.zero_point_max + 1, (n, k // group))
    codes[0], zp[0], acts[0] = 13, 0, 127  # code 13 at z = 0 is +26 half-units: 9216·26·127 ≈ 2^24.9
    table, zmask, zscale = weight_decode(f).as_arrays()
    w_ref = K.decode_weights_into(codes, zp, group, table, zmask, zscale, np.empty((n, k), np.int64))
    w_tab = K.decode_table_into(codes, zp, group, table, zmask, zscale, np.empty((n, k), np.int64))
    np.testing.assert_array_equal(w_tab, w_ref)
    want = acts.astype(np.int64) @ w_ref.T
    assert np.abs(want).max() > 1 << 24  # beyond what one float32 block could hold exactly
    np.testing.assert_array_equal(golden.gemm(codes, acts, f, acc_bits=40, zero_points=zp, group_size=group), want)


def test_gemm_lut_format_needs_lut_bits():
    codes = np.zeros((2, 4), dtype=np.uint8)
    acts = np.zeros((1, 4), dtype=np.int8)
    with pytest.raises(MacforgeError, match="no exact integer form; give lut_bits"):
        golden.gemm(codes, acts, "nf4")
    assert golden.gemm(codes, acts, "nf4", lut_bits=8).shape == (1, 2)


def test_bad_input_errors():
    with pytest.raises(UnknownNameError, match="unknown unit 'mac_foo'; known: mac_int8xint8"):
        golden.mac("mac_foo", [1], [1])
    with pytest.raises(MacforgeError, match=r"a out of range \[-128, 127\]"):
        golden.mac_int8xint8([1], [300])
    with pytest.raises(MacforgeError, match=r"a has shape \(1,\), expected \(2,\)"):
        golden.mac_int8xint8([1, 2], [3])
    with pytest.raises(MacforgeError, match="needs a zero point z"):
        golden.mac_dint4_asym_xint8([1], [1])
    with pytest.raises(MacforgeError, match=r"activations must be \(M, K=4\)"):
        golden.gemm(np.zeros((2, 4), np.uint8), np.zeros((2, 3), np.int8), "int4")
    with pytest.raises(MacforgeError, match="acc_bits=10 cannot hold a product of int8 × int8: needs >= 16 bits"):
        golden.gemm(np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.int8), "int8", acc_bits=10)
    with pytest.raises(MacforgeError, match="group_size 3 does not divide K=4"):
        golden.gemm(np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.int8), "dint4_asym",
                    zero_points=np.zeros((2, 1), int), group_size=3)
    with pytest.raises(MacforgeError, match="acc_bits=12 cannot hold one mac result of int8"):
        get_unit("mac_int8xint8", acc_bits=12)
    with pytest.raises(MacforgeError, match="overflow must be 'wrap' or 'saturate', not 'clip'"):
        get_unit("mac_int8xint8", overflow="clip")


@pytest.mark.parametrize("fmt,group", [("int4", None), ("dint4_asym", 16), ("int4_asym", 8), ("fp4_e2m1", None),
                                       ("int8", None)])
def test_gemm_pair_decode_equals_per_code_decode(fmt, group, monkeypatch):
    """Without the SIMD kernels (as on a machine without SSSE3) the BLAS path decodes two uint8
    codes per lookup (``_decode_float``: a table of code pairs per zero point); its weights
    equal ``decode_weights_into``'s per-code ones bit for bit, through every zero point and
    every code pair, and gemm equals the int64 matmul on the pair path, on int64 codes and on an
    odd K (the per-code fallback)."""
    from models.golden import _api, _simd
    from models.golden import _kernels as K

    monkeypatch.setattr(_simd, "AVAILABLE", False)
    from models.units import weight_decode

    f = get_format(fmt)
    rng = np.random.default_rng(zlib.crc32(fmt.encode()))
    dec = weight_decode(f)
    table, zmask, zscale = dec.as_arrays()
    nc = len(table)
    n, k = 16, 2 * nc * nc  # every ordered code pair at each even position of a row
    pairs = np.array([(c0, c1) for c0 in range(nc) for c1 in range(nc)], dtype=np.uint8).reshape(-1)
    codes = np.stack([np.roll(pairs, 2 * i) for i in range(n)]).astype(np.uint8)
    gs = group or k
    zp = (np.arange(n * (k // gs)).reshape(n, k // gs) % (dec.zp_max + 1)) if group else None
    zz = np.zeros((n, 0), np.int64) if zp is None else zp
    ref = K.decode_weights_into(codes, zz, gs, table, zmask, zscale, np.empty((n, k), np.int64))
    got = _api._decode_float(codes, zz, gs, table, zmask, zscale, np.float32)
    np.testing.assert_array_equal(got, ref.astype(np.float32))
    assert np.array_equal(got.astype(np.int64), ref)
    acts = rng.integers(-128, 128, (3, k)).astype(np.int8)
    kw = {"zero_points": zp, "group_size": group} if group else {}
    want = acts.astype(np.int64) @ ref.T
    np.testing.assert_array_equal(golden.gemm(codes, acts, f, acc_bits=40, **kw), want)
    np.testing.assert_array_equal(golden.gemm(codes.astype(np.int64), acts, f, acc_bits=40, **kw), want)
    if not group:  # odd K: one code per lookup
        np.testing.assert_array_equal(golden.gemm(codes[:, 1:], acts[:, 1:], f, acc_bits=40),
                                      acts[:, 1:].astype(np.int64) @ ref[:, 1:].T)



@pytest.mark.parametrize("fmt,group", [("int4", None), ("dint4_sym", None), ("dint4_asym", 16), ("int4_asym", 32),
                                       ("fp4_e2m1", None), ("int3", None), ("int2", None), ("nupes4_a0.5", None)])
def test_simd_decode_equals_per_code_decode(fmt, group):
    """The byte-table (pshufb) decode gives ``decode_weights_into``'s weights bit for bit for
    every code at every one of its 16 lanes and every zero point, returns the OR of the codes
    it read, and gemm on that path equals the int64 matmul."""
    from models.golden import _api, _simd
    from models.golden import _kernels as K
    from models.units import weight_decode

    if not _simd.AVAILABLE:
        pytest.skip("no SSSE3 on this machine: gemm keeps the scalar decode")
    f = get_format(fmt)
    dec = weight_decode(f)
    table, zmask, zscale = dec.as_arrays()
    nc = len(table)
    # row i, column j (lane j % 16 of chunk j // 16): code (j + j // 16 + i) % nc, so every lane
    # of every row sees every code (17·chunk + lane + i runs through all residues mod nc)
    n, k = max(2, 2 * (dec.zp_max + 1)), 16 * nc
    j = np.arange(k)[None, :]
    codes = ((j + j // 16 + np.arange(n)[:, None]) % nc).astype(np.uint8)
    for lane in range(16):
        assert all(len(set(codes[i, lane::16])) == nc for i in range(n))
    gs = group or k
    zp = (np.arange(n * (k // gs)).reshape(n, k // gs) % (dec.zp_max + 1)) if group else None
    zz = np.zeros((n, 0), np.int64) if zp is None else zp
    ref = K.decode_weights_into(codes, zz, gs, table, zmask, zscale, np.empty((n, k), np.int64))
    tabs = _api._lut16_tables(table.astype(np.int64).tobytes(), zmask.astype(np.uint8).tobytes(), int(zscale),
                              int(zz.max()) + 1 if zz.size else 1)
    out = np.full((n, k), np.nan, np.float32)
    bits = _simd.decode_lut16_into(codes.reshape(-1), zz, n, k, gs, tabs, out.reshape(-1), False)
    np.testing.assert_array_equal(out, ref.astype(np.float32))
    assert int(bits) == int(np.bitwise_or.reduce(codes.reshape(-1).view(np.uint64)))
    aligned = _api._scratch_array("test", (n, k), np.float32)  # streaming stores: 64-byte aligned
    assert aligned.ctypes.data % 64 == 0
    aligned[:] = np.nan
    assert _simd.decode_lut16_into(codes.reshape(-1), zz, n, k, gs, tabs, aligned.reshape(-1), True) == bits
    np.testing.assert_array_equal(aligned, ref.astype(np.float32))
    acts = np.random.default_rng(zlib.crc32(fmt.encode())).integers(-128, 128, (3, k)).astype(np.int8)
    kw = {"zero_points": zp, "group_size": group} if group else {}
    np.testing.assert_array_equal(golden.gemm(codes, acts, f, acc_bits=40, **kw), acts.astype(np.int64) @ ref.T)


@pytest.mark.parametrize("fmt,group,k,full_scale", [("int4", None, 1024, False), ("dint4_asym", 64, 1024, False),
                                                    ("dint4_sym", None, 1024, False), ("dint4_asym", 64, 6144, True)])
@pytest.mark.parametrize("simd", [True, False])
def test_gemm_with_streaming_stores_is_exact(fmt, group, k, full_scale, simd, monkeypatch):
    """Operands and results past ``STREAMING_MIN_BYTES`` are written with streaming stores (at
    least 2 MB of activations, 1 MB of weights and of int64 results here; the kernels are seen to
    be asked for them), also when full-scale activations split K into two blocks whose second
    is added into the streamed result; gemm equals the exact matmul, as it does with the SIMD
    kernels switched off."""
    from models.golden import _api, _simd
    from models.units import weight_decode

    calls: dict[str, list[bool]] = {}
    if simd:
        for name, nt_arg in (("decode_lut16_into", 7), ("prepare_acts_into", 4), ("int64_streaming", None)):
            fn = getattr(_simd, name)

            def spy(*a, _fn=fn, _name=name, _i=nt_arg):  # type: ignore[no-untyped-def]
                calls.setdefault(_name, []).append(True if _i is None else bool(a[_i]))
                return _fn(*a)

            monkeypatch.setattr(_simd, name, spy)
    else:  # the scalar passes on the same operands
        monkeypatch.setattr(_simd, "AVAILABLE", False)
    m, n = 512, 256
    assert min(m * k * 4, n * k * 4, m * n * 8) >= _api.STREAMING_MIN_BYTES
    f = get_format(fmt)
    dec = weight_decode(f)
    table, zmask, zscale = dec.as_arrays()
    rng = np.random.default_rng(zlib.crc32(fmt.encode()) + k)
    codes = rng.integers(0, len(table), (n, k)).astype(np.uint8)
    acts = (rng.choice(np.array([-128, 127]), (m, k)) if full_scale else rng.integers(-128, 128, (m, k))).astype(np.int8)
    zp = rng.integers(0, dec.zp_max + 1, (n, k // group)) if group else None
    zz = np.zeros((n, 0), np.int64) if zp is None else zp
    w = _decoded_ints(codes, zz, group or k, table, zmask, zscale)
    kw = {"zero_points": zp, "group_size": group} if group else {}
    # the reference in float64 BLAS: |every partial sum| <= 26 · 128 · 6144 < 2^53, exact
    want = (acts.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    np.testing.assert_array_equal(golden.gemm(codes, acts, f, **kw), want)
    if simd:
        assert calls == {"prepare_acts_into": [True], "decode_lut16_into": [True], "int64_streaming": [True]}
    if full_scale:
        wmax = max(abs(v) for v in dec.int_range())
        assert len(_api.k_block_bounds(acts, (1 << 24) // (wmax * 128), wmax, 1 << 24)) - 1 == 2


def test_int64_streaming_converts_every_value():
    """The streaming float32 -> int64 copy is exact for integers up to 2^24 in magnitude, tail
    (length not a multiple of 16) included."""
    from models.golden import _simd

    if not _simd.AVAILABLE:
        pytest.skip("no SSSE3 on this machine: gemm converts with numpy")
    rng = np.random.default_rng(5)
    src = rng.integers(-(1 << 24), (1 << 24) + 1, 100_003).astype(np.float32)
    src[:2] = [-(1 << 24), 1 << 24]
    out = np.full(src.shape, 7, np.int64)
    assert out.ctypes.data % 16 == 0  # the alignment its 16-byte streaming stores need
    _simd.int64_streaming(src, out)
    np.testing.assert_array_equal(out, src.astype(np.int64))


def _decoded_ints(codes, zz, gs, table, zmask, zscale):
    from models.golden import _kernels as K

    n, k = codes.shape
    return K.decode_weights_into(codes, zz, gs, table, zmask, zscale, np.empty((n, k), np.int64))


@pytest.mark.parametrize("fmt", ["int4", "int3", "int2", "int8"])
@pytest.mark.parametrize("k", [64, 63])  # the SIMD decode (K a multiple of 16) and the others
@pytest.mark.parametrize("simd", [True, False])
def test_gemm_refuses_codes_outside_the_table(fmt, k, simd, monkeypatch):
    """A code past the format's table is refused with one message on every path and wherever it
    sits (both 8-byte halves of a 16-code chunk, the first and last code): the SIMD decode
    (which checks the OR of the codes it read), the scalar decodes (also with the SIMD kernels
    switched off), int64 codes with a negative one, all-zero activations (no decode at all) and
    a saturating accumulator that a partial sum may reach (the in-order kernel)."""
    from models.golden import _simd
    from models.units import weight_decode

    if not simd:
        monkeypatch.setattr(_simd, "AVAILABLE", False)

    dec = weight_decode(get_format(fmt))
    nc = len(dec.table)
    msg = f"weight_codes must be integer codes 0..{nc - 1} of {fmt}"
    acts = np.ones((2, k), np.int8)
    runs = [lambda c: golden.gemm(c, acts, fmt), lambda c: golden.gemm(c, np.zeros_like(acts), fmt),
            lambda c: golden.gemm(c, np.full((2, k), 127, np.int8), fmt, acc_bits=18, overflow="saturate")]
    for bad in sorted({nc, 16, 128, 255, 256} - set(range(nc))):
        for pos in sorted({(0, 0), (3, 7), (3, 8), (3, 15), (2, k - 9), (4, k - 1)}):
            codes = np.zeros((5, k), np.uint8 if bad < 256 else np.uint16)
            codes[pos] = bad
            for run in runs:
                with pytest.raises(MacforgeError, match=msg):
                    run(codes)
    codes = (np.arange(5 * k).reshape(5, k) % nc).astype(np.uint8 if nc <= 256 else np.uint16)
    codes[4, k - 1] = nc - 1  # the largest code is accepted
    w = dec.as_arrays()[0][codes]
    for run, a in zip(runs, (acts, np.zeros_like(acts))):
        np.testing.assert_array_equal(run(codes), a.astype(np.int64) @ w.T)
    neg = np.zeros((5, k), np.int64)
    neg[1, 2] = -1
    with pytest.raises(MacforgeError, match=msg):
        golden.gemm(neg, acts, fmt)


def test_gemm_refuses_codes_outside_the_table_on_the_other_paths():
    """The rounded-product path (``product_round``: dINT's half-units reduced one by one) and the
    float64 BLAS path (FP8 weights: max|w|·max|a| > 2^24 / 256) check the codes too."""
    acts = np.ones((2, 32), np.int8)
    codes = np.zeros((3, 32), np.uint8)
    codes[1, 9] = 16
    with pytest.raises(MacforgeError, match="weight_codes must be integer codes 0..15 of dint4_sym"):
        golden.gemm(codes, acts, "dint4_sym", product_round="floor")
    codes[1, 9] = 15
    golden.gemm(codes, acts, "dint4_sym", product_round="floor")
    wide = np.zeros((3, 32), np.uint16)
    wide[2, 31] = 256
    with pytest.raises(MacforgeError, match="weight_codes must be integer codes 0..255 of fp8_e4m3"):
        golden.gemm(wide, acts, "fp8_e4m3", acc_bits=40)
    wide[2, 31] = 255
    golden.gemm(wide, acts, "fp8_e4m3", acc_bits=40)

def test_gemm_k_blocks_from_activation_sums_stay_exact():
    """K-blocks grow while wmax·Σ|a| of every row stays ≤ 2^24: uniform int8 activations need
    about half the blocks of the full-scale bound, a full-scale row pulls its blocks back to
    that bound, and gemm stays equal to the int64 matmul either way."""
    from models.golden._api import k_block_bounds

    f = get_format("dint4_asym")
    rng = np.random.default_rng(21)
    n, k, group = 4, 18432, 128
    codes = rng.integers(0, 16, (n, k)).astype(np.uint8)
    zp = rng.integers(0, f.zero_point_max + 1, (n, k // group))
    acts = rng.integers(-128, 128, (3, k)).astype(np.int8)
    kb = (1 << 24) // (26 * 128)
    b = k_block_bounds(acts, kb, 26, 1 << 24)
    assert b[0] == 0 and b[-1] == k and len(b) - 1 < -(-k // kb)
    for k0, k1 in zip(b[:-1], b[1:]):
        assert k0 % 256 == 0 and 26 * np.abs(acts[:, k0:k1].astype(np.int64)).sum(1).max() <= 1 << 24
        if k1 < k:  # greedy: one more run of 256 columns would take some row past the limit
            assert 26 * np.abs(acts[:, k0:k1 + 256].astype(np.int64)).sum(1).max() > 1 << 24
    full = acts.copy()
    full[1] = -128
    bf = k_block_bounds(full, kb, 26, 1 << 24)
    assert len(bf) - 1 >= -(-k // kb)
    codes[0], zp[0] = 13, 0  # +26 half-units everywhere: row 1 of `full` sums to 18432·26·128 ≈ 2^25.8
    from models.units import weight_decode
    from models.golden import _kernels as K

    table, zmask, zscale = weight_decode(f).as_arrays()
    w = K.decode_weights_into(codes, zp, group, table, zmask, zscale, np.empty((n, k), np.int64))
    for a in (acts, full):
        np.testing.assert_array_equal(golden.gemm(codes, a, f, acc_bits=40, zero_points=zp, group_size=group),
                                      a.astype(np.int64) @ w.T)


@pytest.mark.parametrize("dtype,lo,hi,shape", [(np.int8, -128, 127, (5, 700)), (np.uint8, 0, 255, (3, 256)),
                                               (np.int16, -300, 300, (2, 513)), (np.int8, -7, -3, (1, 1)),
                                               (np.int8, -128, 127, (3, 800)), (np.int16, -32768, 32767, (2, 272)),
                                               (np.uint16, 0, 65535, (2, 16))])
def test_prepare_acts_equals_separate_passes(dtype, lo, hi, shape):
    """gemm's one pass over the activations (``K.prepare_acts``) gives the float32 copy, the
    min, the max and the per-row Σ|a| runs that ``astype``, ``min``, ``max`` and
    ``abs_segment_sums`` give separately, including a last run shorter than ``seg``."""
    from models.golden import _kernels as K

    rng = np.random.default_rng(shape[1])
    a = rng.integers(lo, hi + 1, shape).astype(dtype)
    out = np.empty(shape, np.float32)
    mn, mx, sums = K.prepare_acts(a.reshape(-1), shape[0], 256, out.reshape(-1))
    np.testing.assert_array_equal(out, a.astype(np.float32))
    assert (mn, mx) == (int(a.min()), int(a.max()))
    np.testing.assert_array_equal(sums, K.abs_segment_sums(a, 256))
    assert sums.shape == (shape[0], -(-shape[1] // 256))
    from models.golden import _api, _simd

    if _simd.AVAILABLE and shape[1] % 16 == 0:  # the 16-per-store pass, plain and streaming
        for nt in (False, True):
            out2 = _api._scratch_array("test", shape, np.float32)
            out2[:] = np.nan
            got = _simd.prepare_acts_into(a.reshape(-1), shape[0], 256, out2.reshape(-1), nt)
            np.testing.assert_array_equal(out2, a.astype(np.float32))
            assert got[:2] == (mn, mx)
            np.testing.assert_array_equal(got[2], sums)


def test_gemm_takes_either_byte_order():
    """Codes and activations in the other byte order (e.g. ``>i2`` read from a file) give the
    native-order result (the numba kernels take only native arrays: gemm copies them once)."""
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 16, (4, 64))
    acts = rng.integers(-128, 128, (3, 64))
    zp = rng.integers(0, 14, (4, 2))
    for fmt, kw in (("int4", {}), ("dint4_asym", {"zero_points": zp, "group_size": 32})):
        want = golden.gemm(codes.astype(np.uint8), acts.astype(np.int8), fmt, **kw)
        for cd, ad in (("<u2", "<i2"), (">u2", "<i2"), ("<i8", ">i2"), (">i8", ">i8")):
            kz = dict(kw, zero_points=zp.astype(">i8")) if kw else kw
            np.testing.assert_array_equal(golden.gemm(codes.astype(cd), acts.astype(ad), fmt, **kz), want)
