-- leadq.compiler: a validated model spec -> the program the C core runs (see csrc/program.h).
--
-- Field names are resolved here: against the lead table's schema (bulk), or, for one lead given
-- as a Lua table, by the kind of test applied to them (record mode). Every field gets a slot; a
-- slot is bound at run time to a column of the lead table, of the event features, of an earlier
-- model's results, or to a column that a Lua function fills before the C pass.
local _M = { _VERSION = "0.1.0" }

local dsl = require("leadq.dsl")

local pairs, ipairs, tostring, load, assert = pairs, ipairs, tostring, load, assert
local string_format, string_lower, string_find, string_sub = string.format, string.lower, string.find, string.sub
local table_concat, table_sort = table.concat, table.sort

-- What each kind of test reads.
local NEEDS = { num = "number", time = "time", date = "time", bool = "boolean", str = "text", present = "any" }
local READS = {
  number = { number = true },
  time = { time = true, number = true },
  boolean = { boolean = true },
  text = { category = true, text = true, tags = true },
}
local VIEW_OF_TYPE = { number = "number", time = "number", boolean = "bool", category = "codes", text = "text",
  tags = "tags" }

local function needs_sentence(need, test)
  if need == "number" then return string_format("'%s' compares numbers", test) end
  if need == "time" then return string_format("'%s' needs a date or time field", test) end
  if need == "boolean" then return "true/false tests need a yes/no field" end
  return string_format("'%s' needs a text field", test)
end

local function article(t)
  return (t == "number" and "a number") or (t == "time" and "a time") or (t == "boolean" and "a yes/no")
    or (t == "category" and "a category") or (t == "text" and "a text") or (t == "tags" and "a tags")
    or ("a " .. tostring(t))
end

