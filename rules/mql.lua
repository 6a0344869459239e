-- rules/mql.lua: the default B2B marketing-qualified-lead (MQL) model.
--
-- Who edits this: marketing ops. You do not need to program to change it: every rule is a small
-- table saying WHEN it applies and HOW MANY POINTS it gives. See rules/README.md for the syntax,
-- and run `build/leadq check rules/mql.lua` after every edit: it lists every mistake with its line.
--
-- How a lead is scored
--   1. Each rule whose `when` holds adds its points to its group.
--   2. Each group is clamped to its cap (most it can add) or floor (most it can take away), so one
--      kind of signal can never carry a lead alone.
--   3. total = fit + engagement + negative.
--   4. Status: "mql" at 60 points or more, "nurture" at 25 or more, "cold" below that;
--      a disqualifier (competitor, student, unsubscribed...) overrides the score: "disqualified".
--   5. Grade: a letter for fit (A best .. D) and a digit for engagement (1 best .. 4): "A1" .. "D4".
--      A1 = the right person, very engaged: call now. D4 = wrong profile, no interest.
--
-- Every rule is declarative (no Lua functions), so leadq scores millions of leads per second in its
-- C core. Fields are the columns of leads.csv (see `build/leadq gen`).

return model "mql" {
  description = "Default B2B marketing-qualified-lead model: ICP fit, engagement, negative signals",

  lists = {
    -- Industries we sell best into (our best customers' industries, last 4 quarters).
    target_industries = { "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail" },
    -- Countries where we have a sales team and a local price list.
    target_countries = { "US", "CA", "GB", "DE", "FR", "NL", "AU" },
    -- Personal e-mail providers: kept in a file because the list is long (one domain a line).
    free_email = file "lists/free_email_domains.txt",
    -- Competitors' domains: maintained with sales ops in a file.
    competitors = file "lists/competitors.txt",
    -- Lead sources where the lead asked to talk to us: the strongest first-touch signal.
    high_intent_sources = { "Demo Request", "Contact Us", "Referral" },
  },

  groups = {
    -- Fit tops out at 50: the right profile alone is not enough to be an MQL; they must also engage.
    fit        = { label = "ICP fit", cap = 50 },
    -- Engagement tops out at 60, so a very active lead with a poor profile still needs some fit.
    engagement = { label = "Engagement", cap = 60 },
    -- Negative signals can take away at most 60 points.
    negative   = { label = "Negative signals", floor = -60 },
  },

  rules = {
    ---------------------------------------------------------------------------------------------
    -- ICP fit: is this the right person, at the right company, where we sell?
    ---------------------------------------------------------------------------------------------

    -- Seniority: people who sign (C-level, VP) are worth the most; directors drive evaluations;
    -- managers influence. Only one of these fits a lead's seniority.
    rule "SENIORITY_EXEC" {
      label = "C-level or founder", group = "fit", points = 20,
      when = { seniority = { one_of = { "C-Level", "Owner", "Founder" } } },
    },
    rule "SENIORITY_VP" {
      label = "Vice president", group = "fit", points = 18,
      when = { seniority = "VP" },
    },
    rule "SENIORITY_DIRECTOR" {
      label = "Director or head of", group = "fit", points = 12,
      when = { seniority = "Director" },
    },
    rule "SENIORITY_MANAGER" {
      label = "Manager", group = "fit", points = 6,
      when = { seniority = "Manager" },
    },
    -- Our buyers sit in marketing, sales and revenue operations: the title says who uses us daily.
    rule "BUYER_ROLE" {
      label = "Marketing, sales or revenue role", group = "fit", points = 8,
      when = { title = { word = { "marketing", "demand generation", "growth", "revenue", "sales", "operations" } } },
    },

    -- Company size: our sweet spot is 200 to 5,000 employees (fastest sales cycle, best retention).
    rule "SIZE_MID_MARKET" {
      label = "200 to 5,000 employees", group = "fit", points = 15,
      when = { employees = { between = { 200, 5000 } } },
    },
    -- Enterprises buy too, but slower: fewer points than mid-market.
    rule "SIZE_ENTERPRISE" {
      label = "More than 5,000 employees", group = "fit", points = 10,
      when = { employees = { above = 5000 } },
    },
    -- Small businesses (50 to 199) are a fit for the starter plan.
    rule "SIZE_SMB" {
      label = "50 to 199 employees", group = "fit", points = 5,
      when = { employees = { between = { 50, 199 } } },
    },

    rule "TARGET_INDUSTRY" {
      label = "Target industry", group = "fit", points = 10,
      when = { industry = { one_of = list "target_industries" } },
    },
    rule "TARGET_COUNTRY" {
      label = "Country with a local sales team", group = "fit", points = 5,
      when = { country = { one_of = list "target_countries" } },
    },
    -- Budget: a stated budget of 50k or more covers a mid-market contract.
    rule "BUDGET_STATED" {
      label = "Budget of 50,000 or more", group = "fit", points = 10,
      when = { budget = { at_least = 50000 } },
    },

    ---------------------------------------------------------------------------------------------
    -- Engagement: is this lead interested now?
    ---------------------------------------------------------------------------------------------

    -- A lead who arrived in the last 30 days is still warm: call while they remember us.
    rule "CREATED_RECENTLY" {
      label = "Created in the last 30 days", group = "engagement", points = 10,
      when = { created_at = { within_days = 30 } },
    },
    -- Asked to talk to us (demo form, contact form) or was referred by a customer.
    rule "HIGH_INTENT_SOURCE" {
      label = "Came from a demo request, contact form or referral", group = "engagement", points = 25,
      when = { source = { one_of = list "high_intent_sources" } },
    },
    -- Content downloads and webinars as a first touch show research, a milder signal.
    rule "CONTENT_SOURCE" {
      label = "Came from content or a webinar", group = "engagement", points = 10,
      when = { source = { one_of = { "Content Download", "Webinar" } } },
    },
    -- A phone number given on a form means they expect a call.
    rule "GAVE_PHONE" {
      label = "Gave a phone number", group = "engagement", points = 5,
      when = { phone = "present" },
    },

    -- EVENTS: the events issue adds per-lead features from events.csv; these rules switch on then.
    -- Uncomment each rule together with its feature in `features` at the bottom of this file.
    --
    -- rule "DEMO_REQUEST" {        -- asked for a demo in the last 30 days: the strongest signal
    --   label = "Requested a demo (30 days)", group = "engagement", points = 30,
    --   when = { demo_requests_30d = { at_least = 1 } },
    -- },
    -- rule "PRICING_VIEWS" {       -- comparing prices: buying soon
    --   label = "Viewed pricing 3+ times in 30 days", group = "engagement", points = 15,
    --   when = { pricing_views_30d = { at_least = 3 } },
    -- },
    -- rule "WEBINAR_ATTENDED" {    -- spent an hour with us
    --   label = "Attended a webinar (90 days)", group = "engagement", points = 10,
    --   when = { webinars_90d = { at_least = 1 } },
    -- },
    -- rule "EMAIL_ENGAGED" {       -- clicks, decayed (half-life 14 days) and capped at 10 points
    --   label = "Clicks our e-mails", group = "engagement", points = 10,
    --   when = { email_clicks_decayed = { at_least = 2 } },
    -- },
    -- rule "CAREERS_PAGE" {        -- reading our careers page: more likely a job seeker than a buyer
    --   label = "Viewed the careers page (30 days)", group = "negative", points = -10,
    --   when = { careers_views_30d = { at_least = 1 } },
    -- },

    ---------------------------------------------------------------------------------------------
    -- Negative signals: reasons to doubt the lead (a disqualifier below is stronger: it overrides).
    ---------------------------------------------------------------------------------------------

    -- Gmail, Yahoo...: often a private person, or someone hiding their company.
    rule "PERSONAL_EMAIL" {
      label = "Personal e-mail address", group = "negative", points = -15,
      when = { email_domain = { one_of = list "free_email" } },
    },
    -- Titles that say "looking for a job", not "looking for a product".
    rule "JOB_SEEKER" {
      label = "Job seeker", group = "negative", points = -30,
      when = { title = { contains = { "job seeker", "seeking", "looking for", "open to work", "unemployed" } } },
    },
    -- Tiny companies rarely have budget for us.
    rule "SIZE_TINY" {
      label = "Fewer than 10 employees", group = "negative", points = -10,
      when = { employees = { below = 10 } },
    },
    -- No company given: we cannot qualify the account.
    rule "NO_COMPANY" {
      label = "No company name", group = "negative", points = -10,
      when = { company = "missing" },
    },
    -- A lead untouched for a year has gone cold whatever its profile.
    rule "STALE_LEAD" {
      label = "Created more than a year ago", group = "negative", points = -10,
      when = { created_at = { older_than_days = 365 } },
    },
  },

  -- Disqualifiers: never an MQL, whatever the points. Sales never sees these leads.
  disqualifiers = {
    disqualify "COMPETITOR" {
      reason = "competitor", when = { email_domain = { one_of = list "competitors" } },
    },
    disqualify "STUDENT" {
      reason = "student",
      when = { any = { { seniority = "Student" }, { title = { word = { "student", "intern" } } } } },
    },
    disqualify "UNSUBSCRIBED" {
      reason = "unsubscribed", when = { unsubscribed = true },
    },
  },

  -- 60+: hand to sales. 25 to 59: keep nurturing with e-mail. Below 25: cold.
  thresholds = { mql = 60, nurture = 25, otherwise = "cold" },

  -- Fit letter: A = 35+ fit points, B = 20+, C = 10+, D below.
  -- Engagement digit: 1 = 40+ engagement points, 2 = 20+, 3 = 8+, 4 below.
  grades = {
    fit        = { group = "fit",        A = 35, B = 20, C = 10, otherwise = "D" },
    engagement = { group = "engagement", ["1"] = 40, ["2"] = 20, ["3"] = 8, otherwise = "4" },
  },

  -- EVENTS: features computed from events.csv, read by the event rules above (the events issue).
  -- features = {
  --   demo_requests_30d    = feature { count = "demo_request", within_days = 30 },
  --   pricing_views_30d    = feature { count = "pricing_view", within_days = 30 },
  --   webinars_90d         = feature { count = "webinar_attended", within_days = 90 },
  --   email_clicks_decayed = feature { decayed = "email_click", half_life_days = 14 },
  --   careers_views_30d    = feature { count = "careers_view", within_days = 30 },
  -- },
}
