-- Admin module for the reference's PeerNet.BeamDist.call/cast (Elixir's
-- Device is the atom 'Elixir.Device'; beam_admin drops the prefix).
local last = peernet.null
return {
  add = function(a, b) return a + b end,
  remember = function(v) last = v return peernet.atom("ok") end,
  last = function() return last end,
}
