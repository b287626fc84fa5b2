;;; stele-test.el --- End-to-end tests of stele.el against a real Stele server  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The Stele authors
;; SPDX-License-Identifier: Apache-2.0

;;; Commentary:

;; Run by test/emacs.test.ts, which starts a real `stele serve', a real
;; OpenID provider and a device-approval helper, then runs
;;
;;   emacs --batch -Q -L <compiled stele> -l ert -l stele-test.el \
;;         -f ert-run-tests-batch-and-exit
;;
;; with these environment variables:
;;
;;   STELE_TEST_URL          the server
;;   STELE_TEST_ADMIN_TOKEN  an admin API key, to read entries back
;;   STELE_TEST_AUTHINFO     an authinfo file holding a writer API key
;;   STELE_TEST_VKEY         the log's verifier key
;;   STELE_TEST_DEAD_URL     a URL where nothing listens
;;   STELE_TEST_ISSUER, STELE_TEST_CLIENT_ID, STELE_TEST_SCOPES,
;;   STELE_TEST_RESOURCE, STELE_TEST_USER  the identity provider and its user
;;   STELE_TEST_APPROVER     POST {url, user_code} there to approve a device
;;   STELE_TEST_EMACS, STELE_TEST_LISP_DIR  for child Emacs processes
;;   STELE_TEST_SITE_LISP    where Debian's elpa-* packages live (Magit, use-package)
;;   HOME                    a temporary directory

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'subr-x)
(require 'stele)
(require 'stele-verify)
(require 'package)
(require 'vc)
(require 'vc-git)
(require 'compile)

;;;; Harness

(defun stele-test--env (name)
  "The value of the environment variable NAME (an error if unset)."
  (or (getenv name) (error "Environment variable %s is not set" name)))

(defvar stele-test--acked (make-hash-table :test #'equal)
  "Event id -> log index, for every acknowledged event.")

(defvar stele-test--events nil
  "Events queued since the last setup, newest first.")

(add-hook 'stele-acknowledged-functions
          (lambda (pairs)
            (dolist (p pairs) (puthash (car p) (cdr p) stele-test--acked))))
(add-hook 'stele-enqueue-functions
          (lambda (event) (push event stele-test--events)))

(let ((site (getenv "STELE_TEST_SITE_LISP")))
  (when (and site (file-directory-p site))
    (dolist (dir (directory-files site t "\\`[^.]"))
      (when (file-directory-p dir) (add-to-list 'load-path dir t)))))

(defun stele-test--reset ()
  "Turn the mode off and forget all client state."
  (when stele-mode (stele-mode -1))
  (stele--cancel-timers)
  (stele--login-cancel)
  (setq stele--open nil stele--segments nil stele--queued 0 stele--inflight nil
        stele--backoff nil stele--last-error nil stele--last-ack nil stele--written nil
        stele--access-token nil stele--access-expiry nil stele--refresh-token nil
        stele--refresh-loaded nil stele--api-key nil stele--token-actor nil
        stele--login nil stele--oidc-config nil stele--refreshing nil
        stele--refresh-waiters nil stele--last-adopt 0 stele--identity-method nil
        stele-issuer nil)
  (setq stele-test--events nil))

(cl-defun stele-test--setup (&key (url (stele-test--env "STELE_TEST_URL")) spool
                                  (authinfo (stele-test--env "STELE_TEST_AUTHINFO"))
                                  (enable t))
  "Start from a clean state: server URL, a new spool directory, the API key.
SPOOL is the spool directory (default: a new one); AUTHINFO the
auth-source file.  ENABLE turns `stele-mode' on."
  (stele-test--reset)
  (setq stele-server-url url
        stele-spool-directory (or spool (make-temp-file "stele-spool-" t))
        stele-flush-delay 0.05
        stele-backoff-initial 0.2
        stele-backoff-max 2
        stele-request-timeout 10
        stele-record-noninteractive t
        stele-root-saves-privileged nil
        stele-verifier-key nil
        auth-sources (list authinfo)
        auth-source-do-cache nil
        user-mail-address "tester@example.com")
  (auth-source-forget-all-cached)
  (when enable (stele-mode 1)))

(defun stele-test--wait (pred &optional timeout)
  "Process events until PRED returns non-nil or TIMEOUT seconds pass.
Returns PRED's value."
  (let ((deadline (+ (float-time) (or timeout 20))) (v nil))
    (while (and (not (setq v (funcall pred))) (< (float-time) deadline))
      (accept-process-output nil 0.02))
    v))

(defun stele-test--event (action &optional pred timeout)
  "The newest queued event with ACTION (satisfying PRED), waiting for it."
  (stele-test--wait
   (lambda ()
     (cl-find-if (lambda (e) (and (equal (alist-get 'action e) action)
                                  (or (null pred) (funcall pred e))))
                 stele-test--events))
   timeout))

(defun stele-test--index (id &optional timeout)
  "The log index of the event ID, once the server acknowledged it."
  (stele-test--wait (lambda () (gethash id stele-test--acked)) timeout))

(defun stele-test--get (path &optional token)
  "GET PATH from the server (with TOKEN, default the admin key); the JSON."
  (let ((url-request-extra-headers
         `(("Authorization" . ,(concat "Bearer " (or token (stele-test--env "STELE_TEST_ADMIN_TOKEN"))))
           ("Accept" . "application/json")))
        (url-request-method "GET"))
    (let ((buf (url-retrieve-synchronously
                (concat (stele-test--env "STELE_TEST_URL") path) t t 10)))
      (unwind-protect
          (with-current-buffer buf
            (goto-char url-http-end-of-headers)
            (stele--json-parse
             (decode-coding-string (buffer-substring (point) (point-max)) 'utf-8)))
        (kill-buffer buf)))))

(defun stele-test--stored (id)
  "The entry the server stored for the event ID: (EVENT . ENTRY).
ENTRY is the whole answer: its `ingest' is who wrote the event (a
sealed leaf's `record' does not name them)."
  (let ((index (stele-test--index id)))
    (should index)
    (let ((entry (stele-test--get (format "/v1/entries/%d" index))))
      (cons (alist-get 'event entry) entry))))

(defun stele-test--file-sha256 (file)
  "SHA-256 of FILE's bytes."
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (insert-file-contents-literally file)
    (secure-hash 'sha256 (current-buffer))))

(defun stele-test--git (dir &rest args)
  "Run git ARGS in DIR; return its trimmed output (an error if it fails)."
  (with-temp-buffer
    (let* ((default-directory (file-name-as-directory dir))
           (status (apply #'call-process "git" nil t nil args)))
      (unless (eql status 0)
        (error "git %s failed: %s" (string-join args " ") (buffer-string)))
      (string-trim (buffer-string)))))

(defun stele-test--segment-files (dir)
  "The spool segment files in DIR."
  (directory-files dir t "-[0-9]+\\.ndjson\\'"))

(defun stele-test--check-common (event)
  "Check the fields every stored EVENT has."
  (should (equal (alist-get 'kind (alist-get 'source event)) "emacs"))
  (should (equal (alist-get 'version (alist-get 'source event)) emacs-version))
  (should (equal (alist-get 'host (alist-get 'source event)) (system-name)))
  (should (string-match-p "\\`[0-9a-f-]\\{36\\}\\'" (alist-get 'id event))))

;;;; Pure functions

(ert-deftest stele-test-derived-ids ()
  "Commit event ids are the UUIDv8 that the git hooks compute too."
  (should (equal (stele-commit-event-id "0123456789abcdef0123456789abcdef01234567")
                 "0adedf62-37a5-884e-bc50-8f690a200306"))
  (should (equal (stele-commit-event-id "0123456789ABCDEF0123456789ABCDEF01234567")
                 "0adedf62-37a5-884e-bc50-8f690a200306"))
  (let ((ids (make-hash-table :test #'equal)))
    (dotimes (_ 5000) (puthash (stele--uuid) t ids))
    (should (= (hash-table-count ids) 5000))
    (maphash (lambda (id _)
               (should (string-match-p
                        "\\`[0-9a-f]\\{8\\}-[0-9a-f]\\{4\\}-4[0-9a-f]\\{3\\}-[89ab][0-9a-f]\\{3\\}-[0-9a-f]\\{12\\}\\'"
                        id)))
             ids)))

(ert-deftest stele-test-ed25519 ()
  "Ed25519 verification passes RFC 8032's test vectors and refuses forgeries."
  (let ((vectors
         '(("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a" ""
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
           ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c" "72"
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
           ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025" "af82"
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"))))
    (pcase-dolist (`(,pub ,msg ,sig) vectors)
      (let ((pub (stele--decode-hex pub)) (msg (stele--decode-hex msg)) (sig (stele--decode-hex sig)))
        (should (stele-ed25519-verify pub msg sig))
        (should-not (stele-ed25519-verify pub (concat msg "x") sig))
        (let ((bad (copy-sequence sig)))
          (aset bad 10 (logxor (aref bad 10) 1))
          (should-not (stele-ed25519-verify pub msg bad)))))))

(defun stele-test--mth (leaves)
  "RFC 6962 Merkle tree hash of the list of leaf hashes LEAVES."
  (if (null (cdr leaves))
      (car leaves)
    (let ((k 1))
      (while (< (* 2 k) (length leaves)) (setq k (* 2 k)))
      (stele--hash-children (stele-test--mth (cl-subseq leaves 0 k))
                            (stele-test--mth (nthcdr k leaves))))))

(defun stele-test--path (m leaves)
  "RFC 6962 inclusion path of leaf M in LEAVES."
  (if (null (cdr leaves))
      nil
    (let ((k 1))
      (while (< (* 2 k) (length leaves)) (setq k (* 2 k)))
      (if (< m k)
          (append (stele-test--path m (cl-subseq leaves 0 k))
                  (list (stele-test--mth (nthcdr k leaves))))
        (append (stele-test--path (- m k) (nthcdr k leaves))
                (list (stele-test--mth (cl-subseq leaves 0 k))))))))

(ert-deftest stele-test-inclusion-proofs ()
  "Inclusion proofs fold to the tree root for every size and index, and tampering fails."
  (dotimes (n 17)
    (let* ((size (1+ n))
           (leaves (mapcar (lambda (i) (stele-leaf-hash (format "leaf %d" i)))
                           (number-sequence 0 (1- size))))
           (root (stele-test--mth leaves)))
      (dotimes (i size)
        (let ((proof (stele-test--path i leaves)))
          (should (equal (stele-inclusion-root i size (nth i leaves) proof) root))
          (when proof
            (let ((bad (copy-sequence proof)))
              (setcar bad (stele-leaf-hash "evil"))
              (should-not (equal (stele-inclusion-root i size (nth i leaves) bad) root))))
          (should-not (equal (stele-inclusion-root i size (stele-leaf-hash "other") proof)
                             root))))
      (should-not (stele-inclusion-root size size (car leaves) nil)))))

(ert-deftest stele-test-privilege-from-names-only ()
  "Admin-level saves are recognised from the file name, without a connection."
  (require 'tramp)
  (let ((stele-root-saves-privileged nil))
    (should (equal (alist-get 'method (stele-file-privilege "/sudo::/etc/hosts")) "sudo"))
    (should (equal (alist-get 'method (stele-file-privilege "/doas:root@box.invalid:/x")) "doas"))
    (should (equal (alist-get 'method (stele-file-privilege "/sudoedit::/etc/fstab")) "sudoedit"))
    (should (equal (alist-get 'via (stele-file-privilege "/ssh:root@box.invalid:/srv/app.conf"))
                   "remote-root"))
    (should (equal (alist-get 'via (stele-file-privilege "/ssh:bob@box.invalid:/etc/nginx/x.conf"))
                   "system-directory"))
    (should (equal (alist-get 'via (stele-file-privilege "/ssh:bob@box.invalid|sudo:box.invalid:/srv/x"))
                   "tramp-method"))
    (should (equal (alist-get 'via (stele-file-privilege "/etc/hosts")) "system-directory"))
    (should-not (stele-file-privilege "/ssh:bob@box.invalid:/home/bob/notes.txt"))
    (should-not (stele-file-privilege "/tmp/notes.txt"))
    ;; A method of one's own whose login program is doas counts too.
    (let ((tramp-methods (cons '("mydoas" (tramp-login-program "doas")
                                 (tramp-login-args (("-u" "%u") ("-s"))))
                               tramp-methods)))
      (should (equal (alist-get 'method (stele-file-privilege "/mydoas::/srv/x")) "mydoas"))))
  (let ((stele-root-saves-privileged t))
    (should (equal (alist-get 'via (stele-file-privilege "/tmp/notes.txt"))
                   (if (eql (user-uid) 0) "uid-0" nil))))
  ;; None of this opened a connection.
  (should-not (cl-some (lambda (v) (string-match-p "box\\.invalid" (format "%s" v)))
                       (tramp-list-connections))))

(ert-deftest stele-test-redaction ()
  "Secrets in commands are masked before they are recorded."
  (should (equal (stele--redact "mysql -u root --password=hunter2 db")
                 "mysql -u root --password=[redacted] db"))
  (should (equal (stele--redact "curl -H 'Authorization: Bearer abc.def' https://u:pw@h/x")
                 "curl -H 'Authorization: Bearer [redacted]' https://u:[redacted]@h/x"))
  (should (equal (alist-get 'text (stele--text "export API_KEY=s3cr3t"))
                 "export API_KEY=[redacted]"))
  (let ((stele-command-text 'hash))
    (should-not (alist-get 'text (stele--text "anything")))
    (should (equal (alist-get 'sha256 (stele--text "abc"))
                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))))

;; Issue 17, item 4: a corpus of common secret shapes.  Each secret
;; must be gone from the text and from what the digest covers.
(defconst stele-test--secret-corpus
  '(("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE aws s3 ls" "AKIAIOSFODNN7EXAMPLE")
    ("aws configure set aws_secret_access_key s3kr1tKey" "s3kr1tKey")
    ("mysql -u root -pSECRETpw db" "SECRETpw")
    ("mysqldump --host=db -pHunter22 app > dump.sql" "Hunter22")
    ("mysql -u root --password=hunter2 db" "hunter2")
    ("curl -u alice:pa55word https://api.example.com" "pa55word")
    ("curl --user bob:xyzzy42 https://x" "xyzzy42")
    ("sshpass -p SECRETSSH ssh host" "SECRETSSH")
    ("sshpass -e -p 'Sup3r' ssh host" "Sup3r")
    ("PGPASSWORD=pgpass123 psql -h db" "pgpass123")
    ("psql postgres://app:dbpw777@db:5432/app" "dbpw777")
    ("git clone https://user:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/x/y" "ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    ("gh auth login --with-token ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    ("echo github_pat_11ABCDEFG0123456789_abcdefghijklmnop | gh auth login" "github_pat_11ABCDEFG0123456789_abcdefghijklmnop")
    ("git remote add origin https://oauth2:glpat-abcdefghij0123456789@gitlab.com/x" "glpat-abcdefghij0123456789")
    ("curl -d 'token=xoxb-1234567890-abcdefghij' https://slack.com/api" "xoxb-1234567890-abcdefghij")
    ("curl 'https://maps.googleapis.com/x?key=AIzaSyA1234567890abcdefghijklmnopqrstuv'" "AIzaSyA1234567890abcdefghijklmnopqrstuv")
    ("OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx python run.py" "sk-proj-abcdefghijklmnopqrstuvwx")
    ("llm -k sk-ant-abcdefghijklmnopqrstuvwx 'hi'" "sk-ant-abcdefghijklmnopqrstuvwx")
    ("stripe login --api-key sk_live_abcdefghijklmnop1234" "sk_live_abcdefghijklmnop1234")
    ("curl -H 'Authorization: Bearer abc.def.ghi' https://x" "abc.def.ghi")
    ("curl -H \"Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\" https://x" "YWxhZGRpbjpvcGVuc2VzYW1l")
    ("http GET https://x jwt==eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl" "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")
    ("curl -H 'X-Api-Key: k3y-v4lue' https://x" "k3y-v4lue")
    ("docker login -u me --password-stdin <<< dockerpw1" nil)
    ("vault write auth/x secret_id=9f8e7d6c" "9f8e7d6c")
    ("export GITHUB_TOKEN=tok_abc123" "tok_abc123")
    ("(setq my-password \"emacs-pw-1\")" "emacs-pw-1")
    ("htpasswd -b .htpasswd alice HtPw99" "HtPw99")
    ("printf '%s' '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----'" "b3BlbnNzaC1rZXk"))
  "(COMMAND SECRET): commands and the secret each holds (nil: none to check).")

(ert-deftest stele-test-redaction-corpus ()
  "Common secret shapes are masked, and no digest covers the secret."
  (dolist (case stele-test--secret-corpus)
    (pcase-let* ((`(,command ,secret) case)
                 (red (stele--redact command))
                 (text (stele--text command 'truncate))
                 (hashed (stele--text command 'hash)))
      (when secret
        (ert-info ((format "command: %s -> %s" command red))
          (should-not (string-search secret red))
          (should (string-search "[redacted]" red))
          (should (equal (alist-get 'text text) red))
          ;; The digest is of the redacted text, the same in both modes.
          (should (equal (alist-get 'sha256 text) (stele--sha256 red)))
          (should (equal (alist-get 'sha256 hashed) (stele--sha256 red)))
          (should-not (equal (alist-get 'sha256 hashed) (stele--sha256 command)))
          (should (eq (alist-get 'redacted hashed) t))))))
  ;; Ordinary commands are left alone.
  (dolist (command '("ls -la" "git push origin main" "make -j4" "mysql -u root db"
                     "ssh -p 2222 host" "grep -rn foo ." "tar -xzf a.tar.gz"))
    (should (equal (stele--redact command) command))
    (should-not (alist-get 'redacted (stele--text command)))))

;;;; The mode

(ert-deftest stele-test-mode-is-inert-until-enabled-and-symmetric ()
  "Loading adds nothing; batch sessions stay off; on and off are symmetric."
  ;; A fresh Emacs that only loads stele.el has none of its hooks or advice,
  ;; and refuses to record in batch mode unless asked.
  (let ((out (with-temp-buffer
               (call-process (stele-test--env "STELE_TEST_EMACS") nil t nil
                             "--batch" "-Q" "-L" (stele-test--env "STELE_TEST_LISP_DIR")
                             "-l" "stele" "--eval"
                             (prin1-to-string
                              '(progn
                                 (princ (format "HOOKS %S\n"
                                                (list (memq 'stele--after-save after-save-hook)
                                                      (memq 'stele--find-file find-file-hook)
                                                      (advice-member-p 'stele--eval-advice 'eval-expression)
                                                      (get-variable-watchers 'package-archives))))
                                 (stele-mode 1)
                                 (princ (format "MODE %S\n" stele-mode)))))
               (buffer-string))))
    (should (string-match-p "^HOOKS (nil nil nil nil)$" out))
    (should (string-match-p "^MODE nil$" out)))
  (stele-test--setup)
  (dolist (h stele--hooks)
    (should (memq (nth 2 h) (default-value (nth 1 h)))))
  (dolist (a stele--advice)
    (should (advice-member-p (nth 3 a) (nth 1 a))))
  (should (memq #'stele--variable-watcher (get-variable-watchers 'package-archives)))
  (stele-mode -1)
  (dolist (h stele--hooks)
    (should-not (memq (nth 2 h) (and (boundp (nth 1 h)) (default-value (nth 1 h))))))
  (dolist (a stele--advice)
    (should-not (advice-member-p (nth 3 a) (nth 1 a))))
  (should-not (memq #'stele--variable-watcher (get-variable-watchers 'package-archives)))
  ;; Only the chosen families are hooked.
  (let ((stele-record '(eval)))
    (stele-mode 1)
    (should (advice-member-p #'stele--eval-advice 'eval-expression))
    (should-not (memq #'stele--after-save after-save-hook))
    (should-not (advice-member-p #'stele--package-unpack-advice 'package-unpack))
    (stele-mode -1))
  (stele-test--reset))

;; Issue 17, item 12: (require 'stele) loaded url, url-http,
;; auth-source and json (140-236 ms on a workstation).
(ert-deftest stele-test-require-is-light ()
  "Loading stele.el does not load url, auth-source or json."
  (let ((out (with-temp-buffer
               (call-process (stele-test--env "STELE_TEST_EMACS") nil t nil
                             "--batch" "-Q" "-L" (stele-test--env "STELE_TEST_LISP_DIR")
                             "--eval"
                             (prin1-to-string
                              '(let ((t0 (float-time)))
                                 (require 'stele)
                                 (princ (format "LOADED %S in %.1f ms\n"
                                                (cl-remove-if-not
                                                 #'featurep '(url url-http auth-source json))
                                                (* 1000 (- (float-time) t0))))
                                 ;; The verifier (stele-verify.el) loads on first use.
                                 (princ (format "VERIFY %S %S\n" (featurep 'stele-verify)
                                                (autoloadp (symbol-function 'stele-verify-entry)))))))
               (buffer-string))))
    (let ((inhibit-message nil))
      (message "STELE-BENCH %s" (and (string-match "^LOADED .*$" out) (match-string 0 out))))
    (should (string-match-p "^LOADED nil in" out))
    (should (string-match-p "^VERIFY nil t$" out))))

;; A sibling found with item 12: a watched variable defined when its
;; package loads (auth-source, loaded by Stele itself on first use) was
;; recorded as set.
(ert-deftest stele-test-loading-a-package-is-not-a-change ()
  "Defining a watched variable is not recorded; setting it afterwards is."
  (let ((stele-watched-variables '(stele-test--late-var)))
    (stele-test--setup)
    (eval '(defvar stele-test--late-var 42) t)
    (should-not (stele-test--event "emacs.variable.set" nil 0.3))
    (eval '(setq stele-test--late-var 43) t)
    (should (stele-test--event "emacs.variable.set")))
  (stele-test--reset))

(ert-deftest stele-test-enqueue-is-fast ()
  "Hooks only enqueue: measure the cost of one event on the UI thread."
  (stele-test--setup :url (stele-test--env "STELE_TEST_DEAD_URL"))
  (setq stele-flush-delay 3600)
  (let* ((n 2000)
         (run (progn
                (garbage-collect)
                (benchmark-run n
                  (stele--record "emacs.eval" :resource '("buffer" . "*scratch*")
                                 :data '((form . ((text . "(+ 1 2)") (length . 7)))
                                         (via . "eval-expression"))))))
         (per (/ (* 1e6 (nth 0 run)) n))
         (per-no-gc (/ (* 1e6 (- (nth 0 run) (nth 2 run))) n))
         (watch (progn
                  (garbage-collect)
                  (benchmark-run 500
                    (setq network-security-level
                          (if (eq network-security-level 'medium) 'high 'medium)))))
         (watch-per (/ (* 1e6 (nth 0 watch)) 500)))
    (setq network-security-level 'medium)
    (message "STELE-BENCH enqueue: %.1f us/event (%.1f us without GC, %d GCs in %d events); watched variable set: %.1f us/event; target 100 us: %s"
             per per-no-gc (nth 1 run) n watch-per (if (< per 100) "met" "NOT met"))
    (should (= stele--queued (+ n 500 1)))
    ;; Every event is on disk, one line each.
    (should (>= (cl-reduce #'+ (mapcar (lambda (f) (length (stele--read-lines f)))
                                      (stele-test--segment-files stele-spool-directory)))
                (+ n 500)))
    ;; A bound far above the 100 us target (the message above reports the
    ;; real figure), so that a busy 2-core machine does not fail it (2.4 ms
    ;; was seen at a load of 15 on 2 cores) but a hook that waits on the
    ;; network or the disk on every event would.
    (should (< per 10000))
    (should (< watch-per 10000)))
  (stele-test--reset))

;; Issue 17, item 11: every save scanned the whole buffer's text
;; properties for AI text (16-34 ms on a 2 MB fontified file).
(ert-deftest stele-test-ordinary-save-is-cheap ()
  "Saving a 2 MB fontified file costs next to nothing when it has no AI text."
  (stele-test--setup :url (stele-test--env "STELE_TEST_DEAD_URL"))
  (setq stele-flush-delay 3600)
  (let* ((dir (make-temp-file "stele-big-" t))
         (file (expand-file-name "big.txt" dir))
         (inhibit-message t))
    (with-current-buffer (find-file-noselect file)
      (let ((line (apply #'concat
                         (mapcar (lambda (f) (propertize "(f x) " 'face f))
                                 '(font-lock-keyword-face font-lock-function-name-face
                                   default font-lock-string-face)))))
        ;; Fontified text: a face change every 6 characters.
        (setq buffer-undo-list t)
        (insert (apply #'concat (make-list 84000 (concat line "\n")))))
      (save-buffer)
      (garbage-collect)
      (let* ((n 20)
             (run (benchmark-run n (stele--after-save)))
             (per-ms (/ (* 1000 (- (car run) (nth 2 run))) n)))
        ;; With an AI insertion the scan is needed (for the AI share).
        (let ((beg (point-max)))
          (goto-char beg)
          (insert "AI text")
          (stele--mark-ai beg (point-max) "gptel"))
        (let* ((ai-run (benchmark-run 3 (stele--ai-chars)))
               (ai-ms (/ (* 1000 (- (car ai-run) (nth 2 ai-run))) 3)))
          (let ((inhibit-message nil))
            (message "STELE-BENCH save of a %.1f MB fontified file: %.2f ms of stele--after-save without AI text; the AI scan of a buffer with AI text %.1f ms (GC excluded)"
                   (/ (buffer-size) 1e6) per-ms ai-ms))
          ;; Relative to the scan, so that a loaded machine does not fail it.
          (should (< per-ms (/ ai-ms 4)))))
      (set-buffer-modified-p nil)
      (kill-buffer))
    (delete-directory dir t))
  (stele-test--reset))

;;;; Families, end to end

(defun stele-test--write (file content)
  "Write CONTENT to FILE, creating its directory."
  (make-directory (file-name-directory file) t)
  (with-temp-file file (insert content)))

(defun stele-test--make-archive (dir packages)
  "Write a local package archive in DIR with PACKAGES.
Each is (NAME VERSION REQS KIND); a tar package is built with tar."
  (make-directory dir t)
  (let ((contents nil))
    (pcase-dolist (`(,name ,version ,reqs ,kind) packages)
      (let* ((sname (symbol-name name))
             (body (format ";;; %s.el --- Demo package %s  -*- lexical-binding: t; -*-\n;; Version: %s\n%s;;; Commentary:\n;; Test.\n;;; Code:\n(defun %s-hello ()\n  \"Say hello.\"\n  'hello)\n(provide '%s)\n;;; %s.el ends here\n"
                           sname sname version
                           (if reqs (format ";; Package-Requires: %S\n"
                                            (mapcar (lambda (r) (list (car r) (cadr r))) reqs))
                             "")
                           sname sname sname)))
        (if (eq kind 'single)
            (stele-test--write (expand-file-name (format "%s-%s.el" sname version) dir) body)
          (let ((pdir (expand-file-name (format "%s-%s" sname version) dir)))
            (stele-test--write (expand-file-name (concat sname ".el") pdir) body)
            (stele-test--write (expand-file-name (concat sname "-pkg.el") pdir)
                               (format "(define-package %S %S \"Demo\" '%S)\n" sname version
                                       (mapcar (lambda (r) (list (car r) (cadr r))) reqs)))
            (let ((default-directory (file-name-as-directory dir)))
              (should (eql 0 (call-process "tar" nil nil nil "-cf"
                                           (format "%s-%s.tar" sname version)
                                           (format "%s-%s" sname version)))))
            (delete-directory pdir t)))
        (push `(,name . [,(version-to-list version)
                         ,(mapcar (lambda (r) (list (car r) (version-to-list (cadr r)))) reqs)
                         "Demo" ,kind nil])
              contents)))
    (with-temp-file (expand-file-name "archive-contents" dir)
      (prin1 (cons 1 (nreverse contents)) (current-buffer)))))

(ert-deftest stele-test-package-install-upgrade-delete ()
  "package.el installs (dependencies included), upgrades and removals reach the log."
  (stele-test--setup)
  (let* ((root (make-temp-file "stele-pkg-" t))
         (archive (expand-file-name "archive" root))
         (user-init-file (expand-file-name "init.el" root))
         (custom-file (expand-file-name "custom.el" root))
         (package-user-dir (expand-file-name "elpa" root))
         (package-archives `(("stele-local" . ,(file-name-as-directory archive))))
         (package-check-signature nil)
         (package-archive-contents nil)
         (package-alist nil)
         (package-activated-list nil)
         (package-selected-packages nil)
         (package--initialized nil)
         (package-directory-list nil)
         (package-native-compile nil)
         (inhibit-message t))
    (stele-test--make-archive archive '((stele-demo-dep "1.0" nil single)
                                        (stele-demo "1.0" ((stele-demo-dep "1.0")) tar)
                                        (stele-demo-extra "1.0" nil single)))
    (package-initialize)
    (package-refresh-contents)
    (package-install 'stele-demo)
    (let* ((dep (stele-test--event "emacs.package.install"
                                   (lambda (e) (equal (alist-get 'name (alist-get 'data e))
                                                      "stele-demo-dep"))))
           (main (stele-test--event "emacs.package.install"
                                    (lambda (e) (equal (alist-get 'name (alist-get 'data e))
                                                       "stele-demo"))))
           (dep-stored (car (stele-test--stored (alist-get 'id dep))))
           (main-stored (car (stele-test--stored (alist-get 'id main)))))
      (stele-test--check-common dep-stored)
      (should (equal (alist-get 'action dep-stored) "emacs.package.install"))
      (should (equal (alist-get 'resource dep-stored) '((id . "stele-demo-dep") (type . "package"))))
      (let ((d (alist-get 'data dep-stored)))
        (should (equal (alist-get 'version d) "1.0"))
        (should (equal (alist-get 'archive d) "stele-local"))
        (should (equal (alist-get 'kind d) "single"))
        (should (equal (alist-get 'dependency_of d) "stele-demo"))
        (should (eq (alist-get 'requested d) :false))
        (should (string-match-p "\\`[0-9a-f]\\{64\\}\\'" (alist-get 'sha256 d))))
      (let ((d (alist-get 'data main-stored)))
        (should (equal (alist-get 'kind d) "tar"))
        (should (eq (alist-get 'requested d) t))
        (should (equal (alist-get 'via d) "package-install")))
      (should (equal (alist-get 'actor main-stored)
                     '((id . "tester@example.com") (type . "human") (verified . :false))))
      (should (equal (alist-get 'outcome main-stored) "success")))
    ;; package-install saved `package-selected-packages' with Customize.
    (let ((custom (stele-test--event "emacs.custom.save")))
      (should (cl-find "package-selected-packages" (alist-get 'changes (alist-get 'data custom))
                       :key (lambda (c) (alist-get 'name c)) :test #'equal)))
    ;; An upgrade: version 2.0 of the dependency appears in the archive.
    (stele-test--make-archive archive '((stele-demo-dep "2.0" nil single)
                                        (stele-demo "1.0" ((stele-demo-dep "1.0")) tar)
                                        (stele-demo-extra "1.0" nil single)))
    (package-refresh-contents)
    (package-install (cadr (assq 'stele-demo-dep package-archive-contents)))
    (let* ((up (stele-test--event "emacs.package.upgrade"))
           (stored (car (stele-test--stored (alist-get 'id up)))))
      (should (equal (alist-get 'version (alist-get 'data stored)) "2.0"))
      (should (equal (alist-get 'previous_version (alist-get 'data stored)) "1.0")))
    ;; Removing the old version, forced since stele-demo needs the package.
    (package-delete (nth 2 (assq 'stele-demo-dep package-alist)) t)
    (let* ((del (stele-test--event "emacs.package.delete"))
           (stored (car (stele-test--stored (alist-get 'id del)))))
      (should (equal (alist-get 'outcome stored) "success"))
      (should (equal (alist-get 'version (alist-get 'data stored)) "1.0")))
    ;; A refused removal is recorded as a failure.
    (should-error (package-delete (cadr (assq 'stele-demo-dep package-alist))))
    (let ((failed (stele-test--event "emacs.package.delete"
                                     (lambda (e) (equal (alist-get 'outcome e) "failure")))))
      (should (string-match-p "dependency" (alist-get 'reason failed)))
      (should (stele-test--index (alist-get 'id failed))))
    ;; use-package :ensure installs through package.el, marked as such.
    (when (require 'use-package nil t)
      (eval '(use-package stele-demo-extra :ensure t) t)
      (let ((extra (stele-test--event "emacs.package.install"
                                      (lambda (e) (equal (alist-get 'name (alist-get 'data e))
                                                         "stele-demo-extra")))))
        (should (equal (alist-get 'via (alist-get 'data extra)) "use-package"))
        (should (stele-test--index (alist-get 'id extra)))))
    (delete-directory root t))
  (stele-test--reset))

;; Issue 17, item 3: a corrupt package was reported by both the
;; `package-unpack' and the `package-install' advice.
(ert-deftest stele-test-corrupt-package-reported-once ()
  "A corrupt package's failed install is recorded once."
  (stele-test--setup)
  (let* ((root (make-temp-file "stele-pkg-" t))
         (archive (expand-file-name "archive" root))
         (package-user-dir (expand-file-name "elpa" root))
         (package-archives `(("stele-local" . ,(file-name-as-directory archive))))
         (package-check-signature nil)
         (package-archive-contents nil)
         (package-alist nil)
         (package-activated-list nil)
         (package-selected-packages nil)
         (package--initialized nil)
         (package-directory-list nil)
         (package-native-compile nil)
         (custom-file (expand-file-name "custom.el" root))
         (inhibit-message t))
    (stele-test--make-archive archive '((stele-demo-bad "1.0" nil tar)))
    (with-temp-file (expand-file-name "stele-demo-bad-1.0.tar" archive)
      (insert "this is not a tar file\n"))
    (package-initialize)
    (package-refresh-contents)
    (should-error (package-install 'stele-demo-bad))
    (let ((failed (stele-test--event "emacs.package.install"
                                     (lambda (e) (equal (alist-get 'outcome e) "failure")))))
      (should failed)
      (should (stele-test--index (alist-get 'id failed)))
      ;; Give a second report the time to show up.
      (stele-test--wait (lambda () nil) 0.5)
      (should (= 1 (cl-count-if (lambda (e) (equal (alist-get 'action e) "emacs.package.install"))
                                stele-test--events))))
    (delete-directory root t))
  (stele-test--reset))

;; Issue 17, item 9: package-vc (Emacs 29+) never goes through
;; `package-unpack'.  Emacs 28 (the CI's) has no package-vc, so its entry
;; point is simulated here, as gptel's are, when it is missing.
(ert-deftest stele-test-package-vc-install ()
  "An install with package-vc is recorded, with its URL and revision, credentials stripped."
  (let ((real (fboundp 'package-vc-install)))
    (unless real
      (defalias 'package-vc-install
        (lambda (package &optional _rev _backend _name)
          "Simulated package-vc: fail on a URL ending in /broken."
          (when (and (stringp package) (string-suffix-p "/broken" package))
            (error "Cloning failed"))
          t)))
    (stele-test--setup)
    (skip-unless (not real))
    (package-vc-install "https://user:tok3n@example.com/me/stele-demo-vc.git" "v1.2")
    (let* ((e (stele-test--event "emacs.package.install"
                                 (lambda (e) (equal (alist-get 'via (alist-get 'data e)) "package-vc"))))
           (stored (car (stele-test--stored (alist-get 'id e))))
           (d (alist-get 'data stored)))
      (should (equal (alist-get 'name d) "stele-demo-vc"))
      (should (equal (alist-get 'url d) "https://example.com/me/stele-demo-vc.git"))
      (should (equal (alist-get 'rev d) "v1.2"))
      (should (equal (alist-get 'outcome stored) "success")))
    (should-error (package-vc-install "https://example.com/me/broken"))
    (should (stele-test--event "emacs.package.install"
                               (lambda (e) (equal (alist-get 'outcome e) "failure"))))
    (stele-test--reset)
    (fmakunbound 'package-vc-install)))

(ert-deftest stele-test-vc-commit-and-push ()
  "A commit and a push made with VC reach the log with the commit's derived id."
  (stele-test--setup)
  (let* ((repo (make-temp-file "stele-repo-" t))
         (bare (make-temp-file "stele-bare-" t))
         (file (expand-file-name "notes.txt" repo))
         (inhibit-message t))
    (stele-test--git repo "-c" "init.defaultBranch=main" "init")
    (stele-test--git repo "config" "user.name" "Tess Ter")
    (stele-test--git repo "config" "user.email" "tester@example.com")
    (stele-test--git bare "init" "--bare")
    (stele-test--git repo "remote" "add" "origin" bare)
    (stele-test--write file "first\n")
    (stele-test--git repo "add" "notes.txt")
    (with-current-buffer (find-file-noselect file)
      (vc-checkin (list file) 'Git "Add notes\n\nWith a body.")
      (kill-buffer))
    (let* ((sha (stele-test--git repo "rev-parse" "HEAD"))
           (commit (stele-test--event "git.commit"
                                      (lambda (e) (equal (alist-get 'sha (alist-get 'data e)) sha))))
           (stored (car (stele-test--stored (alist-get 'id commit)))))
      (should commit)
      (should (equal (alist-get 'id commit) (stele-commit-event-id sha)))
      (stele-test--check-common stored)
      (should (equal (alist-get 'action stored) "git.commit"))
      (let ((d (alist-get 'data stored)))
        (should (equal (alist-get 'summary d) "Add notes"))
        (should (equal (alist-get 'branch d) "main"))
        (should (equal (alist-get 'tool d) "vc"))
        (should (equal (alist-get 'remote d) bare))
        (should (equal (alist-get 'command d) "commit")))
      (should (equal (alist-get 'resource stored) `((id . ,bare) (type . "git.repository")))))
    ;; Push: set the upstream by hand, then a second commit and `vc-push'.
    (stele-test--git repo "push" "-q" "-u" "origin" "main")
    (stele-test--write file "first\nsecond\n")
    (with-current-buffer (find-file-noselect file)
      (vc-checkin (list file) 'Git "Second line")
      (kill-buffer))
    (with-current-buffer (find-file-noselect file)
      (vc-push)
      (kill-buffer))
    (let* ((push (stele-test--event "git.push"))
           (stored (car (stele-test--stored (alist-get 'id push)))))
      (should (equal (alist-get 'outcome stored) "success"))
      (should (equal (alist-get 'head (alist-get 'data stored))
                     (stele-test--git repo "rev-parse" "HEAD")))
      (should (equal (stele-test--git bare "rev-parse" "main")
                     (stele-test--git repo "rev-parse" "HEAD"))))
    (delete-directory repo t)
    (delete-directory bare t))
  (stele-test--reset))

;; Issue 17, item 1: Emacs 28 has no `vc-process-sentinel', so every
;; VC push used to be recorded as a success.
(ert-deftest stele-test-vc-push-rejected-is-a-failure ()
  "A VC push the remote rejects, and a synchronous failed push, are failures."
  (stele-test--setup)
  (let* ((repo (make-temp-file "stele-repo-" t))
         (other (make-temp-file "stele-other-" t))
         (bare (make-temp-file "stele-bare-" t))
         (file (expand-file-name "notes.txt" repo))
         (inhibit-message t))
    (stele-test--git bare "init" "--bare")
    (dolist (r (list repo other))
      (stele-test--git r "-c" "init.defaultBranch=main" "init")
      (stele-test--git r "config" "user.name" "Tess Ter")
      (stele-test--git r "config" "user.email" "tester@example.com")
      (stele-test--git r "remote" "add" "origin" bare))
    (stele-test--write file "first\n")
    (stele-test--git repo "add" "notes.txt")
    (stele-test--git repo "commit" "-q" "-m" "First")
    (stele-test--git repo "push" "-q" "-u" "origin" "main")
    ;; Someone else pushes first...
    (stele-test--git other "fetch" "-q" "origin")
    (stele-test--git other "checkout" "-q" "-b" "main" "origin/main")
    (stele-test--git other "commit" "-q" "--allow-empty" "-m" "Theirs")
    (stele-test--git other "push" "-q" "origin" "main")
    ;; ...so this push is rejected (fetch first).
    (stele-test--git repo "commit" "-q" "--allow-empty" "-m" "Mine")
    (with-current-buffer (find-file-noselect file)
      (vc-push)
      (kill-buffer))
    (let* ((push (stele-test--event "git.push"))
           (stored (car (stele-test--stored (alist-get 'id push))))
           (d (alist-get 'data stored)))
      (should (equal (alist-get 'outcome stored) "failure"))
      (should (equal (alist-get 'tool d) "vc"))
      (should (integerp (alist-get 'exit d)))
      (should-not (eql (alist-get 'exit d) 0))
      (should (string-match-p "exited with status" (alist-get 'reason stored))))
    ;; A synchronous VC call that ignores the status (OKSTATUS nil).
    (setq stele-test--events nil)
    (let ((default-directory (file-name-as-directory repo)))
      (should (eql 128 (vc-do-command " *stele-vc-sync*" nil "git" nil
                                      "push" "no-such-remote"))))
    (let ((push (stele-test--event "git.push")))
      (should (equal (alist-get 'outcome push) "failure"))
      (should (eql (alist-get 'exit (alist-get 'data push)) 128))
      (should (stele-test--index (alist-get 'id push))))
    (dolist (d (list repo other bare)) (delete-directory d t)))
  (stele-test--reset))

(ert-deftest stele-test-magit-commits ()
  "Commits made with Magit, synchronously and asynchronously, reach the log."
  (skip-unless (require 'magit nil t))
  (stele-test--setup)
  (let* ((repo (make-temp-file "stele-magit-" t))
         (default-directory (file-name-as-directory repo))
         (inhibit-message t))
    (stele-test--git repo "-c" "init.defaultBranch=main" "init")
    (stele-test--git repo "config" "user.name" "Tess Ter")
    (stele-test--git repo "config" "user.email" "tester@example.com")
    (magit-call-git "commit" "--allow-empty" "-m" "Sync commit")
    (let* ((sha1 (stele-test--git repo "rev-parse" "HEAD"))
           (e1 (stele-test--event "git.commit"
                                  (lambda (e) (equal (alist-get 'sha (alist-get 'data e)) sha1)))))
      (should e1)
      (should (equal (alist-get 'tool (alist-get 'data e1)) "magit"))
      (should (stele-test--index (stele-commit-event-id sha1))))
    (let ((proc (magit-run-git-async "commit" "--allow-empty" "-m" "Async commit")))
      (stele-test--wait (lambda () (not (process-live-p proc)))))
    (let* ((sha2 (stele-test--git repo "rev-parse" "HEAD"))
           (e2 (stele-test--event "git.commit"
                                  (lambda (e) (equal (alist-get 'sha (alist-get 'data e)) sha2)))))
      (should e2)
      (should (equal (alist-get 'summary (alist-get 'data e2)) "Async commit"))
      (should (stele-test--index (stele-commit-event-id sha2))))
    (delete-directory repo t))
  (stele-test--reset))

(ert-deftest stele-test-config-saves ()
  "Init-file saves, Customize saves and watched variables reach the log."
  (stele-test--setup)
  (let* ((init (expand-file-name "init.el" user-emacs-directory))
         (user-init-file init)
         (custom-file (expand-file-name "custom.el" user-emacs-directory))
         (inhibit-message t))
    (stele-test--write init ";; my init\n(setq fill-column 80)\n")
    (let ((before (stele-test--file-sha256 init)))
      (with-current-buffer (find-file-noselect init)
        (goto-char (point-max))
        (insert "(setq make-backup-files nil)\n")
        (save-buffer)
        (kill-buffer))
      (let* ((save (stele-test--event "emacs.config.save"))
             (stored (car (stele-test--stored (alist-get 'id save))))
             (d (alist-get 'data stored)))
        (stele-test--check-common stored)
        (should (equal (alist-get 'config d) "init-file"))
        (should (equal (alist-get 'sha256_before d) before))
        (should (equal (alist-get 'sha256_after d) (stele-test--file-sha256 init)))
        (should-not (alist-get 'text d))
        (should (equal (alist-get 'resource stored)
                       `((id . ,(abbreviate-file-name init)) (type . "file"))))))
    ;; With stele-file-content set to text, the text is sent too.
    (let ((stele-file-content 'text)
          (early (expand-file-name "lisp/extra.el" user-emacs-directory)))
      (stele-test--write early "(provide 'extra)\n")
      (with-current-buffer (find-file-noselect early)
        (goto-char (point-max))
        (insert ";; more\n")
        (save-buffer)
        (kill-buffer))
      (let ((d (alist-get 'data (stele-test--event
                                 "emacs.config.save"
                                 (lambda (e) (equal (alist-get 'config (alist-get 'data e))
                                                    "user-emacs-directory"))))))
        (should (equal (alist-get 'text d) "(provide 'extra)\n;; more\n"))))
    ;; Customize: the saved variables that changed are listed.
    (customize-save-variable 'fill-column 91)
    (customize-save-variable 'indent-tabs-mode nil)
    (let* ((save (stele-test--event "emacs.custom.save"
                                    (lambda (e) (cl-find "indent-tabs-mode"
                                                         (alist-get 'changes (alist-get 'data e))
                                                         :key (lambda (c) (alist-get 'name c))
                                                         :test #'equal))))
           (stored (car (stele-test--stored (alist-get 'id save))))
           (changes (alist-get 'changes (alist-get 'data stored))))
      (should (= (length changes) 1))
      (should (equal (alist-get 'change (aref changes 0)) "added"))
      (should (equal (alist-get 'text (alist-get 'value (aref changes 0))) "nil")))
    (customize-save-variable 'fill-column 92)
    (let ((changes (alist-get 'changes (alist-get 'data (stele-test--event
                                                           "emacs.custom.save"
                                                           (lambda (e) (string-match-p "92" (format "%S" e))))))))
      (should (equal (mapcar (lambda (c) (list (alist-get 'name c) (alist-get 'change c)
                                               (alist-get 'text (alist-get 'value c))))
                             changes)
                     '(("fill-column" "changed" "92")))))
    ;; Customize's own save of custom-file is not recorded twice.
    (should-not (cl-find-if (lambda (e) (and (equal (alist-get 'action e) "emacs.config.save")
                                             (equal (alist-get 'config (alist-get 'data e))
                                                    "custom-file")))
                            stele-test--events))
    ;; A watched, security-relevant variable.
    (let ((old network-security-level))
      (setq network-security-level 'low)
      (let* ((set (stele-test--event "emacs.variable.set"))
             (stored (car (stele-test--stored (alist-get 'id set))))
             (d (alist-get 'data stored)))
        (should (equal (alist-get 'variable d) "network-security-level"))
        (should (equal (alist-get 'text (alist-get 'old d)) (format "%s" old)))
        (should (equal (alist-get 'text (alist-get 'new d)) "low")))
      (setq network-security-level old))
    ;; Let-bindings are not changes.
    (setq stele-test--events nil)
    (let ((package-archives nil)) (ignore package-archives))
    (should-not (stele-test--event "emacs.variable.set" nil 0.3)))
  (stele-test--reset))

(defun stele-test--fake-sudo ()
  "A directory with a `sudo' that runs the shell without any privilege."
  (let* ((bin (make-temp-file "stele-bin-" t))
         (sudo (expand-file-name "sudo" bin)))
    (with-temp-file sudo
      (insert "#!/bin/sh\n"
              "# Test stand-in for sudo: parses sudo's options, then runs the\n"
              "# command or shell as the current user (no privilege, no password).\n"
              "shell=\n"
              "while [ $# -gt 0 ]; do\n"
              "  case \"$1\" in\n"
              "    -u|-p|-g) shift 2 ;;\n"
              "    -s) shell=\"${SHELL:-/bin/sh}\"; shift ;;\n"
              "    --) shift; break ;;\n"
              "    -*) shift ;;\n"
              "    *) break ;;\n"
              "  esac\n"
              "done\n"
              "if [ -n \"$shell\" ] && [ $# -gt 0 ]; then exec \"$shell\" -c \"$*\"; fi\n"
              "if [ -n \"$shell\" ]; then exec \"$shell\"; fi\n"
              "exec \"$@\"\n"))
    (set-file-modes sudo #o755)
    bin))

(ert-deftest stele-test-sudo-save ()
  "A save through /sudo:: goes through TRAMP for real and is an admin-level edit."
  (require 'tramp)
  (stele-test--setup)
  (let* ((bin (stele-test--fake-sudo))
         (exec-path (cons bin exec-path))
         (process-environment (append (list (concat "PATH=" bin ":" (getenv "PATH"))
                                            "SHELL=/bin/sh")
                                      process-environment))
         (dir (make-temp-file "stele-etc-" t))
         (local (expand-file-name "app.conf" dir))
         (remote (concat "/sudo::" local))
         (tramp-verbose 0)
         (inhibit-message t))
    (stele-test--write local "listen = 80\n")
    (let ((before (stele-test--file-sha256 local)))
      (with-current-buffer (find-file-noselect remote)
        (should (equal (file-remote-p buffer-file-name 'method) "sudo"))
        (goto-char (point-max))
        (insert "workers = 4\n")
        (save-buffer)
        (kill-buffer))
      (should (equal (with-temp-buffer (insert-file-contents local) (buffer-string))
                     "listen = 80\nworkers = 4\n"))
      (let* ((save (stele-test--event "emacs.file.save-privileged"))
             (stored (car (stele-test--stored (alist-get 'id save))))
             (d (alist-get 'data stored)))
        (stele-test--check-common stored)
        (should (equal (alist-get 'privileged d)
                       `((host . ,(file-remote-p remote 'host)) (method . "sudo")
                         (user . "root") (via . "tramp-method"))))
        (should (equal (alist-get 'sha256_before d) before))
        (should (equal (alist-get 'sha256_after d) (stele-test--file-sha256 local)))
        (should (string-prefix-p "/sudo:" (alist-get 'file d)))))
    (tramp-cleanup-all-connections)
    (delete-directory dir t)
    (delete-directory bin t))
  (stele-test--reset))

;; Issue 17, item 6: admin-level operations other than saves.  A temp
;; directory stands in for /etc (`stele-privileged-directories').
(ert-deftest stele-test-admin-file-operations ()
  "Copies, renames, links, deletions, mode changes and writes under /etc are recorded."
  (require 'dired-aux)
  (let* ((etc (file-name-as-directory (make-temp-file "stele-etc-" t)))
         (home (file-name-as-directory (make-temp-file "stele-home-" t)))
         (stele-privileged-directories (list etc))
         (inhibit-message t)
         (ops nil))
    (stele-test--setup)
    (cl-flet ((event (action &optional file timeout)
                (stele-test--event action
                                   (lambda (e) (or (null file)
                                                   (equal (alist-get 'file (alist-get 'data e))
                                                          (abbreviate-file-name file))))
                                   (or timeout 5))))
      (stele-test--write (concat home "hosts") "127.0.0.1 localhost\n")
      (copy-file (concat home "hosts") (concat etc "hosts"))
      (rename-file (concat etc "hosts") (concat etc "hosts.new"))
      (set-file-modes (concat etc "hosts.new") #o600)
      (write-region "new=1\n" nil (concat etc "app.conf"))
      (make-symbolic-link (concat etc "hosts.new") (concat etc "hosts.link"))
      (should-error (rename-file (concat etc "missing") (concat etc "other")))
      (make-directory (concat etc "conf.d/sub") t)
      (stele-test--write (concat etc "conf.d/sub/a.conf") "a\n")
      (delete-directory (concat etc "conf.d") t)
      ;; Dired's operations go through the same primitives.
      (dired-copy-file (concat etc "app.conf") (concat home "app.conf") nil)
      (dired-delete-file (concat etc "app.conf"))
      ;; A file outside /etc is not recorded; nor is a save (recorded as such).
      (copy-file (concat home "hosts") (concat home "hosts2"))
      (with-current-buffer (find-file-noselect (concat etc "hosts.new"))
        (insert "# edited\n")
        (save-buffer)
        (kill-buffer))
      (let ((copy (event "emacs.file.copy" (concat home "hosts"))))
        (should copy)
        (should (equal (alist-get 'target (alist-get 'data copy)) (abbreviate-file-name (concat etc "hosts"))))
        (should (equal (alist-get 'sha256_before (alist-get 'data copy))
                       (stele--sha256 "127.0.0.1 localhost\n")))
        (should (equal (alist-get 'via (alist-get 'privileged (alist-get 'data copy))) "system-directory"))
        (let ((stored (car (stele-test--stored (alist-get 'id copy)))))
          (should (equal (alist-get 'action stored) "emacs.file.copy"))))
      (should (event "emacs.file.rename" (concat etc "hosts")))
      (let ((chmod (event "emacs.file.chmod" (concat etc "hosts.new"))))
        (should (equal (alist-get 'mode_after (alist-get 'data chmod)) "600")))
      (let ((write (event "emacs.file.write" (concat etc "app.conf"))))
        (should (equal (alist-get 'sha256_after (alist-get 'data write)) (stele--sha256 "new=1\n"))))
      (should (event "emacs.file.link"))
      (let ((failed (event "emacs.file.rename" (concat etc "missing"))))
        (should (equal (alist-get 'outcome failed) "failure")))
      ;; One event for the recursive deletion, none for what it deleted inside.
      (should (event "emacs.file.delete" (concat etc "conf.d")))
      (should-not (event "emacs.file.delete" (concat etc "conf.d/sub/a.conf") 0))
      (should (event "emacs.file.copy" (concat etc "app.conf")))
      (should (event "emacs.file.delete" (concat etc "app.conf")))
      (should-not (event "emacs.file.copy" (concat home "hosts2") 0))
      (should (event "emacs.file.save-privileged" (concat etc "hosts.new")))
      (should-not (event "emacs.file.write" (concat etc "hosts.new") 0))
      ;; The save made no recorded backup.
      (setq ops (cl-remove-if-not (lambda (e) (string-prefix-p "emacs.file." (alist-get 'action e)))
                                  stele-test--events))
      (should-not (cl-find-if (lambda (e) (string-match-p "~" (format "%s" (alist-get 'target (alist-get 'data e)))))
                              ops)))
    (delete-directory etc t)
    (delete-directory home t))
  (stele-test--reset))

(defun stele-test--gptel-simulation ()
  "Define gptel's and Copilot's hook points if they are not installed."
  (unless (featurep 'gptel)
    (defvar gptel-post-response-functions nil)
    (defvar gptel-post-tool-call-functions nil)
    (defvar gptel-model nil)
    (defvar gptel-backend nil)
    (unless (fboundp 'gptel-backend-name)
      (cl-defstruct (gptel-backend (:constructor stele-test--gptel-backend)) name)))
  (unless (and (fboundp 'copilot-accept-completion) (featurep 'copilot))
    (defalias 'copilot-accept-completion
      (lambda (&optional _transform)
        "Simulated Copilot: insert the suggestion at point."
        (insert "(copilot-suggested-form)")
        t))))

(defun stele-test--simulate-ai (file)
  "Visit FILE, simulate a gptel response, a tool call and a Copilot completion."
  (with-current-buffer (find-file-noselect file)
    (setq-local gptel-model 'gpt-4o)
    (setq-local gptel-backend (if (featurep 'gptel) gptel-backend
                                (funcall 'stele-test--gptel-backend :name "OpenAI")))
    (insert "Question: what is 6 * 7?\n")
    (let ((beg (point)))
      (insert "The answer is 42.\n")
      (run-hook-with-args 'gptel-post-response-functions beg (point)))
    (run-hook-with-args-until-success 'gptel-post-tool-call-functions
                                      '(:name "read_file" :args (:path "/tmp/x")
                                              :result "file contents"))
    (copilot-accept-completion)
    (insert "\n")
    (save-buffer)
    (prog1 (buffer-size) (kill-buffer))))

(ert-deftest stele-test-ai-actions ()
  "Simulated gptel responses and tool calls, and a Copilot completion, reach the log."
  (stele-test--gptel-simulation)
  (stele-test--setup)
  (let* ((dir (make-temp-file "stele-ai-" t))
         (file (expand-file-name "notes.md" dir))
         (size (stele-test--simulate-ai file)))
    (let* ((resp (stele-test--event "emacs.ai.response"))
           (stored (car (stele-test--stored (alist-get 'id resp)))))
      (stele-test--check-common stored)
      (should (equal (alist-get 'actor stored)
                     '((id . "gptel:OpenAI/gpt-4o") (on_behalf_of . "tester@example.com")
                       (type . "ai_agent") (verified . :false))))
      (let ((d (alist-get 'data stored)))
        (should (equal (alist-get 'model d) "gpt-4o"))
        (should (equal (alist-get 'backend d) "OpenAI"))
        (should (= (alist-get 'chars d) (length "The answer is 42.\n")))
        (should (equal (alist-get 'sha256 d) (stele--sha256 "The answer is 42.\n")))
        (should-not (alist-get 'text d))))
    (let* ((tool (stele-test--event "emacs.ai.tool-call"))
           (stored (car (stele-test--stored (alist-get 'id tool)))))
      (should (equal (alist-get 'tool_name (alist-get 'data stored)) "read_file"))
      (should (equal (alist-get 'type (alist-get 'actor stored)) "ai_agent")))
    (let* ((acc (stele-test--event "emacs.ai.completion-accepted"))
           (stored (car (stele-test--stored (alist-get 'id acc)))))
      (should (equal (alist-get 'actor stored)
                     '((id . "copilot") (on_behalf_of . "tester@example.com")
                       (type . "ai_agent") (verified . :false))))
      (should (= (alist-get 'chars (alist-get 'data stored)) (length "(copilot-suggested-form)"))))
    (let* ((save (stele-test--event "emacs.file.save"))
           (stored (car (stele-test--stored (alist-get 'id save))))
           (ai (alist-get 'ai (alist-get 'data stored))))
      (should (equal (alist-get 'type (alist-get 'actor stored)) "human"))
      (should (= (alist-get 'chars ai)
                 (+ (length "The answer is 42.\n") (length "(copilot-suggested-form)"))))
      (should (= (alist-get 'total_chars ai) size)))
    (delete-directory dir t))
  (stele-test--reset))

;; Issue 17, item 2: the `stele-ai' property was rear-sticky, so text
;; typed right after an AI insertion counted as AI.
(ert-deftest stele-test-typed-text-after-ai-is-not-ai ()
  "Characters typed after (or before) an AI insertion are not AI characters."
  (stele-test--gptel-simulation)
  (with-temp-buffer
    (insert "Q: ")
    (let ((beg (point)))
      (insert "AI text")
      (stele--mark-ai beg (point) "gptel"))
    ;; Typing inherits sticky properties (self-insert-command does this).
    (insert-and-inherit "12345678901234567890")
    (goto-char (point-min))
    (insert-and-inherit "typed first ")
    (should (= (stele--ai-chars) 7))))

(ert-deftest stele-test-shell-compile-eval ()
  "Shell commands, compilations and evaluated expressions reach the log."
  (stele-test--setup)
  (let ((inhibit-message t)
        ;; As if typed with M-! (programs' shell commands are not recorded).
        (this-command 'shell-command)
        (default-directory (file-name-as-directory (make-temp-file "stele-sh-" t))))
    (shell-command "echo hello")
    (shell-command "exit 3")
    (shell-command "echo --password=hunter2 > /dev/null")
    (let* ((ok (stele-test--event "emacs.shell.command"
                                  (lambda (e) (equal (alist-get 'text (alist-get 'command (alist-get 'data e)))
                                                     "echo hello"))))
           (stored (car (stele-test--stored (alist-get 'id ok)))))
      (stele-test--check-common stored)
      (should (equal (alist-get 'text (alist-get 'command (alist-get 'data stored))) "echo hello"))
      (should (equal (alist-get 'outcome stored) "success")))
    (let ((bad (stele-test--event "emacs.shell.command"
                                  (lambda (e) (equal (alist-get 'exit (alist-get 'data e)) 3)))))
      (should (equal (alist-get 'outcome bad) "failure"))
      (should (stele-test--index (alist-get 'id bad))))
    (let ((secret (stele-test--event "emacs.shell.command"
                                     (lambda (e) (string-match-p "password" (format "%S" e))))))
      (should (equal (alist-get 'text (alist-get 'command (alist-get 'data secret)))
                     "echo --password=[redacted] > /dev/null"))
      (should-not (string-match-p "hunter2" (format "%S" (car (stele-test--stored (alist-get 'id secret)))))))
    ;; shell-command-on-region, recorded once even though shell-command uses it.
    (should (= 3 (cl-count "emacs.shell.command" stele-test--events
                           :key (lambda (e) (alist-get 'action e)) :test #'equal)))
    (with-temp-buffer
      (insert "b\na\n")
      (let ((this-command 'shell-command-on-region))
        (shell-command-on-region (point-min) (point-max) "sort" nil t)))
    (should (stele-test--event "emacs.shell.command"
                               (lambda (e) (equal (alist-get 'text (alist-get 'command (alist-get 'data e)))
                                                  "sort"))))
    ;; Compilations, when they finish.
    (let ((compilation-ask-about-save nil))
      (compile "echo building")
      (let* ((c (stele-test--event "emacs.compile"))
             (stored (car (stele-test--stored (alist-get 'id c)))))
        (should (equal (alist-get 'outcome stored) "success"))
        (should (equal (alist-get 'text (alist-get 'command (alist-get 'data stored))) "echo building")))
      (compile "exit 2")
      (let ((c (stele-test--event "emacs.compile" (lambda (e) (equal (alist-get 'outcome e) "failure")))))
        (should (equal (alist-get 'exit (alist-get 'data c)) 2))))
    ;; M-: and its outcome.
    (should (= 3 (eval-expression '(+ 1 2))))
    (should-error (eval-expression '(error "Boom")))
    (let* ((ev (stele-test--event "emacs.eval" (lambda (e) (equal (alist-get 'outcome e) "success"))))
           (stored (car (stele-test--stored (alist-get 'id ev)))))
      (should (equal (alist-get 'text (alist-get 'form (alist-get 'data stored))) "(+ 1 2)")))
    (should (stele-test--event "emacs.eval" (lambda (e) (equal (alist-get 'outcome e) "failure"))))
    ;; Non-ASCII text arrives intact (the spool and the request are UTF-8).
    (eval-expression '(list "héllo ✓ 日本"))
    (let* ((ev (stele-test--event "emacs.eval" (lambda (e) (string-match-p "日本" (format "%S" e)))))
           (stored (car (stele-test--stored (alist-get 'id ev)))))
      (should (equal (alist-get 'text (alist-get 'form (alist-get 'data stored)))
                     "(list \"héllo ✓ 日本\")")))
    ;; C-x C-e, run as a command; its use by programs is not recorded.
    (with-temp-buffer
      (emacs-lisp-mode)
      (insert "(* 6 7)")
      (let ((this-command 'eval-last-sexp))
        (eval-last-sexp nil))
      (let ((this-command 'some-other-command))
        (eval-last-sexp nil)))
    (let ((evals (cl-remove-if-not (lambda (e) (equal (alist-get 'via (alist-get 'data e)) "eval-last-sexp"))
                                   stele-test--events)))
      (should (= (length evals) 1))
      (should (equal (alist-get 'text (alist-get 'form (alist-get 'data (car evals)))) "(* 6 7)"))
      (should (stele-test--index (alist-get 'id (car evals)))))
    (let ((stele-command-text 'hash))
      (eval-expression '(list "private"))
      (let ((d (alist-get 'data (stele-test--event "emacs.eval"
                                                   (lambda (e) (not (alist-get 'text (alist-get 'form (alist-get 'data e)))))))))
        (should (equal (alist-get 'sha256 (alist-get 'form d)) (stele--sha256 "(list \"private\")"))))))
  (stele-test--reset))

;; Issue 17, item 7: `shell-command-to-string' from any package was
;; recorded as the user's shell command.
(ert-deftest stele-test-program-shell-commands-are-not-the-users ()
  "Shell commands run by programs are not recorded by default, and are marked when they are."
  (stele-test--setup)
  (let ((inhibit-message t)
        (default-directory (file-name-as-directory (make-temp-file "stele-sh-" t))))
    (let ((this-command 'some-package-command))
      (should (equal (shell-command-to-string "echo from-a-package") "from-a-package\n")))
    (let ((this-command 'shell-command))
      (shell-command "echo from-the-user"))
    (let ((user (stele-test--event "emacs.shell.command")))
      (should (equal (alist-get 'text (alist-get 'command (alist-get 'data user))) "echo from-the-user"))
      (should (equal (alist-get 'via (alist-get 'data user)) "shell-command")))
    (should-not (cl-find-if (lambda (e) (string-match-p "from-a-package" (format "%S" e)))
                            stele-test--events))
    (let ((stele-record-program-shell-commands t)
          (this-command 'some-package-command))
      (shell-command-to-string "echo from-a-package"))
    (let ((prog (stele-test--event "emacs.shell.command"
                                   (lambda (e) (string-match-p "from-a-package" (format "%S" e))))))
      (should (equal (alist-get 'via (alist-get 'data prog)) "program"))
      (should (equal (alist-get 'by_command (alist-get 'data prog)) "some-package-command"))
      (should (stele-test--index (alist-get 'id prog)))))
  (stele-test--reset))

;; Issue 17, item 8: other ways to run commands.
(ert-deftest stele-test-other-ways-to-run-commands ()
  "Comint interpreters, term, and Dired's ! are recorded."
  (require 'term)
  (require 'dired-aux)
  (stele-test--setup)
  (let ((inhibit-message t)
        (default-directory (file-name-as-directory (make-temp-file "stele-sh-" t))))
    ;; Any comint buffer (run-python, SQLi...): here cat as the interpreter.
    (with-current-buffer (make-comint "stele-repl" "cat")
      (goto-char (point-max))
      (insert "select 1;")
      (comint-send-input)
      (let ((e (stele-test--event "emacs.shell.command"
                                  (lambda (e) (string-match-p "select 1" (format "%S" e))))))
        (should (equal (alist-get 'via (alist-get 'data e)) "comint-mode"))
        (should (equal (alist-get 'program (alist-get 'data e)) "cat"))
        (should (stele-test--index (alist-get 'id e))))
      ;; A password in SQL is redacted.
      (goto-char (point-max))
      (insert "CREATE USER bob IDENTIFIED BY 'sqlpw42';")
      (comint-send-input)
      (let ((e (stele-test--event "emacs.shell.command"
                                  (lambda (e) (string-match-p "CREATE USER" (format "%S" e))))))
        (should-not (string-match-p "sqlpw42" (format "%S" e))))
      (let ((kill-buffer-query-functions nil)) (kill-buffer)))
    ;; term / ansi-term: the program started.
    (let ((buf (make-term "stele-term" "/bin/sh")))
      (let ((e (stele-test--event "emacs.shell.session")))
        (should (equal (alist-get 'program (alist-get 'data e)) "/bin/sh"))
        (should (equal (alist-get 'via (alist-get 'data e)) "term"))
        (should (stele-test--index (alist-get 'id e))))
      (let ((kill-buffer-query-functions nil)) (kill-buffer buf)))
    ;; Dired's ! runs the user's command through shell-command.
    (let ((this-command 'dired-do-shell-command))
      (dired-run-shell-command "echo dired-bang"))
    (let ((e (stele-test--event "emacs.shell.command"
                                (lambda (e) (string-match-p "dired-bang" (format "%S" e))))))
      (should (equal (alist-get 'via (alist-get 'data e)) "dired-do-shell-command"))))
  (stele-test--reset))

;;;; Never blocks, never loses

(ert-deftest stele-test-unreachable-server-then-recovery ()
  "Events stay spooled while the server is unreachable, with backoff; then go."
  (stele-test--setup :url (stele-test--env "STELE_TEST_DEAD_URL"))
  (let ((id (stele--record "emacs.eval" :data '((form . ((text . "(unreachable)")))))))
    ;; Two failed attempts: the backoff doubled, the mode is still on,
    ;; and the event is on disk.
    (should (stele-test--wait (lambda () (and stele--backoff (>= stele--backoff 0.8))) 10))
    (should stele-mode)
    (should (string-match-p "cannot reach" (cdr stele--last-error)))
    (should (string-match-p (regexp-quote id)
                            (mapconcat (lambda (f) (with-temp-buffer (insert-file-contents f) (buffer-string)))
                                       (stele-test--segment-files stele-spool-directory) "")))
    (should (string-match-p "Last error: +cannot reach" (stele-status)))
    (should (string-match-p "Queue: +2 events" (stele-status)))
    ;; The server comes back.
    (let ((stele-server-url (stele-test--env "STELE_TEST_URL")))
      ;; The server is back at another URL: the queue follows it.
      (stele-retarget-queue)
      (should (stele-test--index id))
      (should (stele-test--wait (lambda () (= stele--queued 0))))
      (should (stele-test--wait (lambda () (null (stele-test--segment-files stele-spool-directory)))))
      (should (string-match-p "Last ack: +index [0-9]+" (stele-status)))))
  (stele-test--reset))

;; Issue 17, item 5: events went to whatever server was configured when
;; they were sent, so the change of `stele-server-url' itself went to
;; the new server.
(ert-deftest stele-test-events-go-to-the-server-of-their-time ()
  "Events recorded before a change of server go to the former server."
  (stele-test--setup)
  (should (stele-test--wait (lambda () (= stele--queued 0))))
  (setq stele-flush-delay 3600)
  (stele--cancel-timers)
  (let* ((real (stele-test--env "STELE_TEST_URL"))
         (dead (stele-test--env "STELE_TEST_DEAD_URL"))
         (before (stele--record "emacs.eval" :data '((n . "before")))))
    (setq stele-server-url dead)
    (let ((change (stele-test--event "emacs.variable.set"
                                     (lambda (e) (equal (alist-get 'variable (alist-get 'data e))
                                                        "stele-server-url"))))
          (after (stele--record "emacs.eval" :data '((n . "after")))))
      (should change)
      (stele-flush)
      ;; The former server got what happened while it was in force,
      ;; the change included, although the current server is down.
      (should (stele-test--index before))
      (should (stele-test--index (alist-get 'id change)))
      (should (equal (alist-get 'text (alist-get 'new (alist-get 'data (car (stele-test--stored (alist-get 'id change))))))
                     (prin1-to-string dead)))
      ;; The event recorded after the change waits for the new server.
      (should (stele-test--wait (lambda () (and stele--last-error
                                                (string-match-p "cannot reach" (cdr stele--last-error))))))
      (should-not (gethash after stele-test--acked))
      (should (= stele--queued 1))
      ;; Each spool file names its server (for a session adopting it).
      (let ((files (stele-test--segment-files stele-spool-directory)))
        (should (= (length files) 1))
        (should (equal (with-temp-buffer (insert-file-contents (concat (car files) ".server"))
                                         (buffer-string))
                       dead)))
      ;; Back on the first server: its new events go, and are not held
      ;; up by those still waiting for the other one.
      (setq stele-server-url real)
      (let ((later (stele--record "emacs.eval" :data '((n . "later")))))
        (stele-flush)
        (should (stele-test--index later))
        (should-not (gethash after stele-test--acked)))))
  (stele-test--reset))

(ert-deftest stele-test-watchdog-timeout ()
  "A server that accepts the connection but never answers is abandoned and retried."
  (let* ((silent (make-network-process :name "silent" :server t :host "127.0.0.1"
                                       :service t :family 'ipv4 :noquery t
                                       :filter #'ignore :sentinel #'ignore))
         (port (process-contact silent :service)))
    (unwind-protect
        (progn
          (stele-test--setup :url (format "http://127.0.0.1:%d" port))
          (setq stele-request-timeout 1)
          (let ((id (stele--record "emacs.eval" :data '((form . ((text . "(timeout)"))))))
                (start (float-time)))
            (should (stele-test--wait (lambda () (and stele--last-error
                                                      (string-match-p "no answer" (cdr stele--last-error))))
                                      10))
            (should (< (- (float-time) start) 5))
            (should stele-mode)
            (let ((stele-server-url (stele-test--env "STELE_TEST_URL")))
              ;; The server is back at another URL: the queue follows it.
              (stele-retarget-queue)
              (should (stele-test--index id)))))
      (delete-process silent)))
  (stele-test--reset))

(ert-deftest stele-test-invalid-event-is-set-aside ()
  "An event the server refuses as invalid is found by bisection and set aside; the rest go."
  (stele-test--setup)
  (let ((good1 (stele--record "emacs.eval" :data '((n . 1)))))
    (stele--spool-line "{\"action\":\"Not A Valid Action\",\"actor\":{\"id\":\"x\",\"type\":\"human\"},\"source\":{\"kind\":\"emacs\"},\"outcome\":\"success\"}")
    (let ((good2 (stele--record "emacs.eval" :data '((n . 2)))))
      (should (stele-test--index good1))
      (should (stele-test--index good2))
      (should (stele-test--wait (lambda () (file-exists-p (stele--rejected-file)))))
      (let ((rejected (stele--read-lines (stele--rejected-file))))
        (should (= (length rejected) 1))
        (should (string-match-p "Not A Valid Action" (car rejected)))
        (should (string-match-p "HTTP 400" (car rejected))))
      (should (string-match-p "Rejected: +1 event" (stele-status)))
      (should (stele-test--wait (lambda () (= stele--queued 0))))))
  (stele-test--reset))

(ert-deftest stele-test-spool-survives-killed-emacs ()
  "Events queued by an Emacs that is killed are sent by the next one."
  (let* ((spool (make-temp-file "stele-spool-killed-" t))
         (child
          (make-process
           :name "stele-child" :buffer (generate-new-buffer " *stele-child*")
           :command
           (list (stele-test--env "STELE_TEST_EMACS") "--batch" "-Q"
                 "-L" (stele-test--env "STELE_TEST_LISP_DIR") "-l" "stele" "--eval"
                 (prin1-to-string
                  `(progn
                     ;; The same server, but no credentials: nothing is sent.
                     (setq stele-record-noninteractive t
                           stele-server-url ,(stele-test--env "STELE_TEST_URL")
                           stele-spool-directory ,spool
                           stele-flush-delay 0.05
                           user-mail-address "tester@example.com"
                           auth-sources nil)
                     (defvar child-ids nil)
                     (add-hook 'stele-enqueue-functions
                               (lambda (e) (push (alist-get 'id e) child-ids)))
                     (stele-mode 1)
                     (dotimes (i 5) (eval-expression (list '+ i 100)))
                     (message "QUEUED %s" (string-join child-ids " "))
                     (sit-for 600))))
           :noquery t :connection-type 'pipe)))
    (should (stele-test--wait (lambda () (with-current-buffer (process-buffer child)
                                           (string-match-p "^QUEUED .*\n" (buffer-string))))
                              30))
    (let ((ids (with-current-buffer (process-buffer child)
                 (string-match "^QUEUED \\(.*\\)$" (buffer-string))
                 (split-string (match-string 1 (buffer-string)) " " t))))
      (should (= (length ids) 6))
      ;; The crash.
      (signal-process child 'SIGKILL)
      (should (stele-test--wait (lambda () (memq (process-status child) '(signal exit)))))
      (let ((files (stele-test--segment-files spool)))
        (should files)
        (should (= 6 (cl-reduce #'+ (mapcar (lambda (f) (length (stele--read-lines f))) files)))))
      ;; The next session, with the server reachable, adopts and sends them.
      (stele-test--setup :spool spool)
      (dolist (id ids)
        (should (stele-test--index id)))
      (let ((stored (car (stele-test--stored (car ids)))))
        (should (equal (alist-get 'action stored) "emacs.eval"))
        (should (equal (alist-get 'id (alist-get 'actor stored)) "tester@example.com")))
      (should (stele-test--wait (lambda () (null (stele-test--segment-files spool)))))
      (kill-buffer (process-buffer child))))
  (stele-test--reset))

;; Issue 17, item 10: nothing was sent on exit, and quitting during a
;; slow send asked about active processes.
(ert-deftest stele-test-connections-do-not-hold-up-exit ()
  "Stele's connections do not make Emacs ask before quitting."
  (let* ((silent (make-network-process :name "silent" :server t :host "127.0.0.1"
                                       :service t :family 'ipv4 :noquery t
                                       :filter #'ignore :sentinel #'ignore))
         (port (process-contact silent :service)))
    (unwind-protect
        (progn
          (stele-test--setup :url (format "http://127.0.0.1:%d" port))
          (stele--record "emacs.eval" :data '((n . 1)))
          (stele-flush)
          (let ((conns (stele-test--wait
                        (lambda ()
                          (cl-remove-if-not
                           (lambda (p) (and (eq (process-type p) 'network)
                                            (not (eq p silent))
                                            (eql (ignore-errors (process-contact p :service)) port)))
                           (process-list)))
                        10)))
            (should conns)
            (dolist (p conns) (should-not (process-query-on-exit-flag p)))))
      (delete-process silent)))
  (stele-test--reset))

(ert-deftest stele-test-queued-events-are-sent-on-exit ()
  "Events queued just before `kill-emacs' are sent then, within a bound."
  (let* ((spool (make-temp-file "stele-spool-exit-" t))
         (out (with-temp-buffer
                (call-process
                 (stele-test--env "STELE_TEST_EMACS") nil t nil
                 "--batch" "-Q" "-L" (stele-test--env "STELE_TEST_LISP_DIR") "-l" "stele" "--eval"
                 (prin1-to-string
                  `(progn
                     (setq stele-record-noninteractive t
                           stele-server-url ,(stele-test--env "STELE_TEST_URL")
                           stele-spool-directory ,spool
                           ;; Nothing is sent during the session.
                           stele-flush-delay 3600
                           stele-exit-flush-timeout 20
                           user-mail-address "tester@example.com"
                           auth-sources '(,(stele-test--env "STELE_TEST_AUTHINFO")))
                     (stele-mode 1)
                     (dotimes (i 3) (eval-expression (list '+ i 100)))
                     (message "QUEUED %d" stele--queued)
                     (add-hook 'kill-emacs-hook
                               (lambda () (message "EXIT queued %d, last error %S"
                                                   stele--queued stele--last-error))
                               90)
                     (kill-emacs 0))))
                (buffer-string))))
    (should (string-match-p "QUEUED 4" out))
    (should (string-match-p "EXIT queued 0, last error nil" out))
    ;; A segment file is deleted only once the server acknowledged it.
    (should-not (stele-test--segment-files spool))
    (delete-directory spool t)))

;;;; Identity

(defvar stele-test--browser-urls nil
  "URLs `stele-login' asked the browser to open.")

(defun stele-test--approve (url)
  "Ask the test's approver to sign in as the test user at URL."
  (let ((url-request-method "POST")
        (url-request-extra-headers '(("Content-Type" . "application/json")))
        (url-request-data (encode-coding-string
                           (json-serialize `((url . ,url)
                                             (user_code . ,(plist-get stele--login :user-code))))
                           'utf-8)))
    (let ((buf (url-retrieve-synchronously (stele-test--env "STELE_TEST_APPROVER") t t 30)))
      (unwind-protect
          (with-current-buffer buf
            (should (eql url-http-response-status 200)))
        (kill-buffer buf)))))

(ert-deftest stele-test-login-device-flow-and-refresh ()
  "stele-login's device flow, verified events, silent refresh, the next session, logout."
  (let* ((authinfo (make-temp-file "authinfo-" nil nil ""))
         (user (stele-test--env "STELE_TEST_USER"))
         (browse-url-browser-function
          (lambda (url &rest _) (push url stele-test--browser-urls))))
    (stele-test--setup :authinfo authinfo)
    (setq user-mail-address user)
    (setq stele-issuer (stele-test--env "STELE_TEST_ISSUER")
          stele-client-id (stele-test--env "STELE_TEST_CLIENT_ID")
          stele-scopes (stele-test--env "STELE_TEST_SCOPES")
          stele-resource (stele-test--env "STELE_TEST_RESOURCE"))
    ;; Without a login or an API key, events wait in the spool.
    (let ((waiting (stele--record "emacs.eval" :data '((before . "login")))))
      (should (stele-test--wait (lambda () (and stele--last-error
                                                (string-match-p "not logged in" (cdr stele--last-error))))))
      (setq stele-test--browser-urls nil)
      (stele-login)
      (should (stele-test--wait (lambda () (eq (plist-get stele--login :status) 'pending))))
      (should (string-match-p "user_code=" (car stele-test--browser-urls)))
      ;; Polling faster than the interval earns a slow_down, which is honoured.
      (let ((interval (plist-get stele--login :interval)))
        (stele--login-poll)
        (stele--login-poll)
        (should (stele-test--wait (lambda () (plist-get stele--login :slow-downs))))
        (should (= (plist-get stele--login :interval) (+ interval 5))))
      ;; The user approves in the browser.
      (stele-test--approve (car stele-test--browser-urls))
      (should (stele-test--wait (lambda () (eq (plist-get stele--login :status) 'done)) 30))
      (should (equal stele--token-actor user))
      ;; The refresh token is in auth-source (the temporary authinfo file).
      (let ((stored (with-temp-buffer (insert-file-contents authinfo) (buffer-string))))
        (should (string-match-p (regexp-quote stele--refresh-token) stored))
        (should (string-match-p "port stele-refresh-token" stored)))
      ;; The event queued before the login is sent now, as the user's own.
      (should (stele-test--index waiting))
      (should (eq (alist-get 'verified (alist-get 'actor (car (stele-test--stored waiting)))) t)))
    ;; New events are verified: the server authenticated the user.
    (let* ((id (stele--record "emacs.eval" :data '((after . "login"))))
           (stored (stele-test--stored id)))
      (should (equal (alist-get 'actor (car stored))
                     `((id . ,user) (issuer . ,stele-issuer) (type . "human") (verified . t))))
      (should (equal (alist-get 'method (alist-get 'ingest (cdr stored))) "oidc")))
    ;; So are AI actions on the user's behalf.
    (stele-test--gptel-simulation)
    (with-temp-buffer
      (setq-local gptel-model "claude")
      (insert "answer")
      (run-hook-with-args 'gptel-post-response-functions 1 (point-max)))
    (let ((stored (car (stele-test--stored (alist-get 'id (stele-test--event "emacs.ai.response"))))))
      (should (equal (alist-get 'on_behalf_of (alist-get 'actor stored)) user))
      (should (eq (alist-get 'verified (alist-get 'actor stored)) t)))
    ;; The access token expires: the next send refreshes it silently.
    (let ((old-refresh stele--refresh-token)
          (refreshes stele--refreshes))
      (setq stele--access-expiry (current-time))
      (let ((id (stele--record "emacs.eval" :data '((after . "expiry")))))
        (should (stele-test--index id))
        (should (= stele--refreshes (1+ refreshes)))
        (should (eq (alist-get 'verified (alist-get 'actor (car (stele-test--stored id)))) t)))
      ;; The provider rotated the refresh token; auth-source has the new one only.
      (should-not (equal old-refresh stele--refresh-token))
      (let ((stored (with-temp-buffer (insert-file-contents authinfo) (buffer-string))))
        (should (string-match-p (regexp-quote stele--refresh-token) stored))
        (should-not (string-match-p (regexp-quote old-refresh) stored))
        (should (= 1 (cl-count ?\n stored)))))
    ;; A new session: nothing in memory, the refresh token comes from auth-source.
    (setq stele--access-token nil stele--access-expiry nil stele--refresh-token nil
          stele--refresh-loaded nil stele--token-actor nil)
    (stele--load-identity)
    (should (equal stele--token-actor user))
    (let ((id (stele--record "emacs.eval" :data '((session . "next")))))
      (should (stele-test--index id))
      (should (eq (alist-get 'verified (alist-get 'actor (car (stele-test--stored id)))) t)))
    ;; No token on a command line, in a customizable variable, or in the spool.
    (let ((secrets (list stele--access-token stele--refresh-token)))
      (dolist (secret secrets)
        (should (stringp secret))
        (dolist (p (process-list))
          (should-not (cl-some (lambda (arg) (and (stringp arg) (string-match-p (regexp-quote secret) arg)))
                               (process-command p))))
        (dolist (member (custom-group-members 'stele nil))
          (when (and (eq (cadr member) 'custom-variable) (boundp (car member)))
            (should-not (string-match-p (regexp-quote secret)
                                        (format "%S" (symbol-value (car member)))))))
        (dolist (f (directory-files stele-spool-directory t "\\`[^.]"))
          (should-not (string-match-p (regexp-quote secret)
                                      (with-temp-buffer (insert-file-contents f) (buffer-string)))))))
    (should (string-match-p (regexp-quote (format "%s, verified through" user)) (stele-status)))
    ;; Logging out removes the stored refresh token.
    (stele-logout)
    (should-not (string-match-p "stele-refresh-token"
                                (with-temp-buffer (insert-file-contents authinfo) (buffer-string))))
    (delete-file authinfo))
  (stele-test--reset))

;;;; Your events (read your writes)

(defun stele-test--admin-authinfo ()
  "An authinfo file whose API key for the test server is the admin key.
The writer key may not search; the admin key may."
  (let ((file (make-temp-file "stele-admin-authinfo-")))
    (with-temp-file file
      (insert (format "machine %s login stele-api-key password %s\n"
                      (url-host (url-generic-parse-url (stele-test--env "STELE_TEST_URL")))
                      (stele-test--env "STELE_TEST_ADMIN_TOKEN"))))
    (set-file-modes file #o600)
    file))

(defvar stele-test--requests nil
  "(TIME . URL) of the requests `stele--http' sent, newest first.")

(defun stele-test--note-request (_method url &rest _)
  "Before `stele--http': remember URL."
  (push (cons (float-time) url) stele-test--requests))

(defun stele-test--events-text ()
  "The text of the *stele-events* buffer."
  (with-current-buffer "*stele-events*" (buffer-string)))

(defun stele-test--events-wait (regexp &optional timeout)
  "Wait until the *stele-events* buffer matches REGEXP; return its text."
  (stele-test--wait (lambda () (and (get-buffer "*stele-events*")
                                    (string-match-p regexp (stele-test--events-text))
                                    (stele-test--events-text)))
                    timeout))

(defun stele-test--stub (handler)
  "A local HTTP server that answers each request with HANDLER's answer.
HANDLER gets the request line and returns (STATUS HEADERS BODY):
HEADERS an alist, BODY a string.  Returns the server process."
  (make-network-process
   :name "stele-stub" :server t :host "127.0.0.1" :service t :family 'ipv4 :noquery t
   :sentinel #'ignore
   :filter (lambda (proc chunk)
             (let ((data (concat (or (process-get proc :data) "") chunk)))
               (process-put proc :data data)
               (when (string-match-p "\r\n\r\n" data)
                 (pcase-let* ((`(,status ,headers ,text) (funcall handler (car (split-string data "\r\n"))))
                              (body (encode-coding-string text 'utf-8)))
                   (process-send-string
                    proc
                    (concat (format "HTTP/1.1 %d %s\r\n" status (if (= status 200) "OK" "Unavailable"))
                            "Content-Type: application/json\r\n"
                            (format "Content-Length: %d\r\nConnection: close\r\n" (length body))
                            (mapconcat (lambda (h) (format "%s: %s\r\n" (car h) (cdr h))) headers "")
                            "\r\n" body))
                   (process-send-eof proc)))))))

(defun stele-test--stub-url (stub)
  "The URL of the STUB server."
  (format "http://127.0.0.1:%d" (process-contact stub :service)))

(defconst stele-test--behind
  "{\"error\":{\"code\":\"index_behind\",\"message\":\"the query store has not reached entry 7 within 5000 ms\",\"retryAfter\":1,\"indexedThrough\":3}}"
  "The body of a 503 index_behind answer.")

(defconst stele-test--page
  "{\"hits\":[{\"index\":2,\"received\":\"2026-12-06T10:00:00Z\",\"tier\":\"compliance\",\"event\":{\"id\":\"x\",\"time\":\"2026-12-06T10:00:00Z\",\"actor\":{\"id\":\"tester@example.com\",\"type\":\"human\"},\"action\":\"emacs.eval\",\"source\":{\"kind\":\"emacs\"},\"outcome\":\"success\"}}],\"indexed_through\":3}"
  "The body of a search answer with one hit, entry 2.")

(ert-deftest stele-test-query-quote ()
  "Query values are quoted with the query language's escapes."
  (should (equal (stele--query-quote "a@b.c") "\"a@b.c\""))
  (should (equal (stele--query-quote "say \"hi\\\" *") "\"say \\\"hi\\\\\\\" \\*\""))
  (let ((stele--token-actor "me@example.com"))
    (should (equal (stele--own-query) "actor:\"me@example.com\""))))

(ert-deftest stele-test-events-read-your-writes ()
  "stele-events asks the real server for the user's latest acknowledged event (after=)."
  (let ((authinfo (stele-test--admin-authinfo)))
    (stele-test--setup :authinfo authinfo)
    (setq stele-test--requests nil)
    (advice-add 'stele--http :before #'stele-test--note-request)
    (unwind-protect
        (let* ((id (stele--record "emacs.eval" :data '((form . ((text . "(read-your-writes)"))))))
               (index (stele-test--index id)))
          (should index)
          (should (eql (cdr (assoc (stele--server) stele--written)) index))
          (when (get-buffer "*stele-events*") (kill-buffer "*stele-events*"))
          (stele-events)
          (let ((text (stele-test--events-wait (format "^#%-6d .*emacs\\.eval" index))))
            (should text)
            (should (string-match-p (format "Includes your latest event, #%d\\." index) text))
            (should (string-match-p "^Stele events: actor:\"tester@example.com\"" text))
            (should-not (string-match-p "not searchable" text)))
          (should (cl-some (lambda (r) (string-match-p (format "/v1/events\\?q=.*&after=%d\\'" index) (cdr r)))
                           stele-test--requests))
          ;; RET on the entry's line verifies it (once a checkpoint covers it).
          (let ((stele-verifier-key (stele-test--env "STELE_TEST_VKEY")))
            (should (stele-test--wait
                     (lambda ()
                       (with-current-buffer "*stele-events*"
                         (goto-char (point-min))
                         (re-search-forward (format "^#%d " index))
                         (ignore-errors (stele-events-verify)))
                       (and (get-buffer "*stele-entry*")
                            (string-match-p "Verdict: +VERIFIED"
                                            (with-current-buffer "*stele-entry*" (buffer-string)))))
                     10)))
          ;; g runs it again, with the newest event.
          (let* ((id2 (stele--record "emacs.eval" :data '((form . ((text . "(again)"))))))
                 (index2 (stele-test--index id2)))
            (with-current-buffer "*stele-events*" (stele-events-refresh))
            (should (stele-test--events-wait (format "Includes your latest event, #%d\\." index2)))
            (should (string-match-p (format "^#%-6d " index2) (stele-test--events-text)))))
      (advice-remove 'stele--http #'stele-test--note-request)
      (delete-file authinfo)))
  (stele-test--reset))

(ert-deftest stele-test-events-refused ()
  "A credential that may not search gets a clear message, not a crash."
  (stele-test--setup)
  (when (get-buffer "*stele-events*") (kill-buffer "*stele-events*"))
  (stele-events "action:emacs.eval")
  (should (stele-test--events-wait "Search failed: HTTP 403 forbidden"))
  (stele-test--reset))

(ert-deftest stele-test-events-index-behind ()
  "503 index_behind: one retry after Retry-After, then what is searchable, said clearly.
A local HTTP server stands in for a Stele server whose index is behind."
  (let* ((requests nil)
         (ready nil)
         (stub (stele-test--stub
                (lambda (line)
                  (push (cons (float-time) line) requests)
                  (if (and (string-match-p "after=7" line) (not ready))
                      (list 503 '(("Retry-After" . "1")) stele-test--behind)
                    (list 200 nil stele-test--page))))))
    (unwind-protect
        (progn
          (stele-test--setup :url (stele-test--stub-url stub) :enable nil)
          (setq stele--written (list (cons (stele--server) 7)))
          (when (get-buffer "*stele-events*") (kill-buffer "*stele-events*"))
          ;; Still behind after the retry: the searchable events, and why the latest is missing.
          (stele-events)
          (let ((text (stele-test--events-wait "^#2 " 15)))
            (should text)
            (should (string-match-p
                     "Your latest event, #7, is not searchable yet (the index has reached #2); below is what is\\.  Press g to try again\\."
                     text))
            (should-not (string-match-p "Includes your latest event" text)))
          (setq requests (nreverse requests))
          (should (= (length requests) 3))
          (should (string-match-p "after=7" (cdr (nth 0 requests))))
          (should (string-match-p "after=7" (cdr (nth 1 requests))))
          (should-not (string-match-p "after=" (cdr (nth 2 requests))))
          ;; The retry honoured Retry-After: 1.
          (should (>= (- (car (nth 1 requests)) (car (nth 0 requests))) 0.95))
          ;; The index catches up during the wait: the retry is answered.
          (setq requests nil)
          (kill-buffer "*stele-events*")
          (stele-events)
          (should (stele-test--wait (lambda () requests) 5))
          (setq ready t)
          (let ((text (stele-test--events-wait "Includes your latest event, #7\\." 15)))
            (should text)
            (should (string-match-p "^#2 " text))
            (should-not (string-match-p "not searchable" text)))
          (should (= (length requests) 2))
          ;; A Retry-After past `stele-index-wait-max' is not waited for.
          (setq requests nil ready nil)
          (kill-buffer "*stele-events*")
          (let ((stele-index-wait-max 0.5)
                (start (float-time)))
            (stele-events)
            (should (stele-test--events-wait "not searchable yet" 10))
            (should (stele-test--events-wait "^#2 " 10))
            (should (< (- (float-time) start) 0.9))
            (should (= (length requests) 2))))
      (delete-process stub)))
  (stele-test--reset))

;;;; Verification

(ert-deftest stele-test-verify-entry ()
  "stele-verify-entry checks the leaf, the inclusion proof and the checkpoint signature."
  (stele-test--setup)
  (let* ((id (stele--record "emacs.eval" :data '((verify . "me"))))
         (index (stele-test--index id))
         (stele-verifier-key (stele-test--env "STELE_TEST_VKEY"))
         (last nil)
         (result (stele-test--wait
                  (lambda () (let ((r (condition-case err (stele-verify-entry index)
                                        (error (list :error err)))))
                               (setq last r)
                               (and (plist-get r :ok) r)))
                  10)))
    (unless result (message "last verification: %S" last))
    (should result)
    (should (plist-get result :leaf-ok))
    (should (plist-get result :inclusion-ok))
    (should (eq (plist-get result :signature) 'valid))
    (should (> (plist-get result :size) index))
    ;; The writer key may append but not read: the event itself is not shown.
    (should-not (plist-get result :event))
    (should (plist-get result :record))
    ;; The checkpoint signature is really checked.
    (let* ((proof (stele-test--get (format "/v1/proofs/inclusion?index=%d" index)))
           (cp (alist-get 'checkpoint proof))
           (lines (split-string cp "\n")))
      (should (eq (plist-get (stele-parse-checkpoint cp stele-verifier-key) :signature) 'valid))
      (should (eq (plist-get (stele-parse-checkpoint cp nil) :signature) 'unchecked))
      (setf (nth 1 lines) (number-to-string (1+ (string-to-number (nth 1 lines)))))
      (should (eq (plist-get (stele-parse-checkpoint (string-join lines "\n") stele-verifier-key)
                             :signature)
                  'invalid))
      ;; A key of another log names no signature of this checkpoint.
      (let* ((pub (stele--decode-hex "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
             (name "other.example/log")
             (keyid (substring (secure-hash 'sha256 (concat name "\n" (unibyte-string 1) pub) nil nil t) 0 4))
             (vkey (format "%s+%s+%s" name (stele--hex keyid)
                           (base64-encode-string (concat (unibyte-string 1) pub) t))))
        (should (stele-parse-verifier-key vkey))
        (should (eq (plist-get (stele-parse-checkpoint cp vkey) :signature) 'missing))
        (let ((stele-verifier-key vkey))
          (should-not (plist-get (stele-verify-entry index) :ok))))))
  (stele-test--reset))

(provide 'stele-test)
;;; stele-test.el ends here
