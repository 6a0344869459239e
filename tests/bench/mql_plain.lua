-- The bench baseline: rules/mql.lua written by hand as plain Lua over Lua tables, the way a Lua
-- programmer would without leadq. One lead is a table of fields (strings, numbers, booleans; a time is
-- seconds since the epoch; missing = nil). Keep it faithful to rules/mql.lua: bench_score.lua and
-- tests/test_rules.lua check on a sample that it gives the same totals, statuses and grades as leadq.
local lower, find, byte = string.lower, string.find, string.byte
local max, min = math.max, math.min

local M = {}

local function read_list(path)
  local set = {}
  for line in io.lines(path) do
    local value = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
    if value ~= "" then set[lower(value)] = true end
  end
  return set
end

local function set_of(values)
  local set = {}
  for _, v in ipairs(values) do set[lower(v)] = true end
  return set
end

-- Is byte b a word character (ASCII letter or digit, or any byte of a UTF-8 sequence)?
local function is_word_byte(b)
  return b ~= nil and ((b >= 48 and b <= 57) or (b >= 97 and b <= 122) or (b >= 65 and b <= 90) or b >= 128)
end

-- Does `text` (lowercased) hold any of `words` as a whole word?
local function has_word(text, words)
  for i = 1, #words do
    local w = words[i]
    local from = 1
    while true do
      local s, e = find(text, w, from, true)
      if not s then break end
      if not is_word_byte(byte(text, s - 1)) and not is_word_byte(byte(text, e + 1)) then return true end
      from = s + 1
    end
  end
  return false
end

local function contains_any(text, parts)
  for i = 1, #parts do
    if find(text, parts[i], 1, true) then return true end
  end
  return false
end

-- rules_dir: where mql.lua's list files are; as_of: scoring time, seconds since the epoch.
-- Returns score(lead) -> total, status, grade, fit, engagement, negative.
function M.new(rules_dir, as_of)
  local target_industries = set_of { "Software", "IT Services", "Financial Services", "Professional Services",
                                     "Telecommunications", "Media" }
  local target_countries = set_of { "US", "GB", "CA", "AU", "DE", "NL", "IE", "SE", "DK", "NO", "CH" }
  local free_email = read_list(rules_dir .. "/lists/free_email_domains.txt")
  local competitors = read_list(rules_dir .. "/lists/competitors.txt")
  local competitor_names = set_of { "ScoreForce", "LeadLyft", "FunnelWise", "PipelinePro", "QualifyHQ" }
  local fake_domains = set_of { "mailinator.com", "example.com", "test.com", "asdf.com", "fake.com", "xxx.com",
                                "none.com", "a.com" }
  local junk_companies = set_of { "n/a", "na", "none", "-", "test", "asdf", "xxx", "self" }
  local buyer_departments = set_of { "marketing", "sales", "executive" }
  local exec_words = { "chief", "ceo", "cmo", "cro", "founder", "owner" }
  local vp_words = { "vp", "svp", "vice president" }
  local director_words = { "director", "head of" }
  local buyer_words = { "marketing", "demand generation", "growth", "revenue", "sales" }
  local seeker_parts = { "job seeker", "seeking", "looking for", "open to work", "unemployed",
                         "between jobs", "career changer", "recent graduate" }
  local student_words = { "student", "intern", "phd candidate" }

  return function(lead)
    local title = lead.title
    title = title and lower(title)
    local seniority = lead.seniority
    seniority = seniority and lower(seniority)
    local domain = lead.email_domain
    domain = domain and lower(domain)
    local company = lead.company
    company = company and lower(company)

    -- disqualifiers, in the model's order
    local disqualified
    if (domain and competitors[domain]) or (company and competitor_names[company]) then
      disqualified = "competitor"
    elseif seniority == "student" or (title and has_word(title, student_words)) then
      disqualified = "student"
    elseif domain == "helixrev.com" then
      disqualified = "internal"
    elseif domain and fake_domains[domain] then
      disqualified = "fake e-mail"
    end

    -- fit
    local fit = 0
    if seniority == "c_level" or (not seniority and title and has_word(title, exec_words)) then fit = fit + 20 end
    if seniority == "vp" or (not seniority and title and has_word(title, vp_words)) then fit = fit + 18 end
    if seniority == "director" or (not seniority and title and has_word(title, director_words)) then
      fit = fit + 12
    end
    if seniority == "manager" then fit = fit + 6 end
    local department = lead.department
    if department then
      if buyer_departments[lower(department)] then fit = fit + 8 end
    elseif title and has_word(title, buyer_words) then
      fit = fit + 8
    end
    local employees = lead.employees
    if employees then
      if employees >= 200 and employees <= 4999 then fit = fit + 15 end
      if employees >= 5000 then fit = fit + 10 end
      if employees >= 50 and employees <= 199 then fit = fit + 5 end
    end
    local industry = lead.industry
    if industry and target_industries[lower(industry)] then fit = fit + 10 end
    local country = lead.country
    if country and target_countries[lower(country)] then fit = fit + 5 end
    local budget = lead.budget
    if budget then
      if budget >= 25000 then fit = fit + 10 end
      if budget >= 5000 and budget < 25000 then fit = fit + 5 end
    end
    fit = min(fit, 50)

    -- engagement
    local engagement = 0
    local created = lead.created_at
    local days = created and (as_of - created) / 86400
    if days and days >= 0 and days <= 30 then engagement = engagement + 10 end
    local source = lead.source
    source = source and lower(source)
    if source == "referral" or source == "partner" then engagement = engagement + 20 end
    if source == "event" or source == "webinar" then engagement = engagement + 10 end
    local timeline = lead.timeline
    timeline = timeline and lower(timeline)
    if timeline == "0-3 months" or timeline == "3-6 months" then engagement = engagement + 15 end
    engagement = min(engagement, 60)

    -- negative
    local negative = 0
    if domain and free_email[domain] then negative = negative - 15 end
    if title and contains_any(title, seeker_parts) then negative = negative - 30 end
    if employees and employees < 10 then negative = negative - 10 end
    if company == nil then negative = negative - 10 end
    if company and junk_companies[company] then negative = negative - 20 end
    if timeline == "no plans" then negative = negative - 10 end
    if days and days > 180 then negative = negative - 5 end
    negative = max(negative, -60)

    local total = fit + engagement + negative
    local status
    if disqualified then
      status = "disqualified"
    elseif total >= 60 then
      status = "mql"
    elseif total >= 30 then
      status = "nurture"
    else
      status = "cold"
    end
    local letter = fit >= 40 and "A" or fit >= 28 and "B" or fit >= 15 and "C" or "D"
    local digit = engagement >= 35 and "1" or engagement >= 20 and "2" or engagement >= 10 and "3" or "4"
    return total, status, letter .. digit, fit, engagement, negative, disqualified
  end
end

return M
