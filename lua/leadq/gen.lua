-- leadq.gen: synthetic leads, their events, funnel transitions and spend, written as CSV.
--
--   local gen = require("leadq.gen")
--   local summary = gen.generate{ leads = 100000, seed = 7, out = "build/sample" }
--   local mem = gen.generate{ leads = 500, seed = 7 }      -- no out: mem.csv.leads etc. are strings
--
-- The same seed gives the same bytes under Lua 5.4, 5.3 and LuaJIT: every random draw comes
-- from leadq.core.random (C), Lua only adds, multiplies, divides and floors, and every number
-- written is a whole number (or spend, formatted "%.2f"). Times span the twelve months that
-- end on 2026-10-31, never "now".
--
-- Each lead has hidden traits: a persona (buyer, student, job seeker, competitor, bad data,
-- bot, internal), a fit in [0, 1] from its firmographics and an intent in [0, 1]. Events follow
-- intent and persona; the funnel follows fit, intent, BANT answers and the engagement of the
-- lead's own events, so that a scoring model has something true to find.
--
-- The files (an empty field is a missing value; times are ISO 8601 UTC, "2026-03-04T10:20:30Z"):
--   leads.csv        id (L0000001...), email, email_domain, first_name, title, seniority
--                    (c_level vp director manager individual entry student), department (marketing
--                    sales it engineering finance operations hr product customer_success executive),
--                    company, employees (whole number), industry, country (ISO 3166 alpha-2), source
--                    (organic paid_search paid_social email webinar event referral partner direct),
--                    campaign, created_at, budget (USD, whole number), timeline (0-3 months,
--                    3-6 months, 6-12 months, 12+ months, no plans)
--   events.csv       lead_id, type (see _M.event_types), at, value (seconds on the page for
--                    page_view, pricing_view and careers_view; minutes for webinar_attended),
--                    page, asset (content_download), campaign (e-mail and webinar events)
--   transitions.csv  lead_id, stage (lead mql sal sql opportunity customer disqualified nurture), at,
--                    reason (disqualified and nurture), owner (the SDR or AE, from sal on)
--   spend.csv        source, month (2026-03), spend (USD, two decimals)
-- Negative signals on purpose: personal and competitor e-mail domains, students, job seekers,
-- junk form fills, bots (hundreds of page views in seconds), staff of the seller (helixrev.com),
-- the same person twice, mail scanners clicking within seconds of an open.

local core = require("leadq.core")
local raise = require("leadq.util").raise   -- errors in the caller's terms

local floor = math.floor
local concat = table.concat
local format = string.format
local open = io.open
local type, pairs, ipairs, error, tostring = type, pairs, ipairs, error, tostring
local os_remove, os_rename, os_clock, os_execute = os.remove, os.rename, os.clock, os.execute

local _M = { _VERSION = "0.1.0" }

local Random = getmetatable(core.random(0)).__index
local Sampler = getmetatable(core.sampler({ 1 })).__index
local uniform, int, chance = Random.uniform, Random.int, Random.chance
local lognormal = Random.lognormal
local draw = Sampler.draw

-- Column lists, in file order; the tests and the docs read them from here.
_M.columns = {
  leads = { "id", "email", "email_domain", "first_name", "title", "seniority", "department",
            "company", "employees", "industry", "country", "source", "campaign", "created_at",
            "budget", "timeline" },
  events = { "lead_id", "type", "at", "value", "page", "asset", "campaign" },
  transitions = { "lead_id", "stage", "at", "reason", "owner" },
  spend = { "source", "month", "spend" },
}
_M.files = { "leads", "events", "transitions", "spend" }

---------------------------------------------------------------------------------------------
-- Calendar: times are whole seconds since 2025-11-01T00:00:00Z, the first of the 365 days.

