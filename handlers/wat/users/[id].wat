;; users/[id]: a dynamic route. The file name `[id]` matches any one path
;; segment and req_param reads it (percent-decoded): answers `user ID\n`.
;; An id longer than the 256-byte buffer gets 414 (req_param returns the full
;; length, so the handler can tell).
;;
;;   curl http://127.0.0.1:8080/users/42
(module
  (import "wasmlet" "req_param" (func $req_param (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_status" (func $resp_status (param i32) (result i32)))
  (import "wasmlet" "resp_header" (func $resp_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "content-type")               ;; 12 bytes
  (data (i32.const 16) "text/plain; charset=utf-8") ;; 25 bytes
  (data (i32.const 48) "id")                        ;; 2 bytes
  (data (i32.const 56) "user ")                     ;; 5 bytes
  (data (i32.const 61) "\n")
  (data (i32.const 64) "id too long\n")             ;; 12 bytes
  ;; 1024..1280: the id.

  (func (export "handle")
    (local $len i32)
    (drop (call $resp_header (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 25)))
    (local.set $len (call $req_param (i32.const 48) (i32.const 2) (i32.const 1024) (i32.const 256)))
    (if (i32.gt_s (local.get $len) (i32.const 256))
      (then
        (drop (call $resp_status (i32.const 414)))
        (drop (call $resp_write (i32.const 64) (i32.const 12)))
        (return)))
    (drop (call $resp_write (i32.const 56) (i32.const 5)))
    (drop (call $resp_write (i32.const 1024) (local.get $len)))
    (drop (call $resp_write (i32.const 61) (i32.const 1)))))
