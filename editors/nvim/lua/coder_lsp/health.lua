--- `:checkhealth coder_lsp`: the Neovim version and renderer, the server command, the
--- running client and the model state it reports.
local M = {}

function M.check()
  local health = vim.health
  local plugin = require('coder_lsp')
  local cfg = plugin.config

  health.start('coder-lsp: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 0 then
    health.error('Neovim ' .. version .. ' is too old; coder-lsp needs 0.10 or newer')
  else
    health.ok('Neovim ' .. version)
  end
  if plugin.uses_native() then
    health.ok('ghost text: native vim.lsp.inline_completion')
  else
    health.ok(('ghost text: coder-lsp extmarks (debounce %d ms)'):format(cfg.debounce_ms))
  end
  health.info('accept key: ' .. tostring(cfg.accept_key) .. (cfg.enabled and '' or ' (disabled)'))

  health.start('coder-lsp: server')
  local exe = cfg.cmd[1]
  local path = exe and vim.fn.exepath(exe) or ''
  if path == '' then
    health.error(
      ("server command '%s' not found"):format(tostring(exe)),
      { 'Install coder-lsp (pip install coder-lsp) or pass cmd = { "/path/to/coder-lsp", "--stdio" } to setup()' }
    )
  else
    health.ok('server: ' .. table.concat(cfg.cmd, ' ') .. ' (' .. path .. ')')
  end

  health.start('coder-lsp: model')
  health.info('configured model: ' .. tostring(cfg.model or (cfg.settings or {}).model or 'server default'))
  local client = plugin.get_client()
  if not client then
    health.warn('no coder-lsp client is running (open a file of a supported filetype)')
    return
  end
  local params = { command = 'coder-lsp.status', arguments = {} }
  local result
  if vim.fn.has('nvim-0.11') == 1 then
    result = client:request_sync('workspace/executeCommand', params, 5000)
  else
    result = client.request_sync('workspace/executeCommand', params, 5000)
  end
  local st = result and not result.err and result.result or nil
  if type(st) ~= 'table' then
    -- Fall back on the last coder-lsp/status notification the server pushed.
    local err = result and result.err
    health.info('coder-lsp.status unavailable (' .. (err and err.message or 'no answer') .. '); last notification:')
    st = { state = plugin.status.state, model = plugin.status.model, error = plugin.status.detail }
  end
  local line = ('server %s: model %s is %s'):format(tostring(st.version), tostring(st.model), tostring(st.state))
  if st.state == 'ready' then
    health.ok(line)
  elseif st.state == 'failed' then
    health.error(line .. ': ' .. tostring(st.error))
  else
    health.warn(line)
  end
end

return M
