-- leadq.multi: several models served as one. The real-time service scores one model; given a run
-- of several (leadq.load_models: mql, then sql reading mql's results, then pql), this is the model
-- it scores: the first model's answer (total, status, grade, groups, reason) with every model's
-- { total, status, grade, reason } under `models`, their event features as one set, their fields as
-- one list. The reactor reads `models` to react to each model's changes.
--
--   local multi = require("leadq.multi")
--   local model = multi.new(assert(leadq.load_models{ "rules/mql.lua", "rules/sql.lua", "rules/pql.lua" }))
local type, ipairs, pairs, error, setmetatable, tostring = type, ipairs, pairs, error, setmetatable, tostring
local concat, sort = table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

local Multi = {}
Multi.__index = Multi

-- run: a run of models (leadq.load_models). Two models may declare an event feature of the same
-- name only with the same declaration (one state per lead keeps it).
function _M.new(run)
  if type(run) ~= "table" or type(run.models) ~= "table" or #run.models == 0 then
    error("multi.new: expects a run of models (leadq.load_models{...})", 2)
  end
  local names, features, owner = {}, {}, {}
  for i, m in ipairs(run.models) do
    names[i] = m.name
    for name, f in pairs(type(m.spec) == "table" and m.spec.features or {}) do
      local spec = f.spec or f
      if features[name] ~= nil and require("leadq.json").encode(features[name]) ~= require("leadq.json").encode(spec)
      then
        error(string.format("multi.new: models '%s' and '%s' declare the event feature '%s' differently",
          owner[name], m.name, name), 2)
      end
      features[name], owner[name] = spec, m.name
    end
  end
  return setmetatable({ run = run, names = names, name = concat(names, "+"), spec = { features = features } }, Multi)
end

local function union(lists)
  local seen, out = {}, {}
  for _, list in ipairs(lists) do
    for _, v in ipairs(list or {}) do
      if not seen[v] then
        seen[v] = true
        out[#out + 1] = v
      end
    end
  end
  sort(out)
  return out
end

function Multi:info()
  if self.info_kept then return self.info_kept end
  local infos, fields, feats = {}, {}, {}
  for i, m in ipairs(self.run.models) do
    infos[i] = m:info()
    fields[i], feats[i] = infos[i].fields, infos[i].features
  end
  self.info_kept = { name = self.name, fields = union(fields), features = union(feats), groups = infos[1].groups,
    models = infos }
  return self.info_kept
end

-- The first model's result, with every model's under `models` (name -> { total, status, grade,
-- reason }); nil, message as the run gives it.
function Multi:score_one(record, events, options)
  local out, err = self.run:score_one(record, events, { as_of = options and options.as_of,
    errors = options and options.errors })
  if not out then return nil, err end
  local first = out[self.names[1]]
  local models = {}
  for _, name in ipairs(self.names) do
    local r = out[name]
    models[name] = { total = r.total, status = r.status, grade = r.grade, reason = r.reason }
  end
  return { total = first.total, status = first.status, grade = first.grade, groups = first.groups,
    reason = first.reason, models = models }
end

function Multi:explain(record, events, options)
  return self.run:explain(record, events, { as_of = options and options.as_of })
end

Multi.__tostring = function(self)
  return "leadq models " .. tostring(self.name)
end

return _M
