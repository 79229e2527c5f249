;;; coder-lsp.el --- Local AI code completion from coder-lsp, through eglot  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9") (jsonrpc "1.0.14"))
;; Keywords: tools, languages, convenience
;; URL: https://github.com/coder-lsp/coder-lsp

;;; Commentary:

;; Registers the coder-lsp language server with eglot for the supported major modes, and
;; adds `coder-lsp-mode': after `coder-lsp-idle-delay' seconds without a command it asks
;; the server for `textDocument/inlineCompletion' over eglot's connection and shows the
;; answer as ghost text (an overlay).  TAB accepts it; any other command dismisses it.
;; Completion-at-point keeps working through eglot's `textDocument/completion'.
;;
;;   (require 'coder-lsp)
;;   (setq coder-lsp-model "qwen2.5-coder-0.5b")
;;   (coder-lsp-setup)            ; eglot + ghost text in `coder-lsp-major-modes'
;;
;; The server's `coder-lsp/status' notifications show in the mode line.  A crashed server
;; is restarted at most `coder-lsp-max-restarts' times per session.  When the server says
;; (`coder-lsp/completionReady') that a completion its time limit had cut short is ready,
;; and point is still where it was asked, the package asks again and shows it.

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'jsonrpc)

(defgroup coder-lsp nil
  "Local AI code completion from the coder-lsp language server."
  :group 'tools
  :prefix "coder-lsp-")

(defcustom coder-lsp-command '("coder-lsp" "--stdio")
  "Command that starts the server over stdio."
  :type '(repeat string))

(defcustom coder-lsp-model nil
  "Registry name or path of the GGUF model; nil means the server's default."
  :type '(choice (const nil) string))

(defcustom coder-lsp-settings nil
  "Extra server settings as a plist with camelCase keys, e.g. (:nCtx 4096)."
  :type 'plist)

(defcustom coder-lsp-major-modes
  '(python-mode python-ts-mode js-mode js-ts-mode typescript-mode typescript-ts-mode
    go-mode go-ts-mode rust-mode rust-ts-mode c-mode c-ts-mode c++-mode c++-ts-mode
    java-mode java-ts-mode ruby-mode ruby-ts-mode sh-mode bash-ts-mode lua-mode)
  "Major modes in which eglot starts coder-lsp."
  :type '(repeat symbol))

(defcustom coder-lsp-idle-delay 0.3
  "Seconds without a command before asking for a completion."
  :type 'number)

(defcustom coder-lsp-request-timeout 30
  "Seconds to wait for a completion (the model may still be loading)."
  :type 'number)

(defcustom coder-lsp-max-restarts 3
  "How often a server that died is restarted in one Emacs session."
  :type 'integer)

(defface coder-lsp-ghost-face '((t :inherit shadow))
  "Face of the ghost text.")

;;;; Server class, contact and status

(defclass coder-lsp-server (eglot-lsp-server) ()
  :documentation "Eglot server class for coder-lsp.")

(defvar coder-lsp-status nil
  "The last `coder-lsp/status' notification as a plist (:state :model :detail).")

(defvar coder-lsp--restarts 0
  "Restarts done in this session after the server died.")

(defvar coder-lsp--warned nil
  "Messages already shown once.")

(defvar coder-lsp-debug nil
  "Non-nil to log request errors and discarded replies to *Messages*.")

(defun coder-lsp--message-once (format-string &rest args)
  "Show FORMAT-STRING with ARGS once per session (no spam per buffer or key)."
  (let ((msg (apply #'format-message format-string args)))
    (unless (member msg coder-lsp--warned)
      (push msg coder-lsp--warned)
      (display-warning 'coder-lsp msg :warning))))

(defun coder-lsp--debug (format-string &rest args)
  "Log FORMAT-STRING with ARGS when `coder-lsp-debug' is set."
  (when coder-lsp-debug
    (apply #'message (concat "coder-lsp: " format-string) args)))

(defun coder-lsp--initialization-options ()
  "The initializationOptions plist: `coder-lsp-settings' plus the model."
  (let ((opts (copy-sequence coder-lsp-settings)))
    (when coder-lsp-model
      (setq opts (plist-put opts :model coder-lsp-model)))
    (or opts '(:enable t))))

(cl-defmethod eglot-initialization-options ((_server coder-lsp-server))
  "Send `coder-lsp-model' and `coder-lsp-settings' on initialize."
  (coder-lsp--initialization-options))

(defun coder-lsp--set-status (state &optional model detail)
  "Record STATE (with MODEL and DETAIL) and refresh mode lines."
  (setq coder-lsp-status (list :state state :model (or model (plist-get coder-lsp-status :model))
                               :detail (or detail "")))
  (force-mode-line-update t))

(cl-defmethod eglot-handle-notification
  ((_server coder-lsp-server) (_method (eql coder-lsp/status)) &key state model detail
   &allow-other-keys)
  "Handle the server's `coder-lsp/status' notification: STATE, MODEL, DETAIL."
  (coder-lsp--set-status state model detail))

(defun coder-lsp-status-string ()
  "A short text for the mode line, e.g. \"coder:ready\"."
  (if coder-lsp-status (format " coder:%s" (plist-get coder-lsp-status :state)) " coder"))

(defun coder-lsp--contact (&optional _interactive)
  "The eglot contact for coder-lsp.
A function, so that `coder-lsp-command' is read when eglot starts."
  (cons 'coder-lsp-server coder-lsp-command))

(defun coder-lsp-server-available-p ()
  "Non-nil when the server command exists; tells the user once when it does not."
  (let ((exe (car coder-lsp-command)))
    (or (and exe (executable-find exe))
        (progn
          (coder-lsp--set-status "missing" nil (format "%s not found" exe))
          (coder-lsp--message-once
           "server command `%s' not found; install coder-lsp or set `coder-lsp-command'" exe)
          nil))))

(defun coder-lsp-ensure ()
  "Start coder-lsp with eglot for this buffer, if its server can be found."
  (when (and buffer-file-name (coder-lsp-server-available-p))
    (eglot-ensure)))

;;;; A completion the time limit cut short, finished in the background

(cl-defmethod eglot-handle-notification
  ((server coder-lsp-server) (_method (eql coder-lsp/completionReady)) &key textDocument
   position &allow-other-keys)
  "Handle `coder-lsp/completionReady' from SERVER for TEXTDOCUMENT at POSITION.
The server answered empty because a time limit cut the generation short (a busy
machine), then finished it in the background into its cache.  When the selected
window still shows that document version with point at POSITION, ask again: an
automatic request, which the server answers from its cache at once."
  (let ((buf (window-buffer (selected-window))))
    (with-current-buffer buf
      (when (coder-lsp--ready-here-p server textDocument position)
        (coder-lsp--debug "a completion cut short is ready; asking again")
        (coder-lsp-request)))))

(defun coder-lsp--ready-here-p (server doc position)
  "Non-nil when this buffer is DOC of SERVER with point at POSITION.
DOC is a plist (:uri :version).  Nil while ghost text is already shown or
`coder-lsp-mode' is off."
  (and (bound-and-true-p coder-lsp-mode)
       (not (coder-lsp-visible-p))
       (eq (coder-lsp--server) server)
       (let ((here (eglot--VersionedTextDocumentIdentifier)))
         (and (equal (plist-get here :uri) (plist-get doc :uri))
              (equal (plist-get here :version) (plist-get doc :version))))
       (equal (eglot--pos-to-lsp-position) position)))

;;;; Crashes: restart a few times, then stop

(defun coder-lsp--on-connect (server)
  "Take over restarts of SERVER (eglot's own autoreconnect would retry forever)."
  (when (cl-typep server 'coder-lsp-server)
    (when (fboundp 'eglot--inhibit-autoreconnect)
      (let ((old (eglot--inhibit-autoreconnect server)))
        (when (timerp old) (cancel-timer old)))
      (setf (eglot--inhibit-autoreconnect server) t))
    (let ((proc (jsonrpc--process server)))
      (add-function :after (process-sentinel proc)
                    (lambda (p _event) (coder-lsp--sentinel server p))))))

(defun coder-lsp--sentinel (server proc)
  "React to PROC of SERVER ending: restart it when it died unexpectedly."
  (unless (process-live-p proc)
    (let ((status (process-status proc))
          (code (process-exit-status proc)))
      (if (and (eq status 'exit) (zerop code))
          (coder-lsp--set-status "stopped")
        (let ((why (if (eq status 'signal) (format "signal %d" code) (format "exit code %d" code))))
          (coder-lsp--set-status "crashed" nil why)
          (if (>= coder-lsp--restarts coder-lsp-max-restarts)
              (message "coder-lsp: server died (%s); not restarting after %d restarts"
                       why coder-lsp--restarts)
            (cl-incf coder-lsp--restarts)
            (message "coder-lsp: server died (%s); restarting (%d/%d)"
                     why coder-lsp--restarts coder-lsp-max-restarts)
            ;; Out of the sentinel: eglot is still tearing the old connection down.
            (run-at-time 0 nil #'coder-lsp--restart server)))))))

(defun coder-lsp--restart (server)
  "Start SERVER again (same project, modes and contact)."
  (condition-case err
      (eglot-reconnect server)
    (error (message "coder-lsp: restart failed: %s" (error-message-string err)))))

;;;; Ghost text

(defvar-local coder-lsp--overlay nil "The ghost text overlay, when one is shown.")
(defvar-local coder-lsp--edit nil "The shown edit: plist (:start :end :text).")
(defvar-local coder-lsp--timer nil "The pending idle timer.")
(defvar-local coder-lsp--seq 0 "Bumped per request; older replies are stale.")

(defvar coder-lsp-stats (list :requests 0 :shown 0 :discarded 0 :errors 0)
  "Counters: requests sent, replies shown, replies dropped as stale, errors.")

(defun coder-lsp--count (key)
  "Increment counter KEY of `coder-lsp-stats'."
  (setq coder-lsp-stats (plist-put coder-lsp-stats key (1+ (plist-get coder-lsp-stats key)))))

(defun coder-lsp-visible-p ()
  "Non-nil when ghost text is shown in this buffer."
  (and coder-lsp--overlay (overlay-buffer coder-lsp--overlay) t))

(defun coder-lsp-shown-text ()
  "The ghost text shown in this buffer (without its display tweaks), or nil."
  (and (coder-lsp-visible-p) (overlay-get coder-lsp--overlay 'coder-lsp-text)))

(defun coder-lsp-dismiss ()
  "Remove the ghost text."
  (interactive)
  (when coder-lsp--overlay
    (delete-overlay coder-lsp--overlay))
  (setq coder-lsp--overlay nil
        coder-lsp--edit nil))

(defun coder-lsp--item-edit (item)
  "Turn the InlineCompletionItem plist ITEM into an edit plist, or nil.
The plist holds :start :end :text :display :tick."
  (let* ((text (plist-get item :insertText))
         (text (if (stringp text) text (plist-get text :value)))
         (range (plist-get item :range))
         (pt (point))
         (start (if range (eglot--lsp-position-to-point (plist-get range :start)) pt))
         (end (if range (eglot--lsp-position-to-point (plist-get range :end)) pt)))
    (when (and (stringp text) (not (string-empty-p text)) (<= start pt) (<= pt end)
               (= (line-number-at-pos start) (line-number-at-pos end)))
      (let ((typed (buffer-substring-no-properties start pt))
            (replaced (buffer-substring-no-properties pt end)))
        (when (string-prefix-p typed text)
          (let* ((display (substring text (length typed)))
                 (nl (string-search "\n" display))
                 (first (if nl (substring display 0 nl) display)))
            ;; Text after point that the edit replaces stays visible: do not show it twice.
            (when (and (not nl) (not (string-empty-p replaced)) (string-suffix-p replaced first))
              (setq display (substring first 0 (- (length first) (length replaced)))))
            (list :start start :end end :text text :display display
                  :tick (buffer-chars-modified-tick))))))))

(defun coder-lsp--show (edit)
  "Draw EDIT as ghost text at point."
  (coder-lsp-dismiss)
  (let* ((display (plist-get edit :display))
         (ghost (propertize display 'face 'coder-lsp-ghost-face))
         (ov (make-overlay (point) (point) nil t nil)))
    (unless (string-empty-p ghost)
      ;; Keep the cursor before the ghost text, not after it.
      (put-text-property 0 1 'cursor t ghost))
    (overlay-put ov 'after-string ghost)
    (overlay-put ov 'coder-lsp-text display)
    (overlay-put ov 'priority 1000)
    (setq coder-lsp--overlay ov
          coder-lsp--edit edit)
    (coder-lsp--count :shown)))

(defun coder-lsp--server ()
  "This buffer's coder-lsp server, or nil."
  (let ((server (and (bound-and-true-p eglot--managed-mode) (eglot-current-server))))
    (and server (cl-typep server 'coder-lsp-server) (jsonrpc-running-p server) server)))

(defun coder-lsp-complete ()
  "Ask for a completion at point now, explicitly.
No idle delay, and the server asks the model again instead of answering from its cache."
  (interactive)
  (when coder-lsp--timer (cancel-timer coder-lsp--timer) (setq coder-lsp--timer nil))
  (coder-lsp-dismiss)
  (if (coder-lsp--server)
      (coder-lsp-request t)
    (message "coder-lsp: %s" (or (plist-get coder-lsp-status :state) "not running"))))

(defun coder-lsp-request (&optional invoked)
  "Ask for a completion at point now.
INVOKED non-nil means the user asked explicitly."
  (interactive (list t))
  (let ((server (coder-lsp--server))
        (buf (current-buffer)))
    (when server
      ;; Eglot sends edits lazily: flush them so the server sees what we see.
      (eglot--signal-textDocument/didChange)
      (let ((seq (cl-incf coder-lsp--seq))
            (tick (buffer-chars-modified-tick))
            (pt (point)))
        (coder-lsp--count :requests)
        (jsonrpc-async-request
         server :textDocument/inlineCompletion
         (list :textDocument (eglot--TextDocumentIdentifier)
               :position (eglot--pos-to-lsp-position)
               :context (list :triggerKind (if invoked 1 2)))
         :success-fn
         (lambda (result)
           (when (buffer-live-p buf)
             (with-current-buffer buf
               (let* ((items (if (vectorp result) result (plist-get result :items)))
                      (item (and items (> (length items) 0) (aref items 0))))
                 (cond
                  ((not item) nil)
                  ((or (/= seq coder-lsp--seq) (/= tick (buffer-chars-modified-tick))
                       (/= pt (point)) (not (eq buf (window-buffer (selected-window)))))
                   ;; The user moved on while the model was thinking.
                   (coder-lsp--count :discarded)
                   (coder-lsp--debug "discarded a stale completion"))
                  (t (let ((edit (coder-lsp--item-edit item)))
                       (when (and edit (not (string-empty-p (plist-get edit :display))))
                         (coder-lsp--show edit)))))))))
         :error-fn
         (lambda (err)
           ;; Loading, cancelled, or a server bug: never a message per keystroke.
           (coder-lsp--count :errors)
           (coder-lsp--debug "inlineCompletion failed: %S" err))
         :timeout-fn
         (lambda ()
           (coder-lsp--count :errors)
           (coder-lsp--debug "inlineCompletion timed out"))
         :timeout coder-lsp-request-timeout)))))

(defun coder-lsp-accept ()
  "Insert the ghost text."
  (interactive)
  (let ((edit coder-lsp--edit))
    (coder-lsp-dismiss)
    (when edit
      (goto-char (plist-get edit :start))
      (delete-region (plist-get edit :start) (plist-get edit :end))
      (insert (plist-get edit :text)))))

(defun coder-lsp-next-word (text)
  "The start of TEXT that accepting the next word inserts.
The blanks before a word plus its run of word characters (letters, digits, `_'), or
of other non-blank characters; a suggestion that starts a new line gives that line
break with the new line's indentation."
  (cond ((string-match "\\`\n[ \t]*" text) (match-string 0 text))
        ((string-match "\\`[ \t]*\\(?:[[:alnum:]_]+\\|[^[:alnum:]_[:space:]]+\\)" text)
         (match-string 0 text))
        (t text)))

(defun coder-lsp-next-line (text)
  "The start of TEXT that accepting the next line inserts.
The text up to the next line break; a suggestion that starts with a line break gives
the break and the line after it."
  (string-match "\\`\n?[^\n]*" text)
  (match-string 0 text))

(defun coder-lsp--accept-part (pick)
  "Insert the start of the ghost text that PICK chooses (all of it: a full accept).
Typing on asks the server again, whose cache answers the rest at once."
  (let* ((edit coder-lsp--edit)
         (display (and edit (plist-get edit :display)))
         (part (and display (funcall pick display))))
    (if (or (null part) (string-empty-p part) (equal part display))
        (coder-lsp-accept)
      (coder-lsp-dismiss)
      (insert part))))

(defun coder-lsp-accept-word ()
  "Insert the next word of the ghost text."
  (interactive)
  (coder-lsp--accept-part #'coder-lsp-next-word))

(defun coder-lsp-accept-line ()
  "Insert the next line of the ghost text."
  (interactive)
  (coder-lsp--accept-part #'coder-lsp-next-line))

(defun coder-lsp--accept-filter (cmd)
  "Return CMD when ghost text is shown, else nil (the key keeps its usual meaning)."
  (and (coder-lsp-visible-p) cmd))

(defvar coder-lsp-mode-map
  (let ((map (make-sparse-keymap)))
    (dolist (binding '(("TAB" . coder-lsp-accept) ("<tab>" . coder-lsp-accept)
                       ("M-<right>" . coder-lsp-accept-word)
                       ("C-M-<right>" . coder-lsp-accept-line)))
      (define-key map (kbd (car binding))
                  `(menu-item "" ,(cdr binding) :filter coder-lsp--accept-filter)))
    (define-key map (kbd "C-c \\") #'coder-lsp-complete)
    map)
  "Keys of `coder-lsp-mode'.
While ghost text is shown TAB accepts it, M-<right> its next word and C-M-<right> its
next line; otherwise they keep their usual meaning.  C-c \\ asks for a completion now.")

(defun coder-lsp--schedule ()
  "Ask again after `coder-lsp-idle-delay' seconds without a command."
  (when coder-lsp--timer (cancel-timer coder-lsp--timer))
  (let ((buf (current-buffer)))
    ;; A plain timer re-armed by every command is an idle delay that also fires in batch.
    (setq coder-lsp--timer
          (run-at-time coder-lsp-idle-delay nil
                       (lambda ()
                         (when (buffer-live-p buf)
                           (with-current-buffer buf
                             (setq coder-lsp--timer nil)
                             (when (eq buf (window-buffer (selected-window)))
                               (coder-lsp-request)))))))))

(defun coder-lsp--post-command ()
  "Dismiss ghost text after any command that moved point or edited; then ask again."
  ;; Judged by effect, not by `this-command': Emacs also runs this hook on entering a
  ;; command loop (e.g. a keyboard macro), with the previous command still in `this-command'.
  (when (and (coder-lsp-visible-p)
             (not (eq this-command 'coder-lsp-accept))
             (or (eq this-command 'keyboard-quit)
                 (/= (point) (overlay-start coder-lsp--overlay))
                 (/= (buffer-chars-modified-tick) (plist-get coder-lsp--edit :tick))))
    (coder-lsp-dismiss))
  ;; After any command, not only edits: moving to an empty line is when a suggestion helps
  ;; most.  The server cancels a superseded generation at its next token.
  (when (and (not (minibufferp)) (not (coder-lsp-visible-p)) (coder-lsp--server)
             (not (eq this-command 'coder-lsp-complete)))
    (coder-lsp--schedule)))

;;;###autoload
(define-minor-mode coder-lsp-mode
  "Show coder-lsp inline completions as ghost text; TAB accepts."
  :lighter (:eval (coder-lsp-status-string))
  :keymap coder-lsp-mode-map
  (if coder-lsp-mode
      (add-hook 'post-command-hook #'coder-lsp--post-command nil t)
    (remove-hook 'post-command-hook #'coder-lsp--post-command t)
    (when coder-lsp--timer (cancel-timer coder-lsp--timer))
    (coder-lsp-dismiss)))

(defun coder-lsp--maybe-enable ()
  "Turn `coder-lsp-mode' on in buffers eglot manages with coder-lsp."
  (let ((server (and (bound-and-true-p eglot--managed-mode) (eglot-current-server))))
    (if (and server (cl-typep server 'coder-lsp-server))
        (coder-lsp-mode 1)
      (when coder-lsp-mode (coder-lsp-mode -1)))))

;;;###autoload
(defun coder-lsp-setup (&optional no-autostart)
  "Register coder-lsp with eglot for `coder-lsp-major-modes' and enable ghost text.
Unless NO-AUTOSTART, also start eglot in those modes (via `coder-lsp-ensure')."
  (setq coder-lsp--restarts 0)
  (setq eglot-server-programs
        (cons (cons coder-lsp-major-modes #'coder-lsp--contact)
              (cl-remove #'coder-lsp--contact eglot-server-programs :key #'cdr)))
  (add-hook 'eglot-managed-mode-hook #'coder-lsp--maybe-enable)
  (add-hook 'eglot-connect-hook #'coder-lsp--on-connect)
  (unless no-autostart
    (dolist (mode coder-lsp-major-modes)
      (add-hook (intern (format "%s-hook" mode)) #'coder-lsp-ensure))))

(defun coder-lsp-server-status ()
  "Ask the server for its state with the `coder-lsp.status' command and show it."
  (interactive)
  (let ((server (coder-lsp--server)))
    (if (not server)
        (message "coder-lsp: %s" (or (plist-get coder-lsp-status :state) "not running"))
      (let ((st (jsonrpc-request server :workspace/executeCommand
                                 '(:command "coder-lsp.status" :arguments []))))
        (message "coder-lsp %s: %s (%s)%s" (plist-get st :version) (plist-get st :state)
                 (plist-get st :model)
                 (if (plist-get st :error) (format " — %s" (plist-get st :error)) ""))))))

(provide 'coder-lsp)
;;; coder-lsp.el ends here
