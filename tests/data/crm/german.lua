-- A German-locale lead list (Excel "CSV (Trennzeichen-getrennt)": ';' between fields, ',' as the
-- decimal mark, '.' between thousands, dates as TT.MM.JJJJ, German column names and values) into
-- the fields of rules/mql.lua. Times are local (UTC+02:00).
return mapping "de" {
  null = { "k. A.", "-" },
  decimal = ",",
  date_format = "%d.%m.%Y %H:%M",
  tz = "+02:00",
  fields = {
    id = "Lead-ID",
    email = "E-Mail",
    email_domain = { from = "E-Mail", take = "domain" },
    title = "Position",
    seniority = { from = "Senioritaet", values = { ["C-Level"] = "c_level", VP = "vp", Direktor = "director",
      Manager = "manager" } },
    department = { from = "Abteilung", values = { Marketing = "marketing", Vertrieb = "sales",
      Technik = "engineering" } },
    company = "Firma",
    employees = { from = "Mitarbeiter", type = "number" },
    industry = { from = "Branche", values = { Software = "Software", ["IT-Dienstleistungen"] = "IT Services",
      Bildung = "Education", Bauwesen = "Construction" } },
    country = { from = "Land", values = { ["Vereinigte Staaten"] = "US", Deutschland = "DE",
      ["Vereinigtes Königreich"] = "GB", Spanien = "ES" } },
    source = { from = "Quelle", values = { Webinar = "webinar", Organisch = "organic", Empfehlung = "referral",
      Messe = "event", ["Bezahlte Suche"] = "paid_search", Partner = "partner" } },
    created_at = { from = "Erstellt am", type = "time" },
    budget = { from = "Budget (EUR)", type = "number" },
    timeline = { from = "Zeitrahmen", values = { ["0-3 Monate"] = "0-3 months", ["3-6 Monate"] = "3-6 months",
      ["keine Pläne"] = "no plans" } },
  },
}
