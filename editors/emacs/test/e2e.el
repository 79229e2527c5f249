;;; e2e.el --- End-to-end driver for coder-lsp.el in a real batch Emacs  -*- lexical-binding: t; -*-

;;; Commentary:

;; Run by tests/editors/test_emacs.py as `emacs -Q --batch -l editors/emacs/test/e2e.el'.
;; Inputs (environment): E2E_SCENARIO (basic | missing | crash | stale | huge | basic_real |
;; partial | midword_real),
;; E2E_FILE, E2E_RESULT (JSON observations), E2E_CMD (JSON list), E2E_MODEL, E2E_PLUGIN,
;; E2E_TIMEOUT_S, E2E_PIDFILE, E2E_MAX_RESTARTS, E2E_SETTINGS (optional JSON object: more
;; server settings).  Keys go through `execute-kbd-macro', so
;; keymaps and `post-command-hook' run as for a user; every wait polls with a deadline.

;;; Code:

(require 'json)
(require 'cl-lib)
(add-to-list 'load-path (getenv "E2E_PLUGIN"))
(require 'coder-lsp)

(defvar e2e-result nil "Alist of observations.")
(defvar e2e-messages nil "Every message shown, newest first.")
(defvar e2e-timeout (string-to-number (or (getenv "E2E_TIMEOUT_S") "60"))
  "The whole scenario's time limit in seconds.")
(defvar e2e-started (float-time))
(defvar e2e-deadline (+ e2e-started e2e-timeout)
  "Every wait ends by then: a slow step may use what the others left, and when time runs
out the driver names the step itself instead of being killed from outside.")
(defvar e2e-waits nil "Each finished wait's name and milliseconds, newest first.")

(defun e2e-put (key value)
  "Record VALUE under KEY."
  (setf (alist-get key e2e-result) value))

(defun e2e-write ()
  "Write the observations as JSON."
  (e2e-put 'messages (vconcat (reverse e2e-messages)))
  (e2e-put 'waits (vconcat (reverse e2e-waits)))
  (with-temp-file (getenv "E2E_RESULT")
    (insert (let ((json-encoding-pretty-print nil)) (json-encode e2e-result)))))

(advice-add 'message :around
            (lambda (orig fmt &rest args)
              (let ((msg (apply orig fmt args)))
                (when (and msg (not (string-empty-p msg)))
                  (push msg e2e-messages))
                msg)))
(advice-add 'display-warning :before
            (lambda (_type msg &optional level &rest _)
              (unless (eq level :debug)   ; flymake's chatter is not shown to users
                (push (format "WARNING: %s" msg) e2e-messages))))

(defun e2e-wait (what pred &optional timeout)
  "Poll PRED every 20 ms until non-nil (returned) or TIMEOUT seconds; WHAT names it.
Never past the scenario's deadline.  Each wait's time is recorded and the observations so
far written after it, so even a driver killed from outside shows how far it got."
  (let* ((t0 (float-time))
         (deadline (min (+ t0 (or timeout e2e-timeout)) e2e-deadline))
         value)
    (while (not (setq value (funcall pred)))
      (when (> (float-time) deadline)
        (error "Timed out waiting for %s after %d ms (%d ms into the scenario)" what
               (* 1000 (- (float-time) t0)) (* 1000 (- (float-time) e2e-started))))
      (accept-process-output nil 0.02))
    (push (list (cons 'what what) (cons 'ms (* 1000 (- (float-time) t0)))) e2e-waits)
    (e2e-write)
    value))

(defun e2e-keys (keys)
  "Type KEYS (a `kbd' string) as a user would."
  (execute-kbd-macro (kbd keys)))

(defun e2e-line (n)
  "Text of line N of the current buffer."
  (save-excursion
    (goto-char (point-min))
    (forward-line (1- n))
    (buffer-substring-no-properties (line-beginning-position) (line-end-position))))

(defun e2e-state () (plist-get coder-lsp-status :state))

(defun e2e-ready-server ()
  "The running coder-lsp server once its model is ready."
  (let ((s (coder-lsp--server)))
    (and s (equal (e2e-state) "ready") s)))

