;;; stele.el --- Record your activity in a Stele audit log  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The Stele authors

;; Author: The Stele authors
;; Maintainer: The Stele authors
;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1"))
;; Keywords: tools, vc, processes
;; URL: https://stele.dev
;; SPDX-License-Identifier: Apache-2.0

;; This file is not part of GNU Emacs.

;; Licensed under the Apache License, Version 2.0 (the "License"); you
;; may not use this file except in compliance with the License.  You
;; may obtain a copy of the License at
;;
;;     http://www.apache.org/licenses/LICENSE-2.0
;;
;; Unless required by applicable law or agreed to in writing, software
;; distributed under the License is distributed on an "AS IS" BASIS,
;; WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or
;; implied.  See the License for the specific language governing
;; permissions and limitations under the License.

;;; Commentary:

;; Stele is a tamper-evident audit log.  `stele-mode' is a global minor
;; mode that records the meaningful things done in Emacs as Stele
;; events and sends them to a Stele server:
;;
;; - commits and pushes made with VC or Magit (`git.commit', `git.push');
;; - package installs, upgrades and removals (package.el, use-package
;;   `:ensure', straight.el, elpaca);
;; - configuration changes: saves of the init files, of `custom-file' and
;;   of files under `user-emacs-directory', Customize saves, and changes
;;   of security-relevant variables;
;; - admin-level edits: saves through TRAMP's privileged methods (sudo,
;;   doas, su, sudoedit...), of files under /etc, or as root;
;; - shell commands, compilations and evaluated expressions;
;; - AI-assisted actions: gptel responses and tool calls, accepted
;;   Copilot completions, and how much of each saved file came from them.
;;
;; Recording never blocks: hooks only append the event to a spool file
;; and return.  A timer sends the spool in batches with `url-retrieve';
;; events leave the spool only once the server has acknowledged them, so
;; they survive a crash or a server outage, and retries are harmless
;; because the server deduplicates events by id.
;;
;; Identity: `stele-login' signs you in with your identity provider (the
;; OAuth device authorization grant) and keeps the refresh token in
;; auth-source; events are then recorded under your verified identity.
;; Without a login, an API key from auth-source is used.
;;
;; `stele-status' shows the queue and the last error; `stele-events'
;; shows your events in the log, your latest acknowledged one included
;; (read your writes); `stele-verify-entry' checks that an entry is in
;; the log, against the signed checkpoint.
;;
;; Quick start:
;;
;;   (setq stele-server-url "https://stele.example.com"
;;         stele-issuer "https://sso.example.com/realms/acme")
;;   (stele-mode 1)
;;   M-x stele-login

;;; Code:

(require 'cl-lib)
(require 'subr-x)

;; url, url-http, auth-source and json are loaded when first needed
;; (sending, signing in, reading a secret), not with stele.el: they
;; take a noticeable time to load and most sessions start before any
;; event is sent.
(defvar url-request-method)
(defvar url-request-extra-headers)
(defvar url-request-data)
(defvar url-request-noninteractive)
(defvar url-http-attempt-keepalives)
(defvar url-http-response-status)
(defvar url-http-end-of-headers)
(defvar url-current-object)
(defvar auth-sources)
(defvar json-false)
(defvar json-null)
(defvar json-encoding-pretty-print)
(defvar json-object-type)
(defvar json-array-type)
(defvar json-key-type)
(declare-function url-retrieve "url" (url callback &optional cbargs silent inhibit-cookies))
(declare-function url-retrieve-synchronously "url" (url &optional silent inhibit-cookies timeout))
(declare-function url-generic-parse-url "url-parse" (url))
(declare-function url-host "url-parse" (cl-x))
(declare-function url-hexify-string "url-util" (string &optional allowed-chars))
(declare-function auth-source-search "auth-source" (&rest spec))
(declare-function auth-source-delete "auth-source" (&rest spec))
(declare-function auth-source-forget-all-cached "auth-source" ())
(declare-function json-encode "json" (object))
(declare-function json-read-from-string "json" (string))

(defun stele--require-url ()
  "Load url.el and its HTTP support, once, before a request."
  (require 'url)
  (require 'url-http))

(defconst stele-version "0.1.0"
  "Version of stele.el, sent as part of every event's source.")

;;;; Customization

(defgroup stele nil
  "Record meaningful Emacs activity in a Stele tamper-evident audit log."
  :group 'tools
  :prefix "stele-"
  :link '(url-link :tag "Stele" "https://stele.dev"))

(defun stele--set-and-restart (symbol value)
  "Set SYMBOL to VALUE, and restart `stele-mode' if it is on."
  (set-default symbol value)
  (when (and (boundp 'stele-mode) (symbol-value 'stele-mode)
             (fboundp 'stele--disable))
    (funcall 'stele--disable)
    (funcall 'stele--enable)))

(defcustom stele-server-url "http://127.0.0.1:7433"
  "Base URL of the Stele server, without a trailing slash."
  :type 'string)

(defcustom stele-record
  '(commit package config variables admin shell compile eval ai)
  "Which families of events `stele-mode' records.
Changing it with Customize while the mode is on takes effect at once."
  :type '(set (const :tag "Commits and pushes (VC, Magit)" commit)
              (const :tag "Package installs, upgrades, removals" package)
              (const :tag "Saves of configuration files and Customize saves" config)
              (const :tag "Changes of watched variables" variables)
              (const :tag "Admin-level (privileged) file saves" admin)
              (const :tag "Shell commands" shell)
              (const :tag "Compilations" compile)
              (const :tag "Evaluated expressions" eval)
              (const :tag "AI-assisted actions (gptel, Copilot)" ai))
  :set #'stele--set-and-restart)

(defcustom stele-record-noninteractive nil
  "Whether `stele-mode' may record in a noninteractive (batch) Emacs.
By default turning the mode on in batch mode does nothing, so that
scripts run with \"emacs --batch\" are not recorded."
  :type 'boolean)

(defcustom stele-config-file-patterns
  (list "/\\.dir-locals\\(?:-2\\)?\\.el\\'" "/\\.emacs\\(?:\\.el\\)?\\'")
  "Regexps of file names that count as Emacs configuration.
The init file, the early init file, `custom-file' and every file under
`user-emacs-directory' always count; these patterns add more."
  :type '(repeat regexp))

(defcustom stele-config-exclude-patterns
  (list "/auto-save-list/" "/eln-cache/" "/stele-spool/")
  "Regexps of file names that never count as configuration."
  :type '(repeat regexp))

(defcustom stele-watched-variables
  '(package-archives package-check-signature package-unsigned-archives
    package-pinned-packages network-security-level gnutls-verify-error
    gnutls-min-prime-bits auth-sources enable-local-variables
    enable-local-eval safe-local-variable-values safe-local-eval-forms
    url-proxy-services password-cache password-cache-expiry
    stele-server-url stele-record)
  "Security-relevant variables whose changes are recorded.
Changes made while the init file loads are not recorded (the saves of
the init file are)."
  :type '(repeat variable)
  :set #'stele--set-and-restart)

(defcustom stele-privileged-programs
  '("sudo" "doas" "su" "sudoedit" "ksu" "run0" "pkexec")
  "Programs that make a TRAMP method privileged.
A method is privileged when its name is one of these, or when its
login program or arguments in `tramp-methods' name one of them."
  :type '(repeat string))

(defcustom stele-privileged-directories '("/etc/" "/usr/local/etc/" "/boot/")
  "Directories whose files are system configuration.
Saves of files under them, locally or on a remote host, are recorded
as admin-level edits."
  :type '(repeat directory))

(defcustom stele-root-saves-privileged t
  "Whether every save made by an Emacs running as root is admin-level."
  :type 'boolean)

(defcustom stele-file-content 'hash
  "What configuration and admin-level saves send of the file content.
`hash' sends only SHA-256 digests of the content before and after the
save.  `text' also sends the saved text, truncated to
`stele-content-max-chars'."
  :type '(choice (const :tag "SHA-256 digests only" hash)
                 (const :tag "Digests and the (truncated) text" text)))

(defcustom stele-content-max-chars 4000
  "How much saved text to send when `stele-file-content' is `text'."
  :type 'natnum)

(defcustom stele-command-text 'truncate
  "How shell commands, compile commands and evaluated forms are sent.
`truncate' sends the text (after `stele-redact-regexps'), cut to
`stele-text-max-chars'; `hash' sends only its SHA-256 and length."
  :type '(choice (const :tag "Text, redacted and truncated" truncate)
                 (const :tag "SHA-256 only" hash)))

(defcustom stele-value-text 'truncate
  "How values of watched variables and Customize options are sent.
`truncate' sends their printed representation, cut to
`stele-text-max-chars'; `hash' sends only its SHA-256."
  :type '(choice (const :tag "Printed value, truncated" truncate)
                 (const :tag "SHA-256 only" hash)))

(defcustom stele-text-max-chars 1000
  "Maximum length of a command, form or value sent in an event."
  :type 'natnum)

(defcustom stele-commit-message 'summary
  "What commit events send of the commit message.
`summary' sends the first line, `hash' its SHA-256, `none' nothing."
  :type '(choice (const :tag "First line" summary)
                 (const :tag "SHA-256 of the first line" hash)
                 (const :tag "Nothing" none)))

(defcustom stele-ai-text nil
  "Whether AI events include the text of responses and tool results.
When nil (the default) they include only lengths and SHA-256 digests."
  :type 'boolean)

(defconst stele--secret-word
  (concat "\\(?:pass\\(?:word\\|wd\\|phrase\\)?\\|secret\\|token\\|api[-_]?key"
          "\\|access[-_]?key\\|private[-_]?key\\|credentials?\\)")
  "Words that name a secret (matched without case).")

(defcustom stele-redact-regexps
  (list
   ;; NAME=value, NAME: value, --name value, with NAME containing a
   ;; secret word (PASSWORD, AWS_SECRET_ACCESS_KEY, X-Api-Key...).  A
   ;; value after a space may not look like a flag (sshpass -p ...).
   (concat stele--secret-word "[A-Za-z0-9_-]*"
           "\\(?:[ \t]*[=:][ \t]*[\"']?\\([^ \t\n\"']+\\)"
           "\\|[ \t]+[\"']?\\([^- \t\n\"'][^ \t\n\"']*\\)\\)")
   ;; user:password@ in URLs.
   "://[^/@ \t\n:]+:\\([^/@ \t\n]+\\)@"
   ;; Authorization headers.
   "Authorization:[ \t]*\\(?:Bearer\\|Basic\\|Token\\)[ \t]+\\([^ \t\n\"']+\\)"
   ;; Passwords given as flags: mysql -pSECRET, sshpass -p SECRET,
   ;; curl -u user:pass, htpasswd -b file user SECRET.
   "\\_<\\(?:mysql\\|mysqldump\\|mysqladmin\\|mariadb\\)\\_>[^\n|;&]*?[ \t]-p\\([^ \t\n]+\\)"
   "identified[ \t]+by[ \t]+[\"']?\\([^ \t\n\"';]+\\)"
   "\\_<sshpass\\_>[^\n|;&]*?[ \t]-p[ \t]*\\([^ \t\n]+\\)"
   "[ \t]\\(?:-u\\|--user\\)[ \t=]+[\"']?[^: \t\n\"']*:\\([^ \t\n\"']+\\)"
   "\\_<htpasswd\\_>[^\n|;&]*?[ \t]-[a-zA-Z]*b[a-zA-Z]*[ \t]+[^ \t\n]+[ \t]+[^ \t\n]+[ \t]+\\([^ \t\n]+\\)"
   ;; Token shapes: AWS access key ids, GitHub, GitLab, Slack, Google,
   ;; OpenAI/Anthropic and Stripe keys, JWTs, PEM private keys.
   "\\(\\(?:AKIA\\|ASIA\\)[0-9A-Z]\\{16\\}\\)"
   "\\(\\(?:gh[pousr]_\\|github_pat_\\)[A-Za-z0-9_]\\{20,\\}\\)"
   "\\(glpat-[A-Za-z0-9_-]\\{20,\\}\\)"
   "\\(xox[abposr]-[A-Za-z0-9-]\\{10,\\}\\)"
   "\\(AIza[0-9A-Za-z_-]\\{35\\}\\)"
   "\\(sk-\\(?:ant-\\|proj-\\)?[A-Za-z0-9_-]\\{20,\\}\\)"
   "\\([rsp]k_\\(?:live\\|test\\)_[A-Za-z0-9]\\{16,\\}\\)"
   "\\(eyJ[A-Za-z0-9_-]\\{8,\\}\\.eyJ[A-Za-z0-9_-]\\{8,\\}\\.[A-Za-z0-9_-]+\\)"
   "-----BEGIN [A-Z ]*PRIVATE KEY-----\\([^-]+\\)-----END")
  "Regexps whose groups are replaced by \"[redacted]\" before sending.
Every group that matched is masked.  They apply to commands, forms
and values, before their digest is computed: a digest is only ever
of what may be sent, so a secret cannot be guessed offline from it.
The defaults catch NAME=value for secret-like names, credentials in
URLs, Authorization headers, password flags (mysql -p, sshpass -p,
curl -u) and the shapes of common cloud keys and tokens."
  :type '(repeat regexp))

(defcustom stele-shell-user-commands
  '(shell-command async-shell-command shell-command-on-region
    dired-do-shell-command dired-do-async-shell-command dired-smart-shell-command
    project-shell-command project-async-shell-command)
  "Commands whose shell commands are the user's own.
A shell command run while one of these is `this-command' is recorded
as the user's; others are run by programs (`shell-command-to-string'
in a package, say), recorded only if
`stele-record-program-shell-commands' is non-nil."
  :type '(repeat symbol))

(defcustom stele-record-program-shell-commands nil
  "Whether shell commands that programs run are recorded too.
They are marked with via \"program\" and the command that ran them.
Off by default: packages run many, which would drown the user's own."
  :type 'boolean)

(defcustom stele-compile-ignored-modes '(grep-mode)
  "Compilation modes whose runs are not recorded (e.g. \\[grep])."
  :type '(repeat symbol))

(defcustom stele-actor nil
  "Who you are in events sent without a login, e.g. your e-mail address.
nil means `user-mail-address'.  When you are logged in with
`stele-login', your identity provider's claim is used instead."
  :type '(choice (const :tag "user-mail-address" nil) string))

(defcustom stele-issuer nil
  "The OpenID Connect issuer `stele-login' signs in with, or nil."
  :type '(choice (const :tag "None (use an API key)" nil) string))

(defcustom stele-client-id "stele-cli"
  "The OAuth client id of Stele's public (device flow) client."
  :type 'string)

(defcustom stele-scopes "openid email groups offline_access"
  "Scopes `stele-login' asks for.
offline_access is what makes most identity providers issue a refresh
token, so that you stay logged in across sessions."
  :type 'string)

(defcustom stele-resource nil
  "Resource indicator (RFC 8707) for Stele's access tokens, or nil."
  :type '(choice (const :tag "None" nil) string))

(defcustom stele-actor-claim "email"
  "The access-token claim that names you (the server's actor_claim)."
  :type 'string)

(defcustom stele-api-key-user "stele-api-key"
  "The login of the auth-source entry holding your Stele API key.
The entry's machine is the host of `stele-server-url', for example
this line in ~/.authinfo.gpg:

  machine stele.example.com login stele-api-key password stele_..."
  :type 'string)

(defcustom stele-login-open-browser t
  "Whether `stele-login' opens the verification page with `browse-url'."
  :type 'boolean)

(defcustom stele-verifier-key nil
  "The log's verifier key, as printed by \"stele init\" or \"stele serve\".
For example \"example.com/stele+62538d1d+AfMSa6...\".  With it,
`stele-verify-entry' checks the checkpoint's Ed25519 signature."
  :type '(choice (const :tag "Not set" nil) string))

(defcustom stele-spool-directory nil
  "Directory of the spool files (nil: \"stele-spool\" in `user-emacs-directory')."
  :type '(choice (const :tag "Default" nil) directory))

(defcustom stele-batch-size 500
  "Most events sent in one request."
  :type 'natnum)

(defcustom stele-flush-delay 1.0
  "Seconds of idleness after an event before the queue is sent."
  :type 'number)

(defcustom stele-request-timeout 30
  "Seconds after which a request is abandoned (and retried later).
This applies to requests to the server and to the identity provider."
  :type 'number)

(defcustom stele-backoff-initial 2
  "Seconds to wait before the first retry after a failed send."
  :type 'number)

(defcustom stele-backoff-max 300
  "Longest wait, in seconds, between retries."
  :type 'number)

(defcustom stele-exit-flush-timeout 2
  "Seconds Emacs may spend on exit sending queued events.
What is not sent by then stays in the spool for the next session.
Zero sends nothing on exit."
  :type 'number)

(defcustom stele-events-limit 50
  "How many events `stele-events' shows."
  :type 'natnum)

(defcustom stele-index-wait-max 10
  "Longest wait, in seconds, before `stele-events' asks once more.
When the server's search index has not yet reached your latest
event, it answers 503 with a Retry-After: `stele-events' asks again
once after that many seconds if they are at most this, and then
shows what is searchable, saying that your latest event is not."
  :type 'number)

(defcustom stele-enqueue-functions nil
  "Functions called with each event (an alist) once it is queued."
  :type 'hook)

(defcustom stele-acknowledged-functions nil
  "Functions called with the server's acknowledgements.
Each is called with a list of (ID . INDEX) pairs, once per accepted
request."
  :type 'hook)

;;;; Internal state

(defvar stele--session nil
  "This Emacs session's spool name: HOST-PID-START.")

(defvar stele--session-key nil
  "Per-session entropy for event ids.")

(defvar stele--id-counter 0
  "Events given an id in this session.")

(defvar stele--seq 0
  "Number of the last spool segment of this session.")

(cl-defstruct (stele--segment (:constructor stele--segment-create)
                              (:copier nil))
  "A spool file and the events it holds."
  file (lines nil) (count 0) (bytes 0) (created nil) (pending nil) (server nil))
;; FILE holds the events, one JSON line each; LINES holds those that
;; could not be written to it (newest first); PENDING, the batches left
;; when the segment is sent in parts.  SERVER is the `stele-server-url'
;; in force when its events happened: they are sent there, even if the
;; URL changed since (kept in FILE.server, for the session that adopts
;; the file after a crash).

(defvar stele--open nil
  "The segment new events are appended to (lines newest first).")

(defvar stele--segments nil
  "Closed segments waiting to be sent, oldest first.")

(defvar stele--queued 0
  "Events queued and not yet acknowledged or rejected.")

(defvar stele--inflight nil
  "The segment being sent, or nil.")

(defvar stele--flush-timer nil)
(defvar stele--retry-timer nil)
(defvar stele--retry-at nil)
(defvar stele--backoff nil
  "Current retry delay in seconds, or nil after a success.")
(defvar stele--written nil
  "Alist of (SERVER . INDEX): the highest index each server acknowledged.
Only this session's events count.  `stele-events' asks the server to
answer once that entry is searchable (read your writes).")
(defvar stele--last-error nil
  "The last failure: (TIME . MESSAGE).")
(defvar stele--last-ack nil
  "The last acknowledgement: (TIME INDEX ID).")
(defvar stele--sent 0
  "Events acknowledged in this session.")
(defvar stele--rejected 0
  "Events refused by the server as invalid in this session.")
(defvar stele--last-adopt 0
  "When the spool directory was last scanned for orphaned segments.")
(defvar stele--last-warning 0)

(defvar stele--access-token nil
  "The current OIDC access token (kept in memory only).")
(defvar stele--access-expiry nil
  "When `stele--access-token' expires, a Lisp time.")
(defvar stele--refresh-token nil
  "The refresh token, once read from auth-source or received.")
(defvar stele--refresh-loaded nil
  "Whether auth-source was searched for the refresh token.")
(defvar stele--api-key nil
  "The API key read from auth-source.")

(defvar stele--max-batch-bytes (* 4 1024 1024)
  "Most bytes of events sent in one request.")

(defconst stele--max-event-bytes 60000
  "Events larger than this have their data replaced by a digest.")

;;;; Small utilities

(defmacro stele--safely (&rest body)
  "Run BODY; report and swallow any error so that hooks never fail."
  (declare (indent 0) (debug t))
  `(condition-case-unless-debug err
       (progn ,@body)
     (error (stele--note-internal-error err) nil)))

(defun stele--note-internal-error (err)
  "Remember ERR as the last error, with a rate-limited message."
  (setq stele--last-error
        (cons (current-time) (format "internal error: %s" (error-message-string err))))
  (when (> (- (float-time) stele--last-warning) 60)
    (setq stele--last-warning (float-time))
    (message "Stele: %s (see M-x stele-status)" (cdr stele--last-error))))

(defun stele--now ()
  "The current time as an RFC 3339 string with microseconds."
  (format-time-string "%FT%T.%6NZ" nil t))

(defun stele--hex (bytes)
  "Lower-case hex of the unibyte string BYTES."
  (mapconcat (lambda (b) (format "%02x" b)) bytes ""))

(defun stele--sha256 (object)
  "Hex SHA-256 of OBJECT, a string (encoded as UTF-8) or a buffer."
  (if (stringp object)
      (secure-hash 'sha256 (if (multibyte-string-p object)
                               (encode-coding-string object 'utf-8)
                             object))
    (secure-hash 'sha256 object)))

(defun stele--uuid-format (bytes)
  "Format the 16 unibyte BYTES as a UUID string."
  (let ((h (stele--hex bytes)))
    (concat (substring h 0 8) "-" (substring h 8 12) "-" (substring h 12 16)
            "-" (substring h 16 20) "-" (substring h 20 32))))

(defun stele-derived-id (kind key)
  "The event id of something identified elsewhere by KIND and KEY.
A UUIDv8 from the first 16 bytes of SHA-256(\"stele:KIND:KEY\"), so
that every source reporting the same thing (Emacs and the git hooks
for one commit) sends the same id, and the log stores it once."
  (let* ((digest (secure-hash 'sha256
                              (encode-coding-string (format "stele:%s:%s" kind key)
                                                    'utf-8)
                              nil nil t))
         (b (substring digest 0 16)))
    (aset b 6 (logior (logand (aref b 6) #x0f) #x80))
    (aset b 8 (logior (logand (aref b 8) #x3f) #x80))
    (stele--uuid-format b)))

(defun stele-commit-event-id (sha)
  "The id of the `git.commit' event of the commit SHA."
  (stele-derived-id "git.commit" (downcase sha)))

(defun stele--session-init ()
  "Set up the session name and id entropy, once."
  (unless stele--session
    (let* ((attrs (ignore-errors (process-attributes (emacs-pid))))
           (start (truncate (float-time (or (alist-get 'start attrs)
                                             before-init-time)))))
      (setq stele--session
            (format "%s-%d-%d"
                    (replace-regexp-in-string "[^A-Za-z0-9._]" "_" (system-name))
                    (emacs-pid) start))
      (setq stele--session-key
            (secure-hash 'sha256 (format "%s %S %S %S %S" stele--session
                                         (current-time) (random) (random)
                                         (emacs-uptime))
                         nil nil t)))))

(defvar stele--uuid-prefix nil
  "The first 13 hex digits of this session's event ids.")

(defun stele--uuid ()
  "A random (version 4) UUID, unique to this session and event.
The first 52 bits come from the session's entropy, the rest from a
counter mixed with random bits, so ids never repeat in a session and
collide across sessions only with negligible probability."
  (unless stele--uuid-prefix
    (stele--session-init)
    (let ((k stele--session-key))
      (setq stele--uuid-prefix
            (format "%02x%02x%02x%02x-%02x%02x-4%x"
                    (aref k 0) (aref k 1) (aref k 2) (aref k 3) (aref k 4) (aref k 5)
                    (logand (aref k 6) 15)))))
  (setq stele--id-counter (1+ stele--id-counter))
  (let ((k stele--session-key))
    (format "%s%02x-%04x-%012x"
            stele--uuid-prefix (aref k 7)
            (logior #x8000 (logand (logxor (ash (aref k 8) 8) (aref k 9) (random 65536))
                                   #x3fff))
            (logand (logxor stele--id-counter
                            (ash (random 65536) 32)
                            (ash (aref k 10) 24) (ash (aref k 11) 40))
                    #xffffffffffff))))

(defun stele--redact (string)
  "STRING with the groups of each of `stele-redact-regexps' masked."
  (let ((case-fold-search t) (mask "[redacted]"))
    (dolist (re stele-redact-regexps string)
      (let ((start 0))
        (while (and (< start (length string))
                    (string-match re string start))
          (let ((group (cl-loop for g from 1 to 9
                                when (match-beginning g) return g)))
            (if (null group)
                (setq start (max (1+ start) (match-end 0)))
              (let ((b (match-beginning group)))
                (setq string (replace-match mask t t string group)
                      start (+ b (length mask)))))))))))

(defun stele--text (string &optional mode)
  "An alist describing STRING per MODE (default `stele-command-text').
Always has the SHA-256 and length of the redacted text (never of the
text itself, which may hold a secret); with `truncate', also the
redacted text cut to `stele-text-max-chars'."
  (let* ((mode (or mode stele-command-text))
         (s (stele--string string))
         (red (stele--redact s))
         (out `((sha256 . ,(stele--sha256 red)) (length . ,(length red))
                ,@(and (not (equal red s)) '((redacted . t))))))
    (if (eq mode 'hash)
        out
      (append `((text . ,(if (> (length red) stele-text-max-chars)
                              (concat (substring red 0 stele-text-max-chars) "...")
                            red)))
              (when (> (length red) stele-text-max-chars) '((truncated . t)))
              out))))

(defun stele--print (value)
  "VALUE printed readably, bounded in depth and length."
  (let ((print-length 50) (print-level 6) (print-escape-newlines t)
        (print-circle t))
    (prin1-to-string value)))

(defun stele--value (value)
  "An alist describing VALUE per `stele-value-text'."
  (stele--text (stele--print value) stele-value-text))

(defun stele--string (s)
  "S as a valid multibyte or ASCII string for JSON."
  (cond ((not (stringp s)) (format "%s" s))
        ((multibyte-string-p s) s)
        ((string-match-p "[^\0-\177]" s) (decode-coding-string s 'utf-8 t))
        (t s)))

(defun stele--abbrev (file)
  "FILE abbreviated the way users write it."
  (stele--string (abbreviate-file-name file)))

(defun stele--compact (alist)
  "ALIST without the pairs whose value is nil."
  (let ((out nil))
    (while alist
      (when (cdr (car alist)) (push (car alist) out))
      (setq alist (cdr alist)))
    (nreverse out)))

(defun stele--cut (string max)
  "STRING cut to at most MAX characters."
  (if (> (length string) max) (substring string 0 max) string))

;;;; JSON

(defun stele--json-encode (object)
  "OBJECT as a JSON string: t, :false and :null are the constants."
  (if (and (fboundp 'json-serialize) (json-available-p))
      (json-serialize object)
    (require 'json)
    (let ((json-false :false) (json-null :null) (json-encoding-pretty-print nil))
      (json-encode object))))

(defun stele--json-parse (string)
  "Parse the JSON STRING into alists and vectors; nil if it is not JSON."
  (condition-case nil
      (if (and (fboundp 'json-parse-string) (json-available-p))
          (json-parse-string string :object-type 'alist :array-type 'array
                             :null-object nil :false-object :false)
        (require 'json)
        (let ((json-object-type 'alist) (json-array-type 'vector)
              (json-key-type 'symbol) (json-null nil) (json-false :false))
          (json-read-from-string string)))
    (error nil)))

(defun stele--get (object &rest keys)
  "Follow KEYS (symbols, or integers for vectors) into the JSON OBJECT."
  (dolist (k keys object)
    (setq object (cond ((integerp k) (and (vectorp object) (< k (length object))
                                          (aref object k)))
                       ((consp object) (cdr (assq k object)))
                       (t nil)))))

;;;; Events

(defvar stele--token-actor nil
  "The actor claim of the logged-in user, or nil.")

(defun stele--actor-id ()
  "Who the user is, for events."
  (or stele--token-actor
      (and (stringp stele-actor) (not (string-empty-p stele-actor)) stele-actor)
      (and (stringp user-mail-address) (not (string-empty-p user-mail-address))
           user-mail-address)
      (concat (user-login-name) "@" (system-name))))

(defvar stele--source nil)

(defun stele--source ()
  "The source object of this session's events."
  (or stele--source
      (setq stele--source
            `((kind . "emacs")
              (host . ,(stele--string (system-name)))
              (agent . ,(concat "stele.el/" stele-version))
              (version . ,emacs-version)))))

(cl-defun stele--event (action &key id resource data (outcome "success") reason
                               actor-type agent)
  "An event alist for ACTION.
ID defaults to a fresh UUID.  RESOURCE is (TYPE . ID).  DATA is an
alist (nil values are dropped).  OUTCOME is \"success\", \"failure\"
or \"denied\"; REASON explains it.  With ACTOR-TYPE `ai_agent', the
actor is AGENT acting on behalf of the user."
  (let ((user (stele--actor-id)))
    (stele--compact
     `((id . ,(or id (stele--uuid)))
       (time . ,(stele--now))
       (actor . ,(if (eq actor-type 'ai_agent)
                     `((id . ,(stele--string (or agent "ai")))
                       (type . "ai_agent")
                       (on_behalf_of . ,user))
                   `((id . ,user) (type . "human"))))
       (action . ,action)
       (source . ,(stele--source))
       (resource . ,(and resource
                         `((type . ,(car resource))
                           (id . ,(let ((r (stele--string (cdr resource))))
                                    (if (string-empty-p r) "-" (stele--cut r 2048)))))))
       (outcome . ,outcome)
       (reason . ,(and reason (let ((r (stele--string reason)))
                                (and (not (string-empty-p r)) (stele--cut r 4000)))))
       (data . ,(stele--compact data))))))

(defvar stele--native-json (and (fboundp 'json-insert) (json-available-p))
  "Whether Emacs has native JSON support.")

(defun stele--json-insert (object)
  "Insert OBJECT as JSON at point.
In a unibyte buffer (the spool's work buffer) the JSON is UTF-8 bytes."
  (cond (stele--native-json (json-insert object))
        (enable-multibyte-characters (insert (stele--json-encode object)))
        (t (insert (encode-coding-string (stele--json-encode object) 'utf-8)))))

(defun stele--replace-data (event data)
  "EVENT with its data replaced by DATA."
  (cons (cons 'data data) (assq-delete-all 'data (copy-sequence event))))

(defun stele--insert-event (event)
  "Insert EVENT as one line of JSON, shrunk to fit the server's entry limit."
  (let ((start (point)))
    (condition-case err
        (stele--json-insert event)
      (error
       (delete-region start (point-max))
       (stele--json-insert
        (stele--replace-data event `((unserializable . ,(error-message-string err)))))))
    (when (> (- (position-bytes (point-max)) (position-bytes start)) stele--max-event-bytes)
      (let ((data (stele--json-encode (or (alist-get 'data event) '((none . t))))))
        (delete-region start (point-max))
        (stele--json-insert
         (stele--replace-data event `((truncated . t)
                                      (bytes . ,(string-bytes data))
                                      (sha256 . ,(stele--sha256 data)))))))))

(defun stele--record (action &rest args)
  "Queue an event for ACTION; ARGS are those of `stele--event'.
Returns the event's id.  This is all a hook does: build the event,
append it to the spool and schedule a flush."
  (let ((event (apply #'stele--event action args)))
    (stele--enqueue event)
    (alist-get 'id event)))

(defvar stele--work-buffer nil
  "Buffer in which events are serialized before they are spooled.")

(defmacro stele--with-work-buffer (&rest body)
  "Run BODY in the emptied work buffer.
It is unibyte: events are serialized into it as UTF-8 bytes and written
to the spool as they are, which spares a copy of each event."
  (declare (indent 0) (debug t))
  `(with-current-buffer (if (buffer-live-p stele--work-buffer)
                            stele--work-buffer
                          (setq stele--work-buffer
                                (with-current-buffer (get-buffer-create " *stele-spool*" t)
                                  (set-buffer-multibyte nil)
                                  (current-buffer))))
     (erase-buffer)
     ,@body))

(defun stele--enqueue (event)
  "Append EVENT to the spool and schedule sending it."
  (stele--with-work-buffer
    (stele--insert-event event)
    (insert "\n")
    (stele--spool-buffer))
  (when stele-enqueue-functions
    (run-hook-with-args 'stele-enqueue-functions event))
  (stele--schedule-flush))

(defun stele--spool-line (line)
  "Append the JSON LINE (a string without newline) to the spool."
  (stele--with-work-buffer
    (insert (encode-coding-string line 'utf-8) "\n")
    (stele--spool-buffer)))

;;;; Spool

(defun stele--spool-dir ()
  "The spool directory, as a directory name."
  (file-name-as-directory
   (expand-file-name (or stele-spool-directory
                         (expand-file-name "stele-spool" user-emacs-directory)))))

(defun stele--ensure-spool-dir ()
  "Create the spool directory (private to the user) if needed."
  (let ((dir (stele--spool-dir)))
    (unless (file-directory-p dir)
      (with-file-modes #o700 (make-directory dir t)))
    dir))

(defvar stele--in-file-op nil
  "Non-nil inside a file operation being recorded, or Stele's own writes.
Nested operations (TRAMP's or Dired's internals) are not recorded again.")

(defun stele--write-file (file string &optional append)
  "Write STRING to FILE (appending if APPEND), quickly and silently."
  (let ((stele--in-file-op t)
        (coding-system-for-write 'utf-8-unix)
        (write-region-inhibit-fsync t)
        (file-name-handler-alist nil)
        (create-lockfiles nil)
        (write-region-annotate-functions nil)
        (write-region-post-annotation-function nil)
        (inhibit-message t))
    (with-file-modes #o600
      (write-region string nil file append 'silent))))

(defun stele--server ()
  "The current server URL, without a trailing slash."
  (string-remove-suffix "/" stele-server-url))

(defun stele--new-segment ()
  "A new empty open segment of this session, for the current server."
  (stele--session-init)
  (setq stele--seq (1+ stele--seq))
  (stele--segment-create
   :file (expand-file-name (format "%s-%06d.ndjson" stele--session stele--seq)
                           (stele--spool-dir))
   :created (current-time)
   :server (stele--server)))

(defun stele--server-file (file)
  "The file naming the server of the spool FILE's events."
  (concat file ".server"))

(defun stele--spool-buffer ()
  "Append the event line in the current buffer to the open segment.
The segment file is the queue: it is what will be sent.  If it cannot
be written, the line is kept in memory instead."
  (when (and stele--open
             (not (equal (stele--segment-server stele--open) (stele--server))))
    ;; The server changed: its events go in a segment of their own.
    (stele--close-open-segment))
  (let ((seg (or stele--open (setq stele--open (stele--new-segment))))
        (bytes (1- (position-bytes (point-max)))))
    (condition-case err
        (let ((stele--in-file-op t)
              (coding-system-for-write 'no-conversion)
              (write-region-inhibit-fsync t)
              (file-name-handler-alist nil)
              (create-lockfiles nil)
              (write-region-annotate-functions nil)
              (write-region-post-annotation-function nil)
              (inhibit-message t)
              (file (stele--segment-file seg)))
          (with-file-modes #o600
            (condition-case nil
                (write-region nil nil file t 'silent)
              (file-missing
               ;; The spool directory is gone (or was never made): make it.
               (stele--ensure-spool-dir)
               (write-region nil nil file t 'silent)))
            (when (= (stele--segment-count seg) 0)
              (write-region (encode-coding-string (stele--segment-server seg) 'utf-8) nil
                            (stele--server-file file) nil 'silent))))
      (error
       (push (decode-coding-string
              (buffer-substring-no-properties (point-min) (1- (point-max))) 'utf-8)
             (stele--segment-lines seg))
       (setq stele--last-error
             (cons (current-time)
                   (format "cannot write the spool (events kept in memory): %s"
                           (error-message-string err))))))
    (cl-incf (stele--segment-count seg))
    (cl-incf (stele--segment-bytes seg) bytes)
    (cl-incf stele--queued)
    (when (or (>= (stele--segment-count seg) stele-batch-size)
              (>= (stele--segment-bytes seg) stele--max-batch-bytes))
      (stele--close-open-segment))))

(defun stele--close-open-segment ()
  "Move the open segment to the send queue."
  (when stele--open
    (when (> (stele--segment-count stele--open) 0)
      (setq stele--segments (nconc stele--segments (list stele--open))))
    (setq stele--open nil)))

(defun stele--segment-body (seg)
  "The events of SEG as an NDJSON request body (unibyte)."
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (let ((file-name-handler-alist nil))
      (when (file-exists-p (stele--segment-file seg))
        (insert-file-contents-literally (stele--segment-file seg))))
    (dolist (line (reverse (stele--segment-lines seg)))
      (unless (or (bobp) (eq (char-before) ?\n)) (insert "\n"))
      (insert (encode-coding-string line 'utf-8) "\n"))
    (buffer-string)))

(defun stele--segment-all-lines (seg)
  "The events of SEG as a list of strings."
  (append (and (file-exists-p (stele--segment-file seg))
               (stele--read-lines (stele--segment-file seg)))
          (reverse (stele--segment-lines seg))))

(defun stele--delete-segment-file (seg)
  "Delete SEG's spool file, ignoring a file already gone."
  (let ((file-name-handler-alist nil))
    (ignore-errors (delete-file (stele--segment-file seg)))
    (ignore-errors (delete-file (stele--server-file (stele--segment-file seg))))))

(defconst stele--segment-regexp
  "\\`\\(.+\\)-\\([0-9]+\\)-\\([0-9]+\\)-\\([0-9]+\\)\\.ndjson\\'"
  "Spool file names: HOST-PID-START-SEQ.ndjson.")

(defun stele--session-alive-p (pid start)
  "Return non-nil if the Emacs process PID that started at START is alive."
  (let ((attrs (ignore-errors (process-attributes pid))))
    (cond
     (attrs (let ((s (alist-get 'start attrs)))
              (and (not (equal (alist-get 'state attrs) "Z"))
                   (or (null s) (<= (abs (- (float-time s) start)) 2)))))
     ((ignore-errors (process-attributes (emacs-pid))) nil)
     (t (eq 0 (ignore-errors (signal-process pid 0)))))))

(defun stele--read-lines (file)
  "The non-empty lines of FILE, a list of strings."
  (with-temp-buffer
    (let ((coding-system-for-read 'utf-8-unix)
          (file-name-handler-alist nil))
      (insert-file-contents file))
    (split-string (buffer-string) "\n" t)))

(defun stele--adopt-orphans (&optional force)
  "Take over the spool files of Emacs sessions that have died.
Scans at most once a minute unless FORCE.  Adopted events are sent
before this session's own."
  (when (or force (> (- (float-time) stele--last-adopt) 60))
    (setq stele--last-adopt (float-time))
    (stele--session-init)
    (let* ((dir (stele--spool-dir))
           (host (replace-regexp-in-string "[^A-Za-z0-9._]" "_" (system-name)))
           (mine (regexp-quote stele--session))
           (adopted nil))
      (when (file-directory-p dir)
        (dolist (name (sort (directory-files dir nil "\\.ndjson\\'" t) #'string<))
          (when (and (string-match stele--segment-regexp name)
                     (not (string-match-p (concat "\\`" mine "-") name)))
            (let ((h (match-string 1 name))
                  (pid (string-to-number (match-string 2 name)))
                  (start (string-to-number (match-string 3 name))))
              (when (and (equal h host) (not (stele--session-alive-p pid start)))
                (let ((seg (stele--adopt-file (expand-file-name name dir))))
                  (when seg (push seg adopted))))))))
      (when adopted
        (setq stele--segments (nconc (nreverse adopted) stele--segments))
        (stele--schedule-flush))
      adopted)))

(defun stele--adopt-file (file)
  "Rename the orphaned spool FILE to this session and queue its events.
Returns the new segment, or nil if another session took it first or it
held no event.  Lines that are not JSON (a write cut short by a crash)
are moved to the rejected file."
  (let* ((seg (stele--new-segment))
         (new (stele--segment-file seg)))
    (when (condition-case nil
              (let ((file-name-handler-alist nil)) (rename-file file new) t)
            (error nil))
      (let ((file-name-handler-alist nil)
            (server (stele--server-file file)))
        (when (file-exists-p server)
          (setf (stele--segment-server seg)
                (string-trim (with-temp-buffer (insert-file-contents server)
                                               (buffer-string))))
          (ignore-errors (rename-file server (stele--server-file new) t))))
      (let ((lines (stele--read-lines new)) (good nil))
        (dolist (line lines)
          (if (stele--json-parse line)
              (push line good)
            (stele--reject line "the line is not JSON (cut short by a crash?)")))
        (setq good (nreverse good))
        (if (null good)
            (progn (stele--delete-segment-file seg) nil)
          (unless (= (length good) (length lines))
            (stele--write-file new (concat (mapconcat #'identity good "\n") "\n")))
          (setf (stele--segment-count seg) (length good)
                (stele--segment-bytes seg) (file-attribute-size (file-attributes new))
                (stele--segment-created seg)
                (file-attribute-modification-time (file-attributes new)))
          (cl-incf stele--queued (length good))
          seg)))))

(defun stele--rejected-file ()
  "The file keeping events the server refused as invalid."
  (expand-file-name "rejected.ndjson" (stele--spool-dir)))

(defun stele--reject (line why &optional status)
  "Keep the event LINE, refused for WHY (HTTP STATUS), in the rejected file."
  (cl-incf stele--rejected)
  (condition-case nil
      (stele--write-file
       (stele--rejected-file)
       (concat (stele--json-encode
                (stele--compact
                 `((time . ,(stele--now)) (status . ,status)
                   (error . ,(stele--string why)) (line . ,(stele--string line)))))
               "\n")
       t)
    (error nil)))

(defun stele-retarget-queue ()
  "Send every queued event to the current `stele-server-url'.
Events go to the server in force when they were recorded; use this
when that server moved to the current URL, or its URL was wrong."
  (interactive)
  (let ((server (stele--server)) (n 0))
    (dolist (seg (append stele--segments (and stele--open (list stele--open))))
      (unless (equal (stele--segment-server seg) server)
        (setf (stele--segment-server seg) server)
        (cl-incf n (stele--segment-count seg))
        (ignore-errors
          (stele--write-file (stele--server-file (stele--segment-file seg)) server))))
    (when (called-interactively-p 'any)
      (message "Stele: %d queued events now go to %s" n server)))
  (stele-flush))

(defun stele-requeue-rejected ()
  "Send the events in the rejected file again.
Use it after fixing what made the server refuse them."
  (interactive)
  (let ((file (stele--rejected-file)) (n 0))
    (if (not (file-exists-p file))
        (message "Stele: no rejected events")
      (dolist (l (stele--read-lines file))
        (let ((line (stele--get (stele--json-parse l) 'line)))
          (when (stringp line)
            (stele--spool-line line)
            (cl-incf n))))
      (delete-file file)
      (setq stele--rejected 0)
      (stele--schedule-flush)
      (message "Stele: %d events queued again" n))))

;;;; Sending

(defun stele--schedule-flush (&optional delay)
  "Arrange for the queue to be sent after DELAY (default `stele-flush-delay')."
  (unless (or stele--inflight stele--retry-timer stele--flush-timer)
    (let ((delay (or delay stele-flush-delay)))
      (setq stele--flush-timer
            (if (or noninteractive (current-idle-time))
                (run-with-timer delay nil #'stele--flush-timer-fired)
              (run-with-idle-timer delay nil #'stele--flush-timer-fired))))))

(defun stele--flush-timer-fired ()
  "Timer function: send the queue."
  (setq stele--flush-timer nil)
  (stele--flush))

(defun stele--cancel-timers ()
  "Cancel the flush and retry timers."
  (when stele--flush-timer (cancel-timer stele--flush-timer))
  (when stele--retry-timer (cancel-timer stele--retry-timer))
  (setq stele--flush-timer nil stele--retry-timer nil stele--retry-at nil))

(defun stele-flush ()
  "Send the queued events now, without waiting for a retry."
  (interactive)
  (stele--cancel-timers)
  (setq stele--backoff nil)
  (stele--adopt-orphans (called-interactively-p 'any))
  (stele--flush)
  (when (called-interactively-p 'any)
    (message "Stele: %s" (if stele--inflight
                             (format "sending %d queued events" stele--queued)
                           "nothing to send"))))

(defun stele--chunks (lines)
  "LINES split into batches that respect the size limits."
  (let ((chunks nil) (chunk nil) (n 0) (bytes 0))
    (dolist (line lines)
      (when (and chunk (or (>= n stele-batch-size)
                           (>= (+ bytes (string-bytes line)) stele--max-batch-bytes)))
        (push (nreverse chunk) chunks)
        (setq chunk nil n 0 bytes 0))
      (push line chunk)
      (setq n (1+ n) bytes (+ bytes 1 (string-bytes line))))
    (when chunk (push (nreverse chunk) chunks))
    (nreverse chunks)))

(defun stele--flush ()
  "Send the oldest segment, unless a request is in flight."
  (stele--safely
    (unless stele--inflight
      (stele--adopt-orphans)
      (when (and stele--open (> (stele--segment-count stele--open) 0)
                 (or (null stele--segments)
                     ;; Segments for a former server may wait long: let
                     ;; the current server's events go in turn.
                     (cl-some (lambda (s) (not (equal (stele--segment-server s)
                                                      (stele--server))))
                              stele--segments)))
        (stele--close-open-segment))
      (let ((seg (car stele--segments)))
        (when seg
          (setq stele--inflight seg)
          (when (and (null (stele--segment-pending seg))
                     (or (> (stele--segment-count seg) stele-batch-size)
                         (> (stele--segment-bytes seg) stele--max-batch-bytes)))
            (setf (stele--segment-pending seg)
                  (stele--chunks (stele--segment-all-lines seg))))
          (stele--authorization
           (lambda (header err)
             (stele--safely
               (when (eq stele--inflight seg)
                 (if header
                     (stele--post-batch seg header)
                   (stele--send-failed (or err "no credentials") nil)))))
           (stele--segment-server seg)))))))

(defun stele--post-batch (seg header)
  "POST the next batch of SEG with the Authorization HEADER.
The batch is the first of SEG's pending batches, or else all of SEG."
  (let* ((batch (car (stele--segment-pending seg)))
         (body (if batch
                   (encode-coding-string (concat (mapconcat #'identity batch "\n") "\n")
                                         'utf-8)
                 (stele--segment-body seg)))
         (n (if batch (length batch) (stele--segment-count seg))))
    (if (string-empty-p body)
        (stele--batch-resolved seg batch)
      (stele--http
       "POST" (concat (or (stele--segment-server seg) (stele--server)) "/v1/events")
       `(("Content-Type" . "application/x-ndjson")
         ("Accept" . "application/json")
         ("Authorization" . ,header))
       body
       (lambda (res)
         (stele--safely
           ;; Only the answer to the request in flight counts (not one
           ;; abandoned when the mode was restarted).
           (when (eq stele--inflight seg)
             (stele--batch-done seg batch n res))))))))

(defun stele--batch-done (seg batch n res)
  "Handle the answer RES to sending BATCH (N events) of SEG.
BATCH is a list of lines, or nil for the whole segment."
  (let ((status (plist-get res :status)))
    (cond
     ((and status (<= 200 status 299))
      (let ((entries (stele--get (plist-get res :json) 'entries))
            (acked nil))
        (when (vectorp entries)
          (mapc (lambda (e) (push (cons (stele--get e 'id) (stele--get e 'index)) acked))
                entries)
          (setq acked (nreverse acked))
          (when acked
            (let ((last (car (last acked))))
              (setq stele--last-ack (list (current-time) (cdr last) (car last))))
            (stele--note-written (or (stele--segment-server seg) (stele--server)) acked)))
        (cl-incf stele--sent n)
        (setq stele--queued (max 0 (- stele--queued n)))
        (setq stele--backoff nil)
        (stele--batch-resolved seg batch)
        (when acked
          (run-hook-with-args 'stele-acknowledged-functions acked))))
     ((stele--refused-events-p res)
      ;; The server refused some events for what they are: find them by
      ;; halving the batch; only an event refused on its own is set aside.
      (let ((lines (or batch (stele--segment-all-lines seg))))
        (if (cdr lines)
            (let* ((half (/ (length lines) 2))
                   (halves (list (cl-subseq lines 0 half) (nthcdr half lines))))
              (setf (stele--segment-pending seg)
                    (append halves (and batch (cdr (stele--segment-pending seg)))))
              (setq stele--inflight nil)
              (run-at-time 0 nil #'stele--flush))
          (when lines
            (stele--reject (car lines) (stele--error-message res) status))
          (setq stele--queued (max 0 (1- stele--queued)))
          (stele--batch-resolved seg batch))))
     (t
      (when (eql status 401)
        ;; The credential was refused: forget it so that the next attempt
        ;; refreshes the access token or reads the API key again.
        (setq stele--access-token nil stele--api-key nil))
      (stele--send-failed (stele--error-message res) (plist-get res :retry-after))))))

(defun stele--note-written (server acked)
  "Remember the highest index of ACKED, (ID . INDEX) pairs, for SERVER."
  (let ((top (apply #'max -1 (cl-remove-if-not #'natnump (mapcar #'cdr acked))))
        (cell (assoc server stele--written)))
    (cond ((< top 0))
          (cell (setcdr cell (max (cdr cell) top)))
          (t (push (cons server top) stele--written)))))

(defun stele--refused-events-p (res)
  "Whether the answer RES refuses particular events, not the request.
That is invalid or oversized events, events whose id the log already
holds for a different event (409), and events the credential may not
vouch for or is restricted from; other refusals (the server is down,
the credential is refused, it may not append at all) are transient:
the batch is kept and retried."
  (let ((status (plist-get res :status))
        (err (stele--get (plist-get res :json) 'error)))
    (or (memq status '(400 409 413 415 422))
        (and (eql status 403)
             (or (equal (stele--get err 'action) "vouch")
                 (string-match-p "may only append"
                                 (format "%s" (stele--get err 'message))))))))

(defun stele--batch-resolved (seg batch)
  "BATCH of SEG (nil: all of it) is done; finish SEG or go on."
  (when batch (pop (stele--segment-pending seg)))
  (unless (and batch (stele--segment-pending seg))
    (stele--delete-segment-file seg)
    (setq stele--segments (delq seg stele--segments)))
  (setq stele--inflight nil)
  (cond (stele--segments (run-at-time 0 nil #'stele--flush))
        ((and stele--open (> (stele--segment-count stele--open) 0))
         (stele--schedule-flush))))

(defun stele--error-message (res)
  "A one-line description of the failed request RES."
  (let* ((status (plist-get res :status))
         (err (stele--get (plist-get res :json) 'error))
         (msg (or (and (consp err) (stele--get err 'message))
                  (stele--get (plist-get res :json) 'error_description)
                  (plist-get res :error)
                  (let ((text (plist-get res :text)))
                    (and text (substring text 0 (min 200 (length text))))))))
    (if status
        (format "HTTP %d%s%s" status
                (if (and (consp err) (stele--get err 'code))
                    (format " %s" (stele--get err 'code)) "")
                (if msg (format ": %s" msg) ""))
      (format "%s" (or msg "request failed")))))

(defun stele--send-failed (why retry-after)
  "Record the failure WHY and retry later (after RETRY-AFTER seconds if given)."
  (let ((seg stele--inflight))
    (when (and seg (cdr stele--segments)
               (not (equal (stele--segment-server seg) (stele--server))))
      ;; A former server that fails does not hold up the current one.
      (setq stele--segments (append (delq seg stele--segments) (list seg)))))
  (setq stele--inflight nil)
  (setq stele--last-error (cons (current-time) why))
  (let* ((base (or stele--backoff stele-backoff-initial))
         (delay (max (or retry-after 0)
                     (* base (+ 0.75 (/ (random 1000) 2000.0))))))
    (setq stele--backoff (min stele-backoff-max (* 2 base)))
    (stele--cancel-timers)
    (setq stele--retry-at (time-add nil delay)
          stele--retry-timer (run-with-timer delay nil #'stele--retry))))

(defun stele--kill-emacs ()
  "On `kill-emacs-hook': try, briefly, to send what is queued.
Waits at most `stele-exit-flush-timeout' seconds and stops at the first
failure; unsent events stay in the spool."
  (stele--safely
    (when (and (> stele-exit-flush-timeout 0) (> stele--queued 0))
      (let ((deadline (+ (float-time) stele-exit-flush-timeout))
            (error-before stele--last-error))
        (stele--cancel-timers)
        (setq stele--backoff nil)
        (unless stele--inflight (stele--flush))
        (while (and (> stele--queued 0)
                    (< (float-time) deadline)
                    (eq stele--last-error error-before))
          (accept-process-output nil 0.05)
          ;; The flush chain continues by timers; start it if it stopped.
          (unless (or stele--inflight stele--retry-timer stele--flush-timer)
            (stele--flush)))))))

(defun stele--retry ()
  "Timer function: retry sending after a failure."
  (setq stele--retry-timer nil stele--retry-at nil)
  (stele--flush))

;;;; HTTP

(defun stele--http (method url headers body callback &optional timeout)
  "Send an HTTP request and call CALLBACK with the answer, asynchronously.
METHOD, URL, HEADERS (an alist) and BODY (unibyte) describe the
request.  CALLBACK gets a plist with :status (nil when the server
could not be reached), :json, :text, :error and :retry-after.  The
request is abandoned after TIMEOUT seconds (default
`stele-request-timeout')."
  (stele--require-url)
  (let ((url-request-method method)
        ;; url.el refuses a request in which any part is multibyte (even
        ;; ASCII read from auth-source), once the body has non-ASCII bytes.
        (url-request-extra-headers (stele--unibyte-headers headers))
        (url-request-data body)
        (url-request-noninteractive t)
        (url (stele--unibyte url))
        (done nil) buf timer)
    (condition-case err
        (progn
          (setq buf
                (url-retrieve
                 url
                 (lambda (status)
                   (let ((rbuf (current-buffer)))
                     (unwind-protect
                         (unless done
                           (setq done t)
                           (when timer (cancel-timer timer))
                           (funcall callback (stele--http-result status)))
                       (stele--kill-buffer rbuf))))
                 nil t t))
          ;; One connection per request: a kept-alive connection that the
          ;; server closes while idle can swallow the next request until the
          ;; watchdog fires.  (The request line is written in this buffer,
          ;; once the connection is open.)
          (when (buffer-live-p buf)
            (with-current-buffer buf
              (setq-local url-http-attempt-keepalives nil))
            ;; Quitting Emacs during a send must not ask about it: the
            ;; events stay in the spool until acknowledged.
            (let ((proc (get-buffer-process buf)))
              (when proc (set-process-query-on-exit-flag proc nil))))
          (setq timer
                (run-with-timer
                 (or timeout stele-request-timeout) nil
                 (lambda ()
                   (unless done
                     (setq done t)
                     (stele--kill-buffer buf)
                     (funcall callback
                              (list :error (format "no answer from %s within %s s"
                                                   (url-host (url-generic-parse-url url))
                                                   (or timeout stele-request-timeout)))))))))
      (error
       (setq done t)
       (run-at-time 0 nil callback
                    (list :error (format "cannot reach %s: %s" url
                                         (error-message-string err))))))))

(defun stele--unibyte (string)
  "STRING encoded as UTF-8 (unibyte)."
  (if (multibyte-string-p string) (encode-coding-string string 'utf-8) string))

(defun stele--unibyte-headers (headers)
  "The alist HEADERS with unibyte names and values."
  (mapcar (lambda (h) (cons (stele--unibyte (car h)) (stele--unibyte (cdr h)))) headers))

(defun stele--kill-buffer (buffer)
  "Kill BUFFER and any process in it, without questions."
  (when (buffer-live-p buffer)
    (let ((proc (get-buffer-process buffer)))
      (when proc (delete-process proc)))
    (let ((kill-buffer-query-functions nil))
      (kill-buffer buffer))))

(defun stele--http-result (status)
  "The answer in the current url.el buffer, with url.el STATUS."
  (let* ((code (and (boundp 'url-http-response-status)
                    (integerp url-http-response-status)
                    url-http-response-status))
         (text (and code (boundp 'url-http-end-of-headers)
                    (markerp url-http-end-of-headers)
                    (marker-position url-http-end-of-headers)
                    (decode-coding-string
                     (buffer-substring-no-properties url-http-end-of-headers (point-max))
                     'utf-8 t)))
         (retry (and code (boundp 'url-http-end-of-headers)
                     (markerp url-http-end-of-headers)
                     (save-excursion
                       (save-restriction
                         (narrow-to-region (point-min) url-http-end-of-headers)
                         (let ((v (mail-fetch-field "retry-after")))
                           (and v (string-match-p "\\`[0-9]+\\'" v)
                                (string-to-number v)))))))
         (err (plist-get status :error)))
    (list :status code
          :text text
          :json (and text (string-match-p "\\`[ \t\r\n]*[[{]" text)
                     (stele--json-parse (string-trim text)))
          :retry-after retry
          :error (and (null code) err
                      (format "cannot reach %s: %s"
                              (url-host url-current-object)
                              (stele--connection-error err))))))

(defun stele--connection-error (err)
  "Describe the url.el error ERR."
  (pcase err
    (`(error connection-failed ,why . ,_) (string-trim (format "%s" why)))
    (`(,_ . ,rest) (string-trim (mapconcat (lambda (x) (format "%s" x)) rest " ")))
    (_ (format "%s" err))))

(defun stele--form (alist)
  "ALIST encoded as application/x-www-form-urlencoded, unibyte."
  (require 'url-util)
  (encode-coding-string
   (mapconcat (lambda (p) (concat (url-hexify-string (symbol-name (car p))) "="
                                  (url-hexify-string (cdr p))))
              (stele--compact alist) "&")
   'utf-8))

(define-error 'stele-http-error "Stele request failed")

(defun stele--http-sync (url &optional header)
  "GET URL synchronously (for interactive commands) and return the JSON.
HEADER is an Authorization value.  Signals `stele-http-error' with the
message and the HTTP status on failure."
  (stele--require-url)
  (let* ((url-request-method "GET")
         (url-request-extra-headers
          (stele--unibyte-headers
           (append '(("Accept" . "application/json"))
                   (and header `(("Authorization" . ,header))))))
         (url-request-noninteractive t)
         (buf (url-retrieve-synchronously url t t stele-request-timeout)))
    (unless buf (error "No answer from %s" url))
    (unwind-protect
        (with-current-buffer buf
          (let ((res (stele--http-result nil)))
            (unless (and (plist-get res :status) (<= 200 (plist-get res :status) 299))
              (signal 'stele-http-error
                      (list (format "GET %s: %s" url (stele--error-message res))
                            (plist-get res :status))))
            (plist-get res :json)))
      (stele--kill-buffer buf))))

;;;; Identity

(defvar stele--oidc-config nil
  "The issuer's discovery document: (ISSUER . ALIST).")
(defvar stele--refresh-waiters nil
  "Callbacks waiting for a refresh in progress, or nil.")
(defvar stele--refreshing nil
  "Whether a token refresh is in progress.")
(defvar stele--identity-method nil
  "How the last request authenticated: `oidc', `apikey' or nil.")
(defvar stele--refreshes 0
  "Access tokens obtained with the refresh token in this session.")
(defvar stele--login nil
  "The device authorization in progress: a plist, or nil.")

(defun stele--url-host (url)
  "The host of URL, or URL itself if it has none."
  (require 'url-parse)
  (or (url-host (url-generic-parse-url url)) url))

(defun stele--refresh-spec ()
  "The auth-source entry of the refresh token: host, user and port."
  (list :host (stele--url-host stele-issuer)
        :user stele-client-id
        :port "stele-refresh-token"))

(defun stele--auth-source-secret (&rest spec)
  "The secret of the first auth-source entry matching SPEC, or nil."
  (require 'auth-source)
  (let* ((found (car (apply #'auth-source-search :max 1 :require '(:secret) spec)))
         (secret (plist-get found :secret)))
    (if (functionp secret) (funcall secret) secret)))

(defun stele--api-key ()
  "The API key from auth-source, or nil."
  (or stele--api-key
      (setq stele--api-key
            (stele--auth-source-secret :host (stele--url-host stele-server-url)
                                       :user stele-api-key-user))))

(defun stele--stored-refresh-token ()
  "The refresh token, from memory or auth-source."
  (or stele--refresh-token
      (and stele-issuer (not stele--refresh-loaded)
           (progn
             (setq stele--refresh-loaded t)
             (setq stele--refresh-token
                   (ignore-errors (apply #'stele--auth-source-secret
                                         (stele--refresh-spec))))))))

(defun stele--netrc-file ()
  "The netrc-format file auth-source writes to, or nil if it is not one."
  (require 'auth-source)
  (let ((first (car auth-sources)))
    (cond ((stringp first) (expand-file-name first))
          ((and (consp first) (stringp (plist-get first :source)))
           (expand-file-name (plist-get first :source)))
          (t nil))))

(defun stele--netrc-quote (s)
  "S quoted for a netrc file when it needs to be."
  (if (string-match-p "[ \t\n\"]" s)
      (concat "\"" (replace-regexp-in-string "\"" "\\\\\"" s) "\"")
    s))

(defun stele--netrc-line-matches-p (line host user port)
  "Whether the netrc LINE is the entry for HOST, USER and PORT."
  (let ((tokens (split-string-and-unquote line)))
    (and (equal (cadr (member "machine" tokens)) host)
         (equal (cadr (or (member "login" tokens) (member "user" tokens)
                          (member "account" tokens)))
                user)
         (equal (cadr (or (member "port" tokens) (member "protocol" tokens))) port))))

(defun stele--store-secret (host user port secret)
  "Store SECRET for HOST, USER and PORT in auth-source, replacing any.
SECRET nil removes the entry.  A netrc-format file (the default
~/.authinfo or ~/.authinfo.gpg) is edited in place; other backends go
through `auth-source-delete' and `auth-source-search' with :create."
  (require 'auth-source)
  (let ((file (stele--netrc-file)))
    (if file
        (with-temp-buffer
          (when (file-exists-p file)
            (insert-file-contents file))
          (goto-char (point-min))
          (while (not (eobp))
            (if (stele--netrc-line-matches-p
                 (buffer-substring (line-beginning-position) (line-end-position))
                 host user port)
                (delete-region (line-beginning-position)
                               (min (point-max) (1+ (line-end-position))))
              (forward-line 1)))
          (when secret
            (goto-char (point-max))
            (unless (bolp) (insert "\n"))
            (insert (format "machine %s login %s port %s password %s\n"
                            (stele--netrc-quote host) (stele--netrc-quote user)
                            (stele--netrc-quote port) (stele--netrc-quote secret))))
          (let ((coding-system-for-write 'utf-8-unix))
            (with-file-modes #o600
              (write-region nil nil file nil 'silent))))
      (ignore-errors (auth-source-delete :host host :user user :port port))
      (when secret
        (let* ((created (car (auth-source-search :host host :user user :port port
                                                 :secret secret :create t :max 1)))
               (save (plist-get created :save-function)))
          (when (functionp save) (funcall save)))))
    (auth-source-forget-all-cached)))

(defun stele--jwt-claims (token)
  "The claims of the JWT TOKEN, or nil if it is not one."
  (let ((parts (split-string (or token "") "\\.")))
    (when (= (length parts) 3)
      (ignore-errors
        (stele--json-parse
         (decode-coding-string (base64-decode-string (nth 1 parts) t) 'utf-8 t))))))

(defun stele--identity-file ()
  "Where the (non-secret) identity of the last login is remembered."
  (expand-file-name "identity.eld" (stele--spool-dir)))

(defun stele--remember-identity (actor)
  "Use ACTOR for events, and remember it for the next sessions."
  (when (and (stringp actor) (not (equal actor stele--token-actor)))
    (setq stele--token-actor actor)
    (ignore-errors
      (stele--ensure-spool-dir)
      (stele--write-file (stele--identity-file)
                         (prin1-to-string (list :issuer stele-issuer :actor actor))))))

(defun stele--load-identity ()
  "Load the identity remembered from the last login with `stele-issuer'."
  (let ((file (stele--identity-file)))
    (when (and stele-issuer (null stele--token-actor) (file-readable-p file))
      (let ((id (ignore-errors
                  (with-temp-buffer
                    (insert-file-contents file)
                    (read (current-buffer))))))
        (when (and (equal (plist-get id :issuer) stele-issuer)
                   (stringp (plist-get id :actor)))
          (setq stele--token-actor (plist-get id :actor)))))))

(defun stele--accept-tokens (json)
  "Keep the tokens of the token endpoint's answer JSON.
Returns non-nil when it held an access token."
  (let ((access (stele--get json 'access_token))
        (refresh (stele--get json 'refresh_token))
        (expires (stele--get json 'expires_in)))
    (when (stringp access)
      (setq stele--access-token access
            stele--access-expiry (time-add nil (if (numberp expires) expires 300)))
      (let ((claims (or (stele--jwt-claims access)
                        (stele--jwt-claims (stele--get json 'id_token)))))
        (stele--remember-identity (stele--get claims (intern stele-actor-claim))))
      (when (and (stringp refresh) (not (equal refresh stele--refresh-token)))
        (setq stele--refresh-token refresh stele--refresh-loaded t)
        (condition-case err
            (let ((s (stele--refresh-spec)))
              (stele--store-secret (plist-get s :host) (plist-get s :user)
                                   (plist-get s :port) refresh))
          (error (setq stele--last-error
                       (cons (current-time)
                             (format "cannot store the refresh token in auth-source: %s"
                                     (error-message-string err)))))))
      t)))

(defun stele--discover (callback)
  "Call CALLBACK with the issuer's discovery document, or nil and an error."
  (if (and stele--oidc-config (equal (car stele--oidc-config) stele-issuer))
      (funcall callback (cdr stele--oidc-config) nil)
    (let ((issuer stele-issuer))
      (stele--http
       "GET" (concat (string-remove-suffix "/" issuer) "/.well-known/openid-configuration")
       '(("Accept" . "application/json")) nil
       (lambda (res)
         (let ((json (plist-get res :json)))
           (if (and (eql (plist-get res :status) 200) (stele--get json 'token_endpoint))
               (progn (setq stele--oidc-config (cons issuer json))
                      (funcall callback json nil))
             (funcall callback nil (format "discovery of %s failed: %s"
                                           issuer (stele--error-message res))))))))))

(defun stele--token-valid-p ()
  "Whether the access token is good for at least 30 more seconds."
  (and stele--access-token stele--access-expiry
       (time-less-p (time-add nil 30) stele--access-expiry)))

(defun stele--authorization (callback &optional server)
  "Call CALLBACK with an Authorization header value, or nil and why.
Uses the access token, refreshing it silently when needed, else the
API key from auth-source.  For a SERVER other than the current one,
its own API key from auth-source, else the access token (which names
its audience); never the current server's API key."
  (cond
   ((and server (not (equal server (stele--server))))
    (let ((key (ignore-errors
                 (stele--auth-source-secret :host (stele--url-host server)
                                            :user stele-api-key-user))))
      (cond (key (funcall callback (concat "Bearer " key) nil))
            ((stele--token-valid-p)
             (funcall callback (concat "Bearer " stele--access-token) nil))
            (t (funcall callback nil
                        (format "no API key in auth-source for machine %s login %s (events recorded while it was the server)"
                                (stele--url-host server) stele-api-key-user))))))
   ((stele--token-valid-p)
    (setq stele--identity-method 'oidc)
    (funcall callback (concat "Bearer " stele--access-token) nil))
   ((and stele-issuer (stele--stored-refresh-token))
    (stele--refresh
     (lambda (ok err)
       (if ok
           (progn (setq stele--identity-method 'oidc)
                  (funcall callback (concat "Bearer " stele--access-token) nil))
         (stele--authorization-fallback callback err)))))
   (t (stele--authorization-fallback callback nil))))

(defun stele--authorization-fallback (callback why)
  "Call CALLBACK with the API key, or with nil and WHY there is none."
  (let ((key (condition-case err (stele--api-key)
               (error (setq why (format "auth-source: %s" (error-message-string err)))
                      nil))))
    (if key
        (progn (setq stele--identity-method 'apikey)
               (funcall callback (concat "Bearer " key) nil))
      (setq stele--identity-method nil)
      (funcall callback nil
               (or why (format "not logged in (M-x stele-login) and no API key in auth-source for machine %s login %s"
                               (stele--url-host stele-server-url) stele-api-key-user))))))

(defun stele--refresh (callback)
  "Get a new access token with the refresh token; then call CALLBACK.
CALLBACK gets (OK ERROR).  Concurrent callers share one request."
  (push callback stele--refresh-waiters)
  (unless stele--refreshing
    (setq stele--refreshing t)
    (let ((finish (lambda (ok err)
                    (let ((waiters (nreverse stele--refresh-waiters)))
                      (setq stele--refresh-waiters nil stele--refreshing nil)
                      (dolist (w waiters) (funcall w ok err))))))
      (stele--discover
       (lambda (conf err)
         (if (not conf)
             (funcall finish nil err)
           (stele--http
            "POST" (stele--get conf 'token_endpoint)
            '(("Content-Type" . "application/x-www-form-urlencoded")
              ("Accept" . "application/json"))
            (stele--form `((grant_type . "refresh_token")
                           (refresh_token . ,stele--refresh-token)
                           (client_id . ,stele-client-id)
                           (resource . ,stele-resource)))
            (lambda (res)
              (stele--safely
                (cond
                 ((and (eql (plist-get res :status) 200)
                       (stele--accept-tokens (plist-get res :json)))
                  (cl-incf stele--refreshes)
                  (funcall finish t nil))
                 ((member (stele--get (plist-get res :json) 'error)
                          '("invalid_grant" "invalid_client" "unauthorized_client"))
                  ;; The refresh token is dead: a new login is needed.
                  (setq stele--refresh-token nil stele--access-token nil)
                  (message "Stele: your login has expired; run M-x stele-login")
                  (funcall finish nil (format "login expired (%s); run M-x stele-login"
                                              (stele--error-message res))))
                 (t (funcall finish nil (format "token refresh failed: %s"
                                                (stele--error-message res))))))))))))))

;;;###autoload
(defun stele-login ()
  "Sign in to Stele with your identity provider (`stele-issuer').
Runs the OAuth device authorization grant (RFC 8628): shows a code,
opens the provider's page in a browser, and waits (without blocking
Emacs) for you to approve.  The refresh token is stored with
auth-source, so later sessions stay signed in."
  (interactive)
  (unless stele-issuer
    (user-error "Set `stele-issuer' to your identity provider's issuer URL first"))
  (stele--login-cancel)
  (setq stele--login (list :status 'discovering :issuer stele-issuer))
  (stele--discover
   (lambda (conf err)
     (stele--safely
       (let ((endpoint (stele--get conf 'device_authorization_endpoint)))
         (cond
          ((not conf) (stele--login-failed err))
          ((not endpoint)
           (stele--login-failed
            (format "%s has no device_authorization_endpoint" stele-issuer)))
          (t
           (stele--http
            "POST" endpoint
            '(("Content-Type" . "application/x-www-form-urlencoded")
              ("Accept" . "application/json"))
            (stele--form `((client_id . ,stele-client-id)
                           (scope . ,stele-scopes)
                           (resource . ,stele-resource)))
            (lambda (res) (stele--safely (stele--login-started conf res)))))))))))

(defun stele--login-started (conf res)
  "Show the user code of the device authorization RES; start polling.
CONF is the issuer's discovery document."
  (let* ((json (plist-get res :json))
         (device-code (stele--get json 'device_code))
         (user-code (stele--get json 'user_code))
         (uri (stele--get json 'verification_uri))
         (complete (stele--get json 'verification_uri_complete))
         (interval (stele--get json 'interval))
         (expires (stele--get json 'expires_in)))
    (if (not (and (eql (plist-get res :status) 200) (stringp device-code)
                  (stringp user-code) (stringp uri)))
        (stele--login-failed (format "device authorization failed: %s"
                                     (stele--error-message res)))
      (setq stele--login
            (list :status 'pending :issuer stele-issuer
                  :device-code device-code :user-code user-code
                  :uri uri :uri-complete complete
                  :token-endpoint (stele--get conf 'token_endpoint)
                  :interval (if (numberp interval) interval 5)
                  :deadline (time-add nil (if (numberp expires) expires 600))))
      (stele--login-show)
      (message "Stele: to sign in, visit %s and enter the code %s" uri user-code)
      (when stele-login-open-browser
        (condition-case err
            (browse-url (or complete uri))
          (error (message "Stele: cannot open a browser (%s); visit %s"
                          (error-message-string err) uri))))
      (stele--login-schedule))))

(defun stele--login-show ()
  "Show the sign-in instructions in the *stele-login* buffer."
  (unless noninteractive
    (with-current-buffer (get-buffer-create "*stele-login*")
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert (propertize "Sign in to Stele\n\n" 'face 'bold)
                (format "Visit   %s\n" (plist-get stele--login :uri))
                (format "Code    %s\n\n"
                        (propertize (plist-get stele--login :user-code)
                                    'face '(:weight bold :height 1.5)))
                (if (plist-get stele--login :uri-complete)
                    (format "or open %s\n\n" (plist-get stele--login :uri-complete))
                  "")
                "Emacs keeps working while it waits for your approval.\n")
        (special-mode))
      (display-buffer (current-buffer)))))

(defun stele--login-schedule ()
  "Poll the token endpoint after the current interval."
  (let ((timer (plist-get stele--login :timer)))
    (when (timerp timer) (cancel-timer timer)))
  (plist-put stele--login :timer
             (run-with-timer (plist-get stele--login :interval) nil
                             #'stele--login-poll)))

(defun stele--login-poll ()
  "Ask the token endpoint whether the user has approved the device."
  (let ((login stele--login))
    (when (and login (eq (plist-get login :status) 'pending))
      (if (time-less-p (plist-get login :deadline) nil)
          (stele--login-failed "the code expired before it was approved; run M-x stele-login again")
        (stele--http
         "POST" (plist-get login :token-endpoint)
         '(("Content-Type" . "application/x-www-form-urlencoded")
           ("Accept" . "application/json"))
         (stele--form `((grant_type . "urn:ietf:params:oauth:grant-type:device_code")
                        (device_code . ,(plist-get login :device-code))
                        (client_id . ,stele-client-id)))
         (lambda (res)
           (stele--safely
             (when (eq stele--login login)
               (stele--login-answer res)))))))))

(defun stele--login-answer (res)
  "Handle the token endpoint's answer RES while polling."
  (let ((err (stele--get (plist-get res :json) 'error)))
    (cond
     ((and (eql (plist-get res :status) 200)
           (stele--accept-tokens (plist-get res :json)))
      (plist-put stele--login :status 'done)
      (setq stele--identity-method 'oidc)
      (when (get-buffer "*stele-login*")
        (let ((win (get-buffer-window "*stele-login*")))
          (when (and win (not (one-window-p t))) (delete-window win)))
        (kill-buffer "*stele-login*"))
      (message "Stele: logged in as %s" (or stele--token-actor "you"))
      (stele-flush))
     ((equal err "authorization_pending") (stele--login-schedule))
     ((equal err "slow_down")
      (plist-put stele--login :interval (+ 5 (plist-get stele--login :interval)))
      (plist-put stele--login :slow-downs (1+ (or (plist-get stele--login :slow-downs) 0)))
      (stele--login-schedule))
     ((member err '("access_denied" "expired_token"))
      (stele--login-failed (if (equal err "access_denied")
                               "the sign-in was refused"
                             "the code expired; run M-x stele-login again")))
     ((plist-get res :status)
      (stele--login-failed (stele--error-message res)))
     (t
      ;; The provider could not be reached: keep polling until the code expires.
      (setq stele--last-error (cons (current-time) (stele--error-message res)))
      (stele--login-schedule)))))

(defun stele--login-failed (why)
  "End the login attempt, reporting WHY."
  (setq stele--login (plist-put (or stele--login (list)) :status 'failed))
  (plist-put stele--login :error why)
  (setq stele--last-error (cons (current-time) (format "login: %s" why)))
  (message "Stele: login failed: %s" why))

(defun stele--login-cancel ()
  "Stop a login in progress."
  (when stele--login
    (let ((timer (plist-get stele--login :timer)))
      (when (timerp timer) (cancel-timer timer)))
    (when (eq (plist-get stele--login :status) 'pending)
      (plist-put stele--login :status 'cancelled))))

(defun stele-logout ()
  "Forget the login: the tokens in memory and the stored refresh token."
  (interactive)
  (stele--login-cancel)
  (setq stele--access-token nil stele--access-expiry nil
        stele--refresh-token nil stele--refresh-loaded t
        stele--token-actor nil stele--identity-method nil)
  (when stele-issuer
    (let ((s (stele--refresh-spec)))
      (stele--store-secret (plist-get s :host) (plist-get s :user) (plist-get s :port) nil)))
  (ignore-errors (delete-file (stele--identity-file)))
  (message "Stele: logged out"))

;;;; Family: commits and pushes (VC and Magit)

(defconst stele--git-commit-subcommands '("commit" "merge" "cherry-pick" "revert" "am")
  "Git subcommands that create a commit when they succeed.")

(defvar stele--vc-sync nil
  "Inside a synchronous `vc-do-command': a cell for the hook's call.
The hook stores (FLAGS DIRECTORY) in it; the advice records it
once the exit status is known.")

(defvar-local stele--vc-async-process nil
  "The last asynchronous VC process started in this buffer.")

(defun stele--git-program-p (program)
  "Whether PROGRAM is git."
  (and (stringp program)
       (string-match-p "\\`git\\(?:\\.exe\\)?\\'" (file-name-nondirectory program))))

(defun stele--git-subcommand (args)
  "The git subcommand in the argument list ARGS, and what follows it."
  (let ((args (remq nil args)))
    (while (and args (string-prefix-p "-" (car args)))
      (if (member (car args) '("-c" "-C" "--git-dir" "--work-tree" "--namespace"
                               "--exec-path" "--config-env"))
          (setq args (cddr args))
        (setq args (cdr args))))
    args))

(defun stele--vc-post-command (command _files flags)
  "Record git commits and pushes run by VC: COMMAND with FLAGS."
  (stele--safely
    (when (stele--git-program-p command)
      (if stele--vc-sync
          ;; Synchronous: the advice around `vc-do-command' knows the status.
          (setcar stele--vc-sync (list flags default-directory))
        (stele--vc-finished flags default-directory (stele--vc-async-status))))))

(defun stele--vc-async-status ()
  "Exit status of the finished VC process of the current buffer, or nil.
Nil means the status is unknown (it is then recorded as a failure)."
  (let ((proc (or (and (processp stele--vc-async-process) stele--vc-async-process)
                  (get-buffer-process (current-buffer)))))
    (and proc (memq (process-status proc) '(exit signal))
         (process-exit-status proc))))

(defun stele--vc-finished (flags dir status)
  "Record the git command with FLAGS that VC ran in DIR, exiting with STATUS."
  (let ((sub (stele--git-subcommand flags)))
    (stele--git-finished (car sub) (cdr sub) dir status "vc")))

(defun stele--vc-do-command-advice (orig buffer okstatus command &rest args)
  "Around `vc-do-command' (ORIG): learn the exit status of a VC command.
BUFFER, OKSTATUS, COMMAND and ARGS are its arguments.  This works on
every Emacs (the sentinel's name changed across versions): an
asynchronous process is remembered in its buffer, where
`vc-post-command-functions' runs once it exits; a synchronous call's
status is its return value."
  (if (eq okstatus 'async)
      (let ((proc (apply orig buffer okstatus command args)))
        (stele--safely
          (when (and (processp proc) (buffer-live-p (process-buffer proc)))
            (with-current-buffer (process-buffer proc)
              (setq stele--vc-async-process proc))))
        proc)
    (let ((cell (list nil)) (status nil))
      (unwind-protect
          (let ((stele--vc-sync cell))
            (setq status (apply orig buffer okstatus command args)))
        (when (car cell)
          (stele--safely
            (pcase-let ((`(,flags ,dir) (car cell)))
              (stele--vc-finished flags dir (and (integerp status) status)))))))))

(defvar stele--magit-command nil
  "The program and arguments of the synchronous Magit call in progress.")

(defun stele--magit-call-process-advice (orig program &rest args)
  "Around `magit-call-process' (ORIG): remember PROGRAM and ARGS."
  (let ((stele--magit-command (cons program args)))
    (apply orig program args)))

(defun stele--magit-process-finish-advice (arg &rest rest)
  "Before `magit-process-finish': record a finished git commit or push.
ARG is the process or exit code; REST holds the default directory."
  (stele--safely
    (let ((command (if (processp arg) (process-command arg) stele--magit-command))
          (dir (if (processp arg) (process-get arg 'default-dir) (nth 2 rest)))
          (status (if (processp arg) (process-exit-status arg) arg)))
      (when (and (stele--git-program-p (car command)) (integerp status))
        (let ((sub (stele--git-subcommand (cdr command))))
          (stele--git-finished (car sub) (cdr sub) (or dir default-directory)
                               status "magit"))))))

(defun stele--git-finished (subcommand args dir status tool)
  "Record the finished git SUBCOMMAND (with ARGS) run by TOOL in DIR.
STATUS is its exit status.  Only enqueues a collector: the commit's
details are read from git asynchronously, outside the hook."
  (cond
   ((and (member subcommand stele--git-commit-subcommands) (eql status 0))
    (run-at-time 0 nil #'stele--git-collect dir 'commit tool status
                 subcommand nil (stele--now)))
   ((equal subcommand "push")
    (run-at-time 0 nil #'stele--git-collect dir 'push tool status
                 subcommand args (stele--now)))))

(defun stele--git-run (dir args callback)
  "Run git with ARGS in DIR asynchronously; CALLBACK gets (EXIT OUTPUT)."
  (let* ((default-directory dir)
         (process-environment (cons "GIT_OPTIONAL_LOCKS=0"
                                    (cons "GIT_TERMINAL_PROMPT=0" process-environment)))
         (buf (generate-new-buffer " *stele-git*" t)))
    (condition-case err
        (make-process
         :name "stele-git" :buffer buf :noquery t :connection-type 'pipe
         :file-handler t
         :command (append '("git" "--no-pager" "-c" "core.quotepath=off") args)
         :stderr (get-buffer-create " *stele-git-stderr*")
         :sentinel
         (lambda (proc _event)
           (unless (process-live-p proc)
             (let ((out (with-current-buffer buf
                          (decode-coding-string
                           (buffer-substring-no-properties (point-min) (point-max))
                           'utf-8 t))))
               (kill-buffer buf)
               (let ((err (get-buffer " *stele-git-stderr*")))
                 (when (and err (> (buffer-size err) 65536))
                   (with-current-buffer err (erase-buffer))))
               (stele--safely (funcall callback (process-exit-status proc) out))))))
      (error
       (kill-buffer buf)
       (stele--safely (funcall callback -1 (error-message-string err)))))))

(defun stele--strip-url-credentials (url)
  "URL without a user:password@ part."
  (if (and (stringp url) (string-match "\\`\\([a-z+]+://\\)[^/@]*@" url))
      (replace-match "\\1" t nil url)
    url))

(defun stele--git-collect (dir kind tool status subcommand args time)
  "Read the repository in DIR and record a KIND (`commit' or `push').
TOOL ran git SUBCOMMAND with ARGS, which exited with STATUS at TIME."
  (stele--safely
    (when (and dir (file-directory-p dir)
               (or (not (file-remote-p dir)) (file-remote-p dir nil t)))
      (stele--git-run
       dir '("log" "-1" "--format=%H%x1f%P%x1f%an <%ae>%x1f%s" "HEAD")
       (lambda (exit out)
         (let ((log (and (eql exit 0) (split-string (string-trim-right out "\n") "\x1f"))))
           (stele--git-run
            dir '("rev-parse" "--show-toplevel" "--abbrev-ref" "HEAD")
            (lambda (exit2 out2)
              (let ((rp (and (eql exit2 0) (split-string out2 "\n" t))))
                (stele--git-run
                 dir '("config" "--get-regexp" "^remote\\..*\\.url$")
                 (lambda (_exit3 out3)
                   (stele--git-record kind tool status subcommand args time
                                      log rp out3 dir))))))))))))

(defun stele--git-record (kind tool status subcommand args time log rp remotes dir)
  "Queue the event of a git KIND; see `stele--git-collect'.
TOOL, STATUS, SUBCOMMAND, ARGS and TIME describe the git run; LOG,
RP and REMOTES are git's answers about the repository in DIR."
  (let* ((sha (car log))
         (toplevel (or (car rp) (expand-file-name dir)))
         (toplevel (if (file-remote-p dir)
                       (concat (file-remote-p dir) toplevel)
                     toplevel))
         (branch (let ((b (cadr rp))) (and b (not (equal b "HEAD")) b)))
         (remote-alist
          (mapcar (lambda (l)
                    (when (string-match "\\`remote\\.\\(.*\\)\\.url \\(.*\\)\\'" l)
                      (cons (match-string 1 l)
                            (stele--strip-url-credentials (match-string 2 l)))))
                  (split-string (or remotes "") "\n" t)))
         (push-args (cl-remove-if (lambda (a) (string-prefix-p "-" a)) (remq nil args)))
         (remote-name (or (car push-args)
                          (and (assoc "origin" remote-alist) "origin")
                          (car (car remote-alist))))
         (remote (or (cdr (assoc remote-name remote-alist)) (cdr (car remote-alist))))
         (summary (nth 3 log))
         (repo-id (or remote (stele--abbrev toplevel))))
    (pcase kind
      ('commit
       (when (and (stringp sha) (string-match-p "\\`[0-9a-f]\\{40,64\\}\\'" sha))
         (stele--enqueue
          (stele--event
           "git.commit"
           :id (stele-commit-event-id sha)
           :resource (cons "git.repository" repo-id)
           :data `((sha . ,sha)
                   (branch . ,branch)
                   (repository . ,(stele--abbrev toplevel))
                   (remote . ,remote)
                   (parents . ,(vconcat (split-string (or (nth 1 log) "") " " t)))
                   (author . ,(and (nth 2 log) (stele--string (nth 2 log))))
                   ,@(stele--commit-message summary)
                   (command . ,subcommand)
                   (tool . ,tool)
                   (recorded . ,time))))))
      ('push
       (stele--enqueue
        (stele--event
         "git.push"
         :resource (cons "git.repository" repo-id)
         :outcome (if (eql status 0) "success" "failure")
         :reason (cond ((null status) "the exit status of git push is unknown")
                       ((not (eql status 0)) (format "git push exited with status %s" status)))
         :data `((remote_name . ,remote-name)
                 (remote . ,remote)
                 (refspecs . ,(vconcat (mapcar #'stele--string (cdr push-args))))
                 (head . ,sha)
                 (branch . ,branch)
                 (repository . ,(stele--abbrev toplevel))
                 (exit . ,(or status :null))
                 (args . ,(stele--redact (mapconcat #'identity (remq nil args) " ")))
                 (tool . ,tool)
                 (recorded . ,time))))))))

(defun stele--commit-message (summary)
  "The commit-message part of commit data for SUMMARY."
  (when (stringp summary)
    (let ((s (stele--string summary)))
      (pcase stele-commit-message
        ('summary `((summary . ,(substring s 0 (min 200 (length s))))))
        ('hash `((summary_sha256 . ,(stele--sha256 s))))
        (_ nil)))))

;;;; Family: packages

(defvar stele--package-request nil
  "The package request in progress: (NAME . VIA), or nil.")

(defvar stele--package-via nil
  "What asked for the package install in progress (\"use-package\"...).")

(defvar stele--package-failure-recorded nil
  "Inside `package-install': a cell whose car is t once a failure is recorded.
So that a package that fails to unpack is not reported again by the
`package-install' advice.")

(defvar package-alist)
(defvar package-user-dir)
(declare-function package-desc-name "package" (cl-x))
(declare-function package-desc-version "package" (cl-x))
(declare-function package-desc-archive "package" (cl-x))
(declare-function package-desc-kind "package" (cl-x))
(declare-function package-desc-signed "package" (cl-x))
(declare-function package-desc-dir "package" (cl-x))
(declare-function package-desc-p "package" (cl-x))
(declare-function package-version-join "package" (vlist))

(defun stele--package-name (pkg)
  "The name (a symbol) of PKG, a package-desc or a symbol."
  (cond ((and (fboundp 'package-desc-p) (package-desc-p pkg)) (package-desc-name pkg))
        ((symbolp pkg) pkg)))

(defun stele--package-install-advice (orig pkg &rest args)
  "Around `package-install' (ORIG): remember PKG as the request.
ARGS are the other arguments.  A failed request is recorded as a
failed install."
  (let* ((name (stele--package-name pkg))
         (stele--package-request (or stele--package-request
                                     (cons name (or stele--package-via "package-install"))))
         (recorded (or stele--package-failure-recorded (list nil)))
         (stele--package-failure-recorded recorded)
         (ok nil))
    (unwind-protect
        (prog1 (apply orig pkg args) (setq ok t))
      (unless (or ok (car recorded))
        (setcar recorded t)
        (stele--safely
          (stele--record "emacs.package.install"
                         :resource (cons "package" (format "%s" name))
                         :outcome "failure"
                         :reason (format "installing %s failed" name)
                         :data `((name . ,(format "%s" name))
                                 (via . ,(cdr stele--package-request)))))))))

(defun stele--use-package-ensure-advice (orig &rest args)
  "Around `use-package-ensure-elpa' (ORIG with ARGS).
The installs it makes are marked as coming from use-package."
  (let ((stele--package-via "use-package"))
    (apply orig args)))

(defun stele--package-unpack-advice (orig pkg-desc &rest args)
  "Around `package-unpack' (ORIG): record the install of PKG-DESC.
ARGS are the other arguments.  Called once per installed package,
dependencies included; an older installed version makes it an upgrade."
  (let* ((name (package-desc-name pkg-desc))
         (old (car (alist-get name package-alist)))
         (old-version (and old (package-desc-version old)))
         (new-version (package-desc-version pkg-desc))
         (sha (stele--safely (stele--buffer-sha256 'utf-8-unix)))
         (ok nil))
    (unwind-protect
        (prog1 (apply orig pkg-desc args) (setq ok t))
      (stele--safely
        (let* ((upgrade (and ok old-version (version-list-< old-version new-version)))
               (request stele--package-request))
          (when (and (not ok) stele--package-failure-recorded)
            (setcar stele--package-failure-recorded t))
          (stele--record
           (if upgrade "emacs.package.upgrade" "emacs.package.install")
           :resource (cons "package" (symbol-name name))
           :outcome (if ok "success" "failure")
           :reason (and (not ok) (format "unpacking %s failed" name))
           :data `((name . ,(symbol-name name))
                   (version . ,(package-version-join new-version))
                   (previous_version . ,(and old-version (package-version-join old-version)))
                   (archive . ,(package-desc-archive pkg-desc))
                   (kind . ,(format "%s" (package-desc-kind pkg-desc)))
                   (sha256 . ,sha)
                   (signed . ,(if (package-desc-signed pkg-desc) t :false))
                   (requested . ,(if (or (null request) (eq (car request) name)) t :false))
                   (dependency_of . ,(and request (not (eq (car request) name))
                                          (format "%s" (car request))))
                   (via . ,(or (cdr request) stele--package-via "package.el"))
                   (directory . ,(stele--abbrev
                                  (expand-file-name
                                   (format "%s-%s" name (package-version-join new-version))
                                   package-user-dir))))))))))

(defun stele--package-delete-advice (orig pkg-desc &rest args)
  "Around `package-delete' (ORIG): record the removal of PKG-DESC.
ARGS are the other arguments."
  (let ((ok nil) (err nil))
    (unwind-protect
        (condition-case e
            (prog1 (apply orig pkg-desc args) (setq ok t))
          (error (setq err e) (signal (car e) (cdr e))))
      (stele--safely
        (let ((name (symbol-name (package-desc-name pkg-desc))))
          (stele--record "emacs.package.delete"
                         :resource (cons "package" name)
                         :outcome (if ok "success" "failure")
                         :reason (and err (error-message-string err))
                         :data `((name . ,name)
                                 (version . ,(package-version-join
                                              (package-desc-version pkg-desc)))
                                 (directory . ,(and (package-desc-dir pkg-desc)
                                                    (stele--abbrev
                                                     (package-desc-dir pkg-desc))))
                                 (via . "package.el"))))))))

(defun stele--package-vc-name (package)
  "The name and URL of PACKAGE as given to `package-vc-install'.
PACKAGE is a URL, a symbol, a package-desc or (NAME . SPEC)."
  (cond ((stringp package)
         (cons (file-name-sans-extension
                (file-name-nondirectory (directory-file-name package)))
               (stele--strip-url-credentials package)))
        ((and (consp package) (symbolp (car package)))
         (cons (symbol-name (car package))
               (let ((url (plist-get (cdr package) :url)))
                 (and (stringp url) (stele--strip-url-credentials url)))))
        (t (cons (format "%s" (or (stele--package-name package) package)) nil))))

(defun stele--package-vc-advice (orig package &rest args)
  "Around `package-vc-install' (ORIG, Emacs 29+): record installing PACKAGE.
ARGS are the other arguments (the revision first).  package-vc clones
and builds the package itself, without `package-unpack'; the packages
it installs as dependencies through package.el name it as the request."
  (let* ((id (stele--safely (stele--package-vc-name package)))
         (name (or (car id) "unknown"))
         (stele--package-request (cons (intern name) "package-vc"))
         (ok nil) (err nil))
    (unwind-protect
        (condition-case e
            (prog1 (apply orig package args) (setq ok t))
          (error (setq err e) (signal (car e) (cdr e))))
      (stele--safely
        (stele--record "emacs.package.install"
                       :resource (cons "package" name)
                       :outcome (if ok "success" "failure")
                       :reason (and err (error-message-string err))
                       :data `((name . ,name)
                               (url . ,(cdr id))
                               (rev . ,(let ((rev (car args)))
                                         (and rev (format "%s" rev))))
                               (via . "package-vc")))))))

(defvar straight--recipe-cache)

(defun stele--straight-pre-build (package &rest _)
  "Record that straight.el builds PACKAGE (a string)."
  (stele--safely
    (let ((recipe (and (boundp 'straight--recipe-cache)
                       (hash-table-p straight--recipe-cache)
                       (gethash package straight--recipe-cache))))
      (stele--record "emacs.package.install"
                     :resource (cons "package" package)
                     :data `((name . ,package)
                             (via . "straight.el")
                             (host . ,(and (plist-get recipe :host)
                                           (format "%s" (plist-get recipe :host))))
                             (repo . ,(plist-get recipe :repo))
                             (local_repo . ,(plist-get recipe :local-repo)))))))

(declare-function elpaca<-id "ext:elpaca" (cl-x))
(declare-function elpaca<-statuses "ext:elpaca" (cl-x))
(declare-function elpaca<-recipe "ext:elpaca" (cl-x))
(defvar stele--elpaca-recorded nil)

(defun stele--elpaca-finalize-advice (e &rest _)
  "After `elpaca--finalize': record a package elpaca E cloned and built."
  (stele--safely
    (when (and (fboundp 'elpaca<-id) (fboundp 'elpaca<-statuses))
      (let* ((id (elpaca<-id e))
             (statuses (elpaca<-statuses e))
             (recipe (and (fboundp 'elpaca<-recipe) (elpaca<-recipe e))))
        (when (and (memq 'cloning statuses)
                   (not (member id stele--elpaca-recorded)))
          (push id stele--elpaca-recorded)
          (stele--record "emacs.package.install"
                         :resource (cons "package" (format "%s" id))
                         :outcome (if (memq 'failed statuses) "failure" "success")
                         :data `((name . ,(format "%s" id))
                                 (via . "elpaca")
                                 (host . ,(and (plist-get recipe :host)
                                               (format "%s" (plist-get recipe :host))))
                                 (repo . ,(plist-get recipe :repo))
                                 (ref . ,(plist-get recipe :ref)))))))))

;;;; Families: configuration, admin-level edits and AI share of saves

(defvar-local stele--file-hash nil
  "SHA-256 of the visited file as last read or saved; `absent' if new.")

(defvar stele--in-custom-save nil
  "Non-nil while `custom-save-all' runs (its save is recorded as such).")

(defun stele--truename (file)
  "The true name of the local FILE, or nil."
  (and file (not (file-remote-p file)) (ignore-errors (file-truename file))))

(defun stele--config-kind (file)
  "Why the local FILE is Emacs configuration, as a string, or nil."
  (let ((true (stele--truename file)))
    (when (and true
               (not (cl-some (lambda (re) (string-match-p re true))
                             stele-config-exclude-patterns)))
      (cond
       ((and user-init-file (equal true (stele--truename user-init-file))) "init-file")
       ((and (boundp 'early-init-file) early-init-file
             (equal true (stele--truename early-init-file)))
        "early-init-file")
       ((and custom-file (equal true (stele--truename (expand-file-name custom-file))))
        "custom-file")
       ((let ((ued (stele--truename user-emacs-directory)))
          (and ued (string-prefix-p (file-name-as-directory ued) true)))
        "user-emacs-directory")
       ((cl-some (lambda (re) (string-match-p re true)) stele-config-file-patterns)
        "pattern")))))

(defvar tramp-methods)
(defvar stele--privileged-methods-cache nil)

(defun stele--privileged-methods ()
  "TRAMP methods that gain privileges, read from `tramp-methods'."
  (let ((methods (and (boundp 'tramp-methods) tramp-methods)))
    (if (and stele--privileged-methods-cache
             (eq (car stele--privileged-methods-cache) methods)
             (equal (cadr stele--privileged-methods-cache) stele-privileged-programs))
        (cddr stele--privileged-methods-cache)
      (let ((found (copy-sequence stele-privileged-programs)))
        (dolist (m methods)
          (let ((strings (flatten-tree
                          (mapcar (lambda (param)
                                    (when (memq (car-safe param)
                                                '(tramp-login-program tramp-login-args
                                                  tramp-sudo-login tramp-copy-program))
                                      (cdr param)))
                                  (cdr-safe m)))))
            (when (cl-some (lambda (s) (and (stringp s)
                                            (member (file-name-nondirectory s)
                                                    stele-privileged-programs)))
                           strings)
              (push (car m) found))))
        (setq stele--privileged-methods-cache
              (cons methods (cons stele-privileged-programs found)))
        found))))

(defun stele--under-privileged-dir-p (file)
  "Whether FILE (a local file name) is under `stele-privileged-directories'."
  (and file (cl-some (lambda (d) (string-prefix-p (file-name-as-directory
                                                   (expand-file-name d))
                                                  file))
                     stele-privileged-directories)))

(defun stele-file-privilege (file)
  "Why saving FILE is an admin-level edit, as an alist, or nil.
Reads the file name only: a remote FILE is classified from its TRAMP
method, user and path, without opening a connection."
  (if (file-remote-p file)
      (let* ((methods (stele--privileged-methods))
             (method (file-remote-p file 'method))
             (user (file-remote-p file 'user))
             (host (file-remote-p file 'host))
             (local (file-remote-p file 'localname))
             (hops (let ((h (file-remote-p file 'hop)))
                     (and h (mapcar (lambda (hop) (car (split-string hop ":")))
                                    (split-string h "|" t)))))
             (priv-hop (cl-find-if (lambda (m) (member m methods)) hops)))
        (cond
         ((member method methods)
          `((via . "tramp-method") (method . ,method)
            (user . ,(substring-no-properties (or user "root"))) (host . ,host)))
         (priv-hop `((via . "tramp-hop") (method . ,priv-hop) (host . ,host)))
         ((equal user "root") `((via . "remote-root") (method . ,method) (host . ,host)))
         ((stele--under-privileged-dir-p local)
          `((via . "system-directory") (method . ,method) (host . ,host)))))
    (let ((f (expand-file-name file)))
      (cond
       ((stele--under-privileged-dir-p f) '((via . "system-directory")))
       ((and stele-root-saves-privileged (eql (user-uid) 0))
        '((via . "uid-0")))))))

(defun stele--buffer-sha256 (&optional coding)
  "SHA-256 of the whole buffer as encoded on disk (with CODING if given)."
  (save-restriction
    (widen)
    (let ((text (buffer-substring-no-properties (point-min) (point-max))))
      (secure-hash 'sha256
                   (if (multibyte-string-p text)
                       (encode-coding-string
                        text (or coding buffer-file-coding-system 'utf-8-unix))
                     text)))))

(defvar-local stele--ai-marked nil
  "Non-nil once AI text was inserted in this buffer.
Saves of other buffers skip the scan for AI text.")
(put 'stele--ai-marked 'permanent-local t)

(defun stele--ai-chars ()
  "Characters of the current buffer inserted by an AI (`stele-ai' text).
Zero, without a scan, in buffers where no AI text was inserted."
  (let ((n 0))
    (when stele--ai-marked
      (save-restriction
        (widen)
        (let ((pos (point-min)))
          (while (< pos (point-max))
            (let ((next (next-single-property-change pos 'stele-ai nil (point-max))))
              (when (get-text-property pos 'stele-ai)
                (setq n (+ n (- next pos))))
              (setq pos next))))))
    n))

(defun stele--find-file ()
  "Remember the content hash of a visited configuration or system file."
  (stele--safely
    (when (and buffer-file-name (stele--classify buffer-file-name))
      (setq stele--file-hash
            (if (file-exists-p buffer-file-name)
                (stele--buffer-sha256)
              'absent)))))

(defun stele--classify (file)
  "Classify FILE: return (CONFIG-KIND . PRIVILEGE) when saving it counts, else nil."
  (let ((families stele-record))
    (let ((config (and (memq 'config families) (not (file-remote-p file))
                       (stele--config-kind file)))
          (priv (and (memq 'admin families) (stele-file-privilege file))))
      (and (or config priv) (cons config priv)))))

(defun stele--after-save ()
  "Record the save of a configuration file, an admin-level edit, or AI text."
  (stele--safely
    (when buffer-file-name
      (let* ((class (stele--classify buffer-file-name))
             (ai (and (memq 'ai stele-record) (stele--ai-chars)))
             (ai (and ai (> ai 0) ai)))
        (when (or class ai)
          (let* ((before stele--file-hash)
                 (after (stele--buffer-sha256))
                 (config (car class))
                 (priv (cdr class))
                 (total (save-restriction (widen) (buffer-size)))
                 (action (cond (stele--in-custom-save nil)
                               (config "emacs.config.save")
                               (priv "emacs.file.save-privileged")
                               (t "emacs.file.save"))))
            (setq stele--file-hash after)
            (when action
              (stele--record
               action
               :resource (cons "file" (stele--abbrev buffer-file-name))
               :data `((file . ,(stele--abbrev buffer-file-name))
                       (config . ,config)
                       (privileged . ,priv)
                       (sha256_before . ,(if (stringp before) before :null))
                       (sha256_after . ,after)
                       (created . ,(if (eq before 'absent) t nil))
                       (size . ,total)
                       (mode . ,(symbol-name major-mode))
                       ,@(when ai
                           `((ai . ((chars . ,ai) (total_chars . ,total)
                                    (fraction . ,(/ (round (* 10000.0 ai) (max 1 total))
                                                    10000.0))))))
                       ,@(when (and (eq stele-file-content 'text) (or config priv))
                           (let ((s (save-restriction
                                      (widen)
                                      (buffer-substring-no-properties
                                       (point-min)
                                       (min (point-max)
                                            (+ (point-min) stele-content-max-chars))))))
                             `((text . ,s)
                               (truncated . ,(if (> total stele-content-max-chars)
                                                 t nil))))))))))))))

;;;;; Admin-level file operations other than saves

(defun stele--file-op-privilege (file)
  "Why an operation on FILE is admin-level, as an alist, or nil.
As `stele-file-privilege', but running as root is not enough: every
file operation of a root Emacs (auto-saves, caches) would be recorded."
  (and (stringp file)
       (let ((p (stele-file-privilege file)))
         (and p (not (equal (alist-get 'via p) "uid-0")) p))))

(defun stele--incidental-file-p (file)
  "Return non-nil if FILE is a backup or an auto-save file."
  (and (stringp file)
       (let ((name (file-name-nondirectory file)))
         (or (backup-file-name-p name) (auto-save-file-name-p name)))))

(defun stele--file-digest (file)
  "SHA-256 of the local regular FILE when it is small enough, else nil.
Remote files are not read: that would open a connection in a hook."
  (and (stringp file) (not (file-remote-p file))
       (let ((attrs (file-attributes file)))
         (and attrs (null (file-attribute-type attrs))
              (< (file-attribute-size attrs) (* 1024 1024))
              (ignore-errors
                (with-temp-buffer
                  (set-buffer-multibyte nil)
                  (let ((stele--in-file-op t) (file-name-handler-alist nil))
                    (insert-file-contents-literally file))
                  (secure-hash 'sha256 (current-buffer))))))))

(defun stele--file-mode-string (file)
  "The permission bits of the local FILE in octal, or nil."
  (and (stringp file) (not (file-remote-p file))
       (let ((m (ignore-errors (file-modes file 'nofollow))))
         (and m (format "%o" m)))))

(defconst stele--file-ops
  '((copy-file "emacs.file.copy" 0 1)
    (copy-directory "emacs.file.copy" 0 1)
    (rename-file "emacs.file.rename" 0 1)
    (make-symbolic-link "emacs.file.link" 1 0)
    (add-name-to-file "emacs.file.link" 0 1)
    (delete-file "emacs.file.delete" 0 nil)
    (delete-directory "emacs.file.delete" 0 nil)
    (set-file-modes "emacs.file.chmod" 0 nil)
    (write-region "emacs.file.write" 2 nil))
  "(FUNCTION ACTION FILE-ARG TARGET-ARG): the file operations recorded.
FILE-ARG and TARGET-ARG are the positions of the file names in the
arguments.")

(defun stele--file-op (op orig args)
  "Call ORIG, the file operation OP, with ARGS; record it if admin-level.
That is, on files named by a privileged TRAMP method (/sudo::, /doas::,
/su::...) or under `stele-privileged-directories'.  Saves are recorded
by `stele--after-save', so a write of the visited file is not."
  (if stele--in-file-op
      (apply orig args)
    (let* ((spec (assq op stele--file-ops))
           (file (and spec (nth (nth 2 spec) args)))
           (target (and spec (nth 3 spec) (nth (nth 3 spec) args)))
           (file (and (stringp file) (expand-file-name file)))
           (target (and (stringp target) (expand-file-name target)))
           (priv (and spec
                      (not (and (eq (car spec) 'write-region) buffer-file-name
                                (equal file (expand-file-name buffer-file-name))))
                      (not (stele--incidental-file-p file))
                      (not (stele--incidental-file-p target))
                      (or (stele--file-op-privilege file)
                          (stele--file-op-privilege target)))))
      (if (not priv)
          (let ((stele--in-file-op t)) (apply orig args))
        (let* ((op (car spec))
               (before (stele--safely
                         (and (memq op '(delete-file rename-file copy-file))
                              (stele--file-digest file))))
               (mode-before (and (eq op 'set-file-modes)
                                 (stele--safely (stele--file-mode-string file))))
               (command this-command)
               (ok nil) (err nil) result)
          (unwind-protect
              (condition-case e
                  (let ((stele--in-file-op t))
                    (setq result (apply orig args) ok t))
                (error (setq err e) (signal (car e) (cdr e))))
            (stele--safely
              (let ((stele--in-file-op t))
                (stele--record
                 (nth 1 spec)
                 :resource (cons "file" (stele--abbrev (or target file)))
                 :outcome (if ok "success" "failure")
                 :reason (and err (error-message-string err))
                 :data `((operation . ,(symbol-name op))
                         (file . ,(stele--abbrev file))
                         (target . ,(and target (stele--abbrev target)))
                         (privileged . ,priv)
                         (sha256_before . ,before)
                         (sha256_after . ,(and ok (memq op '(write-region copy-file))
                                               (stele--file-digest (or target file))))
                         (mode_before . ,mode-before)
                         (mode_after . ,(and ok (eq op 'set-file-modes)
                                             (stele--file-mode-string file)))
                         (append . ,(and (eq op 'write-region) (nth 3 args) t))
                         (command . ,(and (symbolp command) command
                                          (symbol-name command))))))))
          result)))))

(defmacro stele--define-file-op-advice (op)
  "Define `stele--OP-advice', around advice on OP.
The advice hands OP, its original function and arguments to `stele--file-op'."
  `(defun ,(intern (format "stele--%s-advice" op)) (orig &rest args)
     ,(format "Around `%s' (ORIG with ARGS): see `stele--file-op'." op)
     (stele--file-op ',op orig args)))

(stele--define-file-op-advice copy-file)
(stele--define-file-op-advice copy-directory)
(stele--define-file-op-advice rename-file)
(stele--define-file-op-advice make-symbolic-link)
(stele--define-file-op-advice add-name-to-file)
(stele--define-file-op-advice delete-file)
(stele--define-file-op-advice delete-directory)
(stele--define-file-op-advice set-file-modes)
(stele--define-file-op-advice write-region)

;;;;; Customize saves

(declare-function custom-file "cus-edit" (&optional no-error))

(defun stele--custom-file ()
  "Return the name of the file holding Customize settings, or nil."
  (ignore-errors (let ((f (custom-file t))) (and f (expand-file-name f)))))

(defun stele--custom-settings (file)
  "The settings saved in FILE: a hash table from (KIND . SYMBOL) to a string.
KIND is `variable' or `face'; the string is the saved form, printed."
  (let ((table (make-hash-table :test #'equal))
        (buf (get-file-buffer file)))
    (with-temp-buffer
      (cond (buf (insert-buffer-substring buf))
            ((file-readable-p file) (insert-file-contents file)))
      (goto-char (point-min))
      (condition-case nil
          (while t
            (let ((form (read (current-buffer))))
              (when (memq (car-safe form) '(custom-set-variables custom-set-faces))
                (dolist (entry (cdr form))
                  (let ((spec (and (eq (car-safe entry) 'quote) (cadr entry))))
                    (when (symbolp (car-safe spec))
                      (puthash (cons (if (eq (car form) 'custom-set-faces) 'face 'variable)
                                     (car spec))
                               (stele--print (cadr spec))
                               table)))))))
        (error nil)))
    table))

(defun stele--custom-save-advice (orig &rest args)
  "Around `custom-save-all' (ORIG with ARGS): record what changed."
  (let* ((file (stele--custom-file))
         (before (and file (stele--safely (stele--custom-settings file))))
         (hash-before (and file (file-readable-p file)
                           (stele--safely (with-temp-buffer
                                            (set-buffer-multibyte nil)
                                            (insert-file-contents-literally file)
                                            (secure-hash 'sha256 (current-buffer))))))
         (ok nil))
    (unwind-protect
        (let ((stele--in-custom-save t))
          (prog1 (apply orig args) (setq ok t)))
      (when (and file before)
        (stele--safely
          (let ((after (stele--custom-settings file)) (changes nil))
            (maphash (lambda (key val)
                       (let ((old (gethash key before)))
                         (unless (equal old val)
                           (push (stele--compact
                                  `((name . ,(symbol-name (cdr key)))
                                    (kind . ,(symbol-name (car key)))
                                    (change . ,(if old "changed" "added"))
                                    (value . ,(stele--text val stele-value-text))))
                                 changes))))
                     after)
            (maphash (lambda (key _val)
                       (unless (gethash key after)
                         (push `((name . ,(symbol-name (cdr key)))
                                 (kind . ,(symbol-name (car key)))
                                 (change . "removed"))
                               changes)))
                     before)
            (stele--record
             "emacs.custom.save"
             :resource (cons "file" (stele--abbrev file))
             :outcome (if ok "success" "failure")
             :data `((file . ,(stele--abbrev file))
                     (changes . ,(vconcat (sort changes
                                                (lambda (a b)
                                                  (string< (alist-get 'name a)
                                                           (alist-get 'name b))))))
                     (sha256_before . ,(or hash-before :null))
                     (sha256_after . ,(and (file-readable-p file)
                                           (with-temp-buffer
                                             (set-buffer-multibyte nil)
                                             (insert-file-contents-literally file)
                                             (secure-hash 'sha256 (current-buffer)))))))))))))

;;;;; Watched variables

(defun stele--variable-watcher (symbol newval operation where)
  "Record that SYMBOL is set to NEWVAL by OPERATION (in buffer WHERE)."
  (stele--safely
    ;; An unbound variable is being defined (its package is loading,
    ;; perhaps by Stele itself), not changed.
    (when (and (eq operation 'set) after-init-time
               (or (buffer-live-p where) (boundp symbol)))
      (let ((old (if (buffer-live-p where)
                     (buffer-local-value symbol where)
                   (and (boundp symbol) (symbol-value symbol)))))
        (unless (equal old newval)
          (stele--record
           "emacs.variable.set"
           :resource (cons "variable" (symbol-name symbol))
           :data `((variable . ,(symbol-name symbol))
                   (old . ,(stele--value old))
                   (new . ,(stele--value newval))
                   (buffer . ,(and (buffer-live-p where) (buffer-name where)))
                   (command . ,(and (symbolp this-command) this-command
                                    (symbol-name this-command))))))))))

;;;; Families: shell commands, compilations, evaluation

(defvar stele--in-shell-command nil
  "Non-nil inside an advised shell command (to record it once).")

(defun stele--shell-command-advice (orig command &rest args)
  "Around `shell-command' (ORIG): record COMMAND.  ARGS are the others."
  (stele--shell-run orig (cons command args) command))

(defun stele--shell-region-advice (orig start end command &rest args)
  "Around `shell-command-on-region' (ORIG): record COMMAND.
START, END and ARGS are the other arguments."
  (stele--shell-run orig (cl-list* start end command args) command))

(defun stele--shell-run (orig args command)
  "Call ORIG with ARGS, recording the shell COMMAND once."
  (if stele--in-shell-command
      (apply orig args)
    (let* ((stele--in-shell-command t)
           (command (if (stringp command) command (format "%s" command)))
           (async (string-match-p "&[ \t]*\\'" command))
           (dir default-directory)
           (this this-command)
           (user (and this (symbolp this) (memq this stele-shell-user-commands)))
           (ok nil) (result nil))
      (unwind-protect
          (setq result (apply orig args) ok t)
        (when (or user stele-record-program-shell-commands)
          (stele--safely
           (let ((exit (and ok (not async) (integerp result) result)))
             (stele--record
              "emacs.shell.command"
              :resource (cons "directory" (stele--abbrev dir))
              :outcome (if (and ok (or (null exit) (eql exit 0))) "success" "failure")
              :reason (cond ((not ok) "the command was interrupted or signalled an error")
                            ((and exit (not (eql exit 0))) (format "exit status %s" exit)))
              :data `((command . ,(stele--text command))
                      (directory . ,(stele--abbrev dir))
                      (exit . ,exit)
                      (async . ,(if async t nil))
                      (via . ,(if user (symbol-name this) "program"))
                      (by_command . ,(and (not user) this (symbolp this)
                                          (symbol-name this)))))))))
      result)))

(defun stele--comint-input (input)
  "Record INPUT sent to the process of a comint buffer.
That is `shell-mode', and the other interpreters run in comint
\(`run-python', SQLi, IELM...).  What `comint-send-invisible' sends
\(passwords) does not go through this hook."
  (stele--safely
    (when (derived-mode-p 'comint-mode)
      (let ((cmd (string-trim input))
            (proc (get-buffer-process (current-buffer))))
        (unless (string-empty-p cmd)
          (stele--record "emacs.shell.command"
                         :resource (cons "directory" (stele--abbrev default-directory))
                         :data `((command . ,(stele--text cmd))
                                 (directory . ,(stele--abbrev default-directory))
                                 (program . ,(and proc (car (process-command proc))))
                                 (via . ,(symbol-name major-mode)))))))))

(defun stele--term-exec-advice (buffer name command &rest _)
  "After `term-exec': record that `term' or `ansi-term' started COMMAND.
BUFFER and NAME are the terminal's.  What is typed in char mode goes
to the program key by key and is not recorded; line-mode input is."
  (stele--safely
    (stele--record "emacs.shell.session"
                   :resource (cons "directory" (stele--abbrev default-directory))
                   :data `((program . ,(and command (format "%s" command)))
                           (buffer . ,(if (bufferp buffer) (buffer-name buffer)
                                        (format "%s" (or buffer name))))
                           (directory . ,(stele--abbrev default-directory))
                           (via . "term")))))

(defun stele--term-input (input)
  "Record INPUT sent from a `term' buffer in line mode."
  (stele--safely
    (let ((cmd (string-trim input)))
      (unless (string-empty-p cmd)
        (stele--record "emacs.shell.command"
                       :resource (cons "directory" (stele--abbrev default-directory))
                       :data `((command . ,(stele--text cmd))
                               (directory . ,(stele--abbrev default-directory))
                               (via . "term-mode")))))))

(defvar vterm-shell)

(defun stele--vterm-started ()
  "Record that a vterm buffer started its shell."
  (stele--safely
    (stele--record "emacs.shell.session"
                   :resource (cons "directory" (stele--abbrev default-directory))
                   :data `((program . ,(and (boundp 'vterm-shell) (format "%s" vterm-shell)))
                           (buffer . ,(buffer-name))
                           (directory . ,(stele--abbrev default-directory))
                           (via . "vterm")))))

(defvar eshell-last-input-start)
(defvar eshell-last-input-end)

(defun stele--eshell-input ()
  "Record the command just entered in Eshell."
  (stele--safely
    (when (and (boundp 'eshell-last-input-start) (markerp eshell-last-input-start))
      (let ((cmd (string-trim (buffer-substring-no-properties
                               eshell-last-input-start eshell-last-input-end))))
        (unless (string-empty-p cmd)
          (stele--record "emacs.shell.command"
                         :resource (cons "directory" (stele--abbrev default-directory))
                         :data `((command . ,(stele--text cmd))
                                 (directory . ,(stele--abbrev default-directory))
                                 (via . "eshell"))))))))

(defvar compilation-arguments)

(defun stele--compilation-finished (buffer message)
  "Record the compilation in BUFFER, which finished with MESSAGE."
  (stele--safely
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (let* ((args (and (boundp 'compilation-arguments) compilation-arguments))
               (command (car args))
               (mode (or (nth 1 args) 'compilation-mode))
               (mode (if (eq mode t) 'comint-mode mode))
               (msg (string-trim (or message "")))
               (exit (and (string-match "exited abnormally with code \\([0-9]+\\)" msg)
                          (string-to-number (match-string 1 msg)))))
          (when (and (stringp command) (not (memq mode stele-compile-ignored-modes)))
            (stele--record "emacs.compile"
                           :resource (cons "directory" (stele--abbrev default-directory))
                           :outcome (if (string-prefix-p "finished" msg) "success" "failure")
                           :reason (and (not (string-prefix-p "finished" msg)) msg)
                           :data `((command . ,(stele--text command))
                                   (directory . ,(stele--abbrev default-directory))
                                   (mode . ,(symbol-name mode))
                                   (status . ,msg)
                                   (exit . ,exit)))))))))

(defun stele--eval-advice (orig exp &rest args)
  "Around `eval-expression' (ORIG): record the form EXP and its outcome.
ARGS are the other arguments."
  (let ((ok nil))
    (unwind-protect
        (prog1 (apply orig exp args) (setq ok t))
      (stele--safely
        (stele--record "emacs.eval"
                       :resource (cons "buffer" (buffer-name))
                       :outcome (if ok "success" "failure")
                       :reason (and (not ok) "the evaluation signalled an error")
                       :data `((form . ,(stele--text (stele--print exp)))
                               (buffer . ,(buffer-name))
                               (file . ,(and buffer-file-name
                                             (stele--abbrev buffer-file-name)))
                               (via . "eval-expression")))))))

(defconst stele--eval-commands
  '(eval-last-sexp eval-print-last-sexp eval-defun eval-region eval-buffer)
  "Evaluation commands recorded when run as commands (\[eval-last-sexp]...).")

(defvar stele--in-eval-command nil
  "Non-nil inside a recorded evaluation command (to record it once).")

(defun stele--eval-command-text (args)
  "Return the code run by the evaluation command `this-command' (with ARGS)."
  (pcase this-command
    ((or 'eval-last-sexp 'eval-print-last-sexp)
     (let ((end (point)))
       (save-excursion
         (ignore-errors (backward-sexp))
         (buffer-substring-no-properties (point) end))))
    ('eval-defun
     (save-excursion
       (ignore-errors
         (end-of-defun)
         (let ((end (point)))
           (beginning-of-defun)
           (buffer-substring-no-properties (point) end)))))
    ('eval-region
     (let ((start (car args)) (end (cadr args)))
       (and (integerp start) (integerp end)
            (buffer-substring-no-properties (min start end) (max start end)))))
    ('eval-buffer
     (save-restriction (widen) (buffer-substring-no-properties (point-min) (point-max))))))

(defun stele--eval-command-advice (orig &rest args)
  "Around the evaluation commands (ORIG with ARGS): record the code and outcome.
Only runs of the commands themselves (as `this-command') are recorded,
not their use by programs."
  (if (or stele--in-eval-command (not (memq this-command stele--eval-commands)))
      (apply orig args)
    (let* ((stele--in-eval-command t)
           (text (stele--safely (stele--eval-command-text args)))
           (command this-command)
           (buffer (buffer-name))
           (file buffer-file-name)
           (ok nil))
      (unwind-protect
          (prog1 (apply orig args) (setq ok t))
        (stele--safely
          (stele--record "emacs.eval"
                         :resource (cons "buffer" buffer)
                         :outcome (if ok "success" "failure")
                         :reason (and (not ok) "the evaluation signalled an error")
                         :data `((form . ,(and text (stele--text text)))
                                 (buffer . ,buffer)
                                 (file . ,(and file (stele--abbrev file)))
                                 (via . ,(symbol-name command)))))))))

;;;; Family: AI-assisted actions

(defvar gptel-model)
(defvar gptel-backend)
(declare-function gptel-backend-name "ext:gptel" (cl-x))

(defun stele--gptel-agent ()
  "The agent id, model and backend of gptel in the current buffer."
  (let* ((model (and (boundp 'gptel-model) gptel-model))
         (model (and model (format "%s" model)))
         (backend (and (boundp 'gptel-backend) gptel-backend))
         (backend (cond ((stringp backend) backend)
                        ((and backend (fboundp 'gptel-backend-name))
                         (ignore-errors (gptel-backend-name backend)))
                        (backend (format "%s" backend)))))
    (list (concat "gptel" (if backend (concat ":" backend) "")
                  (if model (concat "/" model) ""))
          model backend)))

(defun stele--mark-ai (beg end agent)
  "Mark the text from BEG to END as inserted by AGENT."
  (when (< beg end)
    ;; Text properties are rear-sticky by default: without this, what
    ;; the user types right after the insertion would count as AI text.
    (unless (assq 'stele-ai text-property-default-nonsticky)
      (setq-local text-property-default-nonsticky
                  (cons '(stele-ai . t) text-property-default-nonsticky)))
    (setq stele--ai-marked t)
    (with-silent-modifications
      (put-text-property beg end 'stele-ai agent))))

(defun stele--gptel-response (beg end)
  "Record the gptel response inserted between BEG and END."
  (stele--safely
    (when (and (integerp beg) (integerp end) (<= beg end))
      (let* ((agent (stele--gptel-agent))
             (text (buffer-substring-no-properties beg end)))
        (stele--mark-ai beg end (car agent))
        (stele--record "emacs.ai.response"
                       :actor-type 'ai_agent :agent (car agent)
                       :resource (cons "buffer" (if buffer-file-name
                                                    (stele--abbrev buffer-file-name)
                                                  (buffer-name)))
                       :data `((model . ,(cadr agent))
                               (backend . ,(nth 2 agent))
                               (chars . ,(length text))
                               (sha256 . ,(stele--sha256 text))
                               (text . ,(and stele-ai-text
                                             (cdr (assq 'text (stele--text text 'truncate)))))
                               (buffer . ,(buffer-name))
                               (file . ,(and buffer-file-name
                                             (stele--abbrev buffer-file-name)))
                               (mode . ,(symbol-name major-mode))
                               (tool . "gptel"))))))
  nil)

(defun stele--gptel-tool-call (info &rest _)
  "Record the gptel tool call described by the plist INFO.
Returns nil, as gptel's tool-call hooks must."
  (stele--safely
    (let* ((agent (stele--gptel-agent))
           (name (or (plist-get info :name) (plist-get info :tool) "unknown"))
           (result (plist-get info :result))
           (result-text (and result (if (stringp result) result (stele--print result)))))
      (stele--record "emacs.ai.tool-call"
                     :actor-type 'ai_agent :agent (car agent)
                     :resource (cons "tool" (format "%s" name))
                     :outcome (if (plist-get info :error) "failure" "success")
                     :data `((tool_name . ,(format "%s" name))
                             (args . ,(stele--value (plist-get info :args)))
                             (result . ,(and result-text
                                             (if stele-ai-text
                                                 (stele--text result-text 'truncate)
                                               (stele--text result-text 'hash))))
                             (model . ,(cadr agent))
                             (backend . ,(nth 2 agent))
                             (buffer . ,(buffer-name))
                             (tool . "gptel")))))
  nil)

(defun stele--copilot-accept-advice (orig &rest args)
  "Around `copilot-accept-completion' (ORIG with ARGS).
Records the accepted completion and marks its text as AI-inserted."
  (let ((inserted nil))
    (let ((collect (lambda (beg end _len) (push (cons beg end) inserted))))
      (add-hook 'after-change-functions collect nil t)
      (let ((result (unwind-protect (apply orig args)
                      (remove-hook 'after-change-functions collect t))))
        (stele--safely
          (let ((chars 0) (texts nil))
            (dolist (r inserted)
              (let ((beg (max (point-min) (car r))) (end (min (point-max) (cdr r))))
                (when (< beg end)
                  (stele--mark-ai beg end "copilot")
                  (setq chars (+ chars (- end beg)))
                  (push (buffer-substring-no-properties beg end) texts))))
            (when (and result (> chars 0))
              (stele--record "emacs.ai.completion-accepted"
                             :actor-type 'ai_agent :agent "copilot"
                             :resource (cons "buffer" (if buffer-file-name
                                                          (stele--abbrev buffer-file-name)
                                                        (buffer-name)))
                             :data `((chars . ,chars)
                                     (sha256 . ,(stele--sha256 (apply #'concat texts)))
                                     (file . ,(and buffer-file-name
                                                   (stele--abbrev buffer-file-name)))
                                     (mode . ,(symbol-name major-mode))
                                     (tool . "copilot"))))))
        result))))

;;;; The mode

(defconst stele--hooks
  '((commit vc-post-command-functions stele--vc-post-command)
    (config find-file-hook stele--find-file)
    (admin find-file-hook stele--find-file)
    (config after-save-hook stele--after-save)
    (admin after-save-hook stele--after-save)
    (ai after-save-hook stele--after-save)
    (shell comint-input-filter-functions stele--comint-input)
    (shell term-input-filter-functions stele--term-input)
    (shell vterm-mode-hook stele--vterm-started)
    (shell eshell-input-filter-functions stele--eshell-input)
    (compile compilation-finish-functions stele--compilation-finished)
    (ai gptel-post-response-functions stele--gptel-response)
    (ai gptel-post-tool-call-functions stele--gptel-tool-call)
    (package straight-use-package-pre-build-functions stele--straight-pre-build))
  "(FAMILY HOOK FUNCTION): the hooks `stele-mode' adds.")

(defconst stele--advice
  '((commit vc-do-command :around stele--vc-do-command-advice)
    (commit magit-call-process :around stele--magit-call-process-advice)
    (commit magit-process-finish :before stele--magit-process-finish-advice)
    (package package-install :around stele--package-install-advice)
    (package package-unpack :around stele--package-unpack-advice)
    (package package-delete :around stele--package-delete-advice)
    (package use-package-ensure-elpa :around stele--use-package-ensure-advice)
    (package package-vc-install :around stele--package-vc-advice)
    (package elpaca--finalize :after stele--elpaca-finalize-advice)
    (config custom-save-all :around stele--custom-save-advice)
    (shell shell-command :around stele--shell-command-advice)
    (shell shell-command-on-region :around stele--shell-region-advice)
    (shell term-exec :after stele--term-exec-advice)
    (eval eval-expression :around stele--eval-advice)
    (eval eval-last-sexp :around stele--eval-command-advice)
    (eval eval-defun :around stele--eval-command-advice)
    (eval eval-region :around stele--eval-command-advice)
    (eval eval-buffer :around stele--eval-command-advice)
    (ai copilot-accept-completion :around stele--copilot-accept-advice)
    (admin copy-file :around stele--copy-file-advice)
    (admin copy-directory :around stele--copy-directory-advice)
    (admin rename-file :around stele--rename-file-advice)
    (admin make-symbolic-link :around stele--make-symbolic-link-advice)
    (admin add-name-to-file :around stele--add-name-to-file-advice)
    (admin delete-file :around stele--delete-file-advice)
    (admin delete-directory :around stele--delete-directory-advice)
    (admin set-file-modes :around stele--set-file-modes-advice)
    (admin write-region :around stele--write-region-advice))
  "(FAMILY FUNCTION HOW ADVICE): the advice `stele-mode' adds.")

(defvar stele--installed nil
  "What `stele--enable' installed: hooks, advice and watchers.")

(defun stele--enable ()
  "Install the hooks, advice and watchers of the families in `stele-record'."
  (stele--disable-hooks)
  (let ((installed nil))
    (dolist (h stele--hooks)
      (when (and (memq (nth 0 h) stele-record)
                 (not (member (cons 'hook (cdr h)) installed)))
        (add-hook (nth 1 h) (nth 2 h))
        (push (cons 'hook (cdr h)) installed)))
    (dolist (a stele--advice)
      (when (memq (nth 0 a) stele-record)
        (advice-add (nth 1 a) (nth 2 a) (nth 3 a))
        (push (list 'advice (nth 1 a) (nth 3 a)) installed)))
    (when (memq 'variables stele-record)
      (dolist (v stele-watched-variables)
        (add-variable-watcher v #'stele--variable-watcher)
        (push (list 'watch v) installed)))
    (setq stele--installed installed))
  (add-hook 'kill-emacs-hook #'stele--kill-emacs)
  (stele--load-identity)
  (condition-case err
      (progn (stele--ensure-spool-dir)
             (stele--adopt-orphans t))
    (error (setq stele--last-error
                 (cons (current-time)
                       (format "spool directory %s: %s" (stele--spool-dir)
                               (error-message-string err))))))
  (stele--record "emacs.stele.enable"
                 :resource (cons "emacs" (stele--string (system-name)))
                 :data `((families . ,(vconcat (mapcar #'symbol-name stele-record)))
                         (server . ,stele-server-url)
                         (emacs_pid . ,(emacs-pid))))
  (stele--schedule-flush))

(defun stele--disable-hooks ()
  "Remove everything `stele--enable' installed."
  (dolist (item stele--installed)
    (pcase item
      (`(hook ,hook ,fn) (remove-hook hook fn))
      (`(advice ,fn ,advice) (advice-remove fn advice))
      (`(watch ,var) (remove-variable-watcher var #'stele--variable-watcher))))
  (setq stele--installed nil))

(defun stele--disable ()
  "Record that recording stops, then remove the hooks and advice.
Queued events stay in the spool and are sent when the mode is turned
on again, here or in another session."
  (when stele--installed
    (stele--record "emacs.stele.disable"
                   :resource (cons "emacs" (stele--string (system-name)))
                   :data `((emacs_pid . ,(emacs-pid))
                           (queued . ,stele--queued))))
  (stele--disable-hooks)
  (remove-hook 'kill-emacs-hook #'stele--kill-emacs)
  (unless stele--inflight
    ;; One last attempt to send what is queued (including the event
    ;; above), without retries.
    (stele--cancel-timers)
    (stele--flush))
  (when stele--flush-timer (cancel-timer stele--flush-timer))
  (when stele--retry-timer (cancel-timer stele--retry-timer))
  (setq stele--flush-timer nil stele--retry-timer nil stele--retry-at nil))

(defun stele--lighter ()
  "The mode line indicator of `stele-mode'."
  (cond ((and stele--retry-timer (> stele--queued 0)) (format " Stele!%d" stele--queued))
        ((> stele--queued 50) (format " Stele[%d]" stele--queued))
        (t " Stele")))

;;;###autoload
(define-minor-mode stele-mode
  "Record meaningful Emacs activity in the Stele audit log.

Records commits and pushes, package installs and removals,
configuration changes, admin-level edits, shell commands,
compilations, evaluations and AI-assisted actions (see `stele-record')
as events, queued in a spool file and sent to `stele-server-url' in
the background.  \\[stele-status] shows the queue; \\[stele-login]
signs in.

In a noninteractive Emacs the mode stays off unless
`stele-record-noninteractive' is non-nil."
  :global t
  :group 'stele
  :lighter (:eval (stele--lighter))
  (if stele-mode
      (if (and noninteractive (not stele-record-noninteractive))
          (progn
            (setq stele-mode nil)
            (message "Stele: not recording in a noninteractive session (see `stele-record-noninteractive')"))
        (stele--enable))
    (stele--disable)))

;;;; Status

(defun stele--ago (time)
  "How long ago TIME was, in words."
  (let ((s (float-time (time-subtract nil time))))
    (cond ((< s 1) "just now")
          ((< s 90) (format "%d s ago" s))
          ((< s 5400) (format "%d min ago" (/ s 60)))
          ((< s 172800) (format "%.1f h ago" (/ s 3600)))
          (t (format "%.1f days ago" (/ s 86400))))))

(defun stele--status-text ()
  "The text of the *stele-status* buffer."
  (let* ((segs (append stele--segments
                       (and stele--open (> (stele--segment-count stele--open) 0)
                            (list stele--open))))
         (oldest (cl-reduce (lambda (a b) (if (and a (time-less-p a b)) a b))
                            (mapcar #'stele--segment-created segs) :initial-value nil))
         (key (ignore-errors (stele--api-key))))
    (concat
     (propertize "Stele\n\n" 'face 'bold)
     (format "Mode:        %s\n" (if stele-mode "on" "off"))
     (format "Server:      %s\n" stele-server-url)
     (format "Identity:    %s\n"
             (cond ((stele--token-valid-p)
                    (format "%s, verified through %s (access token valid for %d min)"
                            (stele--actor-id) stele-issuer
                            (/ (float-time (time-subtract stele--access-expiry nil)) 60)))
                   ((and stele-issuer (or stele--refresh-token
                                          (ignore-errors (stele--stored-refresh-token))))
                    (format "%s, logged in through %s (refreshed when needed)"
                            (stele--actor-id) stele-issuer))
                   (key (format "%s, claimed (API key from auth-source)" (stele--actor-id)))
                   (t (format "%s, but no credentials: M-x stele-login%s"
                              (stele--actor-id)
                              (if stele-issuer "" " (set stele-issuer) or add an API key")))))
     (format "Queue:       %d event%s%s%s\n" stele--queued (if (= stele--queued 1) "" "s")
             (if oldest (format ", oldest queued %s" (stele--ago oldest)) "")
             (if stele--inflight ", sending now" ""))
     (format "Spool:       %s\n" (abbreviate-file-name (stele--spool-dir)))
     (format "Last ack:    %s\n"
             (if stele--last-ack
                 (format "index %s (%s), %d sent in this session"
                         (nth 1 stele--last-ack) (stele--ago (nth 0 stele--last-ack)) stele--sent)
               "none in this session"))
     (format "Last error:  %s\n"
             (if stele--last-error
                 (format "%s (%s)" (cdr stele--last-error) (stele--ago (car stele--last-error)))
               "none"))
     (if stele--retry-at
         (format "Next retry:  in %d s (then backing off up to %d s)\n"
                 (max 0 (float-time (time-subtract stele--retry-at nil))) stele-backoff-max)
       "")
     (if (file-exists-p (stele--rejected-file))
         (format "Rejected:    %d event(s) refused as invalid, kept in %s (M-x stele-requeue-rejected)\n"
                 (length (stele--read-lines (stele--rejected-file)))
                 (abbreviate-file-name (stele--rejected-file)))
       "")
     (format "Recording:   %s\n" (mapconcat #'symbol-name stele-record " "))
     "\n"
     (substitute-command-keys
      "\\<stele-status-mode-map>\\[stele-status-refresh] refresh   \\[stele-flush] send now   \\[stele-login] log in   \\[quit-window] quit\n"))))

(defvar stele-status-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map "g" #'stele-status-refresh)
    (define-key map "f" #'stele-flush)
    (define-key map "l" #'stele-login)
    (define-key map "r" #'stele-requeue-rejected)
    (define-key map "q" #'quit-window)
    map)
  "Keymap of `stele-status-mode'.")

(define-derived-mode stele-status-mode special-mode "Stele-Status"
  "Major mode of the *stele-status* buffer.")

(defun stele-status-refresh ()
  "Redraw the *stele-status* buffer."
  (interactive)
  (with-current-buffer (get-buffer-create "*stele-status*")
    (let ((inhibit-read-only t) (pt (point)))
      (erase-buffer)
      (insert (stele--status-text))
      (goto-char (min pt (point-max))))))

;;;###autoload
(defun stele-status ()
  "Show the queue, the identity, the last error and the last acknowledgement."
  (interactive)
  (with-current-buffer (get-buffer-create "*stele-status*")
    (unless (derived-mode-p 'stele-status-mode) (stele-status-mode))
    (stele-status-refresh)
    (if noninteractive
        (buffer-string)
      (pop-to-buffer (current-buffer)))))

;;;; Your events

(declare-function stele-verify-entry "stele-verify" (index))

(defun stele--query-quote (value)
  "VALUE as a quoted value of a Stele query."
  (concat "\"" (replace-regexp-in-string "[\"\\\\*]" "\\\\\\&" value) "\""))

(defun stele--own-query ()
  "The query of your own events: actor:\"<you>\"."
  (concat "actor:" (stele--query-quote (stele--actor-id))))

(defvar-local stele--events-query nil
  "The query of this *stele-events* buffer.")

(defvar stele-events-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map "g" #'stele-events-refresh)
    (define-key map "s" #'stele-events-search)
    (define-key map "v" #'stele-events-verify)
    (define-key map (kbd "RET") #'stele-events-verify)
    (define-key map "q" #'quit-window)
    map)
  "Keymap of `stele-events-mode'.")

(define-derived-mode stele-events-mode special-mode "Stele-Events"
  "Major mode of the *stele-events* buffer: a search of the Stele log.
\\{stele-events-mode-map}")

;;;###autoload
(defun stele-events (&optional query)
  "Show the events of the log that QUERY matches, newest first.
QUERY is a Stele search query; by default your own events,
actor:\"<you>\".  With a prefix argument, ask for it.

The search asks the server to answer only once the last of your
events it acknowledged is searchable (after=INDEX), so what you just
did is shown even while the server's search index catches up.  If
the index is behind, the server answers 503 with a Retry-After: the
search is asked once more after it (at most `stele-index-wait-max'
seconds), then shows what is searchable and says so.

The search runs in the background.  In the buffer,
\\<stele-events-mode-map>\\[stele-events-refresh] runs it again, with your newest events,
\\[stele-events-search] asks for another query and
\\[stele-events-verify] checks the entry on its line."
  (interactive
   (list (and current-prefix-arg (read-string "Stele query: " (stele--own-query)))))
  (let ((buffer (get-buffer-create "*stele-events*")))
    (with-current-buffer buffer
      (unless (derived-mode-p 'stele-events-mode) (stele-events-mode))
      (setq stele--events-query (or query (stele--own-query))))
    (stele-events-refresh buffer)
    (unless noninteractive (pop-to-buffer buffer))
    buffer))

(defun stele-events-search (query)
  "Show the events QUERY matches in the *stele-events* buffer."
  (interactive (list (read-string "Stele query: " stele--events-query)))
  (stele-events query))

(defun stele-events-refresh (&optional buffer)
  "Run the search of the *stele-events* BUFFER again (default: this one)."
  (interactive)
  (let* ((buffer (or buffer (current-buffer)))
         (query (buffer-local-value 'stele--events-query buffer))
         (server (stele--server))
         (after (cdr (assoc server stele--written))))
    (stele--events-render buffer query nil "Searching..." nil)
    (stele--events-fetch buffer query server after nil)))

(defun stele--events-url (server query after)
  "The search URL on SERVER for QUERY, read-your-writes AFTER an index."
  (require 'url-util)
  (format "%s/v1/events?q=%s&limit=%d%s" server (url-hexify-string query)
          (max 1 (min 1000 stele-events-limit))
          (if after (format "&after=%d" after) "")))

(defun stele--events-get (buffer query server after callback)
  "Search SERVER for QUERY, after entry AFTER (or nil); call CALLBACK.
CALLBACK gets the answer (see `stele--http').  Without credentials,
BUFFER says so instead."
  (stele--authorization
   (lambda (header err)
     (stele--safely
       (if (null header)
           (stele--events-render buffer query nil (format "Cannot search: %s" err) nil)
         (stele--http
          "GET" (stele--events-url server query after)
          `(("Accept" . "application/json") ("Authorization" . ,header))
          nil
          (lambda (res) (stele--safely (funcall callback res)))))))))

(defun stele--events-fetch (buffer query server after retried)
  "Search SERVER for QUERY, after entry AFTER (or nil), into BUFFER.
RETRIED says whether this is the retry after an index that was behind."
  (stele--events-get buffer query server after
                     (lambda (res) (stele--events-answer buffer query server after retried res))))

(defun stele--events-answer (buffer query server after retried res)
  "Show the answer RES to the search of QUERY on SERVER after AFTER.
BUFFER shows it; RETRIED as for `stele--events-fetch'."
  (let* ((status (plist-get res :status))
         (json (plist-get res :json))
         (code (stele--get json 'error 'code))
         (wait (or (plist-get res :retry-after) (stele--get json 'error 'retryAfter) 1)))
    (cond
     ((and status (<= 200 status 299))
      (stele--events-render buffer query json nil after))
     ((and after (eql status 503) (equal code "index_behind"))
      (if (and (not retried) (<= wait stele-index-wait-max))
          (progn
            (message "Stele: the search index has not reached your event #%d yet; asking again in %s s"
                     after wait)
            (stele--events-render buffer query nil
                                  (format "Waiting %s s for the search index to reach your event #%d..." wait after)
                                  nil)
            (run-with-timer wait nil #'stele--events-fetch buffer query server after t))
        (let ((through (stele--get json 'error 'indexedThrough)))
          (stele--events-behind
           buffer query server
           (format "Your latest event, #%d, is not searchable yet%s; below is what is.  Press g to try again."
                   after (if (and (natnump through) (> through 0))
                             (format " (the index has reached #%d)" (1- through))
                           ""))))))
     ((and after (eql status 404))
      ;; An index this log does not have (the server was reset): search without it.
      (stele--events-behind
       buffer query server
       (format "This server's log has no entry #%d (the last it acknowledged to this Emacs)." after)))
     (t (stele--events-render buffer query nil
                              (format "Search failed: %s" (stele--error-message res)) nil)))))

(defun stele--events-behind (buffer query server note)
  "Search SERVER for QUERY into BUFFER without read-your-writes, with NOTE."
  (message "Stele: %s" note)
  (stele--events-render buffer query nil note nil)
  (stele--events-get
   buffer query server nil
   (lambda (res)
     (let ((status (plist-get res :status)))
       (if (and status (<= 200 status 299))
           (stele--events-render buffer query (plist-get res :json) note nil)
         (stele--events-render buffer query nil
                               (format "%s\nSearch failed: %s" note (stele--error-message res))
                               nil))))))

(defun stele--events-line (hit)
  "One line for the search HIT (an entry, or a gap)."
  (let ((index (stele--get hit 'index))
        (event (stele--get hit 'event)))
    (propertize
     (if event
         (let ((resource (stele--get event 'resource)))
           (format "#%-6s %s  %s  %s  %s%s\n" index
                   (stele--get event 'time)
                   (stele--get event 'actor 'id)
                   (stele--get event 'action)
                   (stele--get event 'outcome)
                   (if resource
                       (format "  %s:%s" (stele--get resource 'type) (stele--get resource 'id))
                     "")))
       (format "#%-6s %s  (%s: its data key was destroyed)\n" index
               (stele--get hit 'received) (stele--get hit 'state)))
     'stele-index index)))

(defun stele--events-render (buffer query json note after)
  "Show in BUFFER the answer JSON to QUERY, with NOTE on top.
AFTER is the index the answer was asked to include, or nil."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (let ((inhibit-read-only t)
            (line (line-number-at-pos))
            (hits (append (stele--get json 'hits) nil)))
        (erase-buffer)
        (insert (propertize (format "Stele events: %s\n" query) 'face 'bold)
                (format "Server: %s%s\n" (stele--server)
                        (let ((through (stele--get json 'indexed_through)))
                          (if (and (natnump through) (> through 0))
                              (format ", searchable through #%d" (1- through)) "")))
                (if after (format "Includes your latest event, #%d.\n" after) "")
                (if (> stele--queued 0)
                    (format "%d of your events wait in the queue, not sent yet (M-x stele-flush).\n"
                            stele--queued)
                  "")
                (if note (concat (propertize note 'face 'warning) "\n") "")
                "\n")
        (cond (hits (mapc (lambda (h) (insert (stele--events-line h))) hits))
              (json (insert "No events match.\n")))
        (goto-char (point-min))
        (forward-line (1- line))))))

(defun stele-events-verify ()
  "Check the entry on this line of the *stele-events* buffer."
  (interactive)
  (let ((index (get-text-property (line-beginning-position) 'stele-index)))
    (unless index (user-error "No entry on this line"))
    (funcall-interactively #'stele-verify-entry index)))

;;;; Verification (in stele-verify.el, loaded on first use)

;;;###autoload
(autoload 'stele-verify-entry "stele-verify"
  "Check that the log entry INDEX is in the log, with its proof and signature."
  t)

(provide 'stele)
;;; stele.el ends here
