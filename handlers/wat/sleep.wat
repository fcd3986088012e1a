;; sleep: waits one second on a host timer, then answers `slept 1000 ms\n`.
;; sleep_ms is async: while this request waits, the worker thread serves
;; others, so a thousand of these at once still finish in about a second.
;;
;;   curl http://127.0.0.1:8080/sleep
(module
  (import "wasmlet" "sleep_ms" (func $sleep_ms (param i64)))
  (import "wasmlet" "resp_header" (func $resp_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "content-type")               ;; 12 bytes
  (data (i32.const 16) "text/plain; charset=utf-8") ;; 25 bytes
  (data (i32.const 48) "slept 1000 ms\n")           ;; 14 bytes

  (func (export "handle")
    (call $sleep_ms (i64.const 1000))
    (drop (call $resp_header (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 25)))
    (drop (call $resp_write (i32.const 48) (i32.const 14)))))
