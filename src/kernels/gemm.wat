;; A single-precision GEMM for the tfjs-wasm heap: C = A·B (+ bias), with 128-bit relaxed-SIMD FMA.
;;
;; A is [M, K] row-major (row stride lda floats). B is either [K, N] (bT = 0) or given transposed as
;; [N, K] (bT = 1, e.g. the activations x of a Linear). C is written either as [M, N] (cT = 0) or
;; transposed as [N, M] (cT = 1, e.g. y = x·Wᵀ computed as W·xᵀ and stored token-major). The bias,
;; when given, runs along C's stored columns: bias[n] for cT = 0, bias[m] for cT = 1.
;;
;; One call of `run(job, tid, nth)` per thread, on the same job, from every thread at once:
;;   1. pack: the threads take B's column panels from an atomic counter and copy each into the pack
;;      buffer as 8 floats per k ([K, 8], zero-padded past N), the layout the micro-kernel reads in order;
;;   2. wait until every panel is packed;
;;   3. compute: for each group of panels that fits in L2, every tile of A runs against every panel
;;      of the group; the threads take chunks of 4 row tiles from an atomic counter (shared.nextItem).
;; The micro-kernel holds a 4×8 tile of C in 8 f32x4 accumulators and per k broadcasts one A value
;; of each of the 4 rows (v128.load32_splat) against two vectors of the packed panel. 8 accumulators
;; + 2 B vectors + 1 broadcast = 11 xmm registers: bigger tiles make V8 spill inside the loop.
;;
;; The job is a struct in the heap, written by the caller (kernels/job.ts). Its fields are declared
;; once, in src/kernels/job.json, and named here as {{<op>.<field>}} (scripts/build-kernels.mjs puts the byte
;; offsets in): shared.abort is set by a thread that failed, so the others do not wait for it;
;; shared.op picks the function; gemm.activation 1 is exact GELU in the store (see $gelu4); gemm.scale
;; (f32, 0 bits: none) multiplies the product before the bias; gemm.packed says B is in the pack buffer.
;;   128 + 128·tid: a scratch 4×8 tile per thread for edge tiles.
;;   1152 + 128·tid: the thread's table of constants for e^x and GELU (written by `run`).
(module
  (import "env" "memory" (memory 1 65536 shared))

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

  ;; Transposes the 4×4 block whose rows are r0..r3 and stores its column i, plus `bias`,
  ;; at dst + i·stride.
  (func $store4x4 (param $r0 v128) (param $r1 v128) (param $r2 v128) (param $r3 v128)
                  (param $dst i32) (param $stride i32) (param $bias v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    ;; t0 = r0[0] r1[0] r0[1] r1[1]; t1 = r0[2] r1[2] r0[3] r1[3]; t2, t3 likewise from r2, r3
    (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
    (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
    (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
    (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
    ;; column i = r0[i] r1[i] r2[i] r3[i]
    (v128.store (local.get $dst) (f32x4.add (local.get $bias) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2))))
    (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
    (v128.store (local.get $dst) (f32x4.add (local.get $bias) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2))))
    (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
    (v128.store (local.get $dst) (f32x4.add (local.get $bias) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3))))
    (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
    (v128.store (local.get $dst) (f32x4.add (local.get $bias) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))))

  ;; Packs column panel p of B: dst[k·8 + j] = B[k, 8p + j] for k < K, j < 8 (0 past N).
  (func $pack_panel (param $job i32) (param $p i32)
    (local $b i32) (local $ldb4 i32) (local $N i32) (local $K i32) (local $dst i32) (local $end i32)
    (local $n0 i32) (local $j i32) (local $k i32) (local $src i32) (local $zero v128)
    (local.set $b (i32.load offset={{gemm.b}} (local.get $job)))
    (local.set $ldb4 (i32.shl (i32.load offset={{gemm.ldb}} (local.get $job)) (i32.const 2)))
    (local.set $N (i32.load offset={{gemm.N}} (local.get $job)))
    (local.set $K (i32.load offset={{gemm.K}} (local.get $job)))
    (local.set $n0 (i32.shl (local.get $p) (i32.const 3)))
    (local.set $dst (i32.add (i32.load offset={{gemm.pack}} (local.get $job)) (i32.mul (local.get $p) (i32.shl (local.get $K) (i32.const 5)))))
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $K) (i32.const 5))))
    (if (i32.eqz (i32.load offset={{gemm.bT}} (local.get $job)))
      (then
        ;; B is [K, N]: row k of the panel is 8 consecutive floats of B's row k.
        (local.set $src (i32.add (local.get $b) (i32.shl (local.get $n0) (i32.const 2))))
        (if (i32.le_u (i32.add (local.get $n0) (i32.const 8)) (local.get $N))
          (then
            (loop $k
              (v128.store (local.get $dst) (v128.load (local.get $src)))
              (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $src)))
              (local.set $src (i32.add (local.get $src) (local.get $ldb4)))
              (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
              (br_if $k (i32.lt_u (local.get $dst) (local.get $end)))))
          (else
            (loop $k
              (v128.store (local.get $dst) (local.get $zero))
              (v128.store offset=16 (local.get $dst) (local.get $zero))
              (local.set $j (i32.const 0))
              (loop $j
                (f32.store (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2)))
                  (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2)))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br_if $j (i32.lt_u (i32.add (local.get $n0) (local.get $j)) (local.get $N))))
              (local.set $src (i32.add (local.get $src) (local.get $ldb4)))
              (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
              (br_if $k (i32.lt_u (local.get $dst) (local.get $end)))))))
      (else
        ;; B is given as [N, K]: column n of the panel is row n of that matrix. Whole panels go four k
        ;; at a time as two 4×4 transposes; the tail of k and a partial last panel go float by float.
        (local.set $src (i32.add (local.get $b) (i32.mul (local.get $n0) (local.get $ldb4))))
        (local.set $k (i32.const 0))
        (if (i32.le_u (i32.add (local.get $n0) (i32.const 8)) (local.get $N))
          (then
            (block $done4
              (loop $k4
                (br_if $done4 (i32.gt_u (i32.add (local.get $k) (i32.const 4)) (local.get $K)))
                (call $store4x4
                  (v128.load (local.get $src))
                  (v128.load (i32.add (local.get $src) (local.get $ldb4)))
                  (v128.load (i32.add (local.get $src) (i32.shl (local.get $ldb4) (i32.const 1))))
                  (v128.load (i32.add (local.get $src) (i32.mul (local.get $ldb4) (i32.const 3))))
                  (local.get $dst) (i32.const 32) (local.get $zero))
                (call $store4x4
                  (v128.load (i32.add (local.get $src) (i32.shl (local.get $ldb4) (i32.const 2))))
                  (v128.load (i32.add (local.get $src) (i32.mul (local.get $ldb4) (i32.const 5))))
                  (v128.load (i32.add (local.get $src) (i32.mul (local.get $ldb4) (i32.const 6))))
                  (v128.load (i32.add (local.get $src) (i32.mul (local.get $ldb4) (i32.const 7))))
                  (i32.add (local.get $dst) (i32.const 16)) (i32.const 32) (local.get $zero))
                (local.set $src (i32.add (local.get $src) (i32.const 16)))
                (local.set $dst (i32.add (local.get $dst) (i32.const 128)))
                (local.set $k (i32.add (local.get $k) (i32.const 4)))
                (br $k4)))))
        ;; whatever is left: k in [k, K), every column j < 8 (0 past N)
        (block $done
          (loop $k1
            (br_if $done (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $j (i32.const 0))
            (loop $j
              (f32.store (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2)))
                (if (result f32) (i32.lt_u (i32.add (local.get $n0) (local.get $j)) (local.get $N))
                  (then (f32.load (i32.add (local.get $src) (i32.mul (local.get $j) (local.get $ldb4)))))
                  (else (f32.const 0))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br_if $j (i32.lt_u (local.get $j) (i32.const 8))))
            (local.set $src (i32.add (local.get $src) (i32.const 4)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $k1))))))

  ;; One 4×8 tile of C: rows m … m+3 of A against packed panel p, left in this thread's scratch tile
  ;; and then stored by $store_tile. Nothing after the loop calls a function while the accumulators
  ;; are live: V8 would spill them, and it places such spills inside the loop.
  (func $tile (param $job i32) (param $tid i32) (param $m i32) (param $p i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $s v128)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $pb i32) (local $pe i32)
    (local $M i32) (local $K i32) (local $lda4 i32) (local $last i32)
    (local $tile i32)
    (local.set $M (i32.load offset={{gemm.M}} (local.get $job)))
    (local.set $K (i32.load offset={{gemm.K}} (local.get $job)))
    (local.set $lda4 (i32.shl (i32.load offset={{gemm.lda}} (local.get $job)) (i32.const 2)))
    ;; Row pointers; rows past M repeat the last row (their results are never stored).
    (local.set $last (i32.sub (local.get $M) (i32.const 1)))
    (local.set $a0 (i32.add (i32.load offset={{gemm.a}} (local.get $job)) (i32.mul (local.get $m) (local.get $lda4))))
    (local.set $a1 (i32.add (i32.load offset={{gemm.a}} (local.get $job)) (i32.mul
      (select (i32.add (local.get $m) (i32.const 1)) (local.get $last) (i32.lt_u (i32.add (local.get $m) (i32.const 1)) (local.get $M)))
      (local.get $lda4))))
    (local.set $a2 (i32.add (i32.load offset={{gemm.a}} (local.get $job)) (i32.mul
      (select (i32.add (local.get $m) (i32.const 2)) (local.get $last) (i32.lt_u (i32.add (local.get $m) (i32.const 2)) (local.get $M)))
      (local.get $lda4))))
    (local.set $a3 (i32.add (i32.load offset={{gemm.a}} (local.get $job)) (i32.mul
      (select (i32.add (local.get $m) (i32.const 3)) (local.get $last) (i32.lt_u (i32.add (local.get $m) (i32.const 3)) (local.get $M)))
      (local.get $lda4))))
    (local.set $pb (i32.add (i32.load offset={{gemm.pack}} (local.get $job)) (i32.mul (local.get $p) (i32.shl (local.get $K) (i32.const 5)))))
    (local.set $pe (i32.add (local.get $pb) (i32.shl (local.get $K) (i32.const 5))))

    ;; The inner loop: per k, 2 vector loads of B, 4 broadcasts of A, 8 FMAs. Not unrolled (see top).
    (loop $k
      (local.set $b0 (v128.load (local.get $pb)))
      (local.set $b1 (v128.load offset=16 (local.get $pb)))
      (local.set $s (v128.load32_splat (local.get $a0)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c01)))
      (local.set $s (v128.load32_splat (local.get $a1)))
      (local.set $c10 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c10)))
      (local.set $c11 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c11)))
      (local.set $s (v128.load32_splat (local.get $a2)))
      (local.set $c20 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c20)))
      (local.set $c21 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c21)))
      (local.set $s (v128.load32_splat (local.get $a3)))
      (local.set $c30 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c30)))
      (local.set $c31 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c31)))
      (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
      (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
      (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
      (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
      (local.set $pb (i32.add (local.get $pb) (i32.const 32)))
      (br_if $k (i32.lt_u (local.get $pb) (local.get $pe))))
    ;; C = scale·(A·B) when a scale is given ($s is free again here, so no register is kept for it in the loop).
    (if (i32.load offset={{gemm.scale}} (local.get $job))
      (then
        (local.set $s (v128.load32_splat offset={{gemm.scale}} (local.get $job)))
        (local.set $c00 (f32x4.mul (local.get $c00) (local.get $s)))
        (local.set $c01 (f32x4.mul (local.get $c01) (local.get $s)))
        (local.set $c10 (f32x4.mul (local.get $c10) (local.get $s)))
        (local.set $c11 (f32x4.mul (local.get $c11) (local.get $s)))
        (local.set $c20 (f32x4.mul (local.get $c20) (local.get $s)))
        (local.set $c21 (f32x4.mul (local.get $c21) (local.get $s)))
        (local.set $c30 (f32x4.mul (local.get $c30) (local.get $s)))
        (local.set $c31 (f32x4.mul (local.get $c31) (local.get $s)))))
    ;; A whole tile of C stored [M, N] with no activation (the attention's GEMMs): straight from the
    ;; accumulators, plus the bias. Other tiles go through the scratch tile and $store_tile.
    (if (i32.and
          (i32.and (i32.le_u (i32.add (local.get $m) (i32.const 4)) (local.get $M))
                   (i32.le_u (i32.shl (i32.add (local.get $p) (i32.const 1)) (i32.const 3)) (i32.load offset={{gemm.N}} (local.get $job))))
          (i32.eqz (i32.or (i32.load offset={{gemm.cT}} (local.get $job)) (i32.load offset={{gemm.activation}} (local.get $job)))))
      (then
        (local.set $a0 (i32.load offset={{gemm.bias}} (local.get $job))) ;; bias
        (if (local.get $a0)
          (then
            (local.set $a0 (i32.add (local.get $a0) (i32.shl (local.get $p) (i32.const 5))))
            (local.set $b0 (v128.load (local.get $a0)))
            (local.set $b1 (v128.load offset=16 (local.get $a0))))
          (else
            (local.set $b0 (v128.const i32x4 0 0 0 0))
            (local.set $b1 (v128.const i32x4 0 0 0 0))))
        (local.set $lda4 (i32.shl (i32.load offset={{gemm.ldc}} (local.get $job)) (i32.const 2))) ;; now C's row stride
        (local.set $a0 (i32.add (i32.load offset={{gemm.c}} (local.get $job))
          (i32.add (i32.mul (local.get $m) (local.get $lda4)) (i32.shl (local.get $p) (i32.const 5)))))
        (v128.store (local.get $a0) (f32x4.add (local.get $c00) (local.get $b0)))
        (v128.store offset=16 (local.get $a0) (f32x4.add (local.get $c01) (local.get $b1)))
        (local.set $a0 (i32.add (local.get $a0) (local.get $lda4)))
        (v128.store (local.get $a0) (f32x4.add (local.get $c10) (local.get $b0)))
        (v128.store offset=16 (local.get $a0) (f32x4.add (local.get $c11) (local.get $b1)))
        (local.set $a0 (i32.add (local.get $a0) (local.get $lda4)))
        (v128.store (local.get $a0) (f32x4.add (local.get $c20) (local.get $b0)))
        (v128.store offset=16 (local.get $a0) (f32x4.add (local.get $c21) (local.get $b1)))
        (local.set $a0 (i32.add (local.get $a0) (local.get $lda4)))
        (v128.store (local.get $a0) (f32x4.add (local.get $c30) (local.get $b0)))
        (v128.store offset=16 (local.get $a0) (f32x4.add (local.get $c31) (local.get $b1)))
        (return)))
    (local.set $tile (i32.add (i32.add (local.get $job) (i32.const 128)) (i32.shl (local.get $tid) (i32.const 7))))
    (v128.store offset=0 (local.get $tile) (local.get $c00))
    (v128.store offset=16 (local.get $tile) (local.get $c01))
    (v128.store offset=32 (local.get $tile) (local.get $c10))
    (v128.store offset=48 (local.get $tile) (local.get $c11))
    (v128.store offset=64 (local.get $tile) (local.get $c20))
    (v128.store offset=80 (local.get $tile) (local.get $c21))
    (v128.store offset=96 (local.get $tile) (local.get $c30))
    (v128.store offset=112 (local.get $tile) (local.get $c31))
    (call $store_tile (local.get $job) (local.get $tile) (local.get $m) (local.get $p)))

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

  ;; GELU over a whole scratch tile in place, after adding the bias: b0, b1 to the two halves of each row
  ;; (cT = 0, bias along columns), or bias[m + r] to row r when rowBias is not 0 (cT = 1).
  (func $gelu_tile (param $tile i32) (param $b0 v128) (param $b1 v128) (param $rowBias i32)
    (local $r i32) (local $rb v128)
    (loop $row
      (if (local.get $rowBias)
        (then (local.set $rb (v128.load32_splat (i32.add (local.get $rowBias) (i32.shl (local.get $r) (i32.const 2)))))))
      (call $gelu4 (local.get $tile) (f32x4.add (f32x4.add (v128.load (local.get $tile)) (local.get $b0)) (local.get $rb)))
      (call $gelu4 (i32.add (local.get $tile) (i32.const 16)) (f32x4.add (f32x4.add (v128.load offset=16 (local.get $tile)) (local.get $b1)) (local.get $rb)))
      (local.set $tile (i32.add (local.get $tile) (i32.const 32)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $row (i32.lt_u (local.get $r) (i32.const 4)))))

  ;; Stores the 4×8 tile [r][j] at `tile` as C's rows m … m+3, columns 8p … 8p+7, plus the bias,
  ;; through the activation (GELU: see $gelu_tile); an edge tile (past M or N) float by float.
  (func $store_tile (param $job i32) (param $tile i32) (param $m i32) (param $p i32)
    (local $M i32) (local $N i32) (local $n0 i32) (local $c i32) (local $ldc4 i32) (local $bias i32) (local $whole i32)
    (local $s v128) (local $b0 v128) (local $b1 v128) (local $r i32) (local $j i32) (local $v f32) (local $s4 i32)
    (local.set $M (i32.load offset={{gemm.M}} (local.get $job)))
    (local.set $N (i32.load offset={{gemm.N}} (local.get $job)))
    (local.set $n0 (i32.shl (local.get $p) (i32.const 3)))
    (local.set $c (i32.load offset={{gemm.c}} (local.get $job)))
    (local.set $ldc4 (i32.shl (i32.load offset={{gemm.ldc}} (local.get $job)) (i32.const 2)))
    (local.set $bias (i32.load offset={{gemm.bias}} (local.get $job)))
    (local.set $whole (i32.and (i32.le_u (i32.add (local.get $m) (i32.const 4)) (local.get $M))
                               (i32.le_u (i32.add (local.get $n0) (i32.const 8)) (local.get $N))))
    ;; GELU: bias and GELU in place on the tile first, which is then stored as a plain one
    (if (i32.load offset={{gemm.activation}} (local.get $job))
      (then
        (if (local.get $whole)
          (then
            (if (i32.load offset={{gemm.cT}} (local.get $job))
              (then (call $gelu_tile (local.get $tile) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)
                (select (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2))) (i32.const 0) (local.get $bias))))
              (else
                (if (local.get $bias)
                  (then
                    (local.set $b0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $n0) (i32.const 2)))))
                    (local.set $b1 (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $n0) (i32.const 2)))))))
                (call $gelu_tile (local.get $tile) (local.get $b0) (local.get $b1) (i32.const 0)))))
          (else
            ;; an edge tile: the bias onto its valid values only (bias[m + r] for cT = 1, bias[n0 + j]
            ;; for cT = 0: no read past the bias), then GELU over all of it (the rest is never stored)
            (if (local.get $bias)
              (then
                (local.set $r (i32.const 0))
                (loop $br
                  (local.set $j (i32.const 0))
                  (loop $bj
                    (if (i32.and (i32.lt_u (i32.add (local.get $m) (local.get $r)) (local.get $M))
                                 (i32.lt_u (i32.add (local.get $n0) (local.get $j)) (local.get $N)))
                      (then
                        (local.set $v (f32.load (local.tee $s4 (i32.add (local.get $tile) (i32.shl (i32.add (i32.shl (local.get $r) (i32.const 3)) (local.get $j)) (i32.const 2))))))
                        (f32.store (local.get $s4) (f32.add (local.get $v) (f32.load (i32.add (local.get $bias)
                          (i32.shl (select (i32.add (local.get $m) (local.get $r)) (i32.add (local.get $n0) (local.get $j)) (i32.load offset={{gemm.cT}} (local.get $job)))
                            (i32.const 2))))))))
                    (local.set $j (i32.add (local.get $j) (i32.const 1)))
                    (br_if $bj (i32.lt_u (local.get $j) (i32.const 8))))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br_if $br (i32.lt_u (local.get $r) (i32.const 4))))))
            (call $gelu_tile (local.get $tile) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0) (i32.const 0))))
        (local.set $bias (i32.const 0))))
    (if (local.get $whole)
      (then
        (if (i32.load offset={{gemm.cT}} (local.get $job))
          (then
            ;; C is stored [N, M]: columns n0 … n0+7 of the tile become rows, as two 4×4 transposes.
            (local.set $s (if (result v128) (local.get $bias)
              (then (v128.load (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2)))))
              (else (v128.const i32x4 0 0 0 0))))
            (local.set $c (i32.add (local.get $c) (i32.add (i32.mul (local.get $n0) (local.get $ldc4)) (i32.shl (local.get $m) (i32.const 2)))))
            (call $store4x4 (v128.load offset=0 (local.get $tile)) (v128.load offset=32 (local.get $tile)) (v128.load offset=64 (local.get $tile)) (v128.load offset=96 (local.get $tile))
              (local.get $c) (local.get $ldc4) (local.get $s))
            (call $store4x4 (v128.load offset=16 (local.get $tile)) (v128.load offset=48 (local.get $tile)) (v128.load offset=80 (local.get $tile)) (v128.load offset=112 (local.get $tile))
              (i32.add (local.get $c) (i32.shl (local.get $ldc4) (i32.const 2))) (local.get $ldc4) (local.get $s)))
          (else
            ;; C is stored [M, N]: each row of the tile is two vectors, plus bias[n0 … n0+7].
            (if (local.get $bias)
              (then
                (local.set $b0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $n0) (i32.const 2)))))
                (local.set $b1 (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $n0) (i32.const 2))))))
              (else
                (local.set $b0 (v128.const i32x4 0 0 0 0))
                (local.set $b1 (v128.const i32x4 0 0 0 0))))
            (local.set $c (i32.add (local.get $c) (i32.add (i32.mul (local.get $m) (local.get $ldc4)) (i32.shl (local.get $n0) (i32.const 2)))))
            (v128.store (local.get $c) (f32x4.add (v128.load offset=0 (local.get $tile)) (local.get $b0)))
            (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=16 (local.get $tile)) (local.get $b1)))
            (local.set $c (i32.add (local.get $c) (local.get $ldc4)))
            (v128.store (local.get $c) (f32x4.add (v128.load offset=32 (local.get $tile)) (local.get $b0)))
            (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=48 (local.get $tile)) (local.get $b1)))
            (local.set $c (i32.add (local.get $c) (local.get $ldc4)))
            (v128.store (local.get $c) (f32x4.add (v128.load offset=64 (local.get $tile)) (local.get $b0)))
            (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=80 (local.get $tile)) (local.get $b1)))
            (local.set $c (i32.add (local.get $c) (local.get $ldc4)))
            (v128.store (local.get $c) (f32x4.add (v128.load offset=96 (local.get $tile)) (local.get $b0)))
            (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=112 (local.get $tile)) (local.get $b1))))))
      (else
        ;; An edge tile: only the valid part, float by float.
        (local.set $r (i32.const 0))
        (loop $r
          (if (i32.lt_u (i32.add (local.get $m) (local.get $r)) (local.get $M))
            (then
              (local.set $j (i32.const 0))
              (loop $j
                (if (i32.lt_u (i32.add (local.get $n0) (local.get $j)) (local.get $N))
                  (then
                    (local.set $v (f32.load (i32.add (local.get $tile) (i32.shl (i32.add (i32.shl (local.get $r) (i32.const 3)) (local.get $j)) (i32.const 2)))))
                    (if (i32.load offset={{gemm.cT}} (local.get $job))
                      (then
                        (if (local.get $bias) (then (local.set $v (f32.add (local.get $v)
                          (f32.load (i32.add (local.get $bias) (i32.shl (i32.add (local.get $m) (local.get $r)) (i32.const 2))))))))
                        (f32.store (i32.add (local.get $c) (i32.add
                          (i32.mul (i32.add (local.get $n0) (local.get $j)) (local.get $ldc4))
                          (i32.shl (i32.add (local.get $m) (local.get $r)) (i32.const 2))))
                          (local.get $v)))
                      (else
                        (if (local.get $bias) (then (local.set $v (f32.add (local.get $v)
                          (f32.load (i32.add (local.get $bias) (i32.shl (i32.add (local.get $n0) (local.get $j)) (i32.const 2))))))))
                        (f32.store (i32.add (local.get $c) (i32.add
                          (i32.mul (i32.add (local.get $m) (local.get $r)) (local.get $ldc4))
                          (i32.shl (i32.add (local.get $n0) (local.get $j)) (i32.const 2))))
                          (local.get $v))))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br_if $j (i32.lt_u (local.get $j) (i32.const 8))))))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br_if $r (i32.lt_u (local.get $r) (i32.const 4)))))))


  ;; Waits until all NP panels are packed (the count at gemm.panelsPacked), or the job was aborted. It waits for
  ;; the packing, not for the other threads: one that starts late finds the panels packed and joins in.
  (func $await_packing (param $job i32) (param $NP i32)
    (local $done i32) (local $spin i32)
    (block $out
      (loop $wait
        (local.set $done (i32.atomic.load offset={{gemm.panelsPacked}} (local.get $job)))
        (br_if $out (i32.ge_u (local.get $done) (local.get $NP)))
        (br_if $out (i32.atomic.load offset={{shared.abort}} (local.get $job)))
        ;; spin briefly (the last panel is normally microseconds away), then sleep in 1 ms waits
        (local.set $spin (i32.add (local.get $spin) (i32.const 1)))
        (if (i32.gt_u (local.get $spin) (i32.const 20000))
          (then (drop (memory.atomic.wait32 offset={{gemm.panelsPacked}} (local.get $job) (local.get $done) (i64.const 1000000)))))
        ;; ~60 s of 1 ms waits: a thread is gone; abort the job rather than hang (the caller reports it)
        (if (i32.gt_u (local.get $spin) (i32.const 80000))
          (then (i32.atomic.store offset={{shared.abort}} (local.get $job) (i32.const 1))))
        (br $wait))))

  ;; Thread `tid` of `nth`: panels to pack, then work items, both from counters (see the top).
  (func $gemm (param $job i32) (param $tid i32) (param $nth i32)
    (local $NP i32) (local $MT i32) (local $p i32) (local $g0 i32) (local $gEnd i32)
    (local $mt i32) (local $mtEnd i32) (local $G i32) (local $nch i32) (local $items i32) (local $item i32)
    (local.set $NP (i32.shr_u (i32.add (i32.load offset={{gemm.N}} (local.get $job)) (i32.const 7)) (i32.const 3)))
    (local.set $MT (i32.shr_u (i32.add (i32.load offset={{gemm.M}} (local.get $job)) (i32.const 3)) (i32.const 2)))
    (local.set $G (i32.load offset={{gemm.panelsPerGroup}} (local.get $job)))
    ;; 1. packing, unless B is packed already: panels taken from the counter at gemm.nextPanel; gemm.panelsPacked
    ;; counts the packed ones (the last to finish one wakes any thread asleep in $await_packing)
    (if (i32.eqz (i32.load offset={{gemm.packed}} (local.get $job)))
      (then
        (block $packed
          (loop $pack
            (if (i32.gt_u (local.get $nth) (i32.const 1))
              (then (local.set $p (i32.atomic.rmw.add offset={{gemm.nextPanel}} (local.get $job) (i32.const 1)))))
            (br_if $packed (i32.ge_u (local.get $p) (local.get $NP)))
            (call $pack_panel (local.get $job) (local.get $p))
            (if (i32.gt_u (local.get $nth) (i32.const 1))
              (then
                (if (i32.eq (i32.add (i32.atomic.rmw.add offset={{gemm.panelsPacked}} (local.get $job) (i32.const 1)) (i32.const 1)) (local.get $NP))
                  (then (drop (memory.atomic.notify offset={{gemm.panelsPacked}} (local.get $job) (i32.const -1))))))
              (else (local.set $p (i32.add (local.get $p) (i32.const 1)))))
            (br $pack)))
        ;; 2. every panel packed
        (if (i32.gt_u (local.get $nth) (i32.const 1)) (then (call $await_packing (local.get $job) (local.get $NP))))))
    ;; 3. work items (panel group, chunk of 4 row tiles), group by group: taken from the counter at
    ;; shared.nextItem (0 at the start) by whichever thread is free, so a thread the machine slows down does
    ;; fewer of them instead of holding the others up at the end. (One thread: in order, no atomics.)
    (local.set $nch (i32.shr_u (i32.add (local.get $MT) (i32.const 3)) (i32.const 2)))
    (local.set $items (i32.mul (local.get $nch) (i32.div_u (i32.add (local.get $NP) (i32.sub (local.get $G) (i32.const 1))) (local.get $G))))
    (local.set $item (i32.const 0))
    (block $done
      (loop $next
        (if (i32.gt_u (local.get $nth) (i32.const 1))
          (then (local.set $item (i32.atomic.rmw.add offset={{shared.nextItem}} (local.get $job) (i32.const 1)))))
        (br_if $done (i32.ge_u (local.get $item) (local.get $items)))
        (local.set $g0 (i32.mul (i32.div_u (local.get $item) (local.get $nch)) (local.get $G)))
        (local.set $gEnd (i32.add (local.get $g0) (local.get $G)))
        (if (i32.gt_u (local.get $gEnd) (local.get $NP)) (then (local.set $gEnd (local.get $NP))))
        (local.set $mt (i32.shl (i32.rem_u (local.get $item) (local.get $nch)) (i32.const 2)))
        (local.set $mtEnd (i32.add (local.get $mt) (i32.const 4)))
        (if (i32.gt_u (local.get $mtEnd) (local.get $MT)) (then (local.set $mtEnd (local.get $MT))))
        (loop $row
          (local.set $p (local.get $g0))
          (loop $panel
            (call $tile (local.get $job) (local.get $tid) (i32.shl (local.get $mt) (i32.const 2)) (local.get $p))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br_if $panel (i32.lt_u (local.get $p) (local.get $gEnd))))
          (local.set $mt (i32.add (local.get $mt) (i32.const 1)))
          (br_if $row (i32.lt_u (local.get $mt) (local.get $mtEnd))))
        (local.set $item (i32.add (local.get $item) (i32.const 1)))
        (br $next))))

  ;; ---- Row operations: LayerNorm and softmax, rows split between the threads like A's row tiles ----
  ;; Job fields when shared.op is 1 or 2: the rows.* of job.json (rows.residual 0: none; rows.eps f32).
  ;; y may be x (in place). cols must be a multiple of 4 for LayerNorm; softmax takes any cols.

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

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


