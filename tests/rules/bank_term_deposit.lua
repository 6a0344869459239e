-- luacheck: read_globals model rule
-- tests/rules/bank_term_deposit.lua: a hand-written model for the UCI Bank Marketing data
-- (tests/data/uci_bank_marketing/bank-full.csv): which clients subscribe a term deposit (y = yes)
-- when called. Written from what a bank's marketing team would know before the call; `duration`
-- (the length of the call) is left out: it is known only after the call, and would leak the outcome.
return model "bank_term_deposit" {
  description = "Term deposit subscription, from what is known before the call",

  groups = {
    history = { label = "Earlier campaigns", cap = 50 },
    profile = { label = "Client profile", cap = 40 },
    contact = { label = "How and when we call", floor = -40 },
  },

  rules = {
    -- The strongest sign: the client said yes to the previous campaign.
    rule "PREVIOUS_SUCCESS" {
      label = "Subscribed in the previous campaign", group = "history", points = 40,
      when = { poutcome = "success" },
    },
    rule "CONTACTED_BEFORE" {
      label = "Contacted in an earlier campaign", group = "history", points = 10,
      when = { previous = { at_least = 1 } },
    },
    -- Students and retirees have time and savings habits that favour deposits.
    rule "STUDENT_OR_RETIRED" {
      label = "Student or retired", group = "profile", points = 15,
      when = { job = { one_of = { "student", "retired" } } },
    },
    rule "YOUNG_OR_SENIOR" {
      label = "Under 25 or 60 and over", group = "profile", points = 10,
      when = { any = { { age = { below = 25 } }, { age = { at_least = 60 } } } },
    },
    rule "SAVINGS" {
      label = "Balance of 1,000 or more", group = "profile", points = 5,
      when = { balance = { at_least = 1000 } },
    },
    rule "TERTIARY_EDUCATION" {
      label = "University education", group = "profile", points = 5,
      when = { education = "tertiary" },
    },
    -- Loans tie the money up.
    rule "HOUSING_LOAN" {
      label = "Has a housing loan", group = "contact", points = -10,
      when = { housing = true },
    },
    rule "PERSONAL_LOAN" {
      label = "Has a personal loan", group = "contact", points = -5,
      when = { loan = true },
    },
    rule "UNKNOWN_CONTACT" {
      label = "No known phone type", group = "contact", points = -15,
      when = { contact = "unknown" },
    },
    -- Calling again and again annoys.
    rule "MANY_CALLS" {
      label = "Four calls or more in this campaign", group = "contact", points = -10,
      when = { campaign = { at_least = 4 } },
    },
    -- May is the busiest month for the call centre: the calls are shortest and least successful.
    rule "BUSY_MONTH" {
      label = "Called in May", group = "contact", points = -5,
      when = { month = "may" },
    },
    rule "QUIET_MONTH" {
      label = "Called in March, September, October or December", group = "profile", points = 20,
      when = { month = { one_of = { "mar", "sep", "oct", "dec" } } },
    },
  },

  thresholds = { hot = 30, warm = 10, otherwise = "cold" },
}
