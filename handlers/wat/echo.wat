;; echo: streams the request body back in 64-byte chunks while it is still
;; arriving (req_body_read and resp_write are async: the handler waits for the
;; client without holding a thread). The request's content-type is copied.
;; Only POST is exported, so any other verb gets 405 with `Allow: POST`.
;;
;;   curl --data-binary 'hi there' http://127.0.0.1:8080/echo
(module
  (import "wasmlet" "req_header" (func $req_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "req_body_read" (func $req_body_read (param i32 i32) (result i32)))
  (import "wasmlet" "resp_header" (func $resp_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "content-type")  ;; 12 bytes
  ;; 256..512: the content-type value; 1024..1088: the body chunk.

  (func (export "handle_post")
    (local $len i32) (local $n i32)
    ;; -1 when absent; a value longer than the buffer is not copied.
    (local.set $len (call $req_header (i32.const 0) (i32.const 12) (i32.const 256) (i32.const 256)))
    (if (i32.and (i32.gt_s (local.get $len) (i32.const 0))
                 (i32.le_s (local.get $len) (i32.const 256)))
      (then
        (drop (call $resp_header (i32.const 0) (i32.const 12) (i32.const 256) (local.get $len)))))
    (block $done
      (loop $chunk
        ;; 0 at the end of the body, negative if the client broke it off.
        (local.set $n (call $req_body_read (i32.const 1024) (i32.const 64)))
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        ;; Non-zero once the client has gone: stop.
        (br_if $done (call $resp_write (i32.const 1024) (local.get $n)))
        (br $chunk)))))