;; ---- Multi-head self-attention, every batch row and head in one job ----
  ;; Job fields when shared.op is 3 (q, k, v and out are token-major [B·T, H], head h in columns
  ;; h·d … (h+1)·d, row stride H floats):
  ;;   the attention.* of job.json: attention.keyBias is [B, T], added to every query's scores (0: none);
  ;;   attention.rows is R, the query rows per block; attention.scale is f32; shared.nextItem counts items.
  ;; A work item is (batch row b, head h); the threads take items from the counter until none are
  ;; left. Per item, on the thread's own scratch: k_h and v_h packed once, then per block of R query rows
  ;;   S [m, T] = scale·(q_h · k_hᵀ) + keyBias[b]   (a one-thread GEMM: A = q rows, B = k rows given as [T, d])
  ;;   P = softmax(S) in place                        (the row op, one thread)
  ;;   out rows, columns of head h = P · v_h         (a one-thread GEMM: B = v_h [T, d], row stride H)
  ;; Scratch of thread t at scratch + t·bytes: 0 and 256 the two GEMMs' job structs (each with its
  ;; scratch tile), 512 the row job, 576 k_h packed (4·d·T₈ bytes, n₈ = n rounded up to 8), then v_h
  ;; packed (4·T·d₈), then S (4·R·T).
  (func $attention (param $job i32) (param $tid i32) (param $nth i32)
    (local $B i32) (local $T i32) (local $heads i32) (local $d i32) (local $H4 i32) (local $R i32)
    (local $items i32) (local $item i32) (local $b i32) (local $h i32) (local $r0 i32) (local $m i32) (local $p i32)
    (local $base i32) (local $g1 i32) (local $g2 i32) (local $sm i32) (local $S i32) (local $colh i32) (local $rows i32)
    (local.set $B (i32.load offset={{attention.batch}} (local.get $job)))
    (local.set $T (i32.load offset={{attention.T}} (local.get $job)))
    (local.set $heads (i32.load offset={{attention.heads}} (local.get $job)))
    (local.set $d (i32.load offset={{attention.d}} (local.get $job)))
    (local.set $H4 (i32.shl (i32.load offset={{attention.H}} (local.get $job)) (i32.const 2)))
    (local.set $R (i32.load offset={{attention.rows}} (local.get $job)))
    (local.set $items (i32.mul (local.get $B) (local.get $heads)))
    (local.set $base (i32.add (i32.load offset={{attention.scratch}} (local.get $job)) (i32.mul (local.get $tid) (i32.load offset={{attention.scratchPerThread}} (local.get $job)))))
    (local.set $g1 (local.get $base))
    (local.set $g2 (i32.add (local.get $base) (i32.const 256)))
    (local.set $sm (i32.add (local.get $base) (i32.const 512)))
    (memory.fill (local.get $base) (i32.const 0) (i32.const 576))
    ;; GEMM 1: S = scale·(q_h·k_hᵀ) + bias; B = k_h given as [T, d] (bT), K = d, N = T
    (i32.store offset={{gemm.lda}} (local.get $g1) (i32.shr_u (local.get $H4) (i32.const 2)))
    (i32.store offset={{gemm.ldb}} (local.get $g1) (i32.shr_u (local.get $H4) (i32.const 2)))
    (i32.store offset={{gemm.bT}} (local.get $g1) (i32.const 1))
    (i32.store offset={{gemm.ldc}} (local.get $g1) (local.get $T))
    (i32.store offset={{gemm.N}} (local.get $g1) (local.get $T))
    (i32.store offset={{gemm.K}} (local.get $g1) (local.get $d))
    (i32.store offset={{gemm.pack}} (local.get $g1) (i32.add (local.get $base) (i32.const 576)))
    (i32.store offset={{gemm.panelsPerGroup}} (local.get $g1) (i32.const 1048576)) ;; every panel in one group
    (i32.store offset={{gemm.scale}} (local.get $g1) (i32.load offset={{attention.scale}} (local.get $job)))
    ;; GEMM 2: out = P·v_h; A = S [m, T], B = v_h [T, d], K = T, N = d, C with row stride H
    (i32.store offset={{gemm.lda}} (local.get $g2) (local.get $T))
    (i32.store offset={{gemm.ldb}} (local.get $g2) (i32.shr_u (local.get $H4) (i32.const 2)))
    (i32.store offset={{gemm.ldc}} (local.get $g2) (i32.shr_u (local.get $H4) (i32.const 2)))
    (i32.store offset={{gemm.N}} (local.get $g2) (local.get $d))
    (i32.store offset={{gemm.K}} (local.get $g2) (local.get $T))
    (i32.store offset={{gemm.pack}} (local.get $g2) (i32.add (i32.load offset={{gemm.pack}} (local.get $g1))
      (i32.shl (i32.mul (local.get $d) (i32.and (i32.add (local.get $T) (i32.const 7)) (i32.const -8))) (i32.const 2))))
    (i32.store offset={{gemm.panelsPerGroup}} (local.get $g2) (i32.const 1048576))
    (local.set $S (i32.add (i32.load offset={{gemm.pack}} (local.get $g2))
      (i32.shl (i32.mul (local.get $T) (i32.and (i32.add (local.get $d) (i32.const 7)) (i32.const -8))) (i32.const 2))))
    (i32.store offset={{gemm.a}} (local.get $g2) (local.get $S))
    (i32.store offset={{gemm.c}} (local.get $g1) (local.get $S))
    ;; the row job: softmax over rows of T, in place on S
    (i32.store offset={{rows.x}} (local.get $sm) (local.get $S))
    (i32.store offset={{rows.cols}} (local.get $sm) (local.get $T))
    (i32.store offset={{rows.y}} (local.get $sm) (local.get $S))
    (block $done
      (loop $next
        (br_if $done (i32.atomic.load offset={{shared.abort}} (local.get $job))) ;; another thread failed
        (local.set $item (i32.atomic.rmw.add offset={{shared.nextItem}} (local.get $job) (i32.const 1)))
        (br_if $done (i32.ge_u (local.get $item) (local.get $items)))
        ;; item = b·heads + h
        (local.set $h (i32.rem_u (local.get $item) (local.get $heads)))
        (local.set $b (i32.div_u (local.get $item) (local.get $heads)))
        (local.set $colh (i32.shl (i32.mul (local.get $h) (local.get $d)) (i32.const 2))) ;; bytes to head h's columns
        (local.set $rows (i32.add (i32.mul (i32.mul (local.get $b) (local.get $T)) (local.get $H4)) (local.get $colh))) ;; row b·T, head h
        (i32.store offset={{gemm.b}} (local.get $g1) (i32.add (i32.load offset={{attention.k}} (local.get $job)) (local.get $rows)))
        (i32.store offset={{gemm.bias}} (local.get $g1) (if (result i32) (i32.load offset={{attention.keyBias}} (local.get $job))
          (then (i32.add (i32.load offset={{attention.keyBias}} (local.get $job)) (i32.shl (i32.mul (local.get $b) (local.get $T)) (i32.const 2))))
          (else (i32.const 0))))
        (i32.store offset={{gemm.b}} (local.get $g2) (i32.add (i32.load offset={{attention.v}} (local.get $job)) (local.get $rows)))
        ;; pack k_h and v_h once for all blocks of queries
        (i32.store offset={{gemm.packed}} (local.get $g1) (i32.const 0))
        (i32.store offset={{gemm.packed}} (local.get $g2) (i32.const 0))
        (local.set $p (i32.const 0))
        (loop $pk
          (call $pack_panel (local.get $g1) (local.get $p))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br_if $pk (i32.lt_u (i32.shl (local.get $p) (i32.const 3)) (local.get $T))))
        (local.set $p (i32.const 0))
        (loop $pv
          (call $pack_panel (local.get $g2) (local.get $p))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br_if $pv (i32.lt_u (i32.shl (local.get $p) (i32.const 3)) (local.get $d))))
        (i32.store offset={{gemm.packed}} (local.get $g1) (i32.const 1))
        (i32.store offset={{gemm.packed}} (local.get $g2) (i32.const 1))
        (local.set $r0 (i32.const 0))
        (loop $block
          (local.set $m (i32.sub (local.get $T) (local.get $r0)))
          (if (i32.gt_u (local.get $m) (local.get $R)) (then (local.set $m (local.get $R))))
          ;; S = scale·(q_h[r0 …] · k_hᵀ) + keyBias[b]
          (i32.store offset={{gemm.a}} (local.get $g1) (i32.add (i32.load offset={{attention.q}} (local.get $job))
            (i32.add (local.get $rows) (i32.mul (local.get $r0) (local.get $H4)))))
          (i32.store offset={{gemm.M}} (local.get $g1) (local.get $m))
          (call $gemm (local.get $g1) (i32.const 0) (i32.const 1))
          ;; P = softmax(S)
          (i32.store offset={{rows.rows}} (local.get $sm) (local.get $m))
          (call $softmax (local.get $sm) (i32.const 0) (i32.const 1))
          ;; out[b·T + r0 …, head h] = P · v_h
          (i32.store offset={{gemm.c}} (local.get $g2) (i32.add (i32.load offset={{attention.out}} (local.get $job))
            (i32.add (local.get $rows) (i32.mul (local.get $r0) (local.get $H4)))))
          (i32.store offset={{gemm.M}} (local.get $g2) (local.get $m))
          (call $gemm (local.get $g2) (i32.const 0) (i32.const 1))
          (local.set $r0 (i32.add (local.get $r0) (local.get $R)))
          (br_if $block (i32.lt_u (local.get $r0) (local.get $T))))
        (br $next))))

  ;; Thread `tid` of `nth` of a job: its shared.op is 0 GEMM, 1 LayerNorm, 2 softmax, 3 attention.
  (func (export "run") (param $job i32) (param $tid i32) (param $nth i32)
    (call $set_constants (i32.add (i32.add (local.get $job) (i32.const 1152)) (i32.shl (local.get $tid) (i32.const 7))))
    (block $unknown
      (block $attention
        (block $softmax
          (block $layernorm
            (block $gemm
              (br_table $gemm $layernorm $softmax $attention $unknown (i32.load offset={{shared.op}} (local.get $job))))
            (return (call $gemm (local.get $job) (local.get $tid) (local.get $nth))))
          (return (call $layernorm (local.get $job) (local.get $tid) (local.get $nth))))
        (return (call $softmax (local.get $job) (local.get $tid) (local.get $nth))))
      (return (call $attention (local.get $job) (local.get $tid) (local.get $nth))))
    unreachable)

  ;; The 128-bit FMA peak of one thread: `n` iterations of 10 independent f32x4.relaxed_madd (80 FLOP
  ;; per iteration: 10 × 4 lanes × 2), on registers only. The result only keeps V8 from dropping the loop.
  (func (export "peak") (param $n i32) (result f32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $x4 v128) (local $x5 v128) (local $x6 v128) (local $x7 v128) (local $x8 v128) (local $x9 v128) (local $m v128) (local $a v128)
    (local.set $m (f32x4.splat (f32.const 0.999)))
    (local.set $a (f32x4.splat (f32.const 0.001)))
    (loop $l
      (local.set $x0 (f32x4.relaxed_madd (local.get $x0) (local.get $m) (local.get $a)))
      (local.set $x1 (f32x4.relaxed_madd (local.get $x1) (local.get $m) (local.get $a)))
      (local.set $x2 (f32x4.relaxed_madd (local.get $x2) (local.get $m) (local.get $a)))
      (local.set $x3 (f32x4.relaxed_madd (local.get $x3) (local.get $m) (local.get $a)))
      (local.set $x4 (f32x4.relaxed_madd (local.get $x4) (local.get $m) (local.get $a)))
      (local.set $x5 (f32x4.relaxed_madd (local.get $x5) (local.get $m) (local.get $a)))
      (local.set $x6 (f32x4.relaxed_madd (local.get $x6) (local.get $m) (local.get $a)))
      (local.set $x7 (f32x4.relaxed_madd (local.get $x7) (local.get $m) (local.get $a)))
      (local.set $x8 (f32x4.relaxed_madd (local.get $x8) (local.get $m) (local.get $a)))
      (local.set $x9 (f32x4.relaxed_madd (local.get $x9) (local.get $m) (local.get $a)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (f32x4.extract_lane 0 (f32x4.add (f32x4.add (f32x4.add (local.get $x0) (local.get $x1)) (f32x4.add (local.get $x2) (local.get $x3)))
      (f32x4.add (f32x4.add (f32x4.add (local.get $x4) (local.get $x5)) (f32x4.add (local.get $x6) (local.get $x7)))
        (f32x4.add (local.get $x8) (local.get $x9))))))
)
