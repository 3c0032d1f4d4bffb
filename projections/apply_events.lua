-- Applies a batch of job events to the Redis read model, atomically, each at most once.
-- The semantics are those of projections/model.py (ReadModel.apply, first_gap); tests compare.
--
-- ARGV[1] namespace (key prefix of the generation), ARGV[2] the generation the caller writes
-- for ('' = do not check), ARGV[3] the key naming the current generation, ARGV[4] a JSON array
-- with one array of 16 strings per event: source ("topic:partition"), offset, type (or SKIP),
-- job_id, job_name, queue, at (ms), attempt, worker, data, progress, will_retry ('1', '0' or
-- ''), fingerprint, error_type, template, event_id. '' stands for "absent". (One JSON argument
-- instead of 16 per event: packing arguments one by one costs the client more than the script
-- costs Redis.) ARGV[5] a JSON object source -> log start offset, or ''.
-- Returns {applied, duplicates}; {-1, 0} when the generation is no longer current; {-2, source,
-- recorded, first} when the batch does not follow the recorded offset of `source` (nothing is
-- applied: the store lost writes, the caller repositions).

local ns, expected, pointer = ARGV[1], ARGV[2], ARGV[3]
if expected ~= '' and redis.call('GET', pointer) ~= expected then
  return {-1, 0}
end

-- The event_id guard keeps this many event ids per job (projections/model.py EVENT_ID_WINDOW).
local EVENT_ID_WINDOW = 128
local offsets_key = ns .. 'offsets'
local events = cjson.decode(ARGV[4])
local log_starts = {}
if ARGV[5] ~= '' then log_starts = cjson.decode(ARGV[5]) end

-- The offset each source was at before this batch; a first offset beyond it + 1 is a gap.
local last = {}
for _, event in ipairs(events) do
  local source = event[1]
  if last[source] == nil then
    local recorded = tonumber(redis.call('HGET', offsets_key, source) or '-1')
    local first = tonumber(event[2])
    local start = log_starts[source]
    if first > recorded + 1 and not (start ~= nil and first <= tonumber(start)) then
      return {-2, source, recorded, first}
    end
    last[source] = recorded
  end
end

local TERMINAL = {completed = true, failed = true, cancelled = true}

local function state_after(kind, will_retry)
  if kind == 'QUEUED' then return 'queued' end
  if kind == 'ACTIVE' or kind == 'PROGRESS' then return 'active' end
  if kind == 'COMPLETED' then return 'completed' end
  if kind == 'FAILED' then
    if will_retry == '1' then return 'retrying' end
    return 'failed'
  end
  if kind == 'STALLED' then return 'stalled' end
  return 'cancelled'
end

local function create_job(jk, kind, job_id, job_name, queue, at, data)
  -- Immutable fields are written here, once: no later event touches them.
  local fields = {'job_id', job_id, 'job_name', job_name, 'created_at', at, 'state', 'queued',
                  'attempts', '0', 'failures', '0'}
  if queue ~= '' then table.insert(fields, 'queue'); table.insert(fields, queue) end
  if kind ~= 'QUEUED' then data = '' end
  if data ~= '' then table.insert(fields, 'data'); table.insert(fields, data) end
  redis.call('HSET', jk, unpack(fields))
  local nk = ns .. 'name:' .. job_name .. ':'
  redis.call('SADD', ns .. 'names', job_name)
  redis.call('ZADD', nk .. 'jobs', at, job_id)
  redis.call('ZADD', nk .. 'state:queued', at, job_id)
  redis.call('HINCRBY', nk .. 'counts', 'queued', 1)
  local lk = nk .. 'latest'
  local latest = redis.call('HMGET', lk, 'created_at', 'job_id')
  local t = tonumber(at)
  -- Ties broken by job id, so the answer does not depend on which partition came first.
  if not latest[1] or t > tonumber(latest[1]) or (t == tonumber(latest[1]) and job_id > latest[2]) then
    redis.call('DEL', lk)
    redis.call('HSET', lk, 'created_at', at, 'job_id', job_id)
    if data ~= '' then redis.call('HSET', lk, 'data', data) end
  end
end

