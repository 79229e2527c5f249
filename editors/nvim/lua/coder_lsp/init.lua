--- coder-lsp for Neovim: registers the coder-lsp language server and shows its inline
--- completions as ghost text.
---
--- Neovim 0.12+ draws ghost text with the native `vim.lsp.inline_completion`; 0.10/0.11 use
--- this plugin's own extmark renderer (`coder_lsp.ghost`). Either way `<Tab>` (configurable)
--- accepts and falls back to its normal meaning when nothing is shown.
---
--- Usage: `require('coder_lsp').setup({ model = 'qwen2.5-coder-0.5b' })`.
local M = {}

local NAME = 'coder_lsp'
local STATUS_METHOD = 'coder-lsp/status'
--- The server finished in the background a completion a time limit had left empty.
local READY_METHOD = 'coder-lsp/completionReady'

--- @class coder_lsp.Config
--- @field cmd string[] Command that starts the server over stdio.
--- @field model string? Registry name or path of a GGUF model (initializationOptions.model).
--- @field settings table Extra server settings (camelCase, as in the server's README).
--- @field filetypes string[] Filetypes the server attaches to.
--- @field root_markers string[] Files that mark a project root (else the file's folder).
--- @field debounce_ms integer Delay after typing before asking (own renderer only).
--- @field accept_key string|false Insert-mode key that accepts; false = no mapping.
--- @field accept_word_key string|false Insert-mode key that accepts the next word.
--- @field accept_line_key string|false Insert-mode key that accepts the next line.
--- @field suggest_key string|false Insert-mode key that asks for a completion now.
--- @field enabled boolean Start the server and show completions.
--- @field native boolean? Use vim.lsp.inline_completion (nil = when Neovim has it).
--- @field max_restarts integer How often a crashed server is restarted per session.
--- @field notify fun(msg: string, level: integer)? Message sink (default vim.notify).
M.defaults = {
  cmd = { 'coder-lsp', '--stdio' },
  model = nil,
  settings = {},
  filetypes = {
    'python', 'lua', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
    'go', 'rust', 'c', 'cpp', 'java', 'ruby', 'php', 'sh', 'bash', 'cs', 'kotlin', 'scala',
  },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml' },
  debounce_ms = 150,
  accept_key = '<Tab>',
  accept_word_key = '<M-Right>',
  accept_line_key = '<M-C-Right>',
  suggest_key = '<M-\\>',
  enabled = true,
  native = nil,
  max_restarts = 3,
  notify = nil,
}

--- @type coder_lsp.Config
M.config = vim.deepcopy(M.defaults)

--- Latest `coder-lsp/status` from the server, for statuslines.
--- state: 'off' | 'starting' | 'loading' | 'ready' | 'failed' | 'unloaded' | 'stopped' |
--- 'crashed' | 'missing'.
M.status = { state = 'off', model = nil, detail = '' }

local restarts = 0
local exiting = false
local warned = {} --- messages already shown once
local attached = {} --- bufnr -> true for buffers the server was attached to

--- Show a message once per distinct text (no spam on every buffer or keystroke).
--- @param msg string
--- @param level integer
function M.notify_once(msg, level)
  if warned[msg] then
    return
  end
  warned[msg] = true
  local sink = M.config.notify or vim.notify
  sink('coder-lsp: ' .. msg, level)
end

--- Whether this Neovim has the native inline completion (0.12+).
--- @return boolean
function M.has_native()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

--- Whether the native renderer is used with the current configuration.
--- @return boolean
function M.uses_native()
  if M.config.native == nil then
    return M.has_native()
  end
  return M.config.native and M.has_native()
end

local function set_status(state, model, detail)
  M.status = { state = state, model = model or M.status.model, detail = detail or '' }
  -- Statuslines redraw on this event; pcall because a user handler may fail.
  pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = 'CoderLspStatus', modeline = false })
end

--- A short text for a statusline, e.g. "coder-lsp: ready".
--- @return string
function M.statusline()
  if M.status.state == 'off' then
    return ''
  end
  return 'coder-lsp: ' .. M.status.state
end

--- The running client, if any.
--- @param bufnr integer?
--- @return vim.lsp.Client?
function M.get_client(bufnr)
  local clients = vim.lsp.get_clients({ name = NAME, bufnr = bufnr })
  return clients[1]
end

--- initializationOptions: the settings table plus the model.
--- @return table
function M.init_options()
  local opts = vim.deepcopy(M.config.settings or {})
  if M.config.model then
    opts.model = M.config.model
  end
  return opts
end