(defun e2e-open ()
  "Visit E2E_FILE and let eglot start (its `eglot-ensure' waits for a command)."
  (find-file (getenv "E2E_FILE"))
  (run-hooks 'post-command-hook))

(defun e2e-ghost-at-end-of (n)
  "Move to the end of line N like a user and wait for ghost text; return (TEXT . MS)."
  (goto-char (point-min))
  (forward-line (1- n))
  (let ((t0 (float-time)))
    (e2e-keys "C-e")
    (let ((text (e2e-wait "ghost text" #'coder-lsp-shown-text)))
      (cons text (* 1000 (- (float-time) t0))))))

(defun e2e-basic ()
  "Ghost text at the empty body, TAB accepts, any other command dismisses."
  (e2e-open)
  (e2e-wait "eglot" #'coder-lsp--server)
  (e2e-put 'mode_on (and coder-lsp-mode t))
  (let ((g (e2e-ghost-at-end-of 2)))
    (e2e-put 'ghost (car g))
    (e2e-put 'ghost_ms (cdr g)))
  (e2e-put 'overlay_at_point (and (= (overlay-start coder-lsp--overlay) (point)) t))
  (e2e-put 'tab_binding_with_ghost (format "%s" (key-binding (kbd "TAB"))))
  (e2e-put 'mode_line (coder-lsp-status-string))
  (e2e-keys "TAB")
  (e2e-put 'accepted_line (e2e-line 2))
  (e2e-put 'point_after_accept (list (line-number-at-pos) (current-column)))
  (e2e-put 'ghost_after_accept (coder-lsp-shown-text))
  (e2e-put 'tab_binding_without_ghost (format "%s" (key-binding (kbd "TAB"))))
  ;; A new function with an empty body; show, then type: the ghost goes at once.
  (goto-char (point-max))
  (insert "\ndef mul(a, b):\n    ")
  (let ((n (line-number-at-pos)))
    (e2e-ghost-at-end-of n)
    (e2e-keys "x")
    (e2e-put 'after_typing (coder-lsp-shown-text)))
  ;; completion-at-point keeps working through eglot's textDocument/completion.
  (let ((n (line-number-at-pos)))
    (delete-region (line-beginning-position) (line-end-position))
    (insert "    ")
    (coder-lsp-dismiss)
    (eglot--signal-textDocument/didChange)
    ;; Poll: eglot's table asks the server lazily, and an answer computed for an older
    ;; document version comes back empty.
    (e2e-put 'capf
             (e2e-wait "completion-at-point"
                       (lambda ()
                         (let ((capf (run-hook-wrapped
                                      'completion-at-point-functions
                                      (lambda (f) (and (functionp f) (funcall f))))))
                           (and capf (all-completions "" (nth 2 capf)))))
                       10))
    (e2e-put 'capf_line n)))

(defun e2e-server-requests ()
  "The server's figures of its recent requests (coder-lsp.stats), as a list of plists."
  (append (plist-get (jsonrpc-request (coder-lsp--server) :workspace/executeCommand
                                      '(:command "coder-lsp.stats" :arguments []))
                     :requests)
          nil))

(defun e2e-new-ghost (old &optional timeout)
  "Wait for ghost text other than OLD and return it."
  (e2e-wait "new ghost text" (lambda () (let ((g (coder-lsp-shown-text)))
                                          (and g (not (equal g old)) g)))
            timeout))

(defun e2e-partial ()
  "M-<right> accepts a word, C-M-<right> a line; C-c \\ asks now, past the cache."
  (e2e-open)
  (e2e-wait "ready" #'e2e-ready-server)
  (let ((first (car (e2e-ghost-at-end-of 2))))
    (e2e-put 'ghost first)
    (e2e-keys "M-<right>")
    (e2e-put 'after_word (e2e-line 2))
    (e2e-put 'ghost_after_word (e2e-new-ghost first))
    (e2e-keys "C-M-<right>")
    (e2e-put 'after_line (e2e-line 2)))
  ;; The explicit command: the server answers it from the model, not from its cache.
  (goto-char (point-max))
  (insert "\ndef mul(a, b):\n    ")
  (let ((n (line-number-at-pos)))
    (e2e-ghost-at-end-of n)
    (coder-lsp-dismiss)
    (e2e-ghost-at-end-of n)             ; the same spot again: from the cache
    (let ((before (length (e2e-server-requests))))
      (e2e-put 'cache_before_key (plist-get (car (last (e2e-server-requests))) :cache))
      (coder-lsp-dismiss)
      (e2e-keys "C-c \\")
      (e2e-put 'cache_after_key
               (e2e-wait "a request the model answered"
                         (lambda ()
                           (and (cl-some (lambda (r) (equal (plist-get r :cache) "miss"))
                                         (nthcdr before (e2e-server-requests)))
                                "miss"))))
      (e2e-put 'ghost_after_key (e2e-new-ghost nil)))))

(defun e2e-midword_real ()
  "The real model: ghost at an empty body's start, accepted; then in a new body type `ret'
at 150 ms a key, pause, ghost; accept a word, then the rest."
  (setq coder-lsp-idle-delay (eval (car (get 'coder-lsp-idle-delay 'standard-value))))
  (e2e-open)
  (e2e-wait "ready" #'e2e-ready-server)
  (let ((g (e2e-ghost-at-end-of 2)))
    (e2e-put 'ghost2 (car g))
    (e2e-put 'linestart_ms (cdr g)))
  (e2e-keys "TAB")
  (goto-char (point-max))
  (insert "\n\ndef mul(a, b):\n    ")
  (coder-lsp-dismiss)
  (let ((n (line-number-at-pos)))
    (dolist (key '("r" "e" "t"))
      (e2e-keys key)
      (let ((until (+ (float-time) 0.15)))
        (while (< (float-time) until) (accept-process-output nil 0.02))))
    (let* ((t0 (float-time))
           (ghost (e2e-new-ghost nil)))
      (e2e-put 'midword_ms (* 1000 (- (float-time) t0)))
      (e2e-put 'ghost ghost)
      (e2e-put 'typed_line (e2e-line n))
      (e2e-keys "M-<right>")
      (e2e-put 'after_word (e2e-line n))
      (e2e-put 'ghost_after_word (e2e-new-ghost ghost))
      (e2e-keys "TAB")
      (e2e-put 'after_rest (e2e-line n)))))

(defun e2e-missing ()
  "No server: one clear warning for two buffers, no server, TAB keeps indenting."
  (e2e-open)
  (find-file (expand-file-name "second.py" (file-name-directory (getenv "E2E_FILE"))))
  (run-hooks 'post-command-hook)
  (e2e-put 'servers (length (hash-table-keys eglot--servers-by-project)))
  (e2e-put 'status (e2e-state))
  (e2e-put 'tab_binding (format "%s" (key-binding (kbd "TAB")))))

(defun e2e-pid ()
  "The server's pid from the wrapper's pidfile."
  (string-to-number (with-temp-buffer (insert-file-contents (getenv "E2E_PIDFILE"))
                                      (buffer-string))))

(defun e2e-crash ()
  "Kill the server: restarted once and working; killed again: not restarted."
  (e2e-open)
  (let ((first (e2e-wait "ready" #'e2e-ready-server))
        (pid (e2e-pid)))
    (e2e-put 'first_pid pid)
    (signal-process pid 'SIGKILL)
    (let ((second (e2e-wait "restarted" (lambda () (let ((s (e2e-ready-server)))
                                                      (and s (not (eq s first)) s))))))
      (e2e-put 'restarted (and second t))
      (e2e-put 'ghost_after_restart (car (e2e-ghost-at-end-of 2)))
      (let ((pid2 (e2e-pid)))
        (e2e-put 'second_pid pid2)
        (signal-process pid2 'SIGKILL)
        (e2e-wait "gave up" (lambda () (and (equal (e2e-state) "crashed")
                                            (not (coder-lsp--server)))))
        ;; A wrong restart would show up within a second or two: look for 2 s.
        (let ((deadline (+ (float-time) 2)))
          (while (and (< (float-time) deadline) (not (coder-lsp--server)))
            (accept-process-output nil 0.05)))
        (e2e-put 'server_after_giving_up (and (coder-lsp--server) t))))))

(defun e2e-stale ()
  "A reply for a point the user has left is dropped."
  (e2e-open)
  (e2e-wait "ready" #'e2e-ready-server)
  (e2e-ghost-at-end-of 2)
  (let ((discarded (plist-get coder-lsp-stats :discarded))
        (shown (plist-get coder-lsp-stats :shown)))
    (coder-lsp-dismiss)
    (coder-lsp-request t)
    (goto-char (point-min))             ; moved on before the reply could arrive
    (e2e-wait "discarded" (lambda () (> (plist-get coder-lsp-stats :discarded) discarded)))
    (e2e-put 'shown_delta (- (plist-get coder-lsp-stats :shown) shown))
    (e2e-put 'ghost_after_stale (coder-lsp-shown-text))))

(defun e2e-huge ()
  "A large file still gets its completion."
  (let ((t0 (float-time)))
    (e2e-open)
    (e2e-put 'open_ms (* 1000 (- (float-time) t0))))
  (e2e-wait "ready" #'e2e-ready-server)
  (let* ((n (line-number-at-pos (point-max)))
         (n (if (string-empty-p (e2e-line n)) (1- n) n))
         (g (e2e-ghost-at-end-of n)))
    (e2e-put 'ghost (car g))
    (e2e-put 'ghost_ms (cdr g))
    (e2e-keys "TAB")
    (e2e-put 'accepted_line (e2e-line n))))

(defun e2e-basic_real ()
  "The real model: ghost text at the empty body, accepted with TAB."
  (e2e-open)
  (e2e-wait "ready" #'e2e-ready-server)
  (let ((g (e2e-ghost-at-end-of 2)))
    (e2e-put 'ghost (car g))
    (e2e-put 'ghost_ms (cdr g)))
  (e2e-keys "TAB")
  (e2e-put 'accepted_line (e2e-line 2)))

(defun e2e-reask ()
  "A busy machine: the server's time limit cuts every generation short (the test sets
maxPredictMs 0), so the first answer is empty.  The server finishes it in the background
and sends coder-lsp/completionReady; the package asks again, and the ghost text appears
with no key pressed after C-e."
  (setq coder-lsp-idle-delay (eval (car (get 'coder-lsp-idle-delay 'standard-value))))
  (e2e-open)
  (e2e-wait "ready" #'e2e-ready-server)
  (let ((g (e2e-ghost-at-end-of 2)))
    (e2e-put 'ghost (car g))
    (e2e-put 'ghost_ms (cdr g)))
  (e2e-put 'requests (vconcat (e2e-server-requests)))
  (e2e-keys "TAB")
  (e2e-put 'accepted_line (e2e-line 2)))

(defun e2e-main ()
  "Configure coder-lsp, run the scenario, write the observations."
  (e2e-put 'emacs emacs-version)
  (e2e-put 'eglot (or (and (boundp 'eglot-version) eglot-version)
                      (let ((lib (locate-library "eglot"))) (and lib (file-name-directory lib)))))
  (e2e-put 'scenario (getenv "E2E_SCENARIO"))
  (setq coder-lsp-command (json-parse-string (getenv "E2E_CMD") :array-type 'list)
        coder-lsp-model (getenv "E2E_MODEL")
        coder-lsp-settings (append '(:logLevel "debug")
                                   (json-parse-string (or (getenv "E2E_SETTINGS") "{}")
                                                      :object-type 'plist))
        coder-lsp-idle-delay 0.05
        coder-lsp-max-restarts (string-to-number (or (getenv "E2E_MAX_RESTARTS") "3"))
        eglot-sync-connect e2e-timeout
        eglot-connect-timeout e2e-timeout
        make-backup-files nil
        create-lockfiles nil)
  (coder-lsp-setup)
  (add-hook 'eglot-managed-mode-hook
            (lambda () (push (format "eglot-managed %s" (and coder-lsp-mode t)) e2e-messages)))
  (let ((t0 (float-time)))
    (condition-case err
        (progn
          (funcall (intern (concat "e2e-" (getenv "E2E_SCENARIO"))))
          (e2e-put 'final_status (e2e-state))
          (e2e-put 'stats coder-lsp-stats)
          (e2e-put 'scenario_ms (* 1000 (- (float-time) t0)))
          (e2e-put 'ok t))
      (error (e2e-put 'error (error-message-string err)))))
  (e2e-write)
  (let ((kill-emacs-hook nil))
    (kill-emacs (if (alist-get 'ok e2e-result) 0 1))))

(e2e-main)

;;; e2e.el ends here
