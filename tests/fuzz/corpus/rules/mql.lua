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
--   4. Status: "mql" at 60 points or more, "nurture" at 30 or more, "cold" below that;
--      a disqualifier (competitor, student, our own staff, fake data) overrides the score: "disqualified".
--   5. Grade: a letter for fit (A best .. D) and a digit for engagement (1 best .. 4): "A1" .. "D4".
--      A1 = the right person, very engaged: call now. D4 = wrong profile, no interest.
--
-- Every rule is declarative (no Lua functions), so leadq scores millions of leads per second
-- in its C core. Fields are the columns of leads.csv: id, email, email_domain, first_name, title,
-- seniority, department, company, employees, industry, country, source, campaign, created_at, budget,
-- timeline; and the event features declared at the bottom (demo requests, pricing views, webinars,
-- e-mail engagement, recent buying interest, careers-page views, unsubscribes).

return model "mql" {
  description = "Default B2B marketing-qualified-lead model: ICP fit, engagement, negative signals",

  lists = {
    -- Industries where we win most often, and countries where we have a sales team and a local
    -- price list: files shared with rules/aql.lua, so both models target the same market.
    target_industries = file "lists/target_industries.txt",
    target_countries = file "lists/target_countries.txt",
    -- Personal e-mail providers: kept in a file because the list is long (one domain a line).
    free_email = file "lists/free_email_domains.txt",
    -- Competitors' domains: maintained with sales ops in a file.
    competitors = file "lists/competitors.txt",
    -- Competitors' company names, for the ones who sign up with a personal address.
    competitor_names = { "ScoreForce", "LeadLyft", "FunnelWise", "PipelinePro", "QualifyHQ" },
    -- Throw-away and made-up e-mail domains: form spam and test entries.
    fake_domains = { "mailinator.com", "example.com", "test.com", "asdf.com", "fake.com", "xxx.com",
                     "none.com", "a.com" },
    -- What people type in the company box when they do not want to say.
    junk_companies = { "n/a", "na", "none", "-", "test", "asdf", "xxx", "self" },
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

    -- Seniority: the people who sign (C-level, VP) are worth the most; directors run evaluations;
    -- managers influence. Enrichment leaves seniority empty for a few leads: then the title decides.
    rule "SENIORITY_EXEC" {
      label = "C-level, founder or owner", group = "fit", points = 20,
      when = { any = {
        { seniority = "c_level" },
        { seniority = "missing", title = { word = { "chief", "ceo", "cmo", "cro", "founder", "owner" } } },
      } },
    },
    rule "SENIORITY_VP" {
      label = "Vice president", group = "fit", points = 18,
      when = { any = {
        { seniority = "vp" },
        { seniority = "missing", title = { word = { "vp", "svp", "vice president" } } },
      } },
    },
    rule "SENIORITY_DIRECTOR" {
      label = "Director or head of a team", group = "fit", points = 12,
      when = { any = {
        { seniority = "director" },
        { seniority = "missing", title = { word = { "director", "head of" } } },
      } },
    },
    rule "SENIORITY_MANAGER" {
      label = "Manager", group = "fit", points = 6,
      when = { seniority = "manager" },
    },
    -- Marketing and sales use us every day; the executive team signs. Others rarely buy.
    rule "BUYER_DEPARTMENT" {
      label = "Marketing, sales or executive team", group = "fit", points = 8,
      when = { any = {
        { department = { one_of = { "marketing", "sales", "executive" } } },
        { department = "missing",
          title = { word = { "marketing", "demand generation", "growth", "revenue", "sales" } } },
      } },
    },

    -- Company size: our sweet spot is 200 to 4,999 employees (fastest sales cycle, best retention).
    rule "SIZE_MID_MARKET" {
      label = "200 to 4,999 employees", group = "fit", points = 15,
      when = { employees = { between = { 200, 4999 } } },
    },
    -- Enterprises buy too, but slower: fewer points than mid-market.
    rule "SIZE_ENTERPRISE" {
      label = "5,000 employees or more", group = "fit", points = 10,
      when = { employees = { at_least = 5000 } },
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
    -- Budget, from the longer forms: 25k or more covers a mid-market contract; 5k a starter plan.
    rule "BUDGET_LARGE" {
      label = "Budget of 25,000 or more", group = "fit", points = 10,
      when = { budget = { at_least = 25000 } },
    },
    rule "BUDGET_SOME" {
      label = "Budget of 5,000 to 24,999", group = "fit", points = 5,
      when = { budget = { at_least = 5000, below = 25000 } },
    },

    ---------------------------------------------------------------------------------------------
    -- Engagement: is this lead interested now?
    ---------------------------------------------------------------------------------------------

    -- A lead who arrived in the last 30 days is still warm: call while they remember us.
    rule "CREATED_RECENTLY" {
      label = "Created in the last 30 days", group = "engagement", points = 10,
      when = { created_at = { within_days = 30 } },
    },
    -- Referred by a customer or a partner: these convert best of all our sources.
    rule "HIGH_INTENT_SOURCE" {
      label = "Came from a referral or a partner", group = "engagement", points = 20,
      when = { source = { one_of = { "referral", "partner" } } },
    },
    -- Met us at an event or a webinar: they spent time with us.
    rule "EVENT_SOURCE" {
      label = "Came from an event or a webinar", group = "engagement", points = 10,
      when = { source = { one_of = { "event", "webinar" } } },
    },
    -- Said on a form that they plan to buy within six months.
    rule "TIMELINE_SOON" {
      label = "Plans to buy within 6 months", group = "engagement", points = 15,
      when = { timeline = { one_of = { "0-3 months", "3-6 months" } } },
    },

    -- Behaviour, from the events (events.csv, or the real-time state): each rule reads a feature
    -- declared in `features` at the bottom of this file. Scored without events, a lead has none:
    -- counts are 0 and these rules give nothing.
    rule "DEMO_REQUEST" {        -- asked for a demo in the last 30 days: the strongest signal
      label = "Requested a demo (30 days)", group = "engagement", points = 30,
      when = { demo_requests_30d = { at_least = 1 } },
    },
    rule "PRICING_VIEWS" {       -- comparing prices: buying soon
      label = "Viewed pricing 3+ times in 30 days", group = "engagement", points = 15,
      when = { pricing_views_30d = { at_least = 3 } },
    },
    rule "WEBINAR_ATTENDED" {    -- spent an hour with us
      label = "Attended a webinar (90 days)", group = "engagement", points = 10,
      when = { webinars_90d = { at_least = 1 } },
    },
    rule "EMAIL_ENGAGED" {       -- opens and clicks, 2 points each, at most 20 (a newsletter fan is not a buyer)
      label = "Opens and clicks our e-mails", group = "engagement", points = 10,
      when = { email_points_90d = { at_least = 10 } },
    },
    rule "RECENT_INTEREST" {     -- pricing and demo pages, fading with a half-life of 14 days
      label = "Recent buying interest", group = "engagement", points = 10,
      when = { buying_heat = { at_least = 1 } },
    },
    rule "CAREERS_PAGE" {        -- reading our careers page: more likely a job seeker than a buyer
      label = "Viewed the careers page (30 days)", group = "negative", points = -10,
      when = { careers_views_30d = { at_least = 1 } },
    },

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
      when = { title = { contains = { "job seeker", "seeking", "looking for", "open to work", "unemployed",
                                      "between jobs", "career changer", "recent graduate" } } },
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
    -- "n/a", "test", "asdf" in the company box: not a serious enquiry.
    rule "JUNK_COMPANY" {
      label = "Made-up company name", group = "negative", points = -20,
      when = { company = { one_of = list "junk_companies" } },
    },
    -- Said on a form that they have no plans to buy.
    rule "NO_PLANS" {
      label = "No plans to buy", group = "negative", points = -10,
      when = { timeline = "no plans" },
    },
    -- Half a year without becoming an MQL: the interest has faded whatever the profile.
    rule "STALE_LEAD" {
      label = "Created more than 180 days ago", group = "negative", points = -5,
      when = { created_at = { older_than_days = 180 } },
    },
  },

  -- Disqualifiers: never an MQL, whatever the points. Sales never sees these leads.
  disqualifiers = {
    disqualify "COMPETITOR" {
      reason = "competitor",
      when = { any = {
        { email_domain = { one_of = list "competitors" } },
        { company = { one_of = list "competitor_names" } },
      } },
    },
    disqualify "STUDENT" {
      reason = "student",
      when = { any = {
        { seniority = "student" },
        { title = { word = { "student", "intern", "phd candidate" } } },
      } },
    },
    -- Our own staff testing forms.
    disqualify "INTERNAL" {
      reason = "internal", when = { email_domain = "helixrev.com" },
    },
    -- Form spam, throw-away addresses and test entries.
    disqualify "FAKE_EMAIL" {
      reason = "fake e-mail", when = { email_domain = { one_of = list "fake_domains" } },
    },
    -- Unsubscribing is a firm no (feature `unsubscribes` at the bottom of this file).
    disqualify "UNSUBSCRIBED" { reason = "unsubscribed", when = { unsubscribes = { at_least = 1 } } },
  },

  -- 60+: hand to sales. 30 to 59: keep nurturing with e-mail. Below 30: cold.
  -- On the demo data (build/leadq demo, with its events, as of 2026-11-01) that is about 6% mql,
  -- 40% nurture, 41% cold and 13% disqualified: raise or lower `mql` to match what sales can call.
  thresholds = { mql = 60, nurture = 30, otherwise = "cold" },

  -- Fit letter: A = 40+ fit points, B = 28+, C = 15+, D below.
  -- Engagement digit: 1 = 35+ engagement points, 2 = 20+, 3 = 10+, 4 below.
  grades = {
    fit        = { group = "fit",        A = 40, B = 28, C = 15, otherwise = "D" },
    engagement = { group = "engagement", ["1"] = 35, ["2"] = 20, ["3"] = 10, otherwise = "4" },
  },

  -- Features: what the event rules above read, computed per lead from its events as of the scoring
  -- time (counts in a window, points with a cap, a decayed sum with a half-life).
  features = {
    demo_requests_30d    = feature { count = "demo_request", within_days = 30 },
    pricing_views_30d    = feature { count = "pricing_view", within_days = 30 },
    webinars_90d         = feature { count = "webinar_attended", within_days = 90 },
    email_points_90d     = feature { count = { "email_open", "email_click" }, within_days = 90,
                                     points = 2, cap = 20 },
    buying_heat          = feature { decayed = { "pricing_view", "demo_request" }, half_life_days = 14 },
    careers_views_30d    = feature { count = "careers_view", within_days = 30 },
    unsubscribes         = feature { count = "unsubscribe" },
  },
}
