-- One task lifecycle event, recorded in one round trip (see monitoring/keys.py for the keys).
--
-- ARGV[1] key prefix, ARGV[2] command, ARGV[3] task id, ARGV[4] now (ms), ARGV[5] the event's
-- data: a JSON object whose values are all text.
-- The line below is replaced by monitoring/store.py with the retention and limits, so that no
-- call pays for decoding them.
--
-- Every call runs on a worker's hot path, so each command is counted: field writes are
-- buffered and flushed in one HSET, and clean-ups run only when there is something to clean.
-- Values stay text from ARGV to Redis: a Lua number handed to redis.call or joined to a string is
-- formatted with "%.14g", a floating-point conversion that cost more than the commands around it
-- (callgrind, issue 9); numbers computed here are written with text(), an integer format.
-- luacheck: globals ARGV redis cjson unpack

local config = CONFIG
local prefix, command, task_id, now_text = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(now_text)
local data = cjson.decode(ARGV[5])

local function text(number)
    return string.format("%d", number)
end

local task_key = prefix .. "task:" .. task_id
local function finished(name)
    return name == "SUCCESS" or name == "FAILURE" or name == "REVOKED"
end
local current = redis.call("hmget", task_key, "state", "enqueued_at", "actor", "queue", "timeline", "worker",
                          "events", "orphaned", "eta", "progress", "deaths", "attempt", "finished_attempt")
local state, enqueued_at, actor, queue = current[1], current[2], current[3], current[4]
local timeline_json, last_worker, events = current[5], current[6], tonumber(current[7]) or 0
local was_orphaned, had_eta, had_progress, deaths = current[8], current[9], current[10], tonumber(current[11]) or 0
local last_attempt, finished_attempt = tonumber(current[12]), tonumber(current[13])

local pending = {}

