--- End-to-end driver for the Neovim plugin, run by tests/editors/test_nvim.py:
---
---   nvim --headless --clean -c 'luafile editors/nvim/test/e2e.lua'
---
--- Inputs (environment): E2E_SCENARIO (basic | missing | crash | stale | huge), E2E_FILE (the
--- file to edit), E2E_RESULT (where to write the JSON observations), E2E_CMD (JSON list: the
--- server command), E2E_MODEL (model path or name), E2E_PLUGIN (editors/nvim), E2E_TIMEOUT_MS,
--- E2E_SETTINGS (optional JSON object: more server settings).
--- Every wait polls with a deadline; the script never relies on a fixed sleep. Keys are fed
--- through Neovim's typeahead ("as typed"), so mappings and autocommands run as for a user.
--- It writes what it saw and exits 0; the Python side asserts. An internal failure exits 1
--- with the error in the result file.
local uv = vim.uv or vim.loop
local env = vim.env
local result = { scenario = env.E2E_SCENARIO, steps = {}, messages = {}, statuses = {}, waits = {} }
local timeout = tonumber(env.E2E_TIMEOUT_MS or '60000')
local started = uv.now()
--- Every wait ends by this deadline, the whole scenario's budget: a slow step (a model
--- load on a busy machine) may use what the others left, and when time runs out the driver
--- names the step itself instead of being killed from outside with nothing said.
local deadline_all = started + timeout

vim.opt.rtp:prepend(env.E2E_PLUGIN)
vim.o.swapfile = false
vim.o.shadafile = 'NONE'
-- The server's own log lines (window/logMessage) go to lsp.log under XDG_STATE_HOME, which
-- the test shows when a scenario fails: why no ghost text came is in them.
vim.lsp.log.set_level('info')

local function write_result()
  local f = assert(io.open(env.E2E_RESULT, 'w'))
  f:write(vim.json.encode(result))
  f:close()
end

