-- One task lifecycle event, recorded in one round trip (see jobs/platform/keys.py for the keys).
--
-- ARGV[1] key prefix, ARGV[2] command, ARGV[3] task id, ARGV[4] now (ms), ARGV[5] the event's
-- data: a JSON object whose values are all text.
-- The line below is replaced by monitoring/store.py with the retention and limits, so that no
-- call pays for decoding them.
--
-- Every call runs on a worker's hot path, so its cost is counted (callgrind, issue 9):
--  * each command reads only the fields it needs (one HMGET) and writes its fields in one HSET;
--  * a timeline event is appended to the timeline's JSON as text, never decoded (except to drop
--    the oldest past the limit);
--  * values stay text from ARGV to Redis: a Lua number handed to redis.call or joined to a
--    string is formatted with "%.14g", which cost more than the commands around it; numbers
--    computed here are written with text(), an integer format;
--  * a helper only a rare path needs is defined on that path: every closure is made again on
--    every call.
-- luacheck: globals ARGV redis cjson unpack

local TTL_SUCCESS, TTL_FAILURE, TTL_MINUTE, TIMELINE_MAX, POISON_CAP, REDELIVERY_MS, BROKER_HEARTBEATS = CONFIG

local prefix, command, task_id, now_text = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local data = cjson.decode(ARGV[5])
local task_key = prefix .. "task:" .. task_id

local function text(number)
    return string.format("%d", number)
end

local function finished(state)
    return state == "SUCCESS" or state == "FAILURE" or state == "REVOKED"
end

