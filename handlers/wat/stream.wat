;; stream: writes `tick 1` .. `tick 5`, one line every 500 ms. The first
;; resp_write sends the head and each line reaches the client as it is
;; written, while the handler is still running.
;;
;;   curl -N http://127.0.0.1:8080/stream
(module
  (import "wasmlet" "resp_header" (func $resp_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (import "wasmlet" "sleep_ms" (func $sleep_ms (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "content-type")               ;; 12 bytes
  (data (i32.const 16) "text/plain; charset=utf-8") ;; 25 bytes
  (data (i32.const 48) "tick 0\n")                  ;; 7 bytes; the digit is at 53

  (func (export "handle")
    (local $i i32)
    (drop (call $resp_header (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 25)))
    (loop $tick
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (i32.store8 (i32.const 53) (i32.add (i32.const 0x30) (local.get $i)))
      ;; Non-zero once the client has gone: stop early.
      (if (call $resp_write (i32.const 48) (i32.const 7))
        (then (return)))
      (if (i32.lt_u (local.get $i) (i32.const 5))
        (then
          (call $sleep_ms (i64.const 500))
          (br $tick))))))