-- Record mode: one Lua function that returns the value of every record field the model reads, in
-- slot order (from `extra` where the record has none), so score_one makes one call per lead
-- instead of two C API lookups per field. Generated from the field names alone (quoted with %q);
-- nil past what one function can return, and score_one then looks the fields up one by one.
local MAX_READ = 150
local function record_reader(slots)
  local names = {}
  for _, info in ipairs(slots) do
    if info.source == "record" then names[#names + 1] = string_format("[%q]", info.name) end
  end
  if #names == 0 or #names > MAX_READ then return nil end
  local lines = { "return function(rec, extra)", "if extra == nil then return " }
  for i, key in ipairs(names) do
    lines[2] = lines[2] .. (i > 1 and ", " or "") .. "rec" .. key
  end
  lines[2] = lines[2] .. " end"
  local results = {}
  for i, key in ipairs(names) do
    lines[#lines + 1] = string_format("local v%d = rec%s if v%d == nil then v%d = extra%s end", i, key, i, i, key)
    results[i] = "v" .. i
  end
  lines[#lines + 1] = "return " .. table_concat(results, ", ")
  lines[#lines + 1] = "end"   -- a function of two parameters: a vararg chunk would copy its frame per call
  return assert(load(table_concat(lines, "\n"), "=leadq record reader", "t", {}))()
end

-- Record mode: one Lua function that writes score_one's answer (total, status, grade, reason,
-- disqualifier, errors, and the points of each group but the hidden one) into a table, new or
-- refilled, so the C side makes one call per lead instead of two C API calls per field.
local function answer_writer(groups)
  local params, targets = {}, {}
  for _, g in ipairs(groups) do
    if not g.hidden then
      params[#params + 1] = "g" .. (#params + 1)
      targets[#targets + 1] = string_format("groups[%q]", g.name)
    end
  end
  if #params > MAX_READ then return nil end
  local lines = {
    "return function(res, groups, total, status, grade, reason, disq, errors" ..
      (#params > 0 and ", " .. table_concat(params, ", ") or "") .. ")",
    "res.total, res.status, res.grade, res.reason, res.disqualified_by, res.errors = " ..
      "total, status, grade, reason, disq, errors",
  }
  if #params > 0 then lines[#lines + 1] = table_concat(targets, ", ") .. " = " .. table_concat(params, ", ") end
  lines[#lines + 1] = "res.groups = groups"
  lines[#lines + 1] = "return res"
  lines[#lines + 1] = "end"
  return assert(load(table_concat(lines, "\n"), "=leadq answer writer", "t", {}))()
end

-- Each rule's leaves, with the rule they belong to.
local function walk(node, fn)
  if node == nil then return end
  if node.op then
    for _, a in ipairs(node.args) do walk(a, fn) end
  else
    fn(node)
  end
end
_M.walk = walk

-- The steps of compile share one compilation state, `c`: the spec, how fields resolve (schema, or
-- record mode), the problems found so far, and the program as it grows (slots, leaves, matchers,
-- ops, registers, the functions run before the pass).
local function new_compilation(spec, schema, schema_names)
  return { spec = spec, schema = schema, schema_names = schema_names, record_mode = schema == nil,
    problems = {}, seen_problem = {}, record_kind = {}, slots = {}, slot_of = {}, leaves = {}, leaf_nodes = {},
    matchers = {},
    matcher_of = {}, ops = {}, prepass = {}, nregs = #spec.rules + #spec.disqualifiers, free_regs = {} }
end

-- A problem of one rule or disqualifier, as "path:line: rule 'id': ...". A rule testing one field
-- twice says it once.
local function problem(c, owner, fmt, ...)
  local text = string_format("%s:%s: %s '%s': ", c.spec.path, tostring(owner.line), owner.kind, owner.id) ..
    string_format(fmt, ...)
  if not c.seen_problem[text] then
    c.seen_problem[text] = true
    c.problems[#c.problems + 1] = text
  end
end

-- Every rule and disqualifier with its condition, as the owner its problems name.
local function each_condition(spec, fn)
  for _, r in ipairs(spec.rules) do fn({ kind = "rule", id = r.id, line = r.line }, r.when) end
  for _, d in ipairs(spec.disqualifiers) do fn({ kind = "disqualifier", id = d.id, line = d.line }, d.when) end
end

-- Record mode: a record has no schema, so a field's kind comes from the tests applied to it; two
-- tests that read a field as different kinds are a load error (a number and a time are one kind:
-- numbers are read as they are, texts as dates).
local function infer_record_kinds(c)
  local record_kind, used = c.record_kind, {}
  local function note(owner, leaf)
    if leaf.t == "fn" then return end
    local need = NEEDS[leaf.t]
    local f = leaf.field
    local cur = record_kind[f]
    local want = need == "text" and "string" or (need == "boolean" and "bool") or
      (need == "number" and "number") or (need == "time" and "time") or "any"
    if cur == nil or cur == "any" then
      record_kind[f] = want
      used[f] = owner
    elseif (want == "time" and cur == "number") or (want == "number" and cur == "time") then
      record_kind[f] = "time"
    elseif want ~= "any" and want ~= cur then
      problem(c, owner, "field '%s' is tested as %s here and as %s in %s '%s'", f,
        want == "string" and "text" or want, cur == "string" and "text" or cur, used[f].kind, used[f].id)
    end
  end
  each_condition(c.spec, function(owner, cond)
    walk(cond, function(l) note(owner, l) end)
  end)
end

-- The slot of a leaf's field, made on first use: a record field of the kind its tests read, or a
-- column of the schema (lead table, features, an earlier model's results, or absent). nil after a
-- problem when the schema has no such field.
local function field_slot(c, owner, leaf)
  local f = leaf.field
  local s = c.slot_of[f]
  if s then return s, c.slots[s] end
  local info
  if c.record_mode then
    local k = c.record_kind[f] or "any"
    info = { name = f, view = k == "string" and "tags" or (k == "bool" and "bool") or "number", source = "record",
      record_kind = k, type = k }
  else
    local col = c.schema(f)
    if col == nil then
      problem(c, owner, "unknown field '%s'%s", f, dsl.did_you_mean(f, c.schema_names or {}))
      return nil
    end
    info = { name = f, view = col.source == "absent" and "absent" or VIEW_OF_TYPE[col.type], source = col.source,
      column = col.column or f, type = col.type }
  end
  c.slots[#c.slots + 1] = info
  c.slot_of[f] = #c.slots
  return #c.slots, info
end

-- The index of a string matcher (mode, needles lowercased), shared by every leaf that tests the same
-- values the same way. `matches` (Lua patterns) is an external matcher: a Lua function the core calls
-- once per distinct value (and explain once per pattern), on text bounded as the DSL promises.
local function matcher(c, mode, values)
  local lowered = {}
  for i, v in ipairs(values) do lowered[i] = string_lower(v) end
  local key = mode .. "\0" .. table_concat(lowered, "\0")
  local known = c.matcher_of[key]
  if known then return known end
  local m = { mode = mode == "matches" and "external" or mode, needles = lowered }
  if mode == "matches" then
    local pats = values
    local bound = dsl.LIMITS.pattern_text   -- a pattern's backtracking grows with its text
    m.fn = function(v, only)   -- only: the one pattern explain asks about
      v = string_lower(string_sub(v, 1, bound))
      if only then return string_find(v, pats[only]) ~= nil end
      for _, pat in ipairs(pats) do
        if string_find(v, pat) then return true end
      end
      return false
    end
  end
  c.matchers[#c.matchers + 1] = m
  c.matcher_of[key] = #c.matchers
  return #c.matchers
end

-- A Lua function computed into a slot of its own before the C pass (a condition into a mask, points
-- into values); `extra` goes into its prepass entry (the rule of a points function).
local function function_slot(c, owner, fn, what, extra)
  c.slots[#c.slots + 1] = { name = string_format("%s %s", owner.id, what),
    view = what == "points" and "values" or "mask", source = "function" }
  local entry = { slot = #c.slots, fn = fn, kind = what, owner = owner,
    owner_text = string_format("%s '%s'", owner.kind, owner.id) }
  for k, v in pairs(extra or {}) do entry[k] = v end
  c.prepass[#c.prepass + 1] = entry
  return #c.slots
end

-- One test on one field as a leaf of the program; its index, or nil after a problem (a field that
-- is not there, or not of a kind the test reads).
local function compile_leaf(c, owner, l)
  if l.t == "fn" then
    local s = function_slot(c, owner, l.fn, "when")
    c.leaves[#c.leaves + 1] = { kind = "mask", field = s }
    c.leaf_nodes[#c.leaves] = l
    return #c.leaves
  end
  local s, info = field_slot(c, owner, l)
  if s == nil then return nil end
  local need = NEEDS[l.t]
  if not c.record_mode and info.source ~= "absent" and need ~= "any" and not READS[need][info.type] then
    problem(c, owner, "field '%s' is %s field; %s", l.field, article(info.type), needs_sentence(need, l.test))
    return nil
  end
  local leaf
  if l.t == "present" then
    leaf = { kind = "present", field = s, negate = l.negate or false }
  elseif l.t == "bool" then
    leaf = { kind = "bool", field = s, value = l.value }
  elseif l.t == "num" or l.t == "date" then
    leaf = { kind = "range", field = s, lo = l.lo, hi = l.hi, lo_open = l.lo_open or false,
      hi_open = l.hi_open or false, negate = l.negate or false }
  elseif l.t == "time" then
    leaf = { kind = "time", field = s, lo = l.lo, hi = l.hi, lo_open = l.lo_open or false,
      hi_open = l.hi_open or false }
  elseif l.t == "str" then
    leaf = { kind = "string", field = s, matcher = matcher(c, l.mode, l.values), negate = l.negate or false }
  else
    error("leadq.compiler: unknown leaf " .. tostring(l.t))
  end
  c.leaves[#c.leaves + 1] = leaf
  c.leaf_nodes[#c.leaves] = l
  return #c.leaves
end

-- Registers: one per rule, then one per disqualifier (each holds its condition), then temporaries,
-- reused as they free up so a long condition needs few.
local function temp_register(c)
  local r = c.free_regs[#c.free_regs]
  if r then
    c.free_regs[#c.free_regs] = nil
    return r
  end
  c.nregs = c.nregs + 1
  return c.nregs - 1
end

local OP = { leaf = 0, ["and"] = 1, ["or"] = 2, ["not"] = 3, const = 4 }

local function emit(c, code, dst, a, b)
  local ops = c.ops
  ops[#ops + 1] = code
  ops[#ops + 1] = dst
  ops[#ops + 1] = a or 0
  ops[#ops + 1] = b or 0
end

-- A condition tree as straight mask operations into register dst: leaves, then and/or/not over
-- registers (a leaf with a problem compiles to false, so the other problems are still found).
local function compile_cond(c, owner, node, dst)
  if node.op == nil then
    local li = compile_leaf(c, owner, node)
    if li then emit(c, OP.leaf, dst, li - 1) else emit(c, OP.const, dst, 0) end
    return
  end
  if node.op == "not" then
    compile_cond(c, owner, node.args[1], dst)
    emit(c, OP["not"], dst, dst)
    return
  end
  local combine = node.op == "all" and OP["and"] or OP["or"]
  compile_cond(c, owner, node.args[1], dst)
  for i = 2, #node.args do
    local t = temp_register(c)
    compile_cond(c, owner, node.args[i], t)
    emit(c, combine, dst, dst, t)
    c.free_regs[#c.free_regs + 1] = t
  end
  if node.op == "none" then emit(c, OP["not"], dst, dst) end
end

-- The rules, each its condition's ops (their range kept, for the pre-pass of a points function)
-- and its group: the declared groups, then one hidden group without caps for the rules that name
-- none. Returns groups and rules as the core reads them.
local function compile_rules(c)
  local spec = c.spec
  local groups, rules, hidden = {}, {}, nil
  for _, g in ipairs(spec.groups) do groups[#groups + 1] = { floor = g.floor, cap = g.cap, name = g.name } end
  for i, r in ipairs(spec.rules) do
    local owner = { kind = "rule", id = r.id, line = r.line }
    local begin = #c.ops / 4
    compile_cond(c, owner, r.when, i - 1)
    local g = r.group and spec.group_index[r.group]
    if not g then
      if not hidden then
        groups[#groups + 1] = { hidden = true, name = "" }
        hidden = #groups
      end
      g = hidden
    end
    local rule = { reg = i - 1, group = g - 1, points = r.points or 0, points_field = -1, op_begin = begin,
      op_end = #c.ops / 4 }
    if r.points_fn then
      rule.points_field = function_slot(c, owner, r.points_fn, "points", { rule = i - 1 }) - 1
    end
    rules[i] = rule
  end
  return groups, rules
end

-- The disqualifiers, each its condition into the register after the rules'.
local function compile_disqualifiers(c)
  local nrules, disq = #c.spec.rules, {}
  for i, d in ipairs(c.spec.disqualifiers) do
    compile_cond(c, { kind = "disqualifier", id = d.id, line = d.line }, d.when, nrules + i - 1)
    disq[i] = nrules + i - 1
  end
  return disq
end

-- Thresholds ascending, and the statuses the core counts: otherwise, each threshold's, then
-- "disqualified".
local function thresholds_and_statuses(spec)
  local thresholds, statuses = {}, { spec.otherwise }
  for i, t in ipairs(spec.thresholds) do
    thresholds[i] = t.at
    statuses[#statuses + 1] = t.status
  end
  statuses[#statuses + 1] = "disqualified"
  return thresholds, statuses
end

-- Grades (one or two, each a group's points against its levels) and the names of their codes: one
-- grade's names, or every pair of two grades' names ("A1"...), which must not repeat.
local function grades_and_names(c)
  local spec = c.spec
  local grades, grade_names = {}, {}
  for i, gr in ipairs(spec.grades) do
    local levels = {}
    for j, l in ipairs(gr.levels) do levels[j] = l.at end
    grades[i] = { group = spec.group_index[gr.group] - 1, levels = levels }
  end
  local function names_of(grade)
    local names = {}
    for _, l in ipairs(grade.levels) do names[#names + 1] = l.name end
    names[#names + 1] = grade.otherwise
    return names
  end
  if #spec.grades == 1 then
    grade_names = names_of(spec.grades[1])
  elseif #spec.grades == 2 then
    for _, x in ipairs(names_of(spec.grades[1])) do
      for _, y in ipairs(names_of(spec.grades[2])) do grade_names[#grade_names + 1] = x .. y end
    end
  end
  local seen = {}
  for _, n in ipairs(grade_names) do
    if seen[n] then
      c.problems[#c.problems + 1] = string_format("%s:%s: model '%s': grades: two grades are both named '%s'",
        spec.path, tostring(spec.line), spec.name, n)
    end
    seen[n] = true
  end
  return grades, grade_names
end

-- Functions that compute conditions run before those that compute points (which read them), each
-- kind in slot order.
local function order_prepass(prepass)
  table_sort(prepass, function(a, b)
    if (a.kind == "points") ~= (b.kind == "points") then return b.kind == "points" end
    return a.slot < b.slot
  end)
end

--[[ Compile `spec`.
  schema: nil for record mode, else a function(field) -> { type = lq type name, source = "lead"|
          "features"|"results"|"absent", column = name } or nil, plus schema_names (for suggestions).
  Returns desc (for core.program) or nil and the problems (every one found, not only the first). ]]
function _M.compile(spec, schema, schema_names)
  local c = new_compilation(spec, schema, schema_names)
  if c.record_mode then infer_record_kinds(c) end
  local groups, rules = compile_rules(c)
  local disq = compile_disqualifiers(c)
  local thresholds, statuses = thresholds_and_statuses(spec)
  local grades, grade_names = grades_and_names(c)
  if #c.problems > 0 then return nil, c.problems end
  order_prepass(c.prepass)

  local rule_ids, disq_ids, disq_reasons = {}, {}, {}
  for i, r in ipairs(spec.rules) do rule_ids[i] = r.id end
  for i, d in ipairs(spec.disqualifiers) do
    disq_ids[i] = d.id
    disq_reasons[i] = d.reason
  end

  return {
    name = spec.name,
    record_mode = c.record_mode,
    fields = c.slots,
    reader = c.record_mode and record_reader(c.slots) or nil,
    writer = c.record_mode and answer_writer(groups) or nil,
    leaves = c.leaves,
    leaf_nodes = c.leaf_nodes,   -- the spec's test behind each leaf (explain reads its facts by it)
    matchers = c.matchers,
    ops = c.ops,
    nregs = c.nregs,
    rules = rules,
    groups = groups,
    disq = disq,
    thresholds = thresholds,
    grades = grades,
    prepass = c.prepass,
    statuses = statuses,
    grade_names = grade_names,
    rule_ids = rule_ids,
    disq_ids = disq_ids,
    disq_reasons = disq_reasons,
  }
end

return _M
