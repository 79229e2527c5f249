--- Ghost text for Neovim 0.10/0.11, which have no native inline completion.
---
--- After typing stops for `debounce_ms` in Insert mode, sends `textDocument/inlineCompletion`
--- and draws the first item as an extmark: the first line as inline virtual text at the
--- cursor, the rest as virtual lines below. Any other edit, cursor move or leaving Insert
--- mode dismisses it; `accept()` inserts it. A reply for an older buffer state or cursor
--- position is dropped, so a slow model never paints stale text.
local M = {}

M.ns = vim.api.nvim_create_namespace('coder_lsp_ghost')
M.debounce_ms = 150
M.enabled = true
--- Counters for tests and :checkhealth: requests sent, replies shown, replies dropped as stale.
M.stats = { requests = 0, shown = 0, discarded = 0, errors = 0 }

vim.api.nvim_set_hl(0, 'CoderLspGhost', { link = 'Comment', default = true })

--- @class coder_lsp.GhostState
--- @field client_id integer
--- @field augroup integer
--- @field timer uv.uv_timer_t?
--- @field request_id integer? Pending request.
--- @field seq integer Bumped for every request; replies with an older seq are stale.
--- @field item table? The item shown: {text, row, col, end_row, end_col} (0-based bytes).
--- @field mark integer? The extmark id.

--- @type table<integer, coder_lsp.GhostState>
local buffers = {}

local function client_request(client, method, params, handler, bufnr)
  -- 0.11 made Client:request a method; 0.10 has the plain function field.
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_cancel(client, id)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

