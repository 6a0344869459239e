-- rules/sql.lua: the sales-qualified-lead (SQL) model, by BANT: Budget, Authority, Need, Timing.
--
-- Runs AFTER rules/mql.lua in the same run and reads its results (mql.status, mql.total, mql.fit...):
--   build/leadq score --rules rules/mql.lua,rules/sql.lua --leads leads.csv
-- Sales development uses it to decide which MQLs to accept (SAL) and which to turn into
-- opportunities (SQL). Each BANT letter is a group capped at 25 points, so a lead needs at least
-- three of the four to reach "sql" (70).

return model "sql" {
  description = "BANT sales qualification, on top of the MQL model's result",

  groups = {
    budget    = { label = "Budget", cap = 25 },
    authority = { label = "Authority", cap = 25 },
    need      = { label = "Need", cap = 25 },
    timing    = { label = "Timing", cap = 25 },
  },

  rules = {
    -- B: can they pay? A stated budget is best; company size is the fallback for "probably can".
    rule "BUDGET_LARGE" {
      label = "Budget of 100,000 or more", group = "budget", points = 25,
      when = { budget = { at_least = 100000 } },
    },
    rule "BUDGET_MEDIUM" {
      label = "Budget of 25,000 to 99,999", group = "budget", points = 15,
      when = { budget = { at_least = 25000, below = 100000 } },
    },
    rule "BUDGET_FROM_SIZE" {     -- no budget given, but a company this size has one
      label = "No stated budget, 500+ employees", group = "budget", points = 10,
      when = { budget = "missing", employees = { at_least = 500 } },
    },

    -- A: can they sign? The economic buyer (C-level, VP) or the one who runs the evaluation.
    rule "AUTHORITY_SIGNER" {
      label = "C-level, owner or VP", group = "authority", points = 25,
      when = { seniority = { one_of = { "C-Level", "Owner", "Founder", "VP" } } },
    },
    rule "AUTHORITY_EVALUATOR" {
      label = "Director", group = "authority", points = 15,
      when = { seniority = "Director" },
    },
    rule "AUTHORITY_INFLUENCER" {
      label = "Manager", group = "authority", points = 5,
      when = { seniority = "Manager" },
    },

    -- N: do they need us? Marketing said the profile fits (the MQL model's fit points).
    rule "NEED_STRONG_FIT" {
      label = "Strong ICP fit in the MQL model (35+)", group = "need", points = 20,
      when = { ["mql.fit"] = { at_least = 35 } },
    },
    rule "NEED_SOME_FIT" {
      label = "Some ICP fit in the MQL model (20 to 34)", group = "need", points = 10,
      when = { ["mql.fit"] = { at_least = 20, below = 35 } },
    },
    rule "NEED_INDUSTRY" {
      label = "Industry with a ready-made playbook", group = "need", points = 5,
      when = { industry = { one_of = { "Software", "Financial Services" } } },
    },

    -- T: will they buy soon? They reached us recently, or asked for a conversation.
    rule "TIMING_MQL_NOW" {
      label = "Is an MQL now", group = "timing", points = 15,
      when = { ["mql.status"] = "mql" },
    },
    rule "TIMING_RECENT" {
      label = "Created in the last 14 days", group = "timing", points = 10,
      when = { created_at = { within_days = 14 } },
    },
    rule "TIMING_ASKED" {
      label = "Asked for a demo or a call", group = "timing", points = 10,
      when = { source = { one_of = { "Demo Request", "Contact Us" } } },
    },
  },

  disqualifiers = {
    -- Marketing already ruled the lead out (competitor, student, unsubscribed): sales does not see it.
    disqualify "MQL_DISQUALIFIED" {
      reason = "disqualified by marketing", when = { ["mql.status"] = "disqualified" },
    },
    -- Too low to be worth a call even with every BANT box ticked.
    disqualify "MQL_TOO_LOW" {
      reason = "mql score below 10", when = { ["mql.total"] = { below = 10 } },
    },
  },

  -- 70+: a sales-qualified lead (open an opportunity). 45 to 69: accepted by sales (SAL), keep working.
  thresholds = { sql = 70, sal = 45, otherwise = "not_ready" },
}
