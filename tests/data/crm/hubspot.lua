-- A HubSpot contacts export (CRM > Contacts > Export, all properties) into the fields of
-- rules/mql.lua. HubSpot writes dates in the account's time zone without an offset (here UTC+02:00:
-- tz says so), numbers with thousands commas, and industries as its own enumeration.
return mapping "hubspot" {
  null = { "n/a", "-", "(No value)" },
  tz = "+02:00",
  fields = {
    id = "Record ID",
    email = { from = "Email", take = "lower" },
    email_domain = { from = "Email", take = "domain" },
    title = "Job Title",
    seniority = { from = "Seniority", values = { ["C-Level"] = "c_level", VP = "vp", Director = "director",
      Manager = "manager", Employee = "individual" } },
    department = { from = "Job function", take = "lower" },
    company = { first_of = { "Company Name", "Associated Company" } },
    employees = { from = "Number of Employees", type = "number" },
    industry = { from = "Industry", values = { COMPUTER_SOFTWARE = "Software",
      INFORMATION_TECHNOLOGY_AND_SERVICES = "IT Services", EDUCATION_MANAGEMENT = "Education",
      CONSTRUCTION = "Construction" } },
    country = { from = "Country/Region", any_case = true, values = { ["United States"] = "US", Germany = "DE",
      ["United Kingdom"] = "GB", Spain = "ES" } },
    source = { from = "Lead Source", values = { Webinar = "webinar", ["Organic Search"] = "organic",
      Referral = "referral", ["Trade Show"] = "event", ["Paid Search"] = "paid_search", Partner = "partner" } },
    created_at = { from = "Create Date", format = "%Y-%m-%d %H:%M" },
    budget = { from = "Budget", type = "number" },
    timeline = { from = "Purchase Timeline", take = "lower" },
  },
  -- what goes back: a HubSpot import file keyed by Record ID
  export = {
    id = "Record ID",
    fields = { hs_lead_status = "status", leadq_score = "total", leadq_grade = "grade" },
    values = { hs_lead_status = { mql = "OPEN", nurture = "IN_PROGRESS", cold = "UNQUALIFIED",
      disqualified = "BAD_TIMING" } },
  },
}
