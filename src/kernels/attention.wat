;; Part of the kernel module (kernel.wat): multi-head self-attention.
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