-- Adds a field to write unless its value is missing.
local function put(fields, name, value)
    if value then
        fields[#fields + 1] = name
        fields[#fields + 1] = value
    end
end

-- Moves the task between state indexes; its new state goes with the other fields in ``fields``.
local function move_to(task, new_state, fields)
    if task.state then
        redis.call("zrem", prefix .. "history:state:" .. task.state, task_id)
    end
    redis.call("zadd", prefix .. "history:state:" .. new_state, task.enqueued_at, task_id)
    put(fields, "state", new_state)
    task.state = new_state
end

-- One event on the task's timeline: its state, when, and what of worker, attempt and one more
-- field (``name``, ``value``: eta, a number, or error or reason, text) it has. The timeline is one
-- field, not a field per event, which cost 16 % more memory per task for 2 % less time.
local function add_event(task, fields, state_name, worker, attempt, name, value)
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
    local events = (tonumber(task.events) or 0) + 1
    task.events = events
    local timeline = task.timeline
    if events > TIMELINE_MAX then
        -- Rare: drop the oldest events so that a task retried forever stays small.
        local decoded = cjson.decode(timeline)
        while #decoded >= TIMELINE_MAX do
            table.remove(decoded, 1)
        end
        decoded[#decoded + 1] = cjson.decode(encoded .. "}")
        timeline = cjson.encode(decoded)
        events = #decoded
    elseif timeline then
        -- Appending text keeps each event O(1) instead of decoding the whole timeline.
        timeline = string.sub(timeline, 1, -2) .. "," .. encoded .. "}]"
    else
        timeline = "[" .. encoded .. "}]"
    end
    task.timeline = timeline
    local n = #fields
    fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = "timeline", timeline, "events", text(events)
end

local function write(fields)
    redis.call("hset", task_key, unpack(fields))
end

-- Counters go to the minute bucket only; monitoring/counters.py rolls finished minutes up into
-- hour and day buckets once a minute, off the hot path.
local function count(actor, queue, metric, duration, bucket)
    local key = prefix .. "stats:minute:" .. text(math.floor(tonumber(now_text) / 60000))
    local owner = actor .. "@" .. queue .. ":"
    if redis.call("hincrby", key, owner .. metric, "1") == 1 then
        redis.call("expire", key, TTL_MINUTE)
    end
    if duration then
        redis.call("hincrby", key, owner .. "duration_sum", duration)
        redis.call("hincrby", key, owner .. "b" .. bucket, "1")
        -- The slowest and the fastest duration: one read and at most one write, as for the max alone.
        local max_field, min_field = owner .. "duration_max", owner .. "duration_min"
        local kept = redis.call("hmget", key, max_field, min_field)
        local value = tonumber(duration)
        if value > tonumber(kept[1] or "-1") then
            if not kept[2] or value < tonumber(kept[2]) then
                redis.call("hset", key, max_field, duration, min_field, duration)
            else
                redis.call("hset", key, max_field, duration)
            end
        elseif not kept[2] or value < tonumber(kept[2]) then
            redis.call("hset", key, min_field, duration)
        end
    end
end

-- Keeps the task's record ``seconds`` more, and notes when it expires, so that upkeep removes it
-- from every history index then and not before (monitoring/upkeep.py).
local function expire_in(task, seconds)
    redis.call("expire", task_key, text(seconds))
    redis.call("zadd", prefix .. "expiries", text(tonumber(now_text) + seconds * 1000),
               task_id .. "\t" .. task.actor .. "\t" .. task.queue)
end

-- A task seen for the first time: its names, arguments and links, and its place in the
-- unfiltered, actor and queue indexes.
local function create(task)
    task.actor, task.queue, task.enqueued_at = data.actor, data.queue, now_text
    local fields = {"actor", data.actor, "queue", data.queue, "enqueued_at", now_text,
                    "args", data.args or "[]", "kwargs", data.kwargs or "{}"}
    for _, name in ipairs({"parent_id", "pipeline", "group_id", "retry_of"}) do
        put(fields, name, data[name])
    end
    redis.call("zadd", prefix .. "history", now_text, task_id)
    redis.call("zadd", prefix .. "history:actor:" .. task.actor, now_text, task_id)
    redis.call("zadd", prefix .. "history:queue:" .. task.queue, now_text, task_id)
    count(task.actor, task.queue, "enqueued")
    return fields
end

local function fail_for_good(task, fields, error_type, error_message)
    put(fields, "finished_at", now_text)
    put(fields, "error_type", error_type)
    put(fields, "error_message", error_message)
    move_to(task, "FAILURE", fields)
    add_event(task, fields, "FAILURE", nil, nil, "error", error_type .. ": " .. error_message)
    write(fields)
    count(task.actor, task.queue, "failed")
    expire_in(task, TTL_FAILURE)
end

-- A finish may carry its message's acknowledgement (jobs/platform/broker.py): done here, last,
-- exactly as Dramatiq's dispatch script acks (dramatiq/brokers/redis/dispatch.lua): its worker's
-- heartbeat, then the message leaves the worker's acks and the queue's messages. Last, so that an
-- error in the record leaves the message unacknowledged (the broker then acks it the usual way).
-- ARGV[6..10]: acks key, messages key, heartbeats key, worker id, message id.
local function settled(reply)
    if ARGV[6] then
        redis.call("zadd", ARGV[8], now_text, ARGV[9])
        if redis.call("srem", ARGV[6], ARGV[10]) > 0 then
            redis.call("hdel", ARGV[7], ARGV[10])
        end
    end
    return reply
end

local function read(...)
    return redis.call("hmget", task_key, ...)
end

if command == "enqueue" then
    local current = read("state", "eta", "enqueued_at", "events", "actor", "queue", "timeline")
    local task = {state = current[1], enqueued_at = current[3], events = current[4],
                  actor = current[5], queue = current[6], timeline = current[7]}
    local had_eta = current[2]
    if task.state and task.state ~= "SCHEDULED" then
        -- A retry, or a delayed message moved to its queue: the state stays; note the next run.
        if data.eta then
            redis.call("hset", task_key, "eta", data.eta)
        end
        return task.state
    end
    local fields = task.state and {} or create(task)
    if task.state == "SCHEDULED" and data.eta and had_eta == data.eta then
        return task.state  -- a replay of this very enqueue
    end
    if data.eta then
        put(fields, "eta", data.eta)
        move_to(task, "SCHEDULED", fields)
    else
        if had_eta then
            redis.call("hdel", task_key, "eta")
        end
        move_to(task, "PENDING", fields)
    end
    add_event(task, fields, task.state, nil, nil, "eta", data.eta)
    write(fields)
    local delay = data.eta and math.ceil(math.max(tonumber(data.eta) - tonumber(now_text), 0) / 1000) or 0
    expire_in(task, TTL_FAILURE + delay)
    return task.state

elseif command == "start" then
    local current = read("state", "enqueued_at", "events", "worker", "attempt", "deaths", "revoked_until",
                         "orphaned", "eta", "progress", "timeline")
    local task = {state = current[1], enqueued_at = current[2], events = current[3], timeline = current[11]}
    local last_worker, last_attempt, deaths = current[4], current[5], tonumber(current[6]) or 0
    if current[7] and tonumber(current[7]) > tonumber(now_text) then
        if task.state ~= "REVOKED" then
            local fields = {}
            move_to(task, "REVOKED", fields)
            add_event(task, fields, "REVOKED", data.worker)
            write(fields)
        end
        return "revoked"
    end
    local fields
    if not task.state then
        fields = create(task)
    elseif finished(task.state) then
        -- Finished already and redelivered (its worker died before the acknowledgement).
        return "finished"
    else
        fields = {}
        if task.state == "STARTED" then
            if last_worker == data.worker and last_attempt == data.attempt then
                return "ok"  -- a replay of this very start (a kept connection re-sent its batch)
            end
            -- Whether a worker that held a task died without saying goodbye: it never marked
            -- itself stopped, and Dramatiq no longer sees its heartbeat (which is why the broker
            -- redelivered its messages). Defined here, where it is used: a closure costs every call.
            local function died_without_goodbye(worker)
                if not worker then
                    return true
                end
                if redis.call("hexists", prefix .. "worker:" .. worker, "stopped_at") == 1 then
                    return false
                end
                local beat = tonumber(redis.call("zscore", BROKER_HEARTBEATS, worker))
                return not beat or beat < tonumber(now_text) - REDELIVERY_MS
            end
            if died_without_goodbye(last_worker) then
                -- The previous attempt never finished: its worker process died on it.
                deaths = deaths + 1
                fields[1], fields[2] = "deaths", text(deaths)
                add_event(task, fields, "LOST", last_worker)
                if deaths >= POISON_CAP then
                    if current[8] then
                        redis.call("hdel", task_key, "orphaned")
                    end
                    local names = read("actor", "queue")
                    task.actor, task.queue = names[1], names[2]
                    fail_for_good(task, fields, "WorkerKilled", "killed its worker " .. text(deaths) .. " times")
                    return "poison"
                end
            else
                -- Delivered again while its first worker lives or said goodbye (a lost
                -- acknowledgement, a deploy): not a death.
                add_event(task, fields, "REDELIVERED", last_worker)
            end
        end
    end
    if current[8] or current[9] or current[10] then
        redis.call("hdel", task_key, "orphaned", "progress", "progress_text", "eta")
    end
    put(fields, "started_at", now_text)
    put(fields, "worker", data.worker)
    put(fields, "attempt", data.attempt)
    put(fields, "retries", data.retries)
    put(fields, "broker_message_id", data.broker_message_id)
    move_to(task, "STARTED", fields)
    add_event(task, fields, "STARTED", data.worker, data.attempt)
    write(fields)
    return task.actor and "created" or "ok"

elseif command == "finish" then
    local current = read("state", "enqueued_at", "events", "actor", "queue", "finished_attempt", "deaths",
                         "orphaned", "timeline")
    local task = {state = current[1], enqueued_at = current[2], events = current[3],
                  actor = current[4], queue = current[5], timeline = current[9]}
    local fields
    if not task.state then
        fields = create(task)
    elseif finished(task.state) and task.state ~= "REVOKED" then
        return settled(task.state)
    elseif task.state == data.state and data.attempt and current[6] == data.attempt then
        return settled(task.state)  -- a replay of this very finish
    else
        fields = {}
    end
    put(fields, "finished_at", now_text)
    put(fields, "finished_attempt", data.attempt)
    put(fields, "duration_ms", data.duration_ms)
    put(fields, "retries", data.retries)
    if current[7] and current[7] ~= "0" then
        put(fields, "deaths", "0")
    end
    for _, name in ipairs({"result", "error_type", "error_message", "traceback", "fingerprint", "message",
                           "broker_message_id", "dead_lettered_at"}) do
        put(fields, name, data[name])
    end
    if current[8] then
        redis.call("hdel", task_key, "orphaned")
    end
    move_to(task, data.state, fields)
    add_event(task, fields, data.state, data.worker, data.attempt,
              "error", data.error_type and (data.error_type .. ": " .. (data.error_message or "")))
    write(fields)
    local metric = "succeeded"
    if data.state == "FAILURE" then
        metric = "failed"
    elseif data.state == "RETRY" then
        metric = "retried"
    elseif data.state == "REVOKED" then
        metric = "revoked"
    end
    count(task.actor, task.queue, metric, data.duration_ms, data.bucket)
    if data.state == "SUCCESS" or data.state == "REVOKED" then
        expire_in(task, TTL_SUCCESS)
    else
        expire_in(task, TTL_FAILURE)
    end
    if data.state == "FAILURE" and data.fingerprint then
        local group_key = prefix .. "failure-group:" .. data.fingerprint
        redis.call("zadd", group_key, now_text, task_id)
        redis.call("expire", group_key, text(TTL_FAILURE))
        local group_json = redis.call("hget", prefix .. "failure-groups", data.fingerprint)
        local group = group_json and cjson.decode(group_json)
            or {type = data.error_type, message = data.error_message, first = tonumber(now_text), count = 0}
        group.count = group.count + 1
        group.last = tonumber(now_text)
        redis.call("hset", prefix .. "failure-groups", data.fingerprint, cjson.encode(group))
    end
    return settled(task.state)

elseif command == "progress" then
    local state = redis.call("hget", task_key, "state")
    if state == "STARTED" then
        redis.call("hset", task_key, "progress", data.progress, "progress_text", data.text or "")
    end
    return state

elseif command == "revoke" then
    local current = read("state", "enqueued_at", "events", "actor", "queue", "timeline")
    local task = {state = current[1], enqueued_at = current[2], events = current[3],
                  actor = current[4], queue = current[5], timeline = current[6]}
    if not task.state then
        return nil
    end
    if finished(task.state) then
        return task.state
    end
    -- The revocation lasts as long as the message can still be delivered (start checks it).
    local fields = {"revoked_until", text(tonumber(now_text) + tonumber(data.ttl_ms))}
    -- Workers of the release before this one (restarts overlap on a PaaS) check a key instead.
    redis.call("set", prefix .. "revoked:" .. task_id, now_text, "PX", data.ttl_ms)
    if task.state == "STARTED" then
        fields[3], fields[4] = "revoke_requested_at", now_text
        add_event(task, fields, "REVOKE_REQUESTED")
        write(fields)
        return task.state
    end
    local previous = task.state
    fields[3], fields[4] = "finished_at", now_text
    move_to(task, "REVOKED", fields)
    add_event(task, fields, "REVOKED")
    write(fields)
    count(task.actor, task.queue, "revoked")
    expire_in(task, TTL_SUCCESS + math.ceil(tonumber(data.ttl_ms) / 1000))
    return previous

elseif command == "orphan" then
    local current = read("state", "events", "worker", "orphaned", "timeline")
    if current[1] == "STARTED" and current[3] == data.worker and not current[4] then
        local fields = {"orphaned", now_text}
        add_event({events = current[2], timeline = current[5]}, fields, "ORPHANED", current[3])
        write(fields)
        return "orphaned"
    end
    return current[1]

elseif command == "interrupt" then
    -- A stopping worker handed the message back to its queue: the task waits again, no death.
    local current = read("state", "enqueued_at", "events", "worker", "orphaned", "progress", "timeline")
    local task = {state = current[1], enqueued_at = current[2], events = current[3], timeline = current[7]}
    if task.state ~= "STARTED" or current[4] ~= data.worker then
        return task.state
    end
    if current[5] or current[6] then
        redis.call("hdel", task_key, "orphaned", "progress", "progress_text")
    end
    local fields = {}
    move_to(task, "PENDING", fields)
    add_event(task, fields, "INTERRUPTED", current[4], nil, "reason", data.reason)
    write(fields)
    return task.state

elseif command == "lost" then
    -- Upkeep found the message acknowledged (or dead-lettered) while the task was still STARTED:
    -- its finish record never arrived. The outcome is unknown; the task is not left STARTED.
    local current = read("state", "enqueued_at", "events", "actor", "queue", "worker", "orphaned", "timeline")
    local task = {state = current[1], enqueued_at = current[2], events = current[3],
                  actor = current[4], queue = current[5], timeline = current[8]}
    if task.state ~= "STARTED" or current[6] ~= data.worker then
        return task.state
    end
    if current[7] then
        redis.call("hdel", task_key, "orphaned")
    end
    fail_for_good(task, {}, "Lost", data.reason)
    return "lost"

elseif command == "mark" then
    -- Plain field updates on an existing task (dead-lettered, retried_as, ...).
    local state = redis.call("hget", task_key, "state")
    if state and next(data) then
        local fields = {}
        for name, value in pairs(data) do
            put(fields, name, value)
        end
        write(fields)
    end
    return state
end

return redis.error_reply("unknown command " .. command)
