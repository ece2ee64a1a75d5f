-- One task lifecycle event, recorded in one round trip (see monitoring/keys.py for the keys).
--
-- ARGV[1] key prefix, ARGV[2] command, ARGV[3] task id, ARGV[4] now (ms),
-- ARGV[5] the event's data (JSON).
-- The line below is replaced by monitoring/store.py with the retention and limits, so that no
-- call pays for decoding them.
-- luacheck: globals ARGV redis cjson

local config = CONFIG
local prefix = ARGV[1]
local command = ARGV[2]
local task_id = ARGV[3]
local now = tonumber(ARGV[4])
local data = cjson.decode(ARGV[5])

local task_key = prefix .. "task:" .. task_id
local TERMINAL = {SUCCESS = true, FAILURE = true, REVOKED = true}
local current = redis.call("hmget", task_key, "state", "enqueued_at", "actor", "queue", "timeline", "worker",
                          "events")
local state, enqueued_at, actor, queue, timeline_json = current[1], tonumber(current[2]), current[3], current[4], current[5]
local last_worker = current[6]
local events = tonumber(current[7]) or 0

local function set_fields(fields)
    local flat = {}
    for name, value in pairs(fields) do
        flat[#flat + 1] = name
        flat[#flat + 1] = tostring(value)
    end
    if #flat > 0 then
        redis.call("hset", task_key, unpack(flat))
    end
end

local function move_to(new_state)
    if state then
        redis.call("zrem", prefix .. "history:state:" .. state, task_id)
    end
    redis.call("zadd", prefix .. "history:state:" .. new_state, enqueued_at, task_id)
    redis.call("hset", task_key, "state", new_state)
    state = new_state
end

local function add_event(event)
    event.at = now
    local encoded = cjson.encode(event)
    events = events + 1
    if events > config.timeline_max then
        -- Rare: drop the oldest events so that a task retried forever stays small.
        local timeline = cjson.decode(timeline_json)
        while #timeline >= config.timeline_max do
            table.remove(timeline, 1)
        end
        timeline[#timeline + 1] = event
        timeline_json = cjson.encode(timeline)
        events = #timeline
    elseif timeline_json then
        -- Appending text keeps each event O(1) instead of decoding the whole timeline.
        timeline_json = string.sub(timeline_json, 1, -2) .. "," .. encoded .. "]"
    else
        timeline_json = "[" .. encoded .. "]"
    end
    redis.call("hset", task_key, "timeline", timeline_json, "events", events)
end

-- Counters go to the minute bucket only; monitoring/workers.py rolls finished minutes up into
-- hour and day buckets once a minute, off the hot path.
local function count(metrics, duration, bucket)
    local key = prefix .. "stats:minute:" .. math.floor(now / 60000)
    local owner = actor .. "@" .. queue .. ":"
    for name, amount in pairs(metrics) do
        redis.call("hincrby", key, owner .. name, amount)
    end
    if duration then
        redis.call("hincrby", key, owner .. "duration_sum", duration)
        redis.call("hincrby", key, owner .. "b" .. bucket, 1)
        local max_field = owner .. "duration_max"
        if duration > tonumber(redis.call("hget", key, max_field) or "-1") then
            redis.call("hset", key, max_field, duration)
        end
    end
    redis.call("expire", key, config.ttl_minute)
end

local function create(from)
    actor, queue, enqueued_at = from.actor, from.queue, now
    set_fields({id = task_id, actor = actor, queue = queue, enqueued_at = now, retries = 0,
                args = from.args or "[]", kwargs = from.kwargs or "{}"})
    for _, field in ipairs({"parent_id", "pipeline", "group_id", "retry_of"}) do
        if from[field] then
            redis.call("hset", task_key, field, from[field])
        end
    end
    redis.call("zadd", prefix .. "history", now, task_id)
    redis.call("zadd", prefix .. "history:actor:" .. actor, now, task_id)
    redis.call("zadd", prefix .. "history:queue:" .. queue, now, task_id)
    count({enqueued = 1})
end

local function fail_for_good(error_type, error_message, ttl)
    set_fields({finished_at = now, error_type = error_type, error_message = error_message})
    move_to("FAILURE")
    add_event({state = "FAILURE", error = error_type .. ": " .. error_message})
    count({failed = 1})
    redis.call("expire", task_key, ttl)
end

if command == "enqueue" then
    if state and state ~= "SCHEDULED" then
        -- A retry, or a delayed message moved to its queue: the state stays; note the next run.
        if data.eta then
            redis.call("hset", task_key, "eta", data.eta)
        end
        return state
    end
    if not state then
        create(data)
    end
    if data.eta then
        redis.call("hset", task_key, "eta", data.eta)
        move_to("SCHEDULED")
        redis.call("expire", task_key, config.ttl_failure + math.ceil(math.max(data.eta - now, 0) / 1000))
    else
        redis.call("hdel", task_key, "eta")
        move_to("PENDING")
        redis.call("expire", task_key, config.ttl_failure)
    end
    add_event({state = state, eta = data.eta})
    return state

elseif command == "start" then
    if redis.call("exists", prefix .. "revoked:" .. task_id) == 1 then
        if state and state ~= "REVOKED" then
            move_to("REVOKED")
            add_event({state = "REVOKED", worker = data.worker})
        end
        return "revoked"
    end
    local created = false
    if not state then
        create(data)
        created = true
    elseif TERMINAL[state] then
        -- Finished already and redelivered (its worker died before the acknowledgement).
        return "finished"
    elseif state == "STARTED" then
        -- The previous attempt never finished: its worker process died on it.
        local deaths = redis.call("hincrby", task_key, "deaths", 1)
        add_event({state = "LOST", worker = last_worker})
        if deaths >= config.poison_cap then
            redis.call("hdel", task_key, "orphaned")
            fail_for_good("WorkerKilled", "killed its worker " .. deaths .. " times", config.ttl_failure)
            return "poison"
        end
    end
    set_fields({started_at = now, worker = data.worker, attempt = data.attempt, retries = data.retries,
                broker_message_id = data.broker_message_id})
    redis.call("hdel", task_key, "orphaned", "progress", "progress_text", "eta")
    move_to("STARTED")
    add_event({state = "STARTED", worker = data.worker, attempt = data.attempt})
    return created and "created" or "ok"

elseif command == "finish" then
    if not state then
        create(data)
    elseif TERMINAL[state] and state ~= "REVOKED" then
        return state
    end
    local fields = {finished_at = now, duration_ms = data.duration_ms, retries = data.retries, deaths = 0}
    for _, field in ipairs({"result", "error_type", "error_message", "traceback", "fingerprint", "message"}) do
        if data[field] then
            fields[field] = data[field]
        end
    end
    set_fields(fields)
    redis.call("hdel", task_key, "orphaned")
    move_to(data.state)
    add_event({state = data.state, attempt = data.attempt, worker = data.worker, eta = data.eta,
               error = data.error_type and (data.error_type .. ": " .. (data.error_message or "")) or nil})
    local metrics = {processed = 1}
    if data.state == "SUCCESS" then
        metrics.succeeded = 1
    elseif data.state == "FAILURE" then
        metrics.failed = 1
    elseif data.state == "RETRY" then
        metrics.retried = 1
    elseif data.state == "REVOKED" then
        metrics.revoked = 1
    end
    count(metrics, data.duration_ms, data.bucket)
    if data.state == "SUCCESS" or data.state == "REVOKED" then
        redis.call("expire", task_key, config.ttl_success)
    else
        redis.call("expire", task_key, config.ttl_failure)
    end
    if data.state == "FAILURE" and data.fingerprint then
        local group_key = prefix .. "failure-group:" .. data.fingerprint
        redis.call("zadd", group_key, now, task_id)
        redis.call("expire", group_key, config.ttl_failure)
        local group_json = redis.call("hget", prefix .. "failure-groups", data.fingerprint)
        local group = group_json and cjson.decode(group_json)
            or {type = data.error_type, message = data.error_message, first = now, count = 0}
        group.count = group.count + 1
        group.last = now
        redis.call("hset", prefix .. "failure-groups", data.fingerprint, cjson.encode(group))
    end
    return state

elseif command == "progress" then
    if state == "STARTED" then
        set_fields({progress = data.progress, progress_text = data.text})
    end
    return state

elseif command == "revoke" then
    if not state then
        return nil
    end
    if TERMINAL[state] then
        return state
    end
    redis.call("set", prefix .. "revoked:" .. task_id, now, "PX", data.ttl_ms)
    if state == "STARTED" then
        redis.call("hset", task_key, "revoke_requested_at", now)
        add_event({state = "REVOKE_REQUESTED"})
        return state
    end
    local previous = state
    redis.call("hset", task_key, "finished_at", now)
    move_to("REVOKED")
    add_event({state = "REVOKED"})
    count({revoked = 1})
    redis.call("expire", task_key, config.ttl_success + math.ceil(data.ttl_ms / 1000))
    return previous

elseif command == "orphan" then
    if state == "STARTED" and last_worker == data.worker then
        redis.call("hset", task_key, "orphaned", now)
        add_event({state = "ORPHANED", worker = last_worker})
        return "orphaned"
    end
    return state

elseif command == "mark" then
    -- Plain field updates on an existing task (dead-lettered, retried_as, ...).
    if state then
        set_fields(data)
    end
    return state
end

return redis.error_reply("unknown command " .. command)
