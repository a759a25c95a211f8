-- Argo CD health of mlops.dev Datasets, Models, DriftMonitors and BatchScorings, read from their status.
-- One script for the four kinds: argocd-cm key `resource.customizations.health.mlops.dev_*`
-- (docs/install.md, "GitOps"). Lua 5.1, as Argo CD runs it; tests/contract/test_argocd_health.py
-- runs it against recorded status objects.
--
--   Healthy      Ready=True (a Model that serves while it trains its next version included)
--   Progressing  not reconciled yet; profiling, training, rolling out, a batch run; waiting for a
--                Dataset or Model applied in the same sync
--   Suspended    a Manual Model waits for a person to approve a version (spec.approvedVersion)
--   Degraded     a failure: invalid spec, failed profiling, training, validation or rollout, a
--                drift check that fails or no longer matches the baseline

local hs = {}

local function condition(status, kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

local function set(status, message)
  hs.status = status
  hs.message = message
  return hs
end

-- Ready=False reasons that only wait for another resource, e.g. one applied in the same sync.
local WAITING = {DatasetNotFound = true, DatasetNotReady = true, ModelNotFound = true, BaselineNotReady = true}

local function dataset(status, ready)
  if ready ~= nil and ready.status == "True" then
    return set("Healthy", ready.message)
  end
  local profiled = condition(status, "Profiled")
  if ready == nil or ready.status ~= "False" or (profiled ~= nil and profiled.status == "Unknown") then
    return set("Progressing", ready ~= nil and describe(ready) or "profiling")
  end
  return set("Degraded", describe(ready))
end

local function model(status, ready)
  if ready ~= nil and ready.status == "True" then
    local message = status.message or ready.message
    if status.metric ~= nil then
      message = message .. " (" .. status.metric .. ")"
    end
    if status.activeTraining ~= nil then
      message = message .. "; training version " .. string.format("%d", status.activeTraining.version)
    end
    return set("Healthy", message)
  end
  local trained = condition(status, "Trained")
  if status.phase == "Training" or status.phase == "RollingOut" or (trained ~= nil and trained.status == "Unknown"
      and trained.reason ~= "NotTrained") then
    return set("Progressing", status.message or status.phase)
  end
  if status.phase == "AwaitingApproval" then
    local approved = condition(status, "Approved")
    return set("Suspended", approved ~= nil and describe(approved) or "awaiting approval")
  end
  if ready == nil or ready.status ~= "False" or WAITING[ready.reason] then
    return set("Progressing", ready ~= nil and describe(ready) or "reconciling")
  end
  -- The first condition that is False says what failed (Ready may only say that nothing serves).
  for _, kind in ipairs({"DatasetResolved", "Trained", "Validated", "Approved", "Serving"}) do
    local c = condition(status, kind)
    if c ~= nil and c.status == "False" and c.reason ~= "NothingToServe" then
      return set("Degraded", kind .. " " .. describe(c))
    end
  end
  if ready.reason == "NothingToServe" then
    for i = #(status.versions or {}), 1, -1 do
      local v = status.versions[i]
      if v.state == "RolledBack" or v.state == "Failed" or v.state == "Rejected" then
        local why = v.reason or v.state
        if v.message ~= nil then
          why = why .. ": " .. v.message
        end
        return set("Degraded", "version " .. string.format("%d", v.version) .. " " .. v.state .. " (" .. why .. ")")
      end
    end
  end
  return set("Degraded", describe(ready))
end

local function driftmonitor(status, ready)
  if ready == nil or ready.status ~= "False" then
    if ready == nil or ready.status ~= "True" then
      return set("Progressing", ready ~= nil and describe(ready) or "reconciling")
    end
    local detected = condition(status, "DriftDetected")
    if status.lastVerdict == "Failed" or status.lastVerdict == "SchemaMismatch" then
      return set("Degraded", "last check " .. (detected ~= nil and describe(detected) or status.lastVerdict))
    end
    return set("Healthy", detected ~= nil and describe(detected) or ready.message)
  end
  if WAITING[ready.reason] then
    return set("Progressing", describe(ready))
  end
  return set("Degraded", describe(ready))
end

-- A BatchScoring is Healthy once its latest run succeeded, Progressing while a run is on its way or
-- waits for its Model or Dataset, Degraded when the latest run failed or cannot start.
local function batchscoring(status, ready)
  if ready ~= nil and ready.status == "True" then
    return set("Healthy", ready.message)
  end
  if ready == nil or ready.status ~= "False" or WAITING[ready.reason] then
    return set("Progressing", ready ~= nil and describe(ready) or "reconciling")
  end
  return set("Degraded", describe(ready))
end

local KINDS = {Dataset = dataset, Model = model, DriftMonitor = driftmonitor, BatchScoring = batchscoring}

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil then
  return set("Progressing", "waiting for the operator")
end
if generation ~= nil and status.observedGeneration < generation then
  return set("Progressing", "waiting for the operator to reconcile generation " .. string.format("%d", generation))
end
local health = KINDS[obj.kind]
if health == nil then
  return set("Unknown", "not a kind of mlops.dev: " .. tostring(obj.kind))
end
return health(status, condition(status, "Ready"))