local function days_from_civil(y, m, d)   -- days since 1970-01-01 (H. Hinnant's algorithm)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local NDAYS = 365
local LAST_DAY = days_from_civil(2026, 10, 31)
local FIRST_DAY = LAST_DAY - NDAYS + 1
local T_LAST = NDAYS * 86400 - 1
_M.first_day, _M.last_day = "2025-11-01", "2026-10-31"
_M.epoch_offset = FIRST_DAY * 86400     -- add to a generator time to get Unix seconds

local DAY_PREFIX = {}     -- [day + 1] = "2026-03-04T"
local DAY_MONTH = {}      -- [day + 1] = month index 1..12
local MONTHS = {}         -- [month] = "2026-03"
local MONTH_TAG = {}      -- [month] = "2026_03", for campaign names
local MONTH_QUARTER = {}  -- [month] = index into QUARTER_EVENT
local DAY_WEIGHTS = {}
do
  local last_month
  for day = 0, NDAYS - 1 do
    local z = FIRST_DAY + day
    local y, m, d = civil_from_days(z)
    DAY_PREFIX[day + 1] = format("%04d-%02d-%02dT", y, m, d)
    local key = format("%04d-%02d", y, m)
    if key ~= last_month then
      MONTHS[#MONTHS + 1] = key
      MONTH_TAG[#MONTHS] = format("%04d_%02d", y, m)
      MONTH_QUARTER[#MONTHS] = floor(((y - 2025) * 12 + m - 10) / 3) + 1   -- Q4 2025 = 1
      last_month = key
    end
    DAY_MONTH[day + 1] = #MONTHS
    -- more leads as the year goes on, few at weekends, a dip over the year-end holidays
    local weekday = (z + 4) % 7                   -- 0 = Sunday
    local w = (1000 + 2 * day) * ((weekday == 0 or weekday == 6) and 30 or 100)
    if (m == 12 and d >= 20) or (m == 1 and d <= 2) then w = w / 2 end
    DAY_WEIGHTS[day + 1] = w
  end
end

local TIME_OF_DAY = {}    -- [second + 1] = "10:20:30Z"
for s = 0, 86399 do
  TIME_OF_DAY[s + 1] = format("%02d:%02d:%02dZ", floor(s / 3600), floor(s / 60) % 60, s % 60)
end

local function iso(t)
  local day = floor(t / 86400)
  return DAY_PREFIX[day + 1] .. TIME_OF_DAY[t - day * 86400 + 1]
end
_M.iso = iso

local DAY_SAMPLER = core.sampler(DAY_WEIGHTS)
local HOUR_WEIGHTS = { 2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 19, 16, 17, 18, 17, 14, 11, 8, 6, 5, 4, 3, 2 }
local HOUR_SAMPLER = core.sampler(HOUR_WEIGHTS)

---------------------------------------------------------------------------------------------
-- Vocabulary

local function csv_field(s)
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- A weighted choice: { {value, weight}, ... } -> { values = {...}, sampler = s }
local function choice(pairs_list)
  local values, weights = {}, {}
  for i, p in ipairs(pairs_list) do
    values[i], weights[i] = p[1], p[2]
  end
  return { values = values, weights = weights, sampler = core.sampler(weights) }
end

local function pick(c, rng)
  return c.values[draw(c.sampler, rng)]
end

local function any(list, rng)
  return list[int(rng, 1, #list)]
end

local FIRST_NAMES = {
  "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
  "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Daniel", "Karen",
  "Matthew", "Emily", "Anthony", "Emma", "Mark", "Olivia", "Paul", "Sophia", "Steven", "Hannah",
  "Andrew", "Laura", "Kevin", "Anna", "Brian", "Julia", "Carlos", "Maria", "Juan", "Ana", "Luis",
  "Sofia", "Pedro", "Lucia", "Miguel", "Camila", "Hans", "Petra", "Klaus", "Katrin", "Lukas", "Lena",
  "Pierre", "Camille", "Louis", "Chloe", "Hugo", "Manon", "Raj", "Priya", "Amit", "Ananya", "Arjun",
  "Divya", "Wei", "Li", "Chen", "Mei", "Hiroshi", "Yuki", "Kenji", "Aiko", "Ahmed", "Fatima", "Omar",
  "Leila", "Lars", "Ingrid", "Sven", "Astrid", "Piotr", "Agnieszka", "Marco", "Giulia", "Luca",
  "Chiara", "Noah", "Ava", "Liam", "Mia", "Ethan", "Isabella", "Lucas", "Amelia", "Oliver",
  "Charlotte", "Jack", "Grace", "Daniela", "Tomasz",
}
local LAST_NAMES = {
  "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
  "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore",
  "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez",
  "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen",
  "hill", "flores", "green", "adams", "nelson", "baker", "hall", "rivera", "campbell", "mitchell",
  "carter", "roberts", "muller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner",
  "becker", "dubois", "bernard", "moreau", "laurent", "lefebvre", "rossi", "russo", "ferrari",
  "esposito", "bianchi", "patel", "sharma", "singh", "kumar", "gupta", "wang", "zhang", "liu",
  "yang", "tanaka", "suzuki", "sato", "watanabe", "kim", "park", "choi", "silva", "santos",
  "oliveira", "souza", "costa", "jensen", "nielsen", "hansen", "andersson", "johansson", "larsen",
  "kowalski", "nowak", "murphy", "kelly", "okafor", "mensah", "cohen", "levi", "novak", "horvat",
}
local FIRST_LOWER = {}
for i, n in ipairs(FIRST_NAMES) do FIRST_LOWER[i] = n:lower() end

local INDUSTRIES = {
  "Software", "IT Services", "Financial Services", "Healthcare", "Manufacturing", "Retail",
  "Professional Services", "Education", "Telecommunications", "Media", "Insurance", "Logistics",
  "Real Estate", "Energy", "Government", "Non-profit", "Hospitality", "Construction", "Automotive",
  "Pharmaceuticals",
}
local INDUSTRY_SAMPLER = core.sampler({ 200, 120, 90, 75, 65, 55, 50, 42, 36, 32, 28, 25, 22, 20, 18, 16,
                                        15, 14, 13, 12 })
local INDUSTRY_FIT = { 1.0, 0.9, 0.8, 0.55, 0.5, 0.5, 0.85, 0.3, 0.7, 0.7, 0.6, 0.5, 0.4, 0.45, 0.2,
                       0.2, 0.35, 0.35, 0.45, 0.55 }
local INDUSTRY_WORDS = {
  { "Software", "Technologies", "Labs", "Systems" }, { "IT Solutions", "Consulting", "Digital" },
  { "Capital", "Financial", "Bank", "Payments" }, { "Health", "Medical", "Care" },
  { "Industries", "Manufacturing", "Components" }, { "Retail", "Stores", "Brands" },
  { "Partners", "Advisory", "Group" }, { "Learning", "Academy", "Education" },
  { "Telecom", "Networks", "Communications" }, { "Media", "Studios", "Publishing" },
  { "Insurance", "Assurance", "Mutual" }, { "Logistics", "Freight", "Shipping" },
  { "Properties", "Realty", "Estates" }, { "Energy", "Power", "Renewables" },
  { "County Services", "Public Works", "Agency" }, { "Foundation", "Trust", "Alliance" },
  { "Hotels", "Hospitality", "Resorts" }, { "Construction", "Builders", "Engineering" },
  { "Motors", "Automotive", "Mobility" }, { "Pharma", "Therapeutics", "Biosciences" },
}

local COUNTRIES = { "US", "GB", "DE", "CA", "FR", "IN", "AU", "NL", "BR", "ES", "IT", "SE", "JP", "SG",
                    "MX", "PL", "IE", "CH", "BE", "DK", "NO", "FI", "ZA", "AE", "IL", "NZ", "AT", "PT",
                    "AR", "KR" }
local COUNTRY_SAMPLER = core.sampler({ 400, 120, 70, 60, 45, 40, 35, 30, 26, 24, 20, 17, 16, 15, 14, 13,
                                       12, 11, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 5 })
local COUNTRY_FIT, COUNTRY_REGION, COUNTRY_TLD, COUNTRY_LEGAL = {}, {}, {}, {}
do
  local tier1 = { US = 1, GB = 1, CA = 1, AU = 1, DE = 1, NL = 1, IE = 1, SE = 1, DK = 1, NO = 1, CH = 1 }
  local tier2 = { FR = 1, ES = 1, IT = 1, BE = 1, AT = 1, FI = 1, SG = 1, NZ = 1, IL = 1, JP = 1 }
  local amer = { US = 1, CA = 1, BR = 1, MX = 1, AR = 1 }
  local apac = { IN = 1, AU = 1, JP = 1, SG = 1, NZ = 1, KR = 1 }
  local tld = { GB = ".co.uk", DE = ".de", FR = ".fr", NL = ".nl", ES = ".es", IT = ".it", SE = ".se",
                JP = ".jp", PL = ".pl", CH = ".ch", BE = ".be", DK = ".dk", NO = ".no", FI = ".fi",
                AT = ".at", BR = ".com.br", AU = ".com.au", IN = ".in", MX = ".mx", NZ = ".co.nz" }
  local legal = { US = { "", "", "", " Inc.", " Inc.", ", Inc.", " LLC", " Corp." },
                  GB = { "", " Ltd", " Ltd", " plc" }, DE = { " GmbH", " GmbH", " AG", "" },
                  FR = { " SA", " SAS", "" }, NL = { " B.V.", "" }, CA = { "", " Inc.", " Ltd." },
                  AU = { " Pty Ltd", "" }, IE = { " Ltd", "" }, SE = { " AB", "" } }
  for i, c in ipairs(COUNTRIES) do
    COUNTRY_FIT[i] = tier1[c] and 1.0 or tier2[c] and 0.75 or 0.45
    COUNTRY_REGION[i] = amer[c] and 1 or apac[c] and 3 or 2     -- 1 Americas, 2 EMEA, 3 APAC
    COUNTRY_TLD[i] = tld[c] or ".com"
    COUNTRY_LEGAL[i] = legal[c] or { "" }
  end
end

local NAME_PREFIX = {
  "Acme", "Apex", "Blue", "Bright", "Cedar", "Clear", "Core", "Crest", "Delta", "Eagle", "Echo",
  "Ever", "First", "Fusion", "Global", "Golden", "Granite", "Green", "Harbor", "Horizon", "Iron",
  "Keystone", "Lake", "Liberty", "Lumen", "Maple", "Meridian", "Metro", "Nexus", "North", "Nova",
  "Oak", "Omni", "Orbit", "Pacific", "Peak", "Pine", "Pioneer", "Prime", "Quantum", "Red", "River",
  "Rock", "Sage", "Sierra", "Silver", "Sky", "Solar", "Spark", "Star", "Stone", "Summit", "Sun",
  "Terra", "True", "Union", "Vertex", "Vista", "West", "Zen",
}
local NAME_MIDDLE = {
  "bridge", "field", "point", "line", "wave", "works", "stack", "path", "gate", "logic", "soft",
  "tech", "data", "cloud", "labs", "grid", "net", "scale", "forge", "light", "mark", "port", "view",
  "ware", "wise", "base", "hub", "craft", "shift", "flow", "form", "sys", "byte", "cast", "link",
  "mind", "sense", "tide", "ridge", "well",
}
local NAME_QUALIFIER = { "Group", "Holdings", "International", "Solutions", "Global", "Worldwide" }

local PERSONAL_DOMAINS = choice({
  { "gmail.com", 50 }, { "yahoo.com", 12 }, { "hotmail.com", 10 }, { "outlook.com", 9 },
  { "icloud.com", 5 }, { "aol.com", 2 }, { "protonmail.com", 2 }, { "gmx.de", 3 }, { "web.de", 2 },
  { "yahoo.co.uk", 2 }, { "hotmail.co.uk", 1 }, { "live.com", 2 }, { "mail.ru", 1 }, { "qq.com", 1 },
  { "orange.fr", 1 }, { "free.fr", 1 },
})
_M.personal_domains = {}
for _, d in ipairs(PERSONAL_DOMAINS.values) do _M.personal_domains[#_M.personal_domains + 1] = d end

local COMPETITORS = {   -- name, domain, employees, country index
  { "ScoreForce", "scoreforce.com", 850, 1 }, { "LeadLyft", "leadlyft.io", 120, 1 },
  { "FunnelWise", "funnelwise.com", 430, 2 }, { "PipelinePro", "pipelinepro.io", 60, 1 },
  { "QualifyHQ", "qualifyhq.com", 2300, 3 },
}
_M.competitor_domains = {}
for i, c in ipairs(COMPETITORS) do _M.competitor_domains[i] = c[2] end
local OWN_COMPANY, OWN_DOMAIN, OWN_EMPLOYEES = "Helix Revenue Cloud", "helixrev.com", 350
_M.internal_domain = OWN_DOMAIN

local UNIVERSITIES = {   -- name, domain, employees, country index
  { "Stanford University", "stanford.edu", 16000, 1 }, { "University of Michigan", "umich.edu", 30000, 1 },
  { "Arizona State University", "asu.edu", 18000, 1 }, { "New York University", "nyu.edu", 19000, 1 },
  { "University of Texas at Austin", "utexas.edu", 24000, 1 },
  { "University of Manchester", "manchester.ac.uk", 12000, 2 },
  { "King's College London", "kcl.ac.uk", 8000, 2 }, { "TU Munich", "tum.de", 11000, 3 },
  { "University of Toronto", "utoronto.ca", 21000, 4 }, { "Sorbonne University", "sorbonne-universite.fr", 9000, 5 },
  { "IIT Delhi", "iitd.ac.in", 3000, 6 }, { "University of Melbourne", "unimelb.edu.au", 9500, 7 },
}

-- Seniority, department and title
local SENIORITIES = { "c_level", "vp", "director", "manager", "individual", "entry" }
local SENIORITY_FIT = { 0.85, 1.0, 0.95, 0.7, 0.35, 0.15 }
local SENIORITY_BY_SIZE = {     -- employees < 10, < 50, < 1000, more
  core.sampler({ 45, 3, 5, 17, 22, 8 }), core.sampler({ 18, 6, 10, 22, 32, 12 }),
  core.sampler({ 5, 7, 14, 24, 37, 13 }), core.sampler({ 2, 6, 14, 25, 39, 14 }),
}
local DEPARTMENTS = { "marketing", "sales", "it", "engineering", "finance", "operations", "hr", "product",
                      "customer_success", "executive" }
local DEPARTMENT_LABEL = { "Marketing", "Sales", "IT", "Engineering", "Finance", "Operations",
                           "Human Resources", "Product", "Customer Success", "Executive" }
local DEPARTMENT_FIT = { 1.0, 0.9, 0.5, 0.3, 0.3, 0.6, 0.1, 0.4, 0.4, 0.9 }
local DEPARTMENT_STAFF = core.sampler({ 30, 18, 12, 11, 6, 9, 4, 5, 5, 0 })
local DEPARTMENT_CHIEF = core.sampler({ 12, 10, 6, 6, 8, 6, 3, 3, 1, 45 })

local TITLES = {}      -- [seniority][department] = { csv-ready titles }
do
  local chief = {
    { "CMO", "Chief Marketing Officer" }, { "CRO", "Chief Revenue Officer", "Chief Sales Officer" },
    { "CIO", "Chief Information Officer" }, { "CTO", "Chief Technology Officer" },
    { "CFO", "Chief Financial Officer" }, { "COO", "Chief Operating Officer" },
    { "CHRO", "Chief People Officer" }, { "CPO", "Chief Product Officer" },
    { "Chief Customer Officer" },
    { "CEO", "Founder", "Co-Founder", "Owner", "President", "Managing Director", "Founder & CEO" },
  }
  local staff = {
    { "Marketing Specialist", "Demand Generation Specialist", "Marketing Operations Specialist",
      "Content Marketer", "Growth Marketer", "Product Marketing Specialist", "SEO Specialist",
      "Marketing Automation Specialist" },
    { "Account Executive", "Sales Representative", "Business Development Representative",
      "Sales Operations Analyst", "Revenue Operations Analyst", "Account Manager" },
    { "Systems Administrator", "IT Specialist", "Data Analyst", "Solutions Architect" },
    { "Software Engineer", "Senior Software Engineer", "Data Engineer", "DevOps Engineer" },
    { "Financial Analyst", "Accountant", "Controller" },
    { "Operations Analyst", "Business Analyst", "Project Manager" },
    { "Recruiter", "HR Generalist", "Talent Partner" },
    { "Product Manager", "Product Designer", "Product Owner" },
    { "Customer Success Manager", "Support Specialist", "Implementation Consultant" },
  }
  local junior = {
    { "Marketing Coordinator", "Marketing Assistant", "Junior Marketing Associate", "Social Media Coordinator" },
    { "Sales Development Representative", "Sales Assistant", "Junior Account Executive" },
    { "IT Support Technician", "Junior Data Analyst", "Help Desk Analyst" },
    { "Junior Developer", "QA Tester", "Junior Software Engineer" },
    { "Accounts Assistant", "Bookkeeper", "Junior Analyst" },
    { "Operations Coordinator", "Office Manager", "Administrative Assistant" },
    { "HR Assistant", "Recruiting Coordinator" },
    { "Associate Product Manager", "UX Researcher" },
    { "Customer Support Associate", "Customer Support Representative" },
  }
  local extra_managers = {
    { "Demand Generation Manager", "Marketing Operations Manager", "Product Marketing Manager",
      "Digital Marketing Manager", "Growth Manager" },
    { "Revenue Operations Manager", "Sales Operations Manager", "Inside Sales Manager" },
    { "IT Manager" }, { "Engineering Manager" }, { "Finance Manager" }, {}, { "Talent Acquisition Manager" },
    { "Senior Product Manager" }, { "Customer Success Lead" },
  }
  local function fill(list, templates, label, extras)
    for _, t in ipairs(templates) do list[#list + 1] = csv_field(format(t, label)) end
    for _, t in ipairs(extras or {}) do list[#list + 1] = csv_field(t) end
    return list
  end
  TITLES[1], TITLES[2], TITLES[3], TITLES[4], TITLES[5], TITLES[6] = {}, {}, {}, {}, {}, {}
  for d = 1, #DEPARTMENTS do
    local label = DEPARTMENT_LABEL[d]
    if d == 7 then label = "People" end
    TITLES[1][d] = fill({}, {}, label, chief[d])
    if d <= 9 then
      TITLES[2][d] = fill({}, { "VP of %s", "VP %s", "Vice President, %s", "SVP %s" }, label)
      TITLES[3][d] = fill({}, { "Director of %s", "%s Director", "Head of %s", "Senior Director, %s" }, label)
      TITLES[4][d] = fill({}, { "%s Manager", "Senior %s Manager", "%s Team Lead" }, label, extra_managers[d])
      TITLES[5][d] = fill({}, {}, label, staff[d])
      TITLES[6][d] = fill({}, {}, label, junior[d])
    end
  end
end
local STUDENT_TITLES = { "Student", "Student", "Intern", "Marketing Intern", "Graduate Student",
                         "MBA Student", "PhD Candidate", "Sales Intern", "student" }
local JOB_SEEKER_TITLES = { "Looking for new opportunities", "Job Seeker", "Open to Work", "Unemployed",
                            "Recent Graduate", "Seeking Employment", "Career Changer", "Between Jobs" }
local BAD_TITLES = { "asdf", "x", "-", "n/a", "test", ".", "none", "N/A", "abc", "xxx" }
local BAD_NAMES = { "Test", "asdf", "xxx", "N/A", "Mickey", "a", "Donald", "Qwerty", "test" }
local BAD_COMPANIES = { "n/a", "none", "-", "test", "asdf", "Self", "na", "xxx" }
local BAD_EMAILS = { "test@test.com", "asdf@asdf.com", "noreply@example.com", "a@a.com",
                     "test123@mailinator.com", "fake@fake.com", "xxx@xxx.com", "info@none.com" }
local GIBBERISH_NAMES = { "Xzqv", "Bot", "Jkjhg", "Hdhdh", "Crawler", "Qqq" }

local TIMELINES = { "0-3 months", "3-6 months", "6-12 months", "12+ months", "no plans" }
local TIMELINE_BY_INTENT = {    -- intent bands: < 0.2, < 0.45, < 0.7, more
  core.sampler({ 3, 10, 25, 32, 30 }), core.sampler({ 10, 25, 30, 22, 13 }),
  core.sampler({ 30, 35, 22, 9, 4 }), core.sampler({ 55, 28, 12, 4, 1 }),
}

-- Personas (6 is the bot: only the event engine treats it apart)
local BUYER, STUDENT, JOB_SEEKER, COMPETITOR, BAD_DATA, INTERNAL = 1, 2, 3, 4, 5, 7
local PERSONA_SAMPLER = core.sampler({ 850, 50, 40, 15, 35, 5, 5 })
local PERSONA_REASON = { nil, "student", "job_seeker", "competitor", "bad_data", "bot", "internal" }

-- Sources and their campaigns
local SOURCES = { "organic", "paid_search", "paid_social", "email", "webinar", "event", "referral",
                  "partner", "direct" }
_M.sources = SOURCES
local SOURCE_BY_PERSONA = {
  core.sampler({ 22, 18, 11, 9, 8, 6, 8, 6, 12 }), core.sampler({ 40, 8, 25, 2, 10, 3, 2, 0, 10 }),
  core.sampler({ 45, 5, 15, 1, 2, 2, 5, 0, 25 }), core.sampler({ 30, 10, 5, 5, 25, 10, 0, 0, 15 }),
  core.sampler({ 25, 25, 30, 2, 3, 2, 1, 1, 11 }), core.sampler({ 50, 5, 5, 0, 0, 0, 0, 0, 40 }),
  core.sampler({ 20, 0, 0, 10, 10, 0, 0, 0, 60 }),
}
local SOURCE_INTENT = { 0, 0.02, -0.05, 0, 0.04, 0.06, 0.12, 0.08, 0.03 }
local COST_PER_LEAD = { 12, 85, 55, 8, 45, 220, 25, 90, 0 }   -- USD, spend.csv

local NEWSLETTER, WEBINAR, PRODUCT_UPDATE = {}, {}, {}
for m = 1, #MONTHS do
  NEWSLETTER[m] = "newsletter_" .. MONTH_TAG[m]
  WEBINAR[m] = "webinar_" .. MONTH_TAG[m]
  PRODUCT_UPDATE[m] = format("product_update_q%d", (MONTH_QUARTER[m] + 2) % 4 + 1)
end
local QUARTER_EVENT = { "event_b2b_marketing_expo_2025", "event_revops_summit_2026", "event_saas_connect_2026",
                        "event_demand_gen_live_2026", "event_b2b_marketing_expo_2026" }
local MONTH_EVENT = {}
for m = 1, #MONTHS do MONTH_EVENT[m] = QUARTER_EVENT[MONTH_QUARTER[m]] end

-- A campaign entry is a name, a per-month list of names, or "" (no campaign recorded).
local CAMPAIGNS = {
  choice({ { "", 70 }, { "blog", 20 }, { "seo_comparison_pages", 10 } }),
  choice({ { "ps_brand", 30 }, { "ps_generic_lead_scoring", 30 }, { "ps_competitor_terms", 20 },
           { "ps_revops_software", 20 } }),
  choice({ { "li_abm_enterprise", 30 }, { "li_lead_gen_ebook", 35 }, { "fb_retargeting", 20 },
           { "li_webinar_promo", 15 } }),
  choice({ { NEWSLETTER, 55 }, { "nurture_welcome", 25 }, { PRODUCT_UPDATE, 20 } }),
  choice({ { WEBINAR, 1 } }),
  choice({ { MONTH_EVENT, 85 }, { "event_regional_roadshow", 15 } }),
  choice({ { "customer_referral", 60 }, { "g2_reviews", 25 }, { "capterra", 15 } }),
  choice({ { "partner_northwind_consulting", 40 }, { "partner_bluepeak_agency", 35 },
           { "partner_reseller_emea", 25 } }),
  choice({ { "", 1 } }),
}

-- Events: the words and weights here, the algorithm in csrc/gen_events.c (the hot loop).
local EVENT_TYPES = { "page_view", "pricing_view", "content_download", "email_open", "email_click",
                      "webinar_registered", "webinar_attended", "demo_request", "form_fill", "unsubscribe",
                      "careers_view" }
_M.event_types = EVENT_TYPES

local function event_mix(weights_fn)     -- one list of type weights per intent band
  local bands = {}
  for b, ic in ipairs({ 0.05, 0.17, 0.35, 0.57, 0.85 }) do bands[b] = weights_fn(ic) end
  return bands
end

local PAGES = choice({
  { "/", 30 }, { "/product", 14 }, { "/product/scoring", 9 }, { "/product/routing", 6 },
  { "/product/analytics", 5 }, { "/integrations", 6 }, { "/integrations/salesforce", 4 },
  { "/integrations/hubspot", 4 }, { "/customers", 5 }, { "/customers/case-studies", 3 }, { "/about", 4 },
  { "/blog", 8 }, { "/blog/what-is-an-mql", 7 }, { "/blog/lead-scoring-models", 6 },
  { "/blog/bant-vs-meddic", 4 }, { "/blog/revops-metrics", 4 }, { "/blog/abm-playbook", 3 },
  { "/blog/intent-data", 3 }, { "/docs", 3 }, { "/docs/api", 2 }, { "/security", 2 }, { "/partners", 1 },
  { "/contact", 2 }, { "/resources", 3 }, { "/events", 1 },
})
local ASSETS = choice({
  { "ebook_lead_scoring_guide", 30 }, { "whitepaper_revops_benchmarks_2026", 18 },
  { "report_state_of_b2b_2026", 15 }, { "checklist_mql_sla", 12 }, { "case_study_northwind", 8 },
  { "template_icp_worksheet", 10 }, { "datasheet_platform", 7 },
})
ASSETS.pages = {}
for i, a in ipairs(ASSETS.values) do ASSETS.pages[i] = "/resources/" .. a:gsub("_", "-") end

local WEBINAR_INVITE = {}
for m = 1, #MONTHS do WEBINAR_INVITE[m] = "webinar_invite_" .. MONTH_TAG[m] end

local EVENT_CONFIG = {
  types = EVENT_TYPES,
  -- what the history's own lead score gave each event: MQL when 35 * fit plus these crosses a bar
  engagement = { 1, 6, 8, 1, 3, 5, 12, 40, 4, -15, -5 },
  mix = {    -- [persona][intent band]: type weights; webinar_attended only follows a registration
    event_mix(function(ic)
      return { 40, 1 + 10 * ic, 3 + 4 * ic, 22 - 8 * ic, 1 + ic, 1 + 3 * ic, 0, 0.1 + 3 * ic * ic,
               1 + 2 * ic, 1.2 * (1 - ic) * (1 - ic), 0.4 }
    end),
    event_mix(function() return { 50, 1, 8, 15, 3, 3, 0, 0.05, 1, 1, 6 } end),
    event_mix(function() return { 45, 0.5, 1, 8, 1, 0.5, 0, 0.02, 1, 1, 25 } end),
    event_mix(function() return { 50, 20, 10, 8, 2, 5, 0, 0.5, 1, 0.2, 0.5 } end),
    event_mix(function() return { 50, 1, 5, 5, 1, 0.5, 0, 0.05, 5, 0.5, 0.5 } end),
    event_mix(function() return { 90, 5, 3, 0, 0, 0, 0, 0, 0.5, 0, 2 } end),
    event_mix(function() return { 40, 10, 3, 10, 10, 5, 0, 10, 20, 0, 1 } end),
  },
  pages = PAGES,
  careers = choice({ { "/careers", 50 }, { "/careers/account-executive", 15 }, { "/careers/sdr", 15 },
                     { "/careers/software-engineer", 12 }, { "/careers/marketing-manager", 8 } }),
  assets = ASSETS,
  forms = choice({ { "/contact", 35 }, { "/trial", 30 }, { "/newsletter", 20 }, { "/demo", 15 } }),
  pricing = choice({ { "/pricing", 80 }, { "/pricing/enterprise", 20 } }),
  nurture = choice({ { "nurture_welcome", 1 }, { "nurture_track_2", 1 }, { "nurture_track_3", 1 },
                     { "nurture_reengage", 1 } }),
  hours = HOUR_WEIGHTS,
  email_kinds = { 40, 35, 10, 15 },   -- newsletter, nurture, product update, webinar invite
  webinar_page = "/webinars",
  demo_page = "/demo",
  first_day = FIRST_DAY,
  days = NDAYS,
  newsletter = NEWSLETTER,
  product_update = PRODUCT_UPDATE,
  webinar_invite = WEBINAR_INVITE,
  webinar = WEBINAR,
}

-- Sales team: SDRs accept MQLs, AEs own SQLs and opportunities; by region.
local SDRS = { { "Alex Rivera", "Jordan Lee", "Taylor Brooks" }, { "Sophie Martin", "Lukas Becker", "Emma Clarke" },
               { "Kenji Sato", "Priya Nair" } }
local AES = { { "Chris Morgan", "Dana Whitfield", "Sam Patel" }, { "Oliver Grant", "Clara Schulz" }, { "Mei Tan" } }

_M.stages = { "lead", "mql", "sal", "sql", "opportunity", "customer", "disqualified", "nurture" }

---------------------------------------------------------------------------------------------
-- Output: rows collect in a list and leave in large writes.

local FLUSH_ROWS = 4096

local function sink_open(dir, name)
  local s = { name = name, buf = {}, n = 0, rows = 0, chunks = nil }
  if dir then
    s.path = dir .. "/" .. name .. ".csv"
    s.tmp = s.path .. ".tmp"
    local f, err = open(s.tmp, "wb")
    if not f then return nil, err end
    s.file = f
  else
    s.chunks = {}
  end
  return s
end

local function sink_flush(s)
  if s.n == 0 then return end
  local text = concat(s.buf, "", 1, s.n)
  s.n = 0
  if s.file then
    local ok, err = s.file:write(text)
    if not ok then error(format("cannot write %s: %s", s.tmp, tostring(err)), 0) end
  else
    s.chunks[#s.chunks + 1] = text
  end
end

local function sink_put(s, row)
  local n = s.n + 1
  s.buf[n] = row
  s.n = n
  s.rows = s.rows + 1
  if n >= FLUSH_ROWS then sink_flush(s) end
end

-- Text of whole rows made elsewhere (already counted in s.rows).
local function sink_text(s, text)
  sink_flush(s)
  if s.file then
    local ok, err = s.file:write(text)
    if not ok then error(format("cannot write %s: %s", s.tmp, tostring(err)), 0) end
  else
    s.chunks[#s.chunks + 1] = text
  end
end

local function sink_close(s)
  sink_flush(s)
  s.rows = s.rows - 1          -- the header is not a row
  if s.file then
    local ok, err = s.file:close()
    s.file = nil
    if not ok then return nil, err end
    os_remove(s.path)
    local renamed, rerr = os_rename(s.tmp, s.path)
    if not renamed then return nil, rerr end
  else
    s.text = concat(s.chunks)
    s.chunks = nil
  end
  return true
end

local function sink_abort(s)
  if s.file then
    s.file:close()
    s.file = nil
    os_remove(s.tmp)
  end
end

---------------------------------------------------------------------------------------------
-- Companies: a pool the leads are drawn from, bigger companies more often.

local function size_bucket(employees)
  if employees < 10 then return 1 elseif employees < 50 then return 2 elseif employees < 1000 then return 3 end
  return 4
end

local function size_fit(employees)
  if employees < 10 then return 0.1 elseif employees < 50 then return 0.35
  elseif employees < 200 then return 0.7 elseif employees < 5000 then return 1.0 end
  return 0.75
end

local SIZE_WEIGHT = { 10, 15, 22, 32 }     -- by size_bucket: bigger companies bring more leads

local function make_companies(rng, count)
  local pool = { name = {}, domain = {}, industry = {}, country = {}, employees = {}, count = count }
  local used, weights = {}, {}
  for k = 1, count do
    local ind = draw(INDUSTRY_SAMPLER, rng)
    local cty = draw(COUNTRY_SAMPLER, rng)
    local base = any(NAME_PREFIX, rng) .. any(NAME_MIDDLE, rng)
    local words = INDUSTRY_WORDS[ind]
    local name = base .. " " .. any(words, rng)
    local slug, tld = base:lower(), COUNTRY_TLD[cty]
    local domain = slug .. tld
    local n = 1
    while used[domain] do
      n = n + 1
      domain = slug .. n .. tld
    end
    used[domain] = true
    if n > 1 then name = name .. " " .. NAME_QUALIFIER[(n - 2) % #NAME_QUALIFIER + 1] end
    name = name .. any(COUNTRY_LEGAL[cty], rng)
    local employees = floor(lognormal(rng, 150, 1.7)) + 1
    if employees > 400000 then employees = 400000 end
    pool.name[k] = csv_field(name)
    pool.domain[k] = domain
    pool.industry[k] = ind
    pool.country[k] = cty
    pool.employees[k] = employees
    weights[k] = SIZE_WEIGHT[size_bucket(employees)] + (employees >= 5000 and 15 or 0)
  end
  pool.sampler = core.sampler(weights)
  return pool
end

---------------------------------------------------------------------------------------------
-- One lead: fills the reusable record L and returns its leads.csv row.

local function email_local(rng, fi, last)
  local first = FIRST_LOWER[fi]
  local style = int(rng, 1, 20)
  if style <= 10 then return first .. "." .. last
  elseif style <= 14 then return first:sub(1, 1) .. last
  elseif style <= 16 then return first
  elseif style <= 18 then return first .. "_" .. last end
  return first .. last:sub(1, 1)
end

local function personal_email(rng, fi, last)
  local domain = pick(PERSONAL_DOMAINS, rng)
  local loc = email_local(rng, fi, last)
  if chance(rng, 0.45) then loc = loc .. int(rng, 1, 99) end
  if chance(rng, 0.1) then loc = loc .. int(rng, 1970, 2005) end
  return loc .. "@" .. domain, domain
end

local function buyer_title(rng, L, employees)
  local sen = draw(SENIORITY_BY_SIZE[size_bucket(employees or 30)], rng)
  local dept = draw(sen == 1 and DEPARTMENT_CHIEF or DEPARTMENT_STAFF, rng)
  local title = any(TITLES[sen][dept], rng)
  if chance(rng, 0.04) then title = title:lower() end      -- hand-typed titles
  L.sen, L.dept = sen, dept
  return title
end

local RECENT_BUYERS = 2000

local function make_lead(st, L, i)
  local rng = st.rng
  local persona = draw(PERSONA_SAMPLER, rng)
  L.persona = persona
  L.id = format("L%07d", i)
  local day = draw(DAY_SAMPLER, rng) - 1
  L.created = day * 86400 + (draw(HOUR_SAMPLER, rng) - 1) * 3600 + int(rng, 0, 3599)
  local month = DAY_MONTH[day + 1]
  local fi = int(rng, 1, #FIRST_NAMES)
  local first_name = FIRST_NAMES[fi]
  local last = any(LAST_NAMES, rng)
  L.sen, L.dept = nil, nil
  local email, domain
  local title, company, employees, ind, cty = "", "", nil, nil, nil
  local personal = false
  local seniority, department = "", ""

  -- some buyers fill a form again: a second lead with the same person behind it
  local ring = st.recent
  local dup = persona == BUYER and ring.n > 0 and chance(rng, 0.015) and ring[int(rng, 1, ring.n)]
  L.duplicate = dup and true or false
  if dup then
    email, domain, first_name, title, company = dup.email, dup.domain, dup.first_name, dup.title, dup.company
    employees, ind, cty, personal = dup.employees, dup.ind, dup.cty, dup.personal
    L.sen, L.dept = dup.sen, dup.dept
  elseif persona == BUYER or persona == INTERNAL or persona == COMPETITOR then
    local k
    if persona == BUYER then
      k = draw(st.companies.sampler, rng)
      local pool = st.companies
      company, domain, employees = pool.name[k], pool.domain[k], pool.employees[k]
      ind, cty = pool.industry[k], pool.country[k]
    elseif persona == COMPETITOR then
      local c = COMPETITORS[int(rng, 1, #COMPETITORS)]
      company, domain, employees, ind, cty = c[1], c[2], c[3], 1, c[4]
    else
      company, domain, employees, ind, cty = OWN_COMPANY, OWN_DOMAIN, OWN_EMPLOYEES, 1, 1
    end
    title = buyer_title(rng, L, employees)
    if persona == BUYER and chance(rng, 0.12) then
      personal = true
      email, domain = personal_email(rng, fi, last)
      if chance(rng, 0.5) then company, employees, ind = "", nil, nil end
    elseif persona == COMPETITOR and chance(rng, 0.15) then
      personal = true
      email, domain = personal_email(rng, fi, last)
    else
      email = email_local(rng, fi, last) .. "@" .. domain
    end
  elseif persona == STUDENT then
    title = any(STUDENT_TITLES, rng)
    seniority = "student"
    if title:find("Intern", 1, true) and chance(rng, 0.5) then L.dept = int(rng, 1, 2) end
    local u = UNIVERSITIES[int(rng, 1, #UNIVERSITIES)]
    if chance(rng, 0.45) then
      email, domain = email_local(rng, fi, last) .. "@" .. u[2], u[2]
    else
      personal = true
      email, domain = personal_email(rng, fi, last)
    end
    if chance(rng, 0.4) then company, employees, ind, cty = u[1], u[3], 8, u[4] end
  elseif persona == JOB_SEEKER then
    title = any(JOB_SEEKER_TITLES, rng)
    if chance(rng, 0.3) then seniority = "entry" end
    if chance(rng, 0.9) then
      personal = true
      email, domain = personal_email(rng, fi, last)
    else
      local pool = st.companies
      local k = draw(pool.sampler, rng)
      domain = pool.domain[k]
      email = email_local(rng, fi, last) .. "@" .. domain
    end
    if chance(rng, 0.2) then
      local pool = st.companies
      local k = draw(pool.sampler, rng)
      company, ind = pool.name[k], pool.industry[k]
    end
  elseif persona == BAD_DATA then
    first_name = any(BAD_NAMES, rng)
    title = chance(rng, 0.7) and any(BAD_TITLES, rng) or ""
    email = any(BAD_EMAILS, rng)
    domain = email:match("@(.*)$")
    company = any(BAD_COMPANIES, rng)
    local r = int(rng, 1, 4)
    if r == 1 then employees = 1 elseif r == 2 then employees = 999999 end
  else -- BOT
    first_name = any(GIBBERISH_NAMES, rng)
    local pool = st.companies
    domain = chance(rng, 0.5) and pool.domain[draw(pool.sampler, rng)] or "mailinator.com"
    local letters = {}
    for j = 1, 8 do letters[j] = string.char(96 + int(rng, 1, 26)) end
    email = concat(letters) .. "@" .. domain
  end

  if persona == BUYER and not dup then     -- remember the last buyers, for duplicates
    local pos = ring.next
    local slot = ring[pos] or {}
    ring[pos] = slot
    slot.email, slot.domain, slot.first_name, slot.title, slot.company = email, domain, first_name, title, company
    slot.employees, slot.ind, slot.cty, slot.personal = employees, ind, cty, personal
    slot.sen, slot.dept = L.sen, L.dept
    if pos > ring.n then ring.n = pos end
    ring.next = pos % RECENT_BUYERS + 1
  end

  if not cty and persona ~= BAD_DATA then
    if chance(rng, 0.85) then cty = draw(COUNTRY_SAMPLER, rng) end
  elseif persona == BAD_DATA and chance(rng, 0.5) then
    cty = draw(COUNTRY_SAMPLER, rng)
  end
  if cty and persona == BUYER and chance(rng, 0.03) then cty = nil end   -- not enriched

  -- seniority and department as enrichment reports them: mostly present, sometimes not
  if L.sen then
    if chance(rng, 0.94) then seniority = SENIORITIES[L.sen] end
    if chance(rng, 0.92) then department = DEPARTMENTS[L.dept] end
  elseif L.dept then
    department = DEPARTMENTS[L.dept]
  end

  -- fit: what an ideal-customer profile would say if it saw the truth
  local fit
  if persona == BUYER then
    fit = (L.sen and SENIORITY_FIT[L.sen] or 0.4) * 0.3
        + (L.dept and DEPARTMENT_FIT[L.dept] or 0.4) * 0.2
        + (employees and size_fit(employees) or 0.3) * 0.25
        + (ind and INDUSTRY_FIT[ind] or 0.4) * 0.15
        + (cty and COUNTRY_FIT[cty] or 0.5) * 0.1
    if personal then fit = fit * 0.6 end
  elseif persona == STUDENT or persona == BAD_DATA then
    fit = 0.05
  else
    fit = 0.02
  end
  L.fit = fit

  local source = draw(SOURCE_BY_PERSONA[persona], rng)
  local u = uniform(rng)
  local intent = u * u * (0.45 + 0.8 * fit) + SOURCE_INTENT[source]
  if persona == INTERNAL or persona == COMPETITOR then intent = intent + 0.3 end
  if intent < 0 then intent = 0 elseif intent > 1 then intent = 1 end
  L.intent = intent
  L.source = source
  local campaign = pick(CAMPAIGNS[source], rng)
  if type(campaign) == "table" then campaign = campaign[month] end
  L.campaign = campaign
  L.region = cty and COUNTRY_REGION[cty] or 1
  L.employees = employees
  L.personal = personal
  L.domain = domain

  -- BANT answers from the longer forms: buyers with intent fill them more often
  local budget, timeline = "", ""
  if persona == BUYER then
    if chance(rng, 0.12 + 0.45 * intent) then
      local median = 5000
      if employees then median = 5000 * (0.5 + size_fit(employees)) * (employees >= 1000 and 4 or 1) end
      budget = floor(lognormal(rng, median, 0.7) / 1000 + 1) * 1000
    end
    if chance(rng, 0.08 + 0.45 * intent) then
      local band = intent < 0.2 and 1 or intent < 0.45 and 2 or intent < 0.7 and 3 or 4
      timeline = TIMELINES[draw(TIMELINE_BY_INTENT[band], rng)]
    end
  elseif persona == STUDENT and chance(rng, 0.1) then
    budget = 0
  elseif persona == BAD_DATA and chance(rng, 0.3) then
    budget = any({ 0, 1, 123, 999999999 }, rng)
  end
  L.budget = budget ~= "" and budget or nil
  L.timeline = timeline

  st.counts[source][month] = st.counts[source][month] + 1
  return L.id .. "," .. email .. "," .. domain .. "," .. first_name .. "," .. title .. "," .. seniority .. ","
    .. department .. "," .. company .. "," .. (employees or "") .. "," .. (ind and INDUSTRIES[ind] or "") .. ","
    .. (cty and COUNTRIES[cty] or "") .. "," .. SOURCES[source] .. "," .. campaign .. ","
    .. iso(L.created) .. "," .. budget .. "," .. timeline .. "\n"
end

-- A fresh engine with this file's words and weights (the tests poke at it).
function _M.event_engine()
  return core.event_engine(EVENT_CONFIG)
end

---------------------------------------------------------------------------------------------
-- Events of one lead (csrc/gen_events.c writes the rows). Keeps what the funnel needs: when the
-- history's score crossed the MQL bar, the first demo request, the total engagement.

local EVENTS_CHUNK = 1048576     -- bytes of rows the engine collects before they are written

local function make_events(st, L)
  local src = L.source
  local first = src == 5 and 1 or src == 6 and 0 or 2     -- webinar, event (badge scan), a form
  local rows, engagement, mql_at, demo_at, bytes = st.engine:lead(st.erng, L.id, L.created, L.persona,
    L.intent, L.fit, first, L.campaign, L.personal)
  local out = st.events
  out.rows = out.rows + rows
  if bytes >= EVENTS_CHUNK then sink_text(out, st.engine:take()) end
  L.engagement, L.mql_at, L.demo_at = engagement, mql_at, demo_at
end

---------------------------------------------------------------------------------------------
-- The funnel of one lead: lead -> mql -> sal -> sql -> opportunity -> customer, with
-- disqualification and recycling to nurture (and, for some, a second try from nurture).

local DQ_MQL = choice({ { "no_budget", 25 }, { "not_interested", 35 }, { "duplicate", 15 }, { "bad_data", 10 },
                        { "wrong_fit", 15 } })
local DQ_SAL = choice({ { "no_budget", 35 }, { "no_authority", 20 }, { "no_need", 25 }, { "not_interested", 20 } })
local DQ_SQL = choice({ { "no_budget", 30 }, { "no_authority", 15 }, { "no_need", 25 }, { "lost_to_competitor", 30 } })
local DQ_OPP = choice({ { "lost_to_competitor", 40 }, { "no_decision", 35 }, { "price", 25 } })
local NURTURE_REASON = choice({ { "no_response", 50 }, { "timing", 35 }, { "not_ready", 15 } })
local CLEANUP = { 0, 0.3, 0.3, 0.5, 0.4, 0.6, 0.2 }     -- marketing ops removes junk before any MQL

local function transition(out, id, stage, at, reason, owner)
  local day = floor(at / 86400)
  sink_put(out, id .. "," .. stage .. "," .. DAY_PREFIX[day + 1] .. TIME_OF_DAY[at - day * 86400 + 1] .. ","
    .. reason .. "," .. owner .. "\n")
end

local function after(rng, t, median, sigma)
  return t + floor(lognormal(rng, median, sigma)) + 1
end

local function make_transitions(st, L)
  local rng, out = st.trng, st.transitions
  local id, fit, intent, persona = L.id, L.fit, L.intent, L.persona
  local region = L.region
  local sdr = any(SDRS[region], rng)
  local ae = any(AES[region], rng)
  local t = L.created
  transition(out, id, "lead", t, "", "")

  if L.duplicate and chance(rng, 0.5) then           -- marketing ops merges it
    t = after(rng, t, 86400, 1.0)
    if t <= T_LAST then transition(out, id, "disqualified", t, "duplicate", "") end
    return
  end
  if persona ~= BUYER and chance(rng, CLEANUP[persona]) then
    t = after(rng, t, 2 * 86400, 1.0)
    if t <= T_LAST then transition(out, id, "disqualified", t, PERSONA_REASON[persona], "") end
    return
  end

  local stage
  if persona == BUYER and L.demo_at and chance(rng, 0.6) then
    stage, t = "sql", after(rng, L.demo_at, 4 * 3600, 1.0)   -- a hand-raiser books a meeting at once
  elseif persona == BUYER and L.source == 6 and fit > 0.6 and chance(rng, 0.3) then
    stage, t = "sal", after(rng, t, 86400, 0.8)              -- met at the booth, accepted directly
  elseif L.mql_at then
    stage, t = "mql", L.mql_at + int(rng, 60, 3600)         -- the scoring batch runs every hour
  else
    return
  end

  -- what sales sees in the lead's own history: the more it engaged, the likelier it goes on
  local engagement = L.engagement or 0
  local engaged = engagement >= 80 and 0.1 or engagement >= 40 and 0.05 or 0
  local bant = 0
  if L.budget and L.budget >= 10000 then bant = bant + 0.1 end
  if L.timeline == "0-3 months" or L.timeline == "3-6 months" then bant = bant + 0.1 end
  local cycles = 0
  while t <= T_LAST do
    if stage == "mql" then
      transition(out, id, "mql", t, "", "")
      local next_t = after(rng, t, 5 * 3600, 1.3)                 -- hand-off to an SDR
      if next_t > T_LAST then break end
      t = next_t
      if persona ~= BUYER then
        transition(out, id, "disqualified", t, PERSONA_REASON[persona], sdr)
        break
      elseif chance(rng, 0.2 + 0.55 * fit + 0.05 * intent + engaged) then
        stage = "sal"
      elseif fit < 0.35 and chance(rng, 0.6) then
        transition(out, id, "disqualified", t, "wrong_fit", sdr)
        break
      elseif chance(rng, 0.5) then
        transition(out, id, "disqualified", t, pick(DQ_MQL, rng), sdr)
        break
      else
        stage = "nurture"
      end
    elseif stage == "sal" then
      transition(out, id, "sal", t, "", sdr)
      t = after(rng, t, 3 * 86400, 0.9)
      if t > T_LAST then break end
      if chance(rng, 0.1 + 0.45 * fit + 0.2 * intent + engaged + bant) then
        stage = "sql"
      elseif chance(rng, 0.5) then
        transition(out, id, "disqualified", t, pick(DQ_SAL, rng), sdr)
        break
      else
        stage = "nurture"
      end
    elseif stage == "sql" then
      transition(out, id, "sql", t, "", ae)
      t = after(rng, t, 7 * 86400, 0.8)
      if t > T_LAST then break end
      if chance(rng, 0.25 + 0.4 * fit + bant) then
        stage = "opportunity"
      elseif chance(rng, 0.6) then
        transition(out, id, "disqualified", t, pick(DQ_SQL, rng), ae)
        break
      else
        stage = "nurture"
      end
    elseif stage == "opportunity" then
      transition(out, id, "opportunity", t, "", ae)
      local big = L.employees and L.employees >= 1000 and 1.6 or 1
      t = after(rng, t, 40 * 86400 * big, 0.6)
      if t > T_LAST then break end
      if chance(rng, 0.08 + 0.35 * fit + 0.1 * intent + bant) then
        transition(out, id, "customer", t, "", ae)
      elseif chance(rng, 0.7) then
        transition(out, id, "disqualified", t, pick(DQ_OPP, rng), ae)
      else
        transition(out, id, "nurture", t, "timing", ae)
      end
      break
    else -- nurture: recycled; some come back as MQLs later
      transition(out, id, "nurture", t, pick(NURTURE_REASON, rng), sdr)
      cycles = cycles + 1
      if cycles > 1 or not chance(rng, 0.08 + 0.3 * intent) then break end
      t = after(rng, t, 45 * 86400, 0.5)
      stage = "mql"
    end
  end
end

---------------------------------------------------------------------------------------------

local OPTIONS = { leads = true, seed = true, out = true, progress = true, product = true, intent = true }

-- Product usage (generate{ product = true }): a lead with a work address may start a trial within two
-- weeks of arriving (the likelier, the more intent); the trial brings active days, key-feature uses,
-- seat invites, usage-limit hits and upgrade-page views, more of them the better the fit and intent.
-- Its own random stream, forked last: without the option every file is the same, byte for byte.
local function make_usage(st, L)
  local rng = st.prng
  if L.personal or not chance(rng, 0.1 + 0.4 * L.intent) then return end
  local start = L.created + int(rng, 0, 14 * 86400)
  if start > T_LAST then return end
  local out = st.events
  local function put(kind, t, value)
    if t <= T_LAST then sink_put(out, L.id .. "," .. kind .. "," .. iso(t) .. "," .. (value or "") .. ",,,\n") end
  end
  put("trial_started", start)
  local keen = L.fit * 0.6 + L.intent * 0.4            -- 0..1: how often the trial user comes back
  local days = int(rng, 0, 2) + floor(keen * 12 * uniform(rng))
  local d = 0
  for _ = 1, days do
    d = d + 1 + (chance(rng, keen) and 0 or int(rng, 1, 4))
    local t = start + d * 86400 + int(rng, 0, 36000)
    put("active_day", t)
    if chance(rng, 0.2 + 0.5 * keen) then put("key_feature_used", t + 600, int(rng, 1, 5)) end
    if chance(rng, 0.02 + 0.08 * keen) then put("seat_invited", t + 1200) end
    if chance(rng, 0.05 * keen) then put("usage_limit_hit", t + 1800) end
    if chance(rng, 0.06 * keen) then put("upgrade_page_viewed", t + 2400) end
  end
end

-- Account intent (generate{ intent = true }): events keyed by the account's domain, not by a lead
-- (lead_id = "acme.com"), as an intent-data provider or a de-anonymized visit log sends them. A lead
-- with a work address may show its company researching our topics (intent_surge) and visiting the
-- site (account_visit) in the month after it arrived; the keener the lead, the likelier and the more.
-- Its own random stream, forked after the product one: either option leaves the other's lines alone.
local function make_intent(st, L)
  local rng = st.irng
  if L.personal or not L.domain or not chance(rng, 0.05 + 0.5 * L.intent) then return end
  local out = st.events
  local function put(kind, t)
    if t <= T_LAST then sink_put(out, L.domain .. "," .. kind .. "," .. iso(t) .. ",,,,\n") end
  end
  local surges = 1 + floor(3 * L.intent * uniform(rng))
  for _ = 1, surges do put("intent_surge", L.created + int(rng, 0, 30 * 86400)) end
  local visits = floor((1 + 8 * L.intent) * uniform(rng))
  for _ = 1, visits do put("account_visit", L.created + int(rng, 0, 14 * 86400)) end
end

local function check_options(opts)
  if type(opts) ~= "table" then raise("generate expects a table of options") end
  for k in pairs(opts) do
    if not OPTIONS[k] then raise(format("unknown option '%s' (expected leads, seed, out, progress, product, intent)",
      tostring(k))) end
  end
  local n = opts.leads
  if type(n) ~= "number" or n < 1 or n ~= floor(n) or n > 99999999 then
    raise("leads must be a whole number from 1 to 99999999")
  end
  local seed = opts.seed == nil and 1 or opts.seed
  if type(seed) ~= "number" and type(seed) ~= "string" then
    raise("seed must be a whole number or a string")
  end
  if type(seed) == "number" and (seed ~= floor(seed) or seed < 0 or seed > 9007199254740992) then
    raise("seed must be a whole number from 0 to 2^53")
  end
  if opts.out ~= nil and (type(opts.out) ~= "string" or opts.out == "") then
    raise("out must be a directory name")
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    raise("progress must be a function")
  end
  if opts.product ~= nil and type(opts.product) ~= "boolean" then
    raise("product must be true or false")
  end
  if opts.intent ~= nil and type(opts.intent) ~= "boolean" then
    raise("intent must be true or false")
  end
  return floor(n), seed
end

local function make_dir(dir)
  local probe = open(dir .. "/.leadq-probe", "wb")
  if probe then
    probe:close()
    os_remove(dir .. "/.leadq-probe")
    return true
  end
  local quoted = "'" .. dir:gsub("'", "'\\''") .. "'"
  os_execute("mkdir -p " .. quoted .. " 2>/dev/null")
  probe = open(dir .. "/.leadq-probe", "wb")
  if not probe then return nil, format("cannot create or write to directory '%s'", dir) end
  probe:close()
  os_remove(dir .. "/.leadq-probe")
  return true
end

-- generate{ leads = N, seed = S [, out = DIR] [, progress = function(done, total)] }
-- Writes DIR/leads.csv, events.csv, transitions.csv, spend.csv (through .tmp files renamed at the end)
-- and returns a summary: { leads = N, events = n, transitions = n, spend = n, seconds = cpu, files = {...} }.
-- Without out, nothing is written and summary.csv holds each file's text. Returns nil, message when
-- a file cannot be written; raises on bad options.
function _M.generate(opts)
  local n, seed = check_options(opts)
  local dir = opts.out
  if dir then
    local ok, err = make_dir(dir)
    if not ok then return nil, err end
  end
  local started = os_clock()
  local root = core.random(seed)
  local st = {
    rng = root:fork(), erng = root:fork(), trng = root:fork(), srng = root:fork(),
    counts = {},
    recent = { n = 0, next = 1 },
  }
  for s = 1, #SOURCES do
    st.counts[s] = {}
    for m = 1, #MONTHS do st.counts[s][m] = 0 end
  end
  local pool_size = floor(n / 4)
  if pool_size < 50 then pool_size = 50 elseif pool_size > 100000 then pool_size = 100000 end
  st.companies = make_companies(root:fork(), pool_size)
  -- the product stream is forked whenever either option is on, so the intent stream is the same with or
  -- without product usage (and product usage the same as before intent existed)
  local prng = (opts.product or opts.intent) and root:fork()
  if opts.product then st.prng = prng end
  if opts.intent then st.irng = root:fork() end

  local sinks = {}
  for _, name in ipairs(_M.files) do
    local s, err = sink_open(dir, name)
    if not s then
      for _, o in pairs(sinks) do sink_abort(o) end
      return nil, format("cannot write %s/%s.csv: %s", dir, name, tostring(err))
    end
    sinks[name] = s
    sink_put(s, concat(_M.columns[name], ",") .. "\n")
  end
  st.events, st.transitions = sinks.events, sinks.transitions
  st.engine = _M.event_engine()

  local ok, err = pcall(function()
    local leads_sink, progress = sinks.leads, opts.progress
    local L = {}
    for i = 1, n do
      sink_put(leads_sink, make_lead(st, L, i))
      make_events(st, L)
      if st.prng then make_usage(st, L) end
      if st.irng then make_intent(st, L) end
      make_transitions(st, L)
      if progress and i % 100000 == 0 then progress(i, n) end
    end
    sink_text(st.events, st.engine:take())
    local spend = sinks.spend
    for s = 1, #SOURCES do
      for m = 1, #MONTHS do
        local leads = st.counts[s][m]
        local cost = COST_PER_LEAD[s] * leads * (0.85 + 0.3 * uniform(st.srng))
        if COST_PER_LEAD[s] > 0 and leads == 0 then cost = COST_PER_LEAD[s] * 5 end
        sink_put(spend, SOURCES[s] .. "," .. MONTHS[m] .. "," .. format("%.2f", cost) .. "\n")
      end
    end
  end)
  if not ok then
    for _, s in pairs(sinks) do sink_abort(s) end
    error(err, 0)
  end

  local summary = { seconds = 0, files = {}, seed = seed }
  local csv = not dir and {} or nil
  for _, name in ipairs(_M.files) do
    local s = sinks[name]
    local closed, cerr = sink_close(s)
    if not closed then
      for _, o in pairs(sinks) do sink_abort(o) end
      return nil, format("cannot write %s: %s", s.path, tostring(cerr))
    end
    summary[name] = s.rows
    if dir then summary.files[name] = s.path else csv[name] = s.text end
  end
  summary.csv = csv
  summary.seconds = os_clock() - started
  return summary
end

return _M
