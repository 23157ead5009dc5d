;; Part of the kernel module (kernel.wat): the GEMM (see the top of kernel.wat).
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
  (func $await_packing (param $job i32) (param $NP i32) (param $tid i32)
    (local $done i32) (local $spin i32) (local $i i32)
    (block $out
      (loop $wait
        (local.set $done (i32.atomic.load offset={{gemm.panelsPacked}} (local.get $job)))
        (br_if $out (i32.ge_u (local.get $done) (local.get $NP)))
        (br_if $out (i32.atomic.load offset={{shared.abort}} (local.get $job)))
        ;; spin briefly (the last panel is normally microseconds away), then sleep in 1 ms waits; the calling
        ;; thread (tid 0) when it may not sleep (shared.callerSpins: a page's main thread, where a wait traps)
        ;; spins on instead, about as long (300,000 loads of the counter, or until it moves)
        (local.set $spin (i32.add (local.get $spin) (i32.const 1)))
        (if (i32.gt_u (local.get $spin) (i32.const 20000))
          (then
            (if (i32.and (i32.eqz (local.get $tid)) (i32.ne (i32.load offset={{shared.callerSpins}} (local.get $job)) (i32.const 0)))
              (then
                (local.set $i (i32.const 0))
                (loop $pause
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $pause (i32.and (i32.lt_u (local.get $i) (i32.const 300000))
                    (i32.eq (i32.atomic.load offset={{gemm.panelsPacked}} (local.get $job)) (local.get $done))))))
              (else (drop (memory.atomic.wait32 offset={{gemm.panelsPacked}} (local.get $job) (local.get $done) (i64.const 1000000)))))))
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
        (if (i32.gt_u (local.get $nth) (i32.const 1)) (then (call $await_packing (local.get $job) (local.get $NP) (local.get $tid))))))
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