local function record_fingerprint(fp, error_type, template, at)
  local fk = ns .. 'fp:' .. fp
  if redis.call('HSETNX', fk, 'template', template) == 1 then
    redis.call('HSET', fk, 'error_type', error_type, 'first_seen', at, 'last_seen', at)
    redis.call('SADD', ns .. 'fps', fp)
  else
    local seen = redis.call('HMGET', fk, 'first_seen', 'last_seen')
    if tonumber(at) < tonumber(seen[1]) then redis.call('HSET', fk, 'first_seen', at) end
    if tonumber(at) > tonumber(seen[2]) then redis.call('HSET', fk, 'last_seen', at) end
  end
  redis.call('HINCRBY', fk, 'count', 1)
end

local function apply(a)
  -- One HMGET to read the job, one HSET to write it: calls, not computation, cost time here.
  -- Returns false (changing nothing) for a re-sent event: its event_id is among the job's last.
  local kind, job_id, at = a[3], a[4], a[7]
  local jk = ns .. 'job:' .. job_id
  local ek = ns .. 'eids:' .. job_id
  local job = redis.call('HMGET', jk, 'state', 'job_name', 'attempts', 'failures', 'first_started_at',
                        'created_at')
  local state, name = job[1], job[2]
  if not state then
    create_job(jk, kind, job_id, a[5], a[6], at, a[10])
    state, name, job[3], job[4], job[6] = 'queued', a[5], '0', '0', at
  elseif redis.call('LPOS', ek, a[16]) then
    return false
  end
  local nk = ns .. 'name:' .. name .. ':'
  local new_state = state_after(kind, a[12])
  local set = {'updated_at', at}
  local clear = {}
  local function put(field, value)
    if value == '' then table.insert(clear, field)
    else table.insert(set, field); table.insert(set, value) end
  end
  if kind == 'ACTIVE' then
    if tonumber(a[8]) > tonumber(job[3]) then put('attempts', a[8]) end
    if not job[5] then put('first_started_at', at) end
    put('last_started_at', at)
    put('worker', a[9])
  elseif kind == 'PROGRESS' then
    put('progress', a[11])
  elseif kind ~= 'QUEUED' then
    put('ended_at', at)
    local failures = tonumber(job[4])
    if kind == 'FAILED' or kind == 'STALLED' then
      failures = failures + 1
      put('failures', tostring(failures))
    end
    if kind == 'FAILED' and a[13] ~= '' then
      put('last_error_fingerprint', a[13])
      put('last_error_type', a[14])
      record_fingerprint(a[13], a[14], a[15], at)
    end
    if TERMINAL[new_state] then
      put('finished_at', at)
      redis.call('HINCRBY', nk .. 'retries', new_state .. ':' .. failures, 1)
    end
  end
  if new_state ~= state then
    put('state', new_state)
    redis.call('HINCRBY', nk .. 'counts', state, -1)
    redis.call('HINCRBY', nk .. 'counts', new_state, 1)
    if new_state == 'active' then redis.call('SADD', nk .. 'active', job_id) end
    if state == 'active' then redis.call('SREM', nk .. 'active', job_id) end
    -- The jobs now in each state, by creation time: `jobs?state=` pages it like `jobs`.
    redis.call('ZREM', nk .. 'state:' .. state, job_id)
    redis.call('ZADD', nk .. 'state:' .. new_state, job[6], job_id)
  end
  redis.call('HSET', jk, unpack(set))
  if #clear > 0 then redis.call('HDEL', jk, unpack(clear)) end
  -- A list of at most EVENT_ID_WINDOW short ids: LPOS scans it in microseconds.
  if redis.call('RPUSH', ek, a[16]) > EVENT_ID_WINDOW then
    redis.call('LTRIM', ek, -EVENT_ID_WINDOW, -1)
  end
  return true
end

local last_text = {}
local applied, duplicates = 0, 0
for _, event in ipairs(events) do
  local source, offset = event[1], tonumber(event[2])
  if offset <= last[source] then
    duplicates = duplicates + 1
  else
    last[source] = offset
    last_text[source] = event[2]
    if event[3] == 'SKIP' or apply(event) then
      applied = applied + 1
    else
      duplicates = duplicates + 1
    end
  end
end
for source, offset in pairs(last_text) do
  redis.call('HSET', offsets_key, source, offset)
end
return {applied, duplicates}