-- Record every message the user would see, with its level.
vim.notify = function(msg, level)
  table.insert(result.messages, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end
vim.api.nvim_create_autocmd('User', {
  pattern = 'CoderLspStatus',
  callback = function()
    table.insert(result.statuses, require('coder_lsp').status.state)
  end,
})

local function step(name, value)
  table.insert(result.steps, name)
  if value ~= nil then
    result[name] = value
  end
end

local co
local function sleep_tick(ms)
  vim.defer_fn(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      result.error = tostring(err)
      write_result()
      vim.cmd('cquit 1')
    end
  end, ms)
  coroutine.yield()
end

--- Poll `cond` every 20 ms until it returns a truthy value or `ms` pass (at most until the
--- scenario's deadline). Each wait's time is recorded, and the observations so far are
--- written after it, so even a driver killed from outside shows how far it got.
local function wait(what, cond, ms)
  local t0 = uv.now()
  local deadline = math.min(t0 + (ms or timeout), deadline_all)
  while true do
    local value = cond()
    if value then
      table.insert(result.waits, { what = what, ms = uv.now() - t0 })
      write_result()
      return value
    end
    if uv.now() > deadline then
      error(
        ('timed out waiting for %s after %d ms (%d ms into the scenario)'):format(
          what,
          uv.now() - t0,
          uv.now() - started
        ),
        0
      )
    end
    sleep_tick(20)
  end
end

local function feed(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mt', false)
end

local plugin
local function ghost_marks(buf)
  local ns
  if plugin.uses_native() then
    ns = vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  else
    ns = require('coder_lsp.ghost').ns
  end
  if not ns then
    return {}
  end
  return vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })
end

--- The ghost text an extmark shows: inline/overlay text, then virtual lines.
local function ghost_text(buf)
  local marks = ghost_marks(buf)
  if #marks == 0 then
    return nil
  end
  local d = marks[1][4]
  local parts = {}
  for _, chunk in ipairs(d.virt_text or {}) do
    table.insert(parts, chunk[1])
  end
  local text = table.concat(parts)
  for _, vl in ipairs(d.virt_lines or {}) do
    local line = {}
    for _, chunk in ipairs(vl) do
      table.insert(line, chunk[1])
    end
    text = text .. '\n' .. table.concat(line)
  end
  return text, d.virt_text_pos, marks[1][2], marks[1][3]
end

local function client_ready()
  local c = plugin.get_client()
  return c and plugin.status.state == 'ready' and c or nil
end

--- The text :checkhealth coder_lsp shows (its buffer is closed again afterwards).
local function health()
  local buf = vim.api.nvim_get_current_buf()
  vim.cmd('checkhealth coder_lsp')
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  if vim.api.nvim_get_current_buf() ~= buf then
    vim.cmd('bwipeout!')
  end
  vim.api.nvim_set_current_buf(buf)
  return table.concat(lines, '\n')
end

local function line(n)
  return vim.api.nvim_buf_get_lines(0, n - 1, n, false)[1]
end

--- Enter Insert mode at the end of line `n` and wait for ghost text there.
local function ghost_at_end_of(n)
  vim.api.nvim_win_set_cursor(0, { n, 0 })
  feed('A')
  wait('insert mode', function()
    return vim.api.nvim_get_mode().mode == 'i'
  end)
  local t0 = uv.hrtime()
  wait('ghost text', function()
    return ghost_text(0)
  end)
  local ms = (uv.hrtime() - t0) / 1e6
  local text, pos, row, col = ghost_text(0)
  return text, pos, row, col, ms
end

--- Accept the ghost text at the end of ``row`` with <Tab>; wait until the line holds more
--- than its indentation and return it.
local function accept_at(row)
  feed('<Tab>')
  wait('accepted text', function()
    return line(row) ~= '    ' and line(row)
  end)
  return line(row)
end

local function leave_insert()
  feed('<Esc>')
  wait('normal mode', function()
    return vim.api.nvim_get_mode().mode == 'n'
  end)
end

local scenarios = {}

--- Type, see the ghost text, accept with <Tab>, check the buffer; then check dismissal.
function scenarios.basic()
  vim.cmd.edit(env.E2E_FILE)
  local buf = vim.api.nvim_get_current_buf()
  -- Start asking before the model is ready: loading must not turn into error messages.
  wait('client attached', function()
    return plugin.get_client(buf)
  end)
  local text, pos, row, col, ms = ghost_at_end_of(2)
  step('ghost', text)
  step('ghost_pos', { pos = pos, row = row, col = col })
  step('ghost_ms', ms)
  step('statusline', plugin.statusline())
  step('accepted_line', accept_at(2))
  step('cursor_after_accept', vim.api.nvim_win_get_cursor(0))
  step('ghost_after_accept', ghost_text(0) or vim.NIL)
  leave_insert()
  -- An unrelated edit dismisses a shown suggestion.
  vim.api.nvim_buf_set_lines(buf, 3, 3, false, { 'def mul(a, b):', '    ' })
  ghost_at_end_of(5)
  feed('x')
  local dismissed = wait('dismissed after typing', function()
    local t = ghost_text(0)
    -- Own renderer: cleared at once. Native: cleared, or redrawn without the typed char.
    return (t == nil or not t:find('^return a %+ b')) and (t or '<none>')
  end)
  step('after_typing', dismissed)
  leave_insert()
  step('health', health())
end

--- The real model: ghost text at the empty body, accepted with <Tab>.
function scenarios.basic_real()
  vim.cmd.edit(env.E2E_FILE)
  wait('ready', client_ready)
  local text, _, _, _, ms = ghost_at_end_of(2)
  step('ghost', text)
  step('ghost_ms', ms)
  step('accepted_line', accept_at(2))
  leave_insert()
end

--- The server's figures of its most recent requests (coder-lsp.stats).
local function server_requests()
  local client = plugin.get_client()
  local res = client:request_sync('workspace/executeCommand', { command = 'coder-lsp.stats', arguments = {} }, 5000)
  return res and res.result and res.result.requests or {}
end

--- Wait for ghost text that differs from `old` (nil = any).
local function new_ghost(old, ms)
  return wait('new ghost text', function()
    local t = ghost_text(0)
    return t and t ~= old and t or nil
  end, ms)
end

--- Partial accept (next word, next line) and the explicit request key.
function scenarios.partial()
  vim.cmd.edit(env.E2E_FILE)
  wait('ready', client_ready)
  local first = ghost_at_end_of(2)
  step('ghost', first)
  feed('<M-Right>')
  wait('word accepted', function()
    return line(2) ~= '    ' and line(2)
  end)
  step('after_word', line(2))
  step('ghost_after_word', new_ghost(first))
  feed('<M-C-Right>')
  wait('line accepted', function()
    return line(2) ~= result.after_word and line(2)
  end)
  step('after_line', line(2))
  leave_insert()
  -- The explicit key: asked again (trigger kind Invoked), the server skips its cache.
  vim.api.nvim_buf_set_lines(0, 3, 3, false, { 'def mul(a, b):', '    ' })
  ghost_at_end_of(5)
  leave_insert()
  ghost_at_end_of(5) -- the same spot again: answered from the cache
  local before = #server_requests()
  step('cache_before_key', server_requests()[before].cache)
  feed('<M-\\>')
  -- Automatic requests may still come in (native: one per cursor event); look for the
  -- one the model answered.
  step('cache_after_key', wait('a request the model answered', function()
    local reqs = server_requests()
    for i = before + 1, #reqs do
      if reqs[i].cache == 'miss' then
        return 'miss'
      end
    end
  end, 20000))
  step('ghost_after_key', new_ghost(nil))
  leave_insert()
end

--- The issue's scenario with the real model: at the start of an empty function body, wait
--- for ghost text and accept it; then in a new function's body type the start of a keyword
--- one key per 150 ms, stop, wait for ghost text, accept a word of it, then the rest. Times
--- run from entering Insert mode / the last key to the ghost text.
function scenarios.midword_real()
  require('coder_lsp.ghost').debounce_ms = plugin.defaults.debounce_ms -- the user's default
  vim.cmd.edit(env.E2E_FILE)
  wait('ready', client_ready)
  local text, _, _, _, ms = ghost_at_end_of(2)
  step('ghost2', text)
  step('linestart_ms', ms)
  accept_at(2)
  leave_insert()
  local n = vim.api.nvim_buf_line_count(0)
  vim.api.nvim_buf_set_lines(0, n, n, false, { '', 'def mul(a, b):', '    ' })
  local row = n + 3
  vim.api.nvim_win_set_cursor(0, { row, 0 })
  feed('A')
  wait('insert mode', function()
    return vim.api.nvim_get_mode().mode == 'i'
  end)
  for _, key in ipairs({ 'r', 'e', 't' }) do
    feed(key)
    sleep_tick(150)
  end
  local t0 = uv.hrtime()
  local ghost = new_ghost(nil)
  step('midword_ms', (uv.hrtime() - t0) / 1e6)
  step('ghost', ghost)
  step('typed_line', line(row))
  feed('<M-Right>')
  wait('word accepted', function()
    return line(row) ~= result.typed_line and line(row)
  end)
  step('after_word', line(row))
  step('ghost_after_word', new_ghost(ghost))
  feed('<Tab>')
  wait('rest accepted', function()
    return line(row) ~= result.after_word and line(row)
  end)
  step('after_rest', line(row))
  leave_insert()
end

--- The server binary is missing: one clear message, no errors, <Tab> keeps its meaning.
function scenarios.missing()
  vim.cmd.edit(env.E2E_FILE)
  local second = vim.fn.fnamemodify(env.E2E_FILE, ':h') .. '/second.py'
  vim.cmd.edit(second)
  vim.cmd.edit(env.E2E_FILE)
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  feed('A<Tab>')
  wait('tab inserted', function()
    return line(2) ~= '    ' and line(2)
  end)
  step('tab_line', line(2))
  leave_insert()
  step('clients', #vim.lsp.get_clients({ name = 'coder_lsp' }))
  step('status', plugin.status.state)
  step('health', health())
end

--- The server dies mid-session: the plugin says so, restarts it, then gives up after
--- max_restarts.
function scenarios.crash()
  vim.cmd.edit(env.E2E_FILE)
  local first = wait('ready', client_ready)
  local pid = tonumber(vim.fn.readfile(env.E2E_PIDFILE)[1])
  step('first_pid', pid)
  uv.kill(pid, 'sigkill')
  local second = wait('restarted client ready', function()
    local c = client_ready()
    return c and c.id ~= first.id and c or nil
  end)
  step('restarted', second.id ~= first.id)
  local text = ghost_at_end_of(2)
  step('ghost_after_restart', text)
  leave_insert()
  local pid2 = tonumber(vim.fn.readfile(env.E2E_PIDFILE)[1])
  step('second_pid', pid2)
  uv.kill(pid2, 'sigkill')
  wait('gave up', function()
    return plugin.status.state == 'crashed' and #vim.lsp.get_clients({ name = 'coder_lsp' }) == 0
  end)
  -- Give a (wrong) restart a chance to show up before concluding there is none: poll for
  -- a client for 2 s; none may appear.
  local deadline = uv.now() + 2000
  while uv.now() < deadline do
    if #vim.lsp.get_clients({ name = 'coder_lsp' }) > 0 then
      break
    end
    sleep_tick(50)
  end
  step('clients_after_giving_up', #vim.lsp.get_clients({ name = 'coder_lsp' }))
end

--- A reply for a buffer state the user has already left is dropped (own renderer).
function scenarios.stale()
  vim.cmd.edit(env.E2E_FILE)
  local buf = vim.api.nvim_get_current_buf()
  wait('ready', client_ready)
  local ghost = require('coder_lsp.ghost')
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  feed('A')
  wait('insert mode', function()
    return vim.api.nvim_get_mode().mode == 'i'
  end)
  wait('first ghost', function()
    return ghost_text(0)
  end)
  local before = vim.deepcopy(ghost.stats)
  -- Ask, then move the cursor before the reply can arrive (the reply needs the event loop,
  -- which this code does not yield to until after the move).
  ghost.request(buf, 1)
  ghost.clear(buf)
  local seq_before = before.shown
  vim.api.nvim_win_set_cursor(0, { 1, 3 })
  wait('reply discarded', function()
    return ghost.stats.discarded > before.discarded
  end)
  step('shown_delta', ghost.stats.shown - seq_before)
  step('ghost_after_stale', ghost_text(0) or vim.NIL)
  leave_insert()
end

--- A large file: completion still arrives, edits stay fast.
function scenarios.huge()
  local t0 = uv.hrtime()
  vim.cmd.edit(env.E2E_FILE)
  step('open_ms', (uv.hrtime() - t0) / 1e6)
  wait('ready', client_ready)
  local n = vim.api.nvim_buf_line_count(0)
  -- The target function is the last one; its empty body is the last line.
  local text, _, _, _, ms = ghost_at_end_of(n)
  step('ghost', text)
  step('ghost_ms', ms)
  step('accepted_line', accept_at(n))
  leave_insert()
end

--- A busy machine: the server's time limit cuts every generation short (the test sets
--- maxPredictMs = 0), so the first answer is empty. The server finishes it in the
--- background and sends coder-lsp/completionReady; the plugin asks again, and the ghost
--- text appears with no key pressed after entering Insert mode.
function scenarios.reask()
  require('coder_lsp.ghost').debounce_ms = plugin.defaults.debounce_ms -- the user's default
  vim.cmd.edit(env.E2E_FILE)
  wait('ready', client_ready)
  local text, _, _, _, ms = ghost_at_end_of(2)
  step('ghost', text)
  step('ghost_ms', ms)
  step('requests', server_requests())
  step('accepted_line', accept_at(2))
  leave_insert()
end

local function main()
  plugin = require('coder_lsp')
  result.nvim = tostring(vim.version())
  result.native = false
  local opts = {
    cmd = vim.json.decode(env.E2E_CMD),
    model = env.E2E_MODEL,
    settings = vim.tbl_extend('force', { logLevel = 'debug' }, vim.json.decode(env.E2E_SETTINGS or '{}')),
    debounce_ms = 50,
    max_restarts = tonumber(env.E2E_MAX_RESTARTS or '3'),
  }
  plugin.setup(opts)
  result.native = plugin.uses_native()
  local t0 = uv.hrtime()
  scenarios[env.E2E_SCENARIO]()
  result.scenario_ms = (uv.hrtime() - t0) / 1e6
  result.ok = true
  write_result()
  vim.cmd('qall!')
end

co = coroutine.create(main)
local ok, err = coroutine.resume(co)
if not ok then
  result.error = tostring(err)
  write_result()
  vim.cmd('cquit 1')
end
