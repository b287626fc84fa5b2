;;; stele-verify.el --- Check Stele log entries from Emacs  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The Stele authors

;; Author: The Stele authors
;; SPDX-License-Identifier: Apache-2.0

;; This file is not part of GNU Emacs.  It is part of the stele package
;; (see stele.el for the license and the package's metadata).

;;; Commentary:

;; `stele-verify-entry' fetches an entry of the Stele log and its
;; inclusion proof, checks the leaf hash, folds the RFC 6962 proof up
;; to the checkpoint's root and checks the checkpoint's Ed25519
;; signature against `stele-verifier-key'.  Ed25519 and the Merkle
;; proofs are implemented here in Emacs Lisp (bignums and
;; `secure-hash'), so nothing outside Emacs is trusted.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'stele)

(defvar json-false)
(defvar json-null)
(defvar json-encoding-pretty-print)
(declare-function json-encode "json" (object))


(defun stele--b64 (string)
  "Decode the base64 STRING into bytes, or nil."
  (and (stringp string) (ignore-errors (base64-decode-string string))))

(defun stele--hash-children (left right)
  "The RFC 6962 interior node hash of LEFT and RIGHT."
  (secure-hash 'sha256 (concat (unibyte-string 1) left right) nil nil t))

(defun stele-leaf-hash (leaf)
  "The RFC 6962 leaf hash of the bytes LEAF."
  (secure-hash 'sha256 (concat (unibyte-string 0) leaf) nil nil t))

(defun stele-inclusion-root (index size leaf-hash proof)
  "The root that PROOF (a list of hashes) proves LEAF-HASH at INDEX under.
SIZE is the tree size.  Returns nil when the proof has the wrong shape
\(RFC 9162, section 2.1.3.2)."
  (when (and (integerp index) (integerp size) (<= 0 index) (< index size))
    (let ((fn index) (sn (1- size)) (r leaf-hash) (ok t))
      (dolist (p proof)
        (when ok
          (if (= sn 0)
              (setq ok nil)
            (if (or (= 1 (logand fn 1)) (= fn sn))
                (progn
                  (setq r (stele--hash-children p r))
                  (while (not (or (= 1 (logand fn 1)) (= fn 0)))
                    (setq fn (ash fn -1) sn (ash sn -1))))
              (setq r (stele--hash-children r p)))
            (setq fn (ash fn -1) sn (ash sn -1)))))
      (and ok (= sn 0) r))))

;;;;; Ed25519 (RFC 8032), for checkpoint signatures

(defconst stele--ed-p (- (ash 1 255) 19))
(defconst stele--ed-l (+ (ash 1 252) 27742317777372353535851937790883648493))
(defvar stele--ed-consts nil
  "(D SQRT-M1 BASE), computed on first use.")

(defun stele--modpow (base exp mod)
  "BASE to the power EXP modulo MOD."
  (let ((r 1) (b (mod base mod)))
    (while (> exp 0)
      (when (= 1 (logand exp 1)) (setq r (mod (* r b) mod)))
      (setq exp (ash exp -1) b (mod (* b b) mod)))
    r))

(defun stele--ed-inv (x)
  "The inverse of X modulo p."
  (stele--modpow x (- stele--ed-p 2) stele--ed-p))

(defun stele--ed-const ()
  "The curve constants, computed once."
  (or stele--ed-consts
      (let* ((p stele--ed-p)
             (d (mod (* -121665 (stele--ed-inv 121666)) p))
             (sqrt-m1 (stele--modpow 2 (/ (1- p) 4) p)))
        (setq stele--ed-consts (list d sqrt-m1 nil))
        (let ((base (stele--ed-recover (mod (* 4 (stele--ed-inv 5)) p) 0)))
          (setq stele--ed-consts (list d sqrt-m1 base))))))

(defun stele--ed-recover (y sign)
  "The point with coordinate Y and x of parity SIGN, or nil."
  (let* ((p stele--ed-p)
         (d (nth 0 stele--ed-consts))
         (sqrt-m1 (nth 1 stele--ed-consts))
         (yy (mod (* y y) p))
         (x2 (mod (* (- yy 1) (stele--ed-inv (+ (* d yy) 1))) p)))
    (when (< y p)
      (if (= x2 0)
          (and (= sign 0) (vector 0 y 1 0))
        (let ((x (stele--modpow x2 (/ (+ p 3) 8) p)))
          (unless (= 0 (mod (- (* x x) x2) p))
            (setq x (mod (* x sqrt-m1) p)))
          (when (= 0 (mod (- (* x x) x2) p))
            (unless (= (logand x 1) sign) (setq x (- p x)))
            (vector x y 1 (mod (* x y) p))))))))

(defun stele--ed-add (pt qt)
  "The sum of the points PT and QT (extended coordinates)."
  (let* ((p stele--ed-p)
         (d (nth 0 stele--ed-consts))
         (a (mod (* (- (aref pt 1) (aref pt 0)) (- (aref qt 1) (aref qt 0))) p))
         (b (mod (* (+ (aref pt 1) (aref pt 0)) (+ (aref qt 1) (aref qt 0))) p))
         (c (mod (* 2 (aref pt 3) (aref qt 3) d) p))
         (dd (mod (* 2 (aref pt 2) (aref qt 2)) p))
         (e (- b a)) (f (- dd c)) (g (+ dd c)) (h (+ b a)))
    (vector (mod (* e f) p) (mod (* g h) p) (mod (* f g) p) (mod (* e h) p))))

(defun stele--ed-mul (s pt)
  "The point PT multiplied by the scalar S."
  (let ((q (vector 0 1 1 0)))
    (while (> s 0)
      (when (= 1 (logand s 1)) (setq q (stele--ed-add q pt)))
      (setq pt (stele--ed-add pt pt) s (ash s -1)))
    q))

(defun stele--le-int (bytes)
  "The little-endian integer of the unibyte string BYTES."
  (let ((n 0) (i (length bytes)))
    (while (> i 0)
      (setq i (1- i)
            n (logior (ash n 8) (aref bytes i))))
    n))

(defun stele--ed-encode (pt)
  "The 32-byte encoding of the point PT."
  (let* ((p stele--ed-p)
         (zi (stele--ed-inv (aref pt 2)))
         (x (mod (* (aref pt 0) zi) p))
         (y (mod (* (aref pt 1) zi) p))
         (n (logior y (ash (logand x 1) 255)))
         (out (make-string 32 0)))
    (dotimes (i 32) (aset out i (logand (ash n (* -8 i)) 255)))
    (string-to-unibyte out)))

(defun stele-ed25519-verify (public-key message signature)
  "Whether SIGNATURE is a valid Ed25519 signature of MESSAGE by PUBLIC-KEY.
All three are unibyte strings (32, any and 64 bytes)."
  (and (= (length public-key) 32) (= (length signature) 64)
       (not (multibyte-string-p message))
       (progn (stele--ed-const) t)
       (let* ((yk (stele--le-int public-key))
              (a (stele--ed-recover (logand yk (1- (ash 1 255))) (ash yk -255)))
              (r-bytes (substring signature 0 32))
              (s (stele--le-int (substring signature 32))))
         (and a (< s stele--ed-l)
              (let* ((h (mod (stele--le-int
                              (secure-hash 'sha512 (concat r-bytes public-key message)
                                           nil nil t))
                             stele--ed-l))
                     (neg-a (vector (mod (- (aref a 0)) stele--ed-p) (aref a 1) 1
                                    (mod (- (aref a 3)) stele--ed-p)))
                     (r (stele--ed-add (stele--ed-mul s (nth 2 stele--ed-consts))
                                       (stele--ed-mul h neg-a))))
                (string= (stele--ed-encode r) r-bytes))))))

;;;;; Signed notes and checkpoints

(defun stele-parse-verifier-key (vkey)
  "Parse the note verifier key VKEY: (NAME KEY-ID PUBLIC-KEY), or nil.
KEY-ID is 4 bytes, PUBLIC-KEY the 32-byte Ed25519 key; the key id is
checked against the name and key."
  (when (and (stringp vkey)
             (string-match "\\`\\([^+]+\\)\\+\\([0-9a-f]\\{8\\}\\)\\+\\([A-Za-z0-9+/=]+\\)\\'"
                           (string-trim vkey)))
    (let ((parts (list (match-string 1 (string-trim vkey))
                       (match-string 2 (string-trim vkey))
                       (match-string 3 (string-trim vkey)))))
      (let* ((name (nth 0 parts))
             (id (stele--decode-hex (nth 1 parts)))
             (data (stele--b64 (nth 2 parts))))
        (when (and id (= (length id) 4) data (= (length data) 33) (= (aref data 0) 1))
          (let ((want (substring (secure-hash 'sha256
                                              (concat (encode-coding-string name 'utf-8)
                                                      "\n" data)
                                              nil nil t)
                                 0 4)))
            (and (string= want id)
                 (list name id (substring data 1)))))))))

