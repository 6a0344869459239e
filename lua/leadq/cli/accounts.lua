-- leadq.cli.accounts: the account half of the scoring commands: `score --accounts` (the leads'
-- results rolled up and scored by the account model, and the accounts CSV), `explain --accounts`
-- and `score --dedupe` (leadq.accounts does the work; this module prints and writes it).
local accounts = require("leadq.accounts")
local util = require("leadq.util")

local format = string.format
local concat, sort = table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

-- The account columns written before the model's results, when the rollup has them.
local CSV_COLUMNS = { "contacts", "engaged_contacts", "score_max", "top_mean", "best_contact", "personas_present",
                      "personas_engaged" }

local csv_text = util.csv_field   -- one CSV field

-- accounts,csv: account, the rollup's main columns, then every result column of the account model.
function _M.write_csv(path, accounts_tbl, results)
  local f, err = io.open(path, "w")
  if not f then return nil, format("cannot write %s: %s", path, tostring(err)) end
  local names, cols = { "account" }, { (accounts_tbl:column("account")) }
  for _, n in ipairs(CSV_COLUMNS) do
    if accounts_tbl:has(n) then names[#names + 1], cols[#cols + 1] = n, accounts_tbl:column(n) end
  end
  if results then
    for _, n in ipairs(results:names()) do
      if not n:find("disqualified_by$") then names[#names + 1], cols[#cols + 1] = n, results:column(n) end
    end
  end
  f:write(concat(names, ","), "\n")
  local row = {}
  for r = 1, #accounts_tbl do
    for c = 1, #cols do row[c] = csv_text(cols[c][r]) end
    f:write(concat(row, ",", 1, #cols), "\n")
  end
  local ok, cerr = f:close()
  if not ok then return nil, format("cannot write %s: %s", path, tostring(cerr)) end
  return true
end

-- The account model loaded and the leads' results rolled up: model, accounts, map, report, score column.
local function account_input(run)
  local model, err = require("leadq").load_model(run.rules)
  if not model then return nil, err end
  local score = run.score
  if score == nil then
    for _, n in ipairs(run.results:names()) do
      if n == "total" or n:find("%.total$") then score = n; break end
    end
    if score == nil then return nil, "--accounts: the lead results have no total column to roll up" end
  end
  if not run.results:has(score) then
    return nil, format("--account-score: no column '%s' in the lead results%s", score,
      util.did_you_mean(score, run.results:names()))
  end
  local ok, acc, map, report = pcall(accounts.build, run.leads, run.results, { score = score })
  if not ok then return nil, tostring(acc) end
  if not acc then return nil, map end
  return model, acc, map, report, score
end

-- For `leadq score --accounts FILE`: the leads' results rolled up and scored by the account model.
-- run = { rules =, leads =, results =, events =, score =, as_of =, out = } -> lines | nil, message
function _M.score_run(run)
  local model, acc, map, report, score = account_input(run)
  if not model then return nil, acc end
  local res, errs = model:score(acc, run.events, { as_of = run.as_of, id = "account", errors = "report" })
  if not res then return nil, errs end
  if run.out then
    local written, werr = _M.write_csv(run.out, acc, res)
    if not written then return nil, werr end
  end
  local lines = { format("accounts: %d from %d leads (%d by account id, %d by e-mail domain, %d by website; "
    .. "%d personal domains, %d without one), rolled up on %s%s", #acc, report.leads, report.account_id,
    report.email, report.website, report.personal, report.none, score, run.out and (", wrote " .. run.out) or "") }
  local counts, status = {}, res:column("status")
  for i = 1, #acc do counts[status[i]] = (counts[status[i]] or 0) + 1 end
  local keys = {}
  for k in pairs(counts) do keys[#keys + 1] = k end
  sort(keys, function(a, b) return counts[a] > counts[b] or (counts[a] == counts[b] and a < b) end)
  lines[#lines + 1] = format("%s: accounts by status", model:info().name or "accounts")
  for _, k in ipairs(keys) do
    lines[#lines + 1] = format("  %-12s %8d  %5.1f%%", k, counts[k], counts[k] * 100 / math.max(#acc, 1))
  end
  if errs then lines[#lines + 1] = format("account model errors: %d", errs.count or #errs) end
  return lines, acc, res, map
end

-- For `leadq score --dedupe [--merges-out CSV]`: leads and events deduplicated, and what was merged.
-- -> leads, events, lines | nil, message
function _M.dedupe_run(leads, events, merges_out)
  local ok, kept, evs, merges = pcall(accounts.dedupe, leads, events)
  if not ok then return nil, tostring(kept) end
  if merges_out then
    local f, err = io.open(merges_out, "w")
    if not f then return nil, format("cannot write %s: %s", merges_out, tostring(err)) end
    f:write("merged,kept,email\n")
    for _, m in ipairs(merges) do
      f:write(csv_text(m.merged), ",", csv_text(m.kept), ",", csv_text(m.email), "\n")
    end
    local closed, cerr = f:close()
    if not closed then return nil, format("cannot write %s: %s", merges_out, tostring(cerr)) end
  end
  local lines = { format("duplicates: %d leads merged into the earliest created lead with the same e-mail, "
    .. "%d leads left%s", merges.count, #kept, merges_out and (", wrote " .. merges_out) or "") }
  for i = 1, math.min(5, merges.count) do
    local m = merges[i]
    lines[#lines + 1] = format("  %s -> %s (%s)", tostring(m.merged), tostring(m.kept), tostring(m.email))
  end
  if merges.count > 5 then lines[#lines + 1] = format("  ... and %d more", merges.count - 5) end
  return kept, evs, lines
end


-- For `leadq explain --accounts FILE --account NAME`: the account's explanation (rules, points and
-- its contacts, best first). run as for score_run, plus account = the name. -> text | nil, message
function _M.explain_run(run)
  local model, acc, map, _, score = account_input(run)
  if not model then return nil, acc end
  local names = acc:column("account")
  local row
  for i = 1, #acc do if names[i] == run.account then row = i; break end end
  if not row then
    return nil, format("no account '%s' among the %d accounts of these leads", tostring(run.account), #acc)
  end
  local ok, ex = pcall(accounts.explain, model, acc, row, { run.leads, map, run.results },
    { score = score, engaged_at = accounts.ENGAGED_AT, limit = run.limit or 10 }, run.events,
    { as_of = run.as_of, id = "account" })
  if not ok then return nil, tostring(ex) end
  return tostring(ex)
end

return _M
