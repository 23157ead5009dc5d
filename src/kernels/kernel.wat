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
;; shared.callerSpins (set by kernels/pool.ts) says the calling thread, tid 0, may not block (a page's main thread);
;; shared.op picks the function; gemm.activation 1 is exact GELU in the store (see $gelu4); gemm.scale
;; (f32, 0 bits: none) multiplies the product before the bias; gemm.packed says B is in the pack buffer.
;;   128 + 128·tid: a scratch 4×8 tile per thread for edge tiles.
;;   1152 + 128·tid: the thread's table of constants for e^x and GELU (written by `run`).
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; #include maths.wat
  ;; #include gemm.wat
  ;; #include rows.wat
  ;; #include attention.wat

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
