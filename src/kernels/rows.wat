;; Part of the kernel module (kernel.wat): row operations.
  ;; ---- Row operations: LayerNorm and softmax, rows split between the threads like A's row tiles ----
  ;; Job fields when shared.op is 1 or 2: the rows.* of job.json (rows.residual 0: none; rows.eps f32).
  ;; y may be x (in place). cols must be a multiple of 4 for LayerNorm; softmax takes any cols.

  ;; y = (s − mean(s)) / √(var(s) + eps) · gamma + beta per row, s = x (+ residual), biased variance.
  ;; Three passes over a row (it stays in L1): the sum (writing s to y when there is a residual), the
  ;; centred sum of squares, the normalised store.
  (func $layernorm (param $job i32) (param $tid i32) (param $nth i32)
    (local $rows i32) (local $cols4 i32) (local $row i32) (local $end i32) (local $i i32)
    (local $px i32) (local $pr i32) (local $py i32) (local $src i32) (local $g i32) (local $b i32)
    (local $acc v128) (local $v v128) (local $mean v128) (local $rstd v128) (local $n f32)
    (local.set $rows (i32.load offset={{rows.rows}} (local.get $job)))
    (local.set $cols4 (i32.shl (i32.load offset={{rows.cols}} (local.get $job)) (i32.const 2)))
    (local.set $n (f32.convert_i32_u (i32.load offset={{rows.cols}} (local.get $job))))
    (local.set $g (i32.load offset={{rows.gamma}} (local.get $job)))
    (local.set $b (i32.load offset={{rows.beta}} (local.get $job)))
    (local.set $row (i32.div_u (i32.mul (local.get $rows) (local.get $tid)) (local.get $nth)))
    (local.set $end (i32.div_u (i32.mul (local.get $rows) (i32.add (local.get $tid) (i32.const 1))) (local.get $nth)))
    (block $done
      (loop $rowl
        (br_if $done (i32.ge_u (local.get $row) (local.get $end)))
        (local.set $px (i32.add (i32.load offset={{rows.x}} (local.get $job)) (i32.mul (local.get $row) (local.get $cols4))))
        (local.set $py (i32.add (i32.load offset={{rows.y}} (local.get $job)) (i32.mul (local.get $row) (local.get $cols4))))
        (local.set $pr (i32.load offset={{rows.residual}} (local.get $job)))
        (local.set $src (local.get $px))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (if (local.get $pr)
          (then
            (local.set $pr (i32.add (local.get $pr) (i32.mul (local.get $row) (local.get $cols4))))
            (local.set $src (local.get $py))
            (loop $s1
              (local.set $v (f32x4.add (v128.load (i32.add (local.get $px) (local.get $i))) (v128.load (i32.add (local.get $pr) (local.get $i)))))
              (v128.store (i32.add (local.get $py) (local.get $i)) (local.get $v))
              (local.set $acc (f32x4.add (local.get $acc) (local.get $v)))
              (local.set $i (i32.add (local.get $i) (i32.const 16)))
              (br_if $s1 (i32.lt_u (local.get $i) (local.get $cols4)))))
          (else
            (loop $s1
              (local.set $acc (f32x4.add (local.get $acc) (v128.load (i32.add (local.get $px) (local.get $i)))))
              (local.set $i (i32.add (local.get $i) (i32.const 16)))
              (br_if $s1 (i32.lt_u (local.get $i) (local.get $cols4))))))
        (local.set $mean (f32x4.splat (f32.div (call $hsum (local.get $acc)) (local.get $n))))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (loop $s2
          (local.set $v (f32x4.sub (v128.load (i32.add (local.get $src) (local.get $i))) (local.get $mean)))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (local.get $v))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $s2 (i32.lt_u (local.get $i) (local.get $cols4))))
        (local.set $rstd (f32x4.splat (f32.div (f32.const 1)
          (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (local.get $n)) (f32.load offset={{rows.eps}} (local.get $job)))))))
        (local.set $i (i32.const 0))
        (loop $s3
          (v128.store (i32.add (local.get $py) (local.get $i))
            (f32x4.add
              (f32x4.mul (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $src) (local.get $i))) (local.get $mean)) (local.get $rstd))
                (v128.load (i32.add (local.get $g) (local.get $i))))
              (v128.load (i32.add (local.get $b) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $s3 (i32.lt_u (local.get $i) (local.get $cols4))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowl))))

  ;; y = softmax(x) per row: max, e^(x − max) stored with their sum, then times 1/sum. A row's last
  ;; cols mod 4 values go one lane at a time.
  ;; The last `bytes` (4, 8 or 12) of a row as one vector, the lanes past it −∞.
  (func $load_tail (param $at i32) (param $bytes i32) (result v128)
    (local $v v128)
    (local.set $v (f32x4.replace_lane 0 (f32x4.splat (f32.const -inf)) (f32.load (local.get $at))))
    (if (i32.gt_u (local.get $bytes) (i32.const 4)) (then (local.set $v (f32x4.replace_lane 1 (local.get $v) (f32.load offset=4 (local.get $at))))))
    (if (i32.gt_u (local.get $bytes) (i32.const 8)) (then (local.set $v (f32x4.replace_lane 2 (local.get $v) (f32.load offset=8 (local.get $at))))))
    (local.get $v))

  ;; Stores the first `bytes` (4, 8 or 12) of v at `at`.
  (func $store_tail (param $at i32) (param $bytes i32) (param $v v128)
    (f32.store (local.get $at) (f32x4.extract_lane 0 (local.get $v)))
    (if (i32.gt_u (local.get $bytes) (i32.const 4)) (then (f32.store offset=4 (local.get $at) (f32x4.extract_lane 1 (local.get $v)))))
    (if (i32.gt_u (local.get $bytes) (i32.const 8)) (then (f32.store offset=8 (local.get $at) (f32x4.extract_lane 2 (local.get $v))))))

  (func $softmax (param $job i32) (param $tid i32) (param $nth i32)
    (local $rows i32) (local $cols i32) (local $cols4 i32) (local $row i32) (local $end i32) (local $i i32)
    (local $px i32) (local $py i32) (local $mx v128) (local $sum v128) (local $e v128) (local $m f32) (local $t0 f32)
    (local $c i32) (local $whole i32) (local $y v128) (local $drop v128) (local $t v128) (local $n v128) (local $r v128) (local $p v128)
    (local.set $c (global.get $consts))
    (local.set $rows (i32.load offset={{rows.rows}} (local.get $job)))
    (local.set $cols (i32.load offset={{rows.cols}} (local.get $job)))
    (local.set $cols4 (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $row (i32.div_u (i32.mul (local.get $rows) (local.get $tid)) (local.get $nth)))
    (local.set $end (i32.div_u (i32.mul (local.get $rows) (i32.add (local.get $tid) (i32.const 1))) (local.get $nth)))
    (block $done
      (loop $rowl
        (br_if $done (i32.ge_u (local.get $row) (local.get $end)))
        (local.set $px (i32.add (i32.load offset={{rows.x}} (local.get $job)) (i32.mul (local.get $row) (local.get $cols4))))
        (local.set $py (i32.add (i32.load offset={{rows.y}} (local.get $job)) (i32.mul (local.get $row) (local.get $cols4))))
        ;; Every pass goes four values at a time; the last 1–3 of a row as one vector padded with −∞.
        ;; max (pmax is one instruction on x64, max eight; a NaN it skips still makes the row NaN
        ;; through e^(NaN − max) and the sum)
        (local.set $mx (f32x4.splat (f32.const -inf)))
        (local.set $i (i32.const 0))
        (block $v1 (loop $l1
          (br_if $v1 (i32.ge_u (local.get $i) (local.get $cols4)))
          (local.set $mx (f32x4.pmax (local.get $mx)
            (if (result v128) (i32.le_u (i32.add (local.get $i) (i32.const 16)) (local.get $cols4))
              (then (v128.load (i32.add (local.get $px) (local.get $i))))
              (else (call $load_tail (i32.add (local.get $px) (local.get $i)) (i32.sub (local.get $cols4) (local.get $i)))))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $l1)))
        (local.set $m (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx)))
                               (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx)))))
        (local.set $mx (f32x4.splat (local.get $m)))
        ;; e^(x − max) and their sum (the padding's e^−∞ = 0). e^y within ~2 ulp: y = n·ln2 + r with |r| ≤ ln2/2 (ln2 in two
        ;; parts, so r is exact), e^r by Cephes' expf polynomial, 2^n built in the exponent bits. y is
        ;; clamped to [−87.3, 88.3], and below −87.3 (where e^y is subnormal) the result is 0, so
        ;; e^−∞ = 0 exactly (masked keys); NaN stays NaN. n is rounded to nearest (ties to even) by
        ;; adding 1.5·2²³: the sum's low mantissa bits are n, so its bits shifted left by 23 are n's
        ;; exponent field. pmin/pmax (one instruction each on x64, unlike min/max) are enough here: the
        ;; NaN case is carried by the polynomial. Written out in the loop (a call per vector cost ~2×).
        (local.set $sum (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $v2 (loop $l2
          (br_if $v2 (i32.ge_u (local.get $i) (local.get $cols4)))
          (local.set $whole (i32.le_u (i32.add (local.get $i) (i32.const 16)) (local.get $cols4)))
          (local.set $y (f32x4.sub
            (if (result v128) (local.get $whole)
              (then (v128.load (i32.add (local.get $px) (local.get $i))))
              (else (call $load_tail (i32.add (local.get $px) (local.get $i)) (i32.sub (local.get $cols4) (local.get $i)))))
            (local.get $mx)))
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
          ;; e^r = p·r² + r + 1; times 2^n: n's bits (the low bits of t) << 23, plus 127 << 23 (the bits of 1.0)
          (local.set $p (f32x4.add (f32x4.relaxed_madd (local.get $p) (f32x4.mul (local.get $r) (local.get $r)) (local.get $r)) (v128.load32_splat offset=48 (local.get $c))))
          (local.set $e (v128.andnot (f32x4.mul (local.get $p) (i32x4.add (i32x4.shl (local.get $t) (i32.const 23)) (v128.load32_splat offset=48 (local.get $c)))) (local.get $drop)))
          (if (local.get $whole)
            (then (v128.store (i32.add (local.get $py) (local.get $i)) (local.get $e)))
            (else (call $store_tail (i32.add (local.get $py) (local.get $i)) (i32.sub (local.get $cols4) (local.get $i)) (local.get $e))))
          (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $l2)))
        (local.set $t0 (call $hsum (local.get $sum)))
        ;; normalise
        (local.set $sum (f32x4.splat (f32.div (f32.const 1) (local.get $t0))))
        (local.set $i (i32.const 0))
        (block $v3 (loop $l3
          (br_if $v3 (i32.ge_u (local.get $i) (local.get $cols4)))
          (if (i32.le_u (i32.add (local.get $i) (i32.const 16)) (local.get $cols4))
            (then (v128.store (i32.add (local.get $py) (local.get $i)) (f32x4.mul (v128.load (i32.add (local.get $py) (local.get $i))) (local.get $sum))))
            (else (call $store_tail (i32.add (local.get $py) (local.get $i)) (i32.sub (local.get $cols4) (local.get $i))
              (f32x4.mul (call $load_tail (i32.add (local.get $py) (local.get $i)) (i32.sub (local.get $cols4) (local.get $i))) (local.get $sum)))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $l3)))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowl))))
