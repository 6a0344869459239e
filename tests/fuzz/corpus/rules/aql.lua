-- rules/aql.lua: the default account-qualified (AQL) model, for account-based marketing.
--
-- Who edits this: marketing ops and sales ops. An account is a company: its leads are grouped by
-- account id, or else by the domain of their e-mail or website (personal domains such as gmail.com
-- never form an account). This model scores the ACCOUNT, from one row per account that leadq
-- builds from the contacts' lead scores (see lua/leadq/accounts.lua):
--   contacts, engaged_contacts      leads of the account; of them, those at or above the engaged
--                                   score (40 by default: between the MQL model's nurture
--                                   bar, 25, and its MQL bar, 60; on generated data about 1 account
--                                   in 8 is then an AQL)
--   score_max, top_mean, top_sum    the best contact's score; the mean and sum of the 3 best
--   <persona>_present / _engaged    the buying committee: decision_maker, champion,
--                                   technical_evaluator, finance (declared in leadq.accounts.PERSONAS
--                                   by title, seniority and department); personas_present/_engaged
--                                   count them
--   employees, industry, country    firmographics, from the account's first contact that has them
--   intent_*                        account-level events (events.csv rows whose lead_id is the
--                                   account: intent data providers, de-anonymized visits)
--
-- How an account is scored
--   1. Each rule whose `when` holds adds its points to its group; groups are clamped to their caps.
--   2. Status: "aql" (sales-ready account) at 60 points or more, "engaged" at 30, "aware" below.
--      Competitors are disqualified whatever their score.
--   3. Explain an account (`leadq explain` or accounts.explain) to see the rules that fired and the
--      contacts behind the rollup, best first.

return model "aql" {
  description = "Default account-qualified model: engaged contacts, buying committee, intent, fit",

  lists = {
    -- The market rules/mql.lua targets too: one file each, shared by both models.
    target_industries = file "lists/target_industries.txt",
    target_countries = file "lists/target_countries.txt",
    competitors = file "lists/competitors.txt",
  },

  groups = {
    -- Several people engaging, not one: the account is looking, not just a curious employee.
    engagement = { label = "Engaged contacts", cap = 35 },
    -- The buying committee: who would sign, who would push, who would check, who would pay.
    committee = { label = "Buying committee", cap = 35 },
    -- Account-level intent (third-party research signals, visits from the company's network).
    intent    = { label = "Account intent", cap = 25 },
    -- The company itself: size, industry, country.
    fit       = { label = "Account fit", cap = 25 },
    negative  = { label = "Negative signals", floor = -20 },
  },

  rules = {
    -- Engaged contacts --------------------------------------------------------------------------
    rule "ONE_ENGAGED" {
      label = "At least one engaged contact", group = "engagement", points = 10,
      when = { engaged_contacts = { at_least = 1 } },
    },
    rule "THREE_ENGAGED" {
      label = "Three or more engaged contacts", group = "engagement", points = 15,
      when = { engaged_contacts = { at_least = 3 } },
    },
    rule "STRONG_TOP_CONTACTS" {   -- the three best contacts average an MQL-level score
      label = "Best contacts average 60+ points", group = "engagement", points = 10,
      when = { top_mean = { at_least = 60 } },
    },

    -- Buying committee ---------------------------------------------------------------------------
    rule "DECISION_MAKER_ENGAGED" {
      label = "A decision maker is engaged", group = "committee", points = 15,
      when = { decision_maker_engaged = true },
    },
    rule "CHAMPION_ENGAGED" {
      label = "A champion is engaged", group = "committee", points = 10,
      when = { champion_engaged = true },
    },
    rule "TECHNICAL_EVALUATOR_ENGAGED" {
      label = "A technical evaluator is engaged", group = "committee", points = 10,
      when = { technical_evaluator_engaged = true },
    },
    rule "FINANCE_ENGAGED" {
      label = "Finance is engaged", group = "committee", points = 5,
      when = { finance_engaged = true },
    },
    rule "COMMITTEE_COVERED" {     -- every persona known at the account, engaged or not
      label = "All four personas among the contacts", group = "committee", points = 5,
      when = { personas_present = { at_least = 4 } },
    },

    -- Account intent -----------------------------------------------------------------------------
    rule "INTENT_SURGE" {
      label = "Intent surge on our topics (30 days)", group = "intent", points = 15,
      when = { intent_surges_30d = { at_least = 1 } },
    },
    rule "INTENT_SUSTAINED" {
      label = "Three or more intent surges (30 days)", group = "intent", points = 10,
      when = { intent_surges_30d = { at_least = 3 } },
    },
    rule "ACCOUNT_VISITS" {
      label = "5+ visits from the company's network (14 days)", group = "intent", points = 10,
      when = { account_visits_14d = { at_least = 5 } },
    },

    -- Account fit ----------------------------------------------------------------------------------
    rule "MID_MARKET" {
      label = "200 to 5,000 employees", group = "fit", points = 15,
      when = { employees = { between = { 200, 5000 } } },
    },
    rule "TARGET_INDUSTRY" {
      label = "Target industry", group = "fit", points = 10,
      when = { industry = { one_of = list "target_industries" } },
    },
    rule "TARGET_COUNTRY" {
      label = "Country with a sales team", group = "fit", points = 5,
      when = { country = { one_of = list "target_countries" } },
    },

    -- Negative -------------------------------------------------------------------------------------
    rule "SINGLE_THREADED" {       -- one contact only: one person leaving ends the deal
      label = "Only one contact", group = "negative", points = -10,
      when = { contacts = { at_most = 1 } },
    },
  },

  disqualifiers = {
    disqualify "COMPETITOR" { reason = "competitor", when = { account = { one_of = list "competitors" } } },
  },

  thresholds = { aql = 60, engaged = 30, otherwise = "aware" },

  features = {
    intent_surges_30d  = feature { count = "intent_surge", within_days = 30 },
    account_visits_14d = feature { count = "account_visit", within_days = 14 },
  },
}
