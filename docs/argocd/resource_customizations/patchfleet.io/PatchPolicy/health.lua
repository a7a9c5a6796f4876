-- Argo CD health check for patchfleet.io resources (SystemAccount, PatchPolicy,
-- PatchGroup, MaintenanceWindow, PatchRollout, Enrollment). The six kinds share this one script byte for byte
-- (tests/gitops checks it); it reads only the kstatus conventions every kind follows:
-- status.observedGeneration and the Ready, Reconciling and Stalled conditions.
--
-- It runs in Argo CD's restricted Lua environment (argocd-cm health overrides get only
-- the base, package, table and a safe os library: no string library), so it uses
-- nothing but plain tables, comparisons and the .. operator.
--
-- The order is kstatus' own, so that Argo CD, Flux and `kubectl wait` agree:
--   1. being deleted                          -> Progressing
--   2. status.observedGeneration lags         -> Progressing (the controller has not seen the spec)
--   3. Stalled=True                           -> Degraded    (a person must act)
--   4. Reconciling=True                       -> Progressing (work under way, or a failure being retried)
--   5. no Ready condition yet                 -> Progressing (the controller has not reported)
--   6. Ready=True                             -> Healthy
--   7. Ready=False, reason Suspended          -> Suspended   (SystemAccount spec.suspend)
--   8. Ready=False or Unknown otherwise       -> Progressing (kstatus: InProgress; only Stalled fails)

local function describe(condition, fallback)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

local hs = {}

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the controller removes what the resource made in every account-region"
  return hs
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation) ..
    " (status describes generation " .. tostring(status.observedGeneration) .. ")"
  return hs
end

local ready = nil
local reconciling = nil
local stalled = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    elseif condition.type == "Reconciling" then
      reconciling = condition
    elseif condition.type == "Stalled" then
      stalled = condition
    end
  end
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report status"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready.status == "False" and ready.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = describe(ready, "Suspended")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Not ready")
return hs