--- The root folder for a buffer: the nearest marker, else the file's own folder.
--- @param bufnr integer
--- @return string
local function root_for(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local root = vim.fs.root and vim.fs.root(bufnr, M.config.root_markers) or nil
  if root then
    return root
  end
  if name == '' then
    return vim.fn.getcwd()
  end
  return vim.fs.dirname(name)
end

--- Whether the server binary can be started; tells the user once when not.
--- @return boolean
function M.server_available()
  local exe = M.config.cmd[1]
  if exe and vim.fn.executable(exe) == 1 then
    return true
  end
  set_status('missing', nil, 'server not found: ' .. tostring(exe))
  M.notify_once(
    ("server command '%s' not found; install coder-lsp or set cmd in setup()"):format(tostring(exe)),
    vim.log.levels.WARN
  )
  return false
end

local function on_status(_, params)
  if type(params) == 'table' then
    set_status(params.state or 'unknown', params.model, params.detail)
  end
  return vim.NIL
end

--- Send an inline completion request for the cursor in `bufnr` now, through whichever
--- renderer is in use. `kind`: 1 = invoked (the server skips its cache), 2 = automatic.
--- @param bufnr integer
--- @param kind integer
--- @return boolean asked
local function request_now(bufnr, kind)
  if M.uses_native() then
    -- vim.lsp.inline_completion (0.12) has no public "ask now"; its per-buffer completor
    -- does, behind a private module. Guarded, so a later Neovim that moves it gets a
    -- message instead of an error.
    local ok, capability = pcall(require, 'vim.lsp._capability')
    local class = ok and type(capability.all) == 'table' and capability.all.inline_completion or nil
    local completor = class and class.active and class.active[bufnr]
    if completor and type(completor.request) == 'function' then
      completor:request(kind)
      return true
    end
    M.notify_once('this Neovim cannot ask for an inline completion explicitly', vim.log.levels.WARN)
    return false
  end
  require('coder_lsp.ghost').request(bufnr, kind)
  return true
end

--- Whether a `coder-lsp/completionReady` notification is for where the user still is: the
--- current buffer at that version, in Insert mode, the cursor at that position.
--- @param params table {textDocument = {uri, version}, position = {line, character}}
--- @param encoding string the client's offset encoding
--- @return integer? bufnr
function M.ready_here(params, encoding)
  local doc, pos = params.textDocument, params.position
  if type(doc) ~= 'table' or type(pos) ~= 'table' then
    return nil
  end
  local bufnr = vim.api.nvim_get_current_buf()
  if vim.uri_from_bufnr(bufnr) ~= doc.uri or vim.lsp.util.buf_versions[bufnr] ~= doc.version then
    return nil
  end
  if vim.api.nvim_get_mode().mode:sub(1, 1) ~= 'i' then
    return nil
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row = cursor[1] - 1
  local text = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local character = require('coder_lsp.ghost').char_index(text, cursor[2], encoding)
  if pos.line ~= row or pos.character ~= character then
    return nil
  end
  return bufnr
end

--- `coder-lsp/completionReady`: a completion the server's time limit had cut short (the
--- answer was empty) is now in its cache. Ask again — automatically, so the server answers
--- from its cache at once — when the user is still at that version and cursor.
local function on_ready(_, params, ctx)
  if type(params) == 'table' and M.config.enabled then
    vim.schedule(function()
      local client = vim.lsp.get_client_by_id(ctx.client_id)
      local bufnr = M.ready_here(params, client and client.offset_encoding or 'utf-16')
      if bufnr then
        request_now(bufnr, 2)
      end
    end)
  end
  return vim.NIL
end

local function on_attach(client, bufnr)
  attached[bufnr] = true
  if M.uses_native() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  else
    require('coder_lsp.ghost').attach(client, bufnr)
  end
end

local start_buffer -- forward declaration (restart needs it)

local function on_exit(code, signal, client_id)
  -- Handlers of on_exit run in a fast event: defer everything that touches the editor.
  vim.schedule(function()
    require('coder_lsp.ghost').detach_client(client_id)
    if exiting or (code == 0 and signal == 0) then
      set_status('stopped', nil, '')
      return
    end
    local why = signal ~= 0 and ('signal ' .. signal) or ('exit code ' .. code)
    if restarts >= M.config.max_restarts then
      set_status('crashed', nil, why)
      vim.notify(
        ('coder-lsp: server stopped (%s); not restarting after %d restarts'):format(why, restarts),
        vim.log.levels.ERROR
      )
      return
    end
    restarts = restarts + 1
    set_status('crashed', nil, why)
    vim.notify(
      ('coder-lsp: server stopped (%s); restarting (%d/%d)'):format(why, restarts, M.config.max_restarts),
      vim.log.levels.WARN
    )
    for bufnr in pairs(attached) do
      if vim.api.nvim_buf_is_valid(bufnr) and vim.api.nvim_buf_is_loaded(bufnr) then
        start_buffer(bufnr)
      else
        attached[bufnr] = nil
      end
    end
  end)
