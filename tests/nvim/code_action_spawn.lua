-- Headless Neovim (0.7 API) as a Palot user: attach palot-lsp to a file, list the code actions on a
-- selection, pick "Fix with an agent", and read the diagnostics the agent's edit produces.
--
-- Environment: PALOT_LSP (the server command), PALOT_FILE (the file to edit), PALOT_ROOT (the workspace
-- folder), PALOT_RESULT (where the JSON result is written). Exit code 0 on success, 1 on failure.

local result = { actions = nil, messages = {}, diagnostics = {}, steps = {} }

local function step(name)
  table.insert(result.steps, name)
end

local function finish(ok, err)
  result.ok = ok
  result.error = err and tostring(err) or nil
  local out = assert(io.open(os.getenv('PALOT_RESULT'), 'w'))
  out:write(vim.fn.json_encode(result))
  out:close()
  vim.cmd(ok and 'qall!' or 'cquit! 1')
end

local function main()
  local root = os.getenv('PALOT_ROOT')
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('PALOT_FILE')))
  local bufnr = vim.api.nvim_get_current_buf()

  local client_id = vim.lsp.start_client({
    name = 'palot',
    cmd = { os.getenv('PALOT_LSP') },
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = 'project' } },
    handlers = {
      ['window/showMessage'] = function(_, params)
        table.insert(result.messages, params.message)
      end,
    },
  })
  assert(client_id, 'could not start palot-lsp')
  vim.lsp.buf_attach_client(bufnr, client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  assert(vim.wait(30000, function() return client.initialized end, 50), 'palot-lsp did not initialize')
  result.server_pid = client.rpc.pid
  step('initialized')

  -- Pick "Fix with an agent" the way a user would in the code-action menu.
  vim.ui.select = function(items, _, on_choice)
    result.actions = {}
    local chosen, index
    for i, item in ipairs(items) do
      table.insert(result.actions, item[2].title)
      if item[2].title == 'Fix with an agent' then
        chosen, index = item, i
      end
    end
    on_choice(chosen, index)
  end
  -- The selection: lines 1 to 3 of the file (mark-indexed positions, as after `Vjj`).
  vim.lsp.buf.range_code_action(nil, { 1, 0 }, { 3, 0 })
  assert(vim.wait(20000, function() return result.actions ~= nil end, 50), 'no code actions arrived')
  step('code action chosen')

  assert(vim.wait(120000, function() return #vim.diagnostic.get(bufnr) > 0 end, 100),
    'no diagnostics appeared for the agent\'s edit')
  step('diagnostics')
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(result.diagnostics, {
      lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, severity = d.severity, message = d.message, source = d.source,
    })
  end

  vim.lsp.stop_client(client_id)
  vim.wait(10000, function() return client.is_stopped() end, 50)
  step('stopped')
end

local ok, err = pcall(main)
finish(ok, err)
