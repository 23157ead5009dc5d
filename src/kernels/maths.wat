;; Part of the kernel module (kernel.wat): the constants table of e^y and GELU, exact GELU of four lanes, a horizontal sum.

  ;; The constants of e^y (in $softmax and $gelu4) and of GELU, one f32 each in a per-thread table (see $set_constants):
  ;; read as v128.load32_splat from memory they cost one load each, where f32x4.splat of a literal is
  ;; three instructions (V8 builds it in a register every time the function runs).
  (global $consts (mut i32) (i32.const 0))

  ;; Writes the table for this thread at `at` (the job's bytes 1152 + 128·tid) and points $consts at it.
  (func $set_constants (param $at i32)
    (f32.store offset=0 (local.get $at) (f32.const -87.3))         ;; exp: below this, e^y = 0
    (f32.store offset=4 (local.get $at) (f32.const 88.3))          ;; exp: clamp from above
    (f32.store offset=8 (local.get $at) (f32.const 1.44269504089)) ;; exp: log2(e)
    (f32.store offset=12 (local.get $at) (f32.const 12582912))     ;; exp: 1.5·2²³, rounds n to nearest
    (f32.store offset=16 (local.get $at) (f32.const 0.693359375))  ;; exp: ln 2, high part (exact in 9 bits)
    (f32.store offset=20 (local.get $at) (f32.const -2.12194440e-4)) ;; exp: ln 2, low part
    (f32.store offset=24 (local.get $at) (f32.const 1.9875691500e-4)) ;; exp: Cephes' polynomial, highest first
    (f32.store offset=28 (local.get $at) (f32.const 1.3981999507e-3))
    (f32.store offset=32 (local.get $at) (f32.const 8.3334519073e-3))
    (f32.store offset=36 (local.get $at) (f32.const 4.1665795894e-2))
    (f32.store offset=40 (local.get $at) (f32.const 1.6666665459e-1))
    (f32.store offset=44 (local.get $at) (f32.const 5.0000001201e-1))
    (f32.store offset=48 (local.get $at) (f32.const 1))            ;; also 2^0's bits, 0x3f800000
    (f32.store offset=52 (local.get $at) (f32.const 0.70710678118)) ;; GELU: 1/√2
    (f32.store offset=56 (local.get $at) (f32.const 0.3275911))    ;; GELU: A&S 7.1.26 p, then a5 … a1
    (f32.store offset=60 (local.get $at) (f32.const 1.061405429))
    (f32.store offset=64 (local.get $at) (f32.const -1.453152027))
    (f32.store offset=68 (local.get $at) (f32.const 1.421413741))
    (f32.store offset=72 (local.get $at) (f32.const -0.284496736))
    (f32.store offset=76 (local.get $at) (f32.const 0.254829592))
    (f32.store offset=80 (local.get $at) (f32.const 0.5))
    (global.set $consts (local.get $at)))


  ;; Exact GELU, x·Φ(x), of four lanes, stored at `at`: with z = |x|/√2, erfc(z) ≈
  ;; t·(a1 + t·(a2 + … a5·t))·e^(−z²), t = 1/(1 + p·z) (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7),
  ;; and h = erfc(z)/2 = Φ(−|x|): x·Φ(x) = x·(1 − h) for x ≥ 0, x·h for x < 0. e^(−z²) is the
  ;; softmax's e^y (see $softmax) written out here, each constant loaded where it is used: a call
  ;; to a shared e^y function per vector cost twice as much, and so did two such chains interleaved
  ;; in one function (TurboFan hoisted their constant loads and spilled them).
  (func $gelu4 (param $at i32) (param $x v128)
    (local $c i32) (local $z v128) (local $t v128) (local $q v128) (local $y v128) (local $n v128) (local $r v128) (local $p v128) (local $h v128) (local $drop v128)
    (local.set $c (global.get $consts))
    (local.set $z (f32x4.mul (f32x4.abs (local.get $x)) (v128.load32_splat offset=52 (local.get $c))))
    (local.set $t (f32x4.div (v128.load32_splat offset=48 (local.get $c)) (f32x4.relaxed_madd (local.get $z) (v128.load32_splat offset=56 (local.get $c)) (v128.load32_splat offset=48 (local.get $c)))))
    (local.set $q (f32x4.relaxed_madd (v128.load32_splat offset=60 (local.get $c)) (local.get $t) (v128.load32_splat offset=64 (local.get $c))))
    (local.set $q (f32x4.relaxed_madd (local.get $q) (local.get $t) (v128.load32_splat offset=68 (local.get $c))))
    (local.set $q (f32x4.relaxed_madd (local.get $q) (local.get $t) (v128.load32_splat offset=72 (local.get $c))))
    (local.set $q (f32x4.relaxed_madd (local.get $q) (local.get $t) (v128.load32_splat offset=76 (local.get $c))))
    ;; q·t/2
    (local.set $q (f32x4.mul (v128.load32_splat offset=80 (local.get $c)) (f32x4.mul (local.get $q) (local.get $t))))
    ;; e^y for y = −z², as in $softmax
    (local.set $y (f32x4.neg (f32x4.mul (local.get $z) (local.get $z))))
    (local.set $drop (f32x4.lt (local.get $y) (v128.load32_splat offset=0 (local.get $c))))
    (local.set $y (f32x4.pmax (f32x4.pmin (local.get $y) (v128.load32_splat offset=4 (local.get $c))) (v128.load32_splat offset=0 (local.get $c))))
    (local.set $t (f32x4.relaxed_madd (local.get $y) (v128.load32_splat offset=8 (local.get $c)) (v128.load32_splat offset=12 (local.get $c))))
    (local.set $n (f32x4.sub (local.get $t) (v128.load32_splat offset=12 (local.get $c))))
    (local.set $r (f32x4.relaxed_nmadd (local.get $n) (v128.load32_splat offset=16 (local.get $c)) (local.get $y)))
    (local.set $r (f32x4.relaxed_nmadd (local.get $n) (v128.load32_splat offset=20 (local.get $c)) (local.get $r)))
    (local.set $p (f32x4.relaxed_madd (v128.load32_splat offset=24 (local.get $c)) (local.get $r) (v128.load32_splat offset=28 (local.get $c))))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (v128.load32_splat offset=32 (local.get $c))))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (v128.load32_splat offset=36 (local.get $c))))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (v128.load32_splat offset=40 (local.get $c))))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (v128.load32_splat offset=44 (local.get $c))))
    (local.set $p (f32x4.add (f32x4.relaxed_madd (local.get $p) (f32x4.mul (local.get $r) (local.get $r)) (local.get $r)) (v128.load32_splat offset=48 (local.get $c))))
    ;; h = (1/2)·q·t·e^y; then x·(1 − h) or x·h
    (local.set $h (f32x4.mul (local.get $q) (v128.andnot (f32x4.mul (local.get $p) (i32x4.add (i32x4.shl (local.get $t) (i32.const 23)) (v128.load32_splat offset=48 (local.get $c)))) (local.get $drop))))
    (v128.store (local.get $at) (f32x4.mul (local.get $x) (v128.bitselect (f32x4.sub (v128.load32_splat offset=48 (local.get $c)) (local.get $h)) (local.get $h) (f32x4.ge (local.get $x) (v128.const i32x4 0 0 0 0))))))


  ;; The sum of a vector's four lanes.
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))