end

--- The full client configuration (shared by vim.lsp.config and vim.lsp.start).
--- @return table
function M.client_config()
  return {
    name = NAME,
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    init_options = M.init_options(),
    settings = { coderLsp = M.init_options() },
    handlers = { [STATUS_METHOD] = on_status, [READY_METHOD] = on_ready },
    on_attach = on_attach,
    on_exit = on_exit,
  }
end

--- Start (or reuse) the client for one buffer, without vim.lsp.enable (0.10, restarts).
--- @param bufnr integer
--- @return integer? client id
start_buffer = function(bufnr)
  if not M.config.enabled or not M.server_available() then
    return nil
  end
  local cfg = M.client_config()
  cfg.root_dir = root_for(bufnr)
  if M.status.state == 'off' or M.status.state == 'stopped' or M.status.state == 'crashed' then
    set_status('starting', M.config.model, '')
  end
  return vim.lsp.start(cfg, { bufnr = bufnr })
end
M.start_buffer = start_buffer

local function register_native_config()
  local cfg = M.client_config()
  cfg.name = nil
  -- A function root_dir decides per buffer; not calling on_dir means "do not start", which
  -- is how a missing binary stays a single warning instead of an error per buffer.
  cfg.root_dir = function(bufnr, on_dir)
    if M.config.enabled and M.server_available() then
      if M.status.state == 'off' or M.status.state == 'stopped' then
        set_status('starting', M.config.model, '')
      end
      on_dir(root_for(bufnr))
    end
  end
  vim.lsp.config(NAME, cfg)
  vim.lsp.enable(NAME, M.config.enabled)
end

--- Map insert-mode `key` to `action`, which returns true when it did something; otherwise
--- the key keeps what it did before (its old mapping, or the key itself).
--- @param key string|false
--- @param action fun(): boolean
--- @param desc string
local function map_with_fallback(key, action, desc)
  if not key or key == '' then
    return
  end
  -- Remember what the key did before, to fall back to it when no ghost text is shown.
  local previous = vim.fn.maparg(key, 'i', false, true)
  local function fallback()
    if type(previous) == 'table' and previous.callback then
      if previous.expr == 1 then
        local ret = previous.callback()
        if type(ret) ~= 'string' then
          return ''
        end
        -- e.g. Neovim's own default <Tab> (snippet jump) returns '<Tab>' with replace_keycodes.
        if previous.replace_keycodes == 1 then
          ret = vim.api.nvim_replace_termcodes(ret, true, false, true)
        end
        return ret
      end
      -- A plain callback may edit the buffer, which an <expr> mapping may not: run it next.
      vim.schedule(previous.callback)
      return ''
    elseif type(previous) == 'table' and previous.rhs and previous.rhs ~= '' then
      return vim.api.nvim_replace_termcodes(previous.rhs, true, false, true)
    end
    return vim.api.nvim_replace_termcodes(key, true, false, true)
  end
  vim.keymap.set('i', key, function()
    if action() then
      return ''
    end
    return fallback()
  end, { expr = true, replace_keycodes = false, desc = desc })
end

local function setup_keymap()
  local partial = require('coder_lsp.partial')
  map_with_fallback(M.config.accept_key, function()
    return M.accept()
  end, 'coder-lsp: accept the inline completion')
  map_with_fallback(M.config.accept_word_key, function()
    return M.accept(nil, partial.next_word)
  end, 'coder-lsp: accept the next word of the inline completion')
  map_with_fallback(M.config.accept_line_key, function()
    return M.accept(nil, partial.next_line)
  end, 'coder-lsp: accept the next line of the inline completion')
  map_with_fallback(M.config.suggest_key, function()
    -- Scheduled: an <expr> mapping may not send requests that change the screen.
    vim.schedule(function()
      M.suggest()
    end)
    return true
  end, 'coder-lsp: ask for an inline completion now')
end

--- An item of the native inline completion cut to the part `pick` chooses, or the item
--- itself when that is all of it.
--- @param item table vim.lsp.inline_completion.Item
--- @param pick fun(text: string): string
--- @return table
local function native_part(item, pick)
  local text = item.insert_text
  if type(text) ~= 'string' then
    return item -- a snippet: all of it
  end
  if item.range then
    -- Only a range that starts at the cursor (the server's: it may replace text after the
    -- cursor, never before) can be cut: the part goes in at the cursor.
    local srow, scol = item.range:to_extmark()
    local cursor = vim.api.nvim_win_get_cursor(0)
    if srow ~= cursor[1] - 1 or scol ~= cursor[2] then
      return item
    end
  end
  local part = pick(text)
  if part == '' or part == text then
    return item
  end
  local cut = vim.deepcopy(item)
  cut.insert_text = part
  cut.range = nil
  cut.command = nil -- the command belongs to the whole completion
  return cut
