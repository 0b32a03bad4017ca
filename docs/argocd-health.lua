-- Argo CD health check for keys.dataminer.services/DataMinerKeySet.
-- Install: see docs/argocd.md. Argo CD sets `obj`; the chunk returns the health status. It uses
-- only what Argo CD opens for health scripts (base and table: no string library).
local hs = { status = "Progressing", message = "Waiting for the operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
-- Status that describes an older spec is not an answer yet.
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "The operator has not seen the latest spec yet"
  return hs
end
local ready, revoked, reconciling, stalled
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Revoked" then revoked = c end
  if c.type == "Reconciling" and c.status == "True" then reconciling = c end
  if c.type == "Stalled" and c.status == "True" then stalled = c end
end
-- kstatus's conditions first: someone must act, or the operator carries on by itself.
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if reconciling ~= nil then
  hs.message = reconciling.message or "The operator is working on it"
  return hs
end
if revoked ~= nil and revoked.status == "True" then
  -- Revocation was asked for (and confirmed): that is the desired state.
  hs.status = "Healthy"
  hs.message = "Revoked: " .. (revoked.message or "")
  return hs
end
if ready == nil then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Keys ready"
elseif ready.reason == "KeysPending" then
  hs.message = ready.message or "Keys pending"
else
  -- An operator older than the Stalled condition: a Ready=False that is not pending needs a
  -- person (ConfirmationMismatch, SecretConflict, SecretDrift, InvalidSpec, SecretWriteFailed).
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
end
return hs
