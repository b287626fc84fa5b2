;;; stele-checks.el --- Static checks of stele.el: checkdoc and package-lint  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The Stele authors
;; SPDX-License-Identifier: Apache-2.0

;;; Commentary:

;; Batch entry points used by test/emacs.test.ts:
;;
;;   emacs --batch -Q -l stele-checks.el -f stele-checks-checkdoc FILE
;;   emacs --batch -Q -L <package-lint dir> -l stele-checks.el \
;;         -f stele-checks-package-lint FILE
;;
;; Each prints one line per problem and exits non-zero if there is any.

;;; Code:

(require 'checkdoc)
(require 'cl-lib)

(defun stele-checks--finish (problems)
  "Print PROBLEMS and exit with their count as the status."
  (dolist (p (reverse problems)) (message "%s" p))
  (message "%d problem(s)" (length problems))
  (kill-emacs (if problems 1 0)))

(defun stele-checks-checkdoc ()
  "Run `checkdoc' on the file named on the command line."
  (let ((file (pop command-line-args-left))
        (problems nil))
    (with-current-buffer (find-file-noselect file)
      (let ((checkdoc-create-error-function
             (lambda (text start _end &optional _unfixable)
               (push (format "%s:%d: %s" file (line-number-at-pos start) text) problems)
               nil))
            (checkdoc-autofix-flag 'never)
            (checkdoc-spellcheck-documentation-flag nil))
        (checkdoc-current-buffer t)))
    (stele-checks--finish problems)))

(defconst stele-checks--ignored-lint
  '("This makes the package uninstallable in all released Emacs versions.")
  "package-lint messages that are wrong with Debian's package-lint 0.16.
It predates Emacs 28, so it thinks no released Emacs satisfies a
dependency on Emacs 28.1.")

(defun stele-checks-package-lint ()
  "Run package-lint on the file named on the command line."
  (require 'package-lint)
  (let ((file (pop command-line-args-left)))
    (with-current-buffer (find-file-noselect file)
      ;; stele-verify.el is a file of the stele package, not a package.
      (setq-local package-lint-main-file
                  (expand-file-name "stele.el" (file-name-directory buffer-file-name)))
      (let ((problems
             (cl-remove-if (lambda (p) (member (nth 3 p) stele-checks--ignored-lint))
                           (package-lint-buffer))))
        (stele-checks--finish
         (mapcar (lambda (p) (format "%s:%d:%d: %s: %s" file (nth 0 p) (nth 1 p)
                                     (nth 2 p) (nth 3 p)))
                 problems))))))

(provide 'stele-checks)
;;; stele-checks.el ends here