end

--- Accept the shown completion, or the start of it that `pick` chooses (e.g.
--- `require('coder_lsp.partial').next_word`); returns false when none is shown (so keys can
--- fall back). After a partial accept the server's cache shows the rest at once.
--- @param bufnr integer?
--- @param pick (fun(text: string): string)?
--- @return boolean
function M.accept(bufnr, pick)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if M.uses_native() then
    if not pick then
      return vim.lsp.inline_completion.get({ bufnr = bufnr })
    end
    return vim.lsp.inline_completion.get({
      bufnr = bufnr,
      on_accept = function(item)
        return native_part(item, pick)
      end,
    })
  end
  return require('coder_lsp.ghost').accept(bufnr, pick)
end

--- Accept the next word of the shown completion.
--- @param bufnr integer?
--- @return boolean
function M.accept_word(bufnr)
  return M.accept(bufnr, require('coder_lsp.partial').next_word)
end

--- Accept the next line of the shown completion.
--- @param bufnr integer?
--- @return boolean
function M.accept_line(bufnr)
  return M.accept(bufnr, require('coder_lsp.partial').next_line)
end

--- Dismiss the shown completion.
--- @param bufnr integer?
function M.dismiss(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not M.uses_native() then
    require('coder_lsp.ghost').clear(bufnr)
  end
end

--- Ask for a completion now, explicitly (trigger kind Invoked: no debounce, and the server
--- asks the model again instead of answering from its cache).
--- @param bufnr integer?
--- @return boolean asked
function M.suggest(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not M.config.enabled then
    return false
  end
  return request_now(bufnr, 1)
end

--- Turn completions on or off (the server keeps running).
--- @param on boolean
function M.set_enabled(on)
  M.config.enabled = on
  require('coder_lsp.ghost').enabled = on
  if M.uses_native() then
    vim.lsp.inline_completion.enable(on)
  end
  if not on then
    for bufnr in pairs(attached) do
      M.dismiss(bufnr)
    end
  end
end

--- Configure and start the plugin.
--- @param opts coder_lsp.Config?
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  restarts = 0
  warned = {}
  local ghost = require('coder_lsp.ghost')
  ghost.debounce_ms = M.config.debounce_ms
  ghost.enabled = M.config.enabled

  local group = vim.api.nvim_create_augroup('coder_lsp', { clear = true })
  vim.api.nvim_create_autocmd('VimLeavePre', {
    group = group,
    callback = function()
      exiting = true
    end,
  })

  -- Neovim 0.11's vim.lsp.enable silently skips a command that is not executable; this
  -- check turns that into one clear warning.
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.config.filetypes,
    callback = function()
      if M.config.enabled then
        M.server_available()
      end
    end,
  })
  if vim.lsp.config ~= nil and vim.lsp.enable ~= nil then
    register_native_config()
  else
    -- Neovim 0.10: start per buffer on FileType.
    vim.api.nvim_create_autocmd('FileType', {
      group = group,
      pattern = M.config.filetypes,
      callback = function(ev)
        start_buffer(ev.buf)
      end,
    })
  end
  setup_keymap()

  vim.api.nvim_create_user_command('CoderLspStatus', function()
    local client = M.get_client()
    if not client then
      vim.notify('coder-lsp: ' .. M.status.state .. ' ' .. (M.status.detail or ''))
      return
    end
    local function show(err, result)
      if err then
        vim.notify('coder-lsp: status failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.WARN)
      else
        vim.notify(('coder-lsp %s: %s (%s)%s'):format(
          result.version or '?', result.state, result.model or '?',
          result.error and (' — ' .. result.error) or ''
        ))
      end
    end
    local params = { command = 'coder-lsp.status', arguments = {} }
    if vim.fn.has('nvim-0.11') == 1 then
      client:request('workspace/executeCommand', params, show)
    else
      client.request('workspace/executeCommand', params, show)
    end
  end, { desc = 'Show the coder-lsp server and model state' })
  vim.api.nvim_create_user_command('CoderLspSuggest', function()
    M.suggest()
  end, { desc = 'Ask coder-lsp for an inline completion now' })
  vim.api.nvim_create_user_command('CoderLspAcceptWord', function()
    M.accept_word()
  end, { desc = 'Accept the next word of the coder-lsp inline completion' })
  vim.api.nvim_create_user_command('CoderLspAcceptLine', function()
    M.accept_line()
  end, { desc = 'Accept the next line of the coder-lsp inline completion' })
  vim.api.nvim_create_user_command('CoderLspToggle', function()
    M.set_enabled(not M.config.enabled)
  end, { desc = 'Turn coder-lsp completions on or off' })
end

return M