--- Byte column in `line` of an LSP character offset in `encoding`.
--- @param line string
--- @param index integer
--- @param encoding string 'utf-8' | 'utf-16' | 'utf-32'
--- @return integer
function M.byte_col(line, index, encoding)
  if encoding == 'utf-8' then
    return math.min(index, #line)
  end
  local units, byte = 0, 1
  while byte <= #line and units < index do
    local c = line:byte(byte)
    local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
    -- Only characters outside the BMP take two UTF-16 code units.
    units = units + ((encoding == 'utf-16' and len == 4) and 2 or 1)
    byte = byte + len
  end
  return byte - 1
end

--- LSP character offset of byte column `col` in `line`.
--- @param line string
--- @param col integer
--- @param encoding string
--- @return integer
function M.char_index(line, col, encoding)
  if encoding == 'utf-8' then
    return col
  end
  local units, byte = 0, 1
  while byte <= col and byte <= #line do
    local c = line:byte(byte)
    local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
    units = units + ((encoding == 'utf-16' and len == 4) and 2 or 1)
    byte = byte + len
  end
  return units
end

local function line_at(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

local function stop_timer(state)
  if state.timer then
    state.timer:stop()
    if not state.timer:is_closing() then
      state.timer:close()
    end
    state.timer = nil
  end
end

local function cancel_pending(state)
  if state.request_id then
    local client = vim.lsp.get_client_by_id(state.client_id)
    if client then
      pcall(client_cancel, client, state.request_id)
    end
    state.request_id = nil
  end
  state.seq = state.seq + 1 -- any reply still on its way is now stale
end

--- Remove the ghost text (the pending request stays).
--- @param bufnr integer
function M.clear(bufnr)
  local state = buffers[bufnr]
  if state then
    state.item = nil
    state.mark = nil
  end
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

--- Whether ghost text is shown in the buffer.
--- @param bufnr integer
--- @return boolean
function M.visible(bufnr)
  local state = buffers[bufnr]
  return state ~= nil and state.item ~= nil
end

--- The text shown (first line inline, the rest as virtual lines), or nil.
--- @param bufnr integer
--- @return string?
function M.shown_text(bufnr)
  local state = buffers[bufnr]
  return state and state.item and state.item.display or nil
end

--- Convert an InlineCompletionItem into the edit it stands for, at cursor (row, col).
--- @param bufnr integer
--- @param item table lsp.InlineCompletionItem
--- @param encoding string
--- @param row integer 0-based
--- @param col integer 0-based byte column
--- @return table? {text, display, row, col, end_row, end_col}
function M.to_edit(bufnr, item, encoding, row, col)
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value -- a snippet: show and insert its plain text
  end
  if type(text) ~= 'string' or text == '' then
    return nil
  end
  local srow, scol, erow, ecol = row, col, row, col
  if item.range then
    local s, e = item.range.start, item.range['end']
    srow, erow = s.line, e.line
    scol = M.byte_col(line_at(bufnr, srow), s.character, encoding)
    ecol = M.byte_col(line_at(bufnr, erow), e.character, encoding)
  end
  -- Only edits that touch the cursor can be ghost text; anything else is not for "here".
  if srow ~= row or erow ~= row or scol > col or ecol < col then
    return nil
  end
  local line = line_at(bufnr, row)
  local display = text
  local typed = line:sub(scol + 1, col)
  if typed ~= '' then
    if display:sub(1, #typed) ~= typed then
      return nil -- the reply does not fit what is already typed
    end
    display = display:sub(#typed + 1)
  end
  -- Text after the cursor that the edit replaces (e.g. an auto-closed bracket) stays
  -- visible in the buffer, so the ghost must not show it a second time.
  local replaced = line:sub(col + 1, ecol)
  local first, rest = display:match('^([^\n]*)(.*)$')
  if replaced ~= '' and rest == '' and first:sub(-#replaced) == replaced then
    first = first:sub(1, #first - #replaced)
  end
  return {
    text = text,
    display = first .. rest,
    first = first,
    rest = rest,
    row = srow,
    col = scol,
    end_row = erow,
    end_col = ecol,
    cursor_row = row,
    cursor_col = col,
  }
end

local function render(bufnr, edit)
  M.clear(bufnr)
  local state = buffers[bufnr]
  local virt_lines = {}
  local rest = edit.rest:gsub('^\n', '')
  for l in vim.gsplit(rest, '\n', { plain = true }) do
    table.insert(virt_lines, { { l, 'CoderLspGhost' } })
  end
  if edit.rest == '' then
    virt_lines = nil
  end
  local opts = {
    virt_text = { { edit.first, 'CoderLspGhost' } },
    virt_text_pos = 'inline',
    virt_lines = virt_lines,
    hl_mode = 'combine',
  }
  state.mark = vim.api.nvim_buf_set_extmark(bufnr, M.ns, edit.cursor_row, edit.cursor_col, opts)
  state.item = edit
  M.stats.shown = M.stats.shown + 1
end

--- Send a request now for the cursor position in `bufnr` (kind 1 = invoked, 2 = automatic).
--- @param bufnr integer
--- @param kind integer?
function M.request(bufnr, kind)
  local state = buffers[bufnr]
  if not state or not M.enabled then
    return
  end
  stop_timer(state)
  cancel_pending(state)
  local client = vim.lsp.get_client_by_id(state.client_id)
  if not client or vim.api.nvim_get_current_buf() ~= bufnr then
    return
  end
  local win = vim.api.nvim_get_current_win()
  local cursor = vim.api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  local encoding = client.offset_encoding or 'utf-16'
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local seq = state.seq
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = M.char_index(line_at(bufnr, row), col, encoding) },
    context = { triggerKind = kind or 2 },
  }
  M.stats.requests = M.stats.requests + 1
  local ok, id = client_request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if state.seq ~= seq then
      M.stats.discarded = M.stats.discarded + 1 -- superseded or dismissed meanwhile
      return
    end
    state.request_id = nil
    if err then
      -- Loading, cancelled or a server bug: one log line, never a message per keystroke.
      M.stats.errors = M.stats.errors + 1
      require('vim.lsp.log').debug('coder-lsp inlineCompletion', err)
      return
    end
    local items = result and (result.items or result) or {}
    if #items == 0 then
      return
    end
    local cur = vim.api.nvim_get_current_buf() == bufnr and vim.api.nvim_win_get_cursor(0) or nil
    local mode = vim.api.nvim_get_mode().mode
    if
      vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
      or not cur
      or cur[1] - 1 ~= row
      or cur[2] ~= col
      or mode:sub(1, 1) ~= 'i'
    then
      M.stats.discarded = M.stats.discarded + 1 -- the user moved on
      return
    end
    local edit = M.to_edit(bufnr, items[1], encoding, row, col)
    if edit and edit.display ~= '' then
      render(bufnr, edit)
    end
  end, bufnr)
  if ok then
    state.request_id = id
  end
end

--- Ask again after `debounce_ms` of quiet.
--- @param bufnr integer
function M.schedule(bufnr)
  local state = buffers[bufnr]
  if not state or not M.enabled then
    return
  end
  stop_timer(state)
  cancel_pending(state)
  local timer = vim.uv.new_timer()
  state.timer = timer
  timer:start(M.debounce_ms, 0, function()
    vim.schedule(function()
      if state.timer == timer then
        stop_timer(state)
        if vim.api.nvim_get_mode().mode:sub(1, 1) == 'i' then
          M.request(bufnr, 2)
        end
      end
    end)
  end)
end

--- Insert the shown completion, or only the start of it that `pick` chooses (partial
--- accept; typing on asks the server again, whose cache answers the rest at once). Safe to
--- call from an <expr> mapping: the edit is scheduled.
--- @param bufnr integer
--- @param pick (fun(text: string): string)? Chooses the part of the shown text to insert.
--- @return boolean accepted
function M.accept(bufnr, pick)
  local state = buffers[bufnr]
  local edit = state and state.item
  if not edit then
    return false
  end
  local part = pick and pick(edit.display) or nil
  if part == '' or part == edit.display then
    part = nil -- all of it: the full edit (it may also replace text after the cursor)
  end
  M.clear(bufnr)
  vim.schedule(function()
    if not vim.api.nvim_buf_is_valid(bufnr) then
      return
    end
    local row, col, end_row, end_col, text = edit.row, edit.col, edit.end_row, edit.end_col, edit.text
    if part then
      row, col, end_row, end_col, text = edit.cursor_row, edit.cursor_col, edit.cursor_row, edit.cursor_col, part
    end
    local lines = vim.split(text, '\n', { plain = true })
    vim.api.nvim_buf_set_text(bufnr, row, col, end_row, end_col, lines)
    local last_row = row + #lines - 1
    local last_col = (#lines == 1 and col or 0) + #lines[#lines]
    if vim.api.nvim_get_current_buf() == bufnr then
      vim.api.nvim_win_set_cursor(0, { last_row + 1, last_col })
    end
  end)
  return true
end

--- Start showing completions from `client` in `bufnr`.
--- @param client vim.lsp.Client
--- @param bufnr integer
function M.attach(client, bufnr)
  local old = buffers[bufnr]
  if old then
    pcall(vim.api.nvim_del_augroup_by_id, old.augroup)
    stop_timer(old)
  end
  local group = vim.api.nvim_create_augroup('coder_lsp_ghost_' .. bufnr, { clear = true })
  local state = { client_id = client.id, augroup = group, seq = 0 }
  buffers[bufnr] = state
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'InsertEnter' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr) -- any edit dismisses the old suggestion
      M.schedule(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('CursorMovedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      local item = state.item
      if item then
        local cur = vim.api.nvim_win_get_cursor(0)
        if cur[1] - 1 ~= item.cursor_row or cur[2] ~= item.cursor_col then
          M.clear(bufnr)
        end
      end
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      stop_timer(state)
      cancel_pending(state)
      M.clear(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = bufnr,
    callback = function()
      stop_timer(state)
      buffers[bufnr] = nil
    end,
  })
end

--- Forget every buffer served by a client that went away.
--- @param client_id integer
function M.detach_client(client_id)
  for bufnr, state in pairs(buffers) do
    if state.client_id == client_id then
      stop_timer(state)
      state.request_id = nil
      state.seq = state.seq + 1
      M.clear(bufnr)
      pcall(vim.api.nvim_del_augroup_by_id, state.augroup)
      buffers[bufnr] = nil
    end
  end
end

return M
