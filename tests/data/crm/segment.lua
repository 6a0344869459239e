-- Segment (or RudderStack) track events, one JSON message a line, into leadq's events: the lead is
-- the userId (or the anonymousId before sign-up), the type our name for the event.
return mapping "segment" {
  fields = {
    lead_id = { first_of = { "userId", "anonymousId" } },
    at = "timestamp",
    type = { from = "event", values = {
      ["Demo Requested"] = "demo_request",
      ["Pricing Page Viewed"] = "pricing_view",
      ["Webinar Attended"] = "webinar_attended",
      ["Email Opened"] = "email_open",
      ["Email Link Clicked"] = "email_click",
      ["Careers Page Viewed"] = "careers_view",
      ["Unsubscribed"] = "unsubscribe",
    } },
  },
}