local function set(name, value)
    if value ~= nil then
        pending[#pending + 1] = name
        pending[#pending + 1] = value
    end
end

local function flush()
    if #pending > 0 then
        redis.call("hset", task_key, unpack(pending))
        pending = {}
    end
end

local function move_to(new_state)
    if state then
        redis.call("zrem", prefix .. "history:state:" .. state, task_id)
    end
    redis.call("zadd", prefix .. "history:state:" .. new_state, enqueued_at, task_id)
    set("state", new_state)
    state = new_state
end

-- One event on the task's timeline: its state, when, and what of worker, attempt and one more
-- field (``name``, ``value``: eta, a number, or error or reason, text) it has.
local function add_event(state_name, worker, attempt, name, value)
    local encoded = '{"state":"' .. state_name .. '","at":' .. now_text
    if worker then
        encoded = encoded .. ',"worker":' .. cjson.encode(worker)
    end
    if attempt then
        encoded = encoded .. ',"attempt":' .. attempt
    end
    if value then
        encoded = encoded .. ',"' .. name .. '":' .. (name == "eta" and value or cjson.encode(value))
    end
    encoded = encoded .. "}"
    events = events + 1
    if events > config.timeline_max then
        -- Rare: drop the oldest events so that a task retried forever stays small.
        local timeline = cjson.decode(timeline_json)
        while #timeline >= config.timeline_max do
            table.remove(timeline, 1)
        end
        timeline[#timeline + 1] = cjson.decode(encoded)
        timeline_json = cjson.encode(timeline)
        events = #timeline
    elseif timeline_json then
        -- Appending text keeps each event O(1) instead of decoding the whole timeline.
        timeline_json = string.sub(timeline_json, 1, -2) .. "," .. encoded .. "]"
    else
        timeline_json = "[" .. encoded .. "]"
    end
    set("timeline", timeline_json)
    set("events", text(events))
end

-- Counters go to the minute bucket only; monitoring/counters.py rolls finished minutes up into
-- hour and day buckets once a minute, off the hot path.
local function count(metric, duration, bucket)
    local key = prefix .. "stats:minute:" .. text(math.floor(now / 60000))
    local owner = actor .. "@" .. queue .. ":"
    if redis.call("hincrby", key, owner .. metric, "1") == 1 then
        redis.call("expire", key, text(config.ttl_minute))
    end
    if duration then
        redis.call("hincrby", key, owner .. "duration_sum", duration)
        redis.call("hincrby", key, owner .. "b" .. bucket, "1")
        -- The slowest and the fastest duration: one read and at most one write, as for the max alone.
        local max_field, min_field = owner .. "duration_max", owner .. "duration_min"
        local kept = redis.call("hmget", key, max_field, min_field)
        local extremes = {}
        local value = tonumber(duration)
        if value > tonumber(kept[1] or "-1") then
            extremes[#extremes + 1] = max_field
            extremes[#extremes + 1] = duration
        end
        if not kept[2] or value < tonumber(kept[2]) then
            extremes[#extremes + 1] = min_field
            extremes[#extremes + 1] = duration
        end
        if #extremes > 0 then
            redis.call("hset", key, unpack(extremes))
        end
    end
end

-- Keeps the task's record ``seconds`` more, and notes when it expires, so that upkeep removes it
-- from every history index then and not before (monitoring/upkeep.py).
local function expire_in(seconds)
    redis.call("expire", task_key, text(seconds))
    redis.call("zadd", prefix .. "expiries", text(now + seconds * 1000), task_id .. "\t" .. actor .. "\t" .. queue)
end

-- Whether a worker that held a task died without saying goodbye: it never marked itself stopped,
-- and Dramatiq no longer sees its heartbeat (which is why the broker redelivered its messages).
local function died_without_goodbye(worker)
    if not worker then
        return true
    end
    if redis.call("hexists", prefix .. "worker:" .. worker, "stopped_at") == 1 then
        return false
    end
    local beat = tonumber(redis.call("zscore", config.broker_heartbeats, worker))
    return not beat or beat < now - config.redelivery_ms
end

local function create(from)
    actor, queue, enqueued_at = from.actor, from.queue, now_text
    set("actor", actor)
    set("queue", queue)
    set("enqueued_at", now_text)
    set("args", from.args or "[]")
    set("kwargs", from.kwargs or "{}")
    for _, field in ipairs({"parent_id", "pipeline", "group_id", "retry_of"}) do
        set(field, from[field])
    end
    redis.call("zadd", prefix .. "history", now_text, task_id)
    redis.call("zadd", prefix .. "history:actor:" .. actor, now_text, task_id)
    redis.call("zadd", prefix .. "history:queue:" .. queue, now_text, task_id)
    count("enqueued")
end

local function fail_for_good(error_type, error_message)
    set("finished_at", now_text)
    set("error_type", error_type)
    set("error_message", error_message)
    move_to("FAILURE")
    add_event("FAILURE", nil, nil, "error", error_type .. ": " .. error_message)
    count("failed")
    flush()
    expire_in(config.ttl_failure)
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
    if state == "SCHEDULED" and data.eta and tonumber(had_eta) == tonumber(data.eta) then
        return state  -- a replay of this very enqueue
    end
    if data.eta then
        set("eta", data.eta)
        move_to("SCHEDULED")
    else
        if had_eta then
            redis.call("hdel", task_key, "eta")
        end
        move_to("PENDING")
    end
    add_event(state, nil, nil, "eta", data.eta)
    flush()
    local delay = data.eta and math.ceil(math.max(tonumber(data.eta) - now, 0) / 1000) or 0
    expire_in(config.ttl_failure + delay)
    return state

elseif command == "start" then
    if redis.call("exists", prefix .. "revoked:" .. task_id) == 1 then
        if state and state ~= "REVOKED" then
            move_to("REVOKED")
            add_event("REVOKED", data.worker)
            flush()
        end
        return "revoked"
    end
    local created = false
    if not state then
        create(data)
        created = true
    elseif finished(state) then
        -- Finished already and redelivered (its worker died before the acknowledgement).
        return "finished"
    elseif state == "STARTED" then
        if last_worker == data.worker and last_attempt == tonumber(data.attempt) then
            return "ok"  -- a replay of this very start (a kept connection re-sent its batch)
        end
        if died_without_goodbye(last_worker) then
            -- The previous attempt never finished: its worker process died on it.
            deaths = deaths + 1
            set("deaths", text(deaths))
            add_event("LOST", last_worker)
            if deaths >= config.poison_cap then
                if was_orphaned then
                    redis.call("hdel", task_key, "orphaned")
                end
                fail_for_good("WorkerKilled", "killed its worker " .. text(deaths) .. " times")
                return "poison"
            end
        else
            -- Delivered again while its first worker lives or said goodbye (a lost acknowledgement,
            -- a deploy): not a death.
            add_event("REDELIVERED", last_worker)
        end
    end
    if was_orphaned or had_eta or had_progress then
        redis.call("hdel", task_key, "orphaned", "progress", "progress_text", "eta")
    end
    set("started_at", now_text)
    set("worker", data.worker)
    set("attempt", data.attempt)
    set("retries", data.retries)
    set("broker_message_id", data.broker_message_id)
    move_to("STARTED")
    add_event("STARTED", data.worker, data.attempt)
    flush()
    return created and "created" or "ok"

elseif command == "finish" then
    if not state then
        create(data)
    elseif finished(state) and state ~= "REVOKED" then
        return state
    elseif state == data.state and data.attempt and finished_attempt == tonumber(data.attempt) then
        return state  -- a replay of this very finish
    end
    set("finished_at", now_text)
    set("finished_attempt", data.attempt)
    set("duration_ms", data.duration_ms)
    set("retries", data.retries)
    if deaths > 0 then
        set("deaths", "0")
    end
    for _, field in ipairs({"result", "error_type", "error_message", "traceback", "fingerprint", "message",
                            "broker_message_id", "dead_lettered_at"}) do
        set(field, data[field])
    end
    if was_orphaned then
        redis.call("hdel", task_key, "orphaned")
    end
    move_to(data.state)
    add_event(data.state, data.worker, data.attempt,
              "error", data.error_type and (data.error_type .. ": " .. (data.error_message or "")))
    flush()
    local metric = "succeeded"
    if data.state == "FAILURE" then
        metric = "failed"
    elseif data.state == "RETRY" then
        metric = "retried"
    elseif data.state == "REVOKED" then
        metric = "revoked"
    end
    count(metric, data.duration_ms, data.bucket)
    if data.state == "SUCCESS" or data.state == "REVOKED" then
        expire_in(config.ttl_success)
    else
        expire_in(config.ttl_failure)
    end
    if data.state == "FAILURE" and data.fingerprint then
        local group_key = prefix .. "failure-group:" .. data.fingerprint
        redis.call("zadd", group_key, now_text, task_id)
        redis.call("expire", group_key, text(config.ttl_failure))
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
        set("progress", data.progress)
        set("progress_text", data.text)
        flush()
    end
    return state

elseif command == "revoke" then
    if not state then
        return nil
    end
    if finished(state) then
        return state
    end
    redis.call("set", prefix .. "revoked:" .. task_id, now_text, "PX", data.ttl_ms)
    if state == "STARTED" then
        set("revoke_requested_at", now_text)
        add_event("REVOKE_REQUESTED")
        flush()
        return state
    end
    local previous = state
    set("finished_at", now_text)
    move_to("REVOKED")
    add_event("REVOKED")
    flush()
    count("revoked")
    expire_in(config.ttl_success + math.ceil(tonumber(data.ttl_ms) / 1000))
    return previous

elseif command == "orphan" then
    if state == "STARTED" and last_worker == data.worker and not was_orphaned then
        set("orphaned", now_text)
        add_event("ORPHANED", last_worker)
        flush()
        return "orphaned"
    end
    return state

elseif command == "interrupt" then
    -- A stopping worker handed the message back to its queue: the task waits again, no death.
    if state ~= "STARTED" or last_worker ~= data.worker then
        return state
    end
    if was_orphaned or had_progress then
        redis.call("hdel", task_key, "orphaned", "progress", "progress_text")
    end
    move_to("PENDING")
    add_event("INTERRUPTED", last_worker, nil, "reason", data.reason)
    flush()
    return state

elseif command == "lost" then
    -- Upkeep found the message acknowledged (or dead-lettered) while the task was still STARTED:
    -- its finish record never arrived. The outcome is unknown; the task is not left STARTED.
    if state ~= "STARTED" or last_worker ~= data.worker then
        return state
    end
    if was_orphaned then
        redis.call("hdel", task_key, "orphaned")
    end
    fail_for_good("Lost", data.reason)
    return "lost"

elseif command == "mark" then
    -- Plain field updates on an existing task (dead-lettered, retried_as, ...).
    if state then
        for name, value in pairs(data) do
            set(name, value)
        end
        flush()
    end
    return state
end

return redis.error_reply("unknown command " .. command)
