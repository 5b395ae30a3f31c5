-- Argo CD health check for lighthouse.dev/LighthouseBridge.
-- Install: argocd-cm, key resource.customizations.health.lighthouse.dev_LighthouseBridge (see README.md here).
-- Argo CD never derives a parent's health from its children, so this reads the resource's own status, following
-- kstatus: a status from an older generation is never trusted, Stalled and RolledBack are failures, Ready is health.
local hs = {}

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

local function current(c)
  -- A condition written for an older generation says nothing about the spec in Git.
  if c == nil then
    return false
  end
  if c.observedGeneration ~= nil and obj.metadata.generation ~= nil then
    return c.observedGeneration == obj.metadata.generation
  end
  return true
end

local function msg(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to see this LighthouseBridge"
  return hs
end

if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local ready = condition("Ready")
local stalled = condition("Stalled")
local rolledBack = condition("RolledBack")
local degraded = condition("Degraded")
local reconciling = condition("Reconciling")

-- A rollback keeps the old revision serving but leaves Git's revision undeployed: a human has to act.
if rolledBack ~= nil and rolledBack.status == "True" and current(rolledBack) then
  hs.status = "Degraded"
  hs.message = "Rolled back: " .. msg(rolledBack, "the new revision failed")
  return hs
end

-- Paused on purpose: nothing is applied, which Argo CD calls Suspended.
if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = msg(reconciling, "spec.paused is true")
  return hs
end

-- Stalled covers an invalid spec, a missing Secret, and a frozen rollout (rollout.onFailure: Freeze).
if stalled ~= nil and stalled.status == "True" and current(stalled) then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. msg(stalled, "the operator cannot make progress")
  return hs
end

if ready ~= nil and ready.status == "True" and current(ready) then
  hs.status = "Healthy"
  hs.message = msg(ready, "Ready")
  return hs
end

if degraded ~= nil and degraded.status == "True" and current(degraded) then
  hs.status = "Degraded"
  hs.message = msg(degraded, "a component is unhealthy")
  return hs
end

hs.status = "Progressing"
hs.message = msg(ready, msg(reconciling, "Reconciling"))
return hs