(defun stele--decode-hex (hex)
  "The bytes of the HEX string."
  (let ((out (make-string (/ (length hex) 2) 0)))
    (dotimes (i (length out))
      (aset out i (string-to-number (substring hex (* 2 i) (+ 2 (* 2 i))) 16)))
    (string-to-unibyte out)))

(defun stele-parse-checkpoint (text &optional vkey)
  "Parse the signed checkpoint TEXT; check its signature with VKEY.
Returns a plist: :origin, :size, :root (bytes), :signature (`valid',
`invalid', `missing' or `unchecked'), or nil if TEXT is malformed."
  (let ((sep (string-search "\n\n" text)))
    (when sep
      (let* ((body (substring text 0 (1+ sep)))
             (lines (split-string body "\n" t))
             (sigs (split-string (substring text (+ 2 sep)) "\n" t))
             (size (and (nth 1 lines) (string-match-p "\\`[0-9]+\\'" (nth 1 lines))
                        (string-to-number (nth 1 lines))))
             (root (stele--b64 (nth 2 lines)))
             (key (and vkey (stele-parse-verifier-key vkey)))
             (signature
              (cond
               ((null vkey) 'unchecked)
               ((null key) 'invalid)
               (t (let ((prefix (concat "\N{EM DASH} " (nth 0 key) " "))
                        (result 'missing))
                    (dolist (line sigs result)
                      (when (string-prefix-p prefix line)
                        (let ((raw (stele--b64 (substring line (length prefix)))))
                          (when (and raw (= (length raw) 68)
                                     (string= (substring raw 0 4) (nth 1 key)))
                            (setq result
                                  (if (stele-ed25519-verify
                                       (nth 2 key) (encode-coding-string body 'utf-8)
                                       (substring raw 4))
                                      'valid
                                    'invalid)))))))))))
        (when (and size root (= (length root) 32))
          (list :origin (nth 0 lines) :size size :root root :signature signature))))))

;;;###autoload
(defun stele-verify-entry (index)
  "Show entry INDEX of the log and check its inclusion proof.
Checks that the leaf hashes to the entry's leaf hash, that the
inclusion proof leads from it to the root of the signed checkpoint,
and (with `stele-verifier-key') the checkpoint's Ed25519 signature.
Returns a plist of the results."
  (interactive (list (read-number "Entry index: "
                                  (or (nth 1 stele--last-ack) 0))))
  (let* ((base (string-remove-suffix "/" stele-server-url))
         (header (cond ((stele--token-valid-p) (concat "Bearer " stele--access-token))
                       ((ignore-errors (stele--api-key))
                        (concat "Bearer " (stele--api-key)))))
         (entry-url (format "%s/v1/entries/%d" base index))
         ;; The log is public: a credential that may not read the event
         ;; still gets the leaf, without it.
         (entry (condition-case err
                    (stele--http-sync entry-url header)
                  (stele-http-error
                   (if (and header (memql (nth 2 err) '(401 403)))
                       (stele--http-sync entry-url)
                     (signal (car err) (cdr err))))))
         (proof (stele--http-sync (format "%s/v1/proofs/inclusion?index=%d" base index)))
         (leaf (stele--b64 (stele--get entry 'leaf)))
         (leaf-hash (stele--b64 (stele--get entry 'leaf_hash)))
         (leaf-ok (and leaf leaf-hash (string= (stele-leaf-hash leaf) leaf-hash)))
         (same-leaf (equal (stele--get proof 'leaf_hash) (stele--get entry 'leaf_hash)))
         (checkpoint (and (stringp (stele--get proof 'checkpoint))
                          (stele-parse-checkpoint (stele--get proof 'checkpoint)
                                                  stele-verifier-key)))
         (hashes (mapcar #'stele--b64 (append (stele--get proof 'proof) nil)))
         (size (stele--get proof 'size))
         (root (and leaf-hash (not (memq nil hashes))
                    (stele-inclusion-root index size leaf-hash hashes)))
         (inclusion-ok (and root checkpoint
                            (eql size (plist-get checkpoint :size))
                            (string= root (plist-get checkpoint :root))))
         (signature (if checkpoint (plist-get checkpoint :signature) 'missing))
         (ok (and leaf-ok same-leaf inclusion-ok (not (memq signature '(invalid missing)))))
         (result (list :index index :ok ok :leaf-ok leaf-ok :inclusion-ok inclusion-ok
                       :signature signature :size size
                       :origin (plist-get checkpoint :origin)
                       :root (and root (base64-encode-string root t))
                       :event (stele--get entry 'event)
                       :record (stele--get entry 'record))))
    (when (called-interactively-p 'any)
      (stele--show-verification result entry))
    result))

(defun stele--show-verification (result entry)
  "Show the verification RESULT of ENTRY in a buffer."
  (with-current-buffer (get-buffer-create "*stele-entry*")
    (let ((inhibit-read-only t)
          (mark (lambda (ok) (if ok (propertize "ok" 'face 'success)
                               (propertize "FAILED" 'face 'error)))))
      (erase-buffer)
      (insert (propertize (format "Stele entry %d\n\n" (plist-get result :index)) 'face 'bold)
              (format "Leaf hash:        %s\n" (funcall mark (plist-get result :leaf-ok)))
              (format "Inclusion proof:  %s (tree size %s, root %s)\n"
                      (funcall mark (plist-get result :inclusion-ok))
                      (plist-get result :size) (plist-get result :root))
              (format "Checkpoint:       %s, signature %s\n"
                      (or (plist-get result :origin) "?")
                      (pcase (plist-get result :signature)
                        ('valid (propertize "valid" 'face 'success))
                        ('unchecked "not checked (set `stele-verifier-key')")
                        (s (propertize (format "%s" s) 'face 'error))))
              (format "Verdict:          %s\n\n"
                      (if (plist-get result :ok) (propertize "VERIFIED" 'face 'success)
                        (propertize "NOT VERIFIED" 'face 'error)))
              "Record:\n"
              (stele--pretty (stele--get entry 'record))
              "\n\nEvent:\n"
              (if (stele--get entry 'event)
                  (stele--pretty (stele--get entry 'event))
                "(not readable with your credentials)")
              "\n")
      (special-mode)
      (goto-char (point-min)))
    (pop-to-buffer (current-buffer))))

(defun stele--pretty (json)
  "JSON (parsed) as indented text."
  (require 'json)
  (let ((json-encoding-pretty-print t) (json-false :false) (json-null :null))
    (json-encode json)))

(provide 'stele-verify)
;;; stele-verify.el ends here
