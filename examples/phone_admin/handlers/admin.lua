-- Exposes beam_admin to the phone only. "phone" is a label in this
-- device's trust.list:  peernet-host trust add PHONE_KEY --label phone
local PHONE = "phone"

peernet.admin.expose {
  authorize = function(from) return from == peernet.resolve(PHONE) end,
}
