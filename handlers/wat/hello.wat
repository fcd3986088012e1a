;; hello: the smallest useful handler. Reads the request target with req_uri,
;; looks for a `name` query parameter and answers `hello\n`, or
;; `hello, NAME\n` when one is given (used as sent, not percent-decoded).
;;
;;   curl http://127.0.0.1:8080/hello
;;   curl 'http://127.0.0.1:8080/hello?name=Ada'
(module
  (import "wasmlet" "req_uri" (func $req_uri (param i32 i32) (result i32)))
  (import "wasmlet" "resp_header" (func $resp_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "content-type")               ;; 12 bytes
  (data (i32.const 16) "text/plain; charset=utf-8") ;; 25 bytes
  (data (i32.const 48) "hello")                     ;; 5 bytes
  (data (i32.const 53) ", ")                        ;; 2 bytes
  (data (i32.const 55) "\n")
  ;; The request target is read into 1024..3072 (2048 bytes).

  (func (export "handle")
    (local $len i32) (local $i i32) (local $start i32) (local $end i32)
    (drop (call $resp_header (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 25)))
    ;; req_uri returns the full length; a longer target is cut to the buffer.
    (local.set $len (call $req_uri (i32.const 1024) (i32.const 2048)))
    (if (i32.gt_u (local.get $len) (i32.const 2048))
      (then (local.set $len (i32.const 2048))))
    ;; Find `?name=` or `&name=`: the value starts after it.
    (block $found
      (loop $scan
        (br_if $found (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.and
              (i32.or
                (i32.eq (i32.load8_u offset=1024 (local.get $i)) (i32.const 0x3f))   ;; ?
                (i32.eq (i32.load8_u offset=1024 (local.get $i)) (i32.const 0x26)))  ;; &
              (i32.and
                (i32.eq (i32.load offset=1025 (local.get $i)) (i32.const 0x656d616e)) ;; name
                (i32.eq (i32.load8_u offset=1029 (local.get $i)) (i32.const 0x3d))))  ;; =
          (then
            (local.set $start (i32.add (local.get $i) (i32.const 6)))
            (br $found)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    ;; The value ends at the next `&` or at the end of the target.
    (if (local.get $start)
      (then
        (local.set $end (local.get $start))
        (block $ended
          (loop $value
            (br_if $ended (i32.ge_u (local.get $end) (local.get $len)))
            (br_if $ended (i32.eq (i32.load8_u offset=1024 (local.get $end)) (i32.const 0x26)))
            (local.set $end (i32.add (local.get $end) (i32.const 1)))
            (br $value)))))
    (drop (call $resp_write (i32.const 48) (i32.const 5)))
    (if (i32.gt_u (local.get $end) (local.get $start))
      (then
        (drop (call $resp_write (i32.const 53) (i32.const 2)))
        (drop (call $resp_write
          (i32.add (i32.const 1024) (local.get $start))
          (i32.sub (local.get $end) (local.get $start))))))
    (drop (call $resp_write (i32.const 55) (i32.const 1)))))
