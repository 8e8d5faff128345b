-- The presence registry's writes (README, "Presence registry"). The plugin's presence thread loads
-- this script once per Redis connection (SCRIPT LOAD), runs it with EVALSHA and loads it again when
-- Redis answers NOSCRIPT. ARGV[1] names the operation: connected, disconnected, gone or tick.
--
-- Keys, all starting with the prefix P (redis_key_prefix):
--   P.."client:"..clientid     hash    the newest connection seen for the client; never expires
--   P.."online"                set     client ids whose newest connection is live
--   P.."tombstone:"..conn_id   string  that connection has ended; expires (presence_tombstone_ttl_ms)
--   P.."node:"..node           string  boot id of the node's running plugin; expires (presence_node_ttl_ms)
--   P.."boot:"..boot           set     client ids whose live connection belongs to that boot
--   P.."boots"                 hash    boot id -> node, for every boot set
--   P.."marks"                 hash    boot id -> number of the boot's latest write (see mark)
-- The keys of an event are passed in KEYS; the few named after stored values (another boot's set,
-- the clients of a dead boot) are built here, so the registry needs one Redis, not a Cluster.

local op = ARGV[1]

-- Every write of a boot carries a number, greater than any the boot sent before; the greatest one
-- Redis has run is kept. A Redis that lost writes it had acknowledged (a failover to a replica that
-- was behind, a restart from an older snapshot) holds a smaller number than the last one the node
-- got a reply for: its tick finds that out, and the node writes its connections again.
local function mark(marks, boot, number)
  if tonumber(number) > (tonumber(redis.call('HGET', marks, boot)) or 0) then
    redis.call('HSET', marks, boot, number)
  end
end

-- connected | disconnected
-- KEYS: client, online, tombstone, boot set, boots, marks
-- ARGV: op, clientid, conn_id, node, boot, connected_at, seq, disconnected_at, ipaddress, username,
--       has_username ("1" | "0"), tombstone ttl (ms), prefix, write number
-- Returns 1 when the client's connection changed, 0 when the event changed nothing. Running the
-- same event twice changes nothing the second time (a connect after its own disconnect finds the
-- tombstone), so an update whose reply was lost can be sent again.
local function update()
  local client, online, tombstone, boot_set, boots = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  local id, conn, node, boot = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  local at, seq = tonumber(ARGV[6]), tonumber(ARGV[7])
  local prefix = ARGV[13]
  local cur_conn, cur_node, cur_boot, cur_at, cur_seq, cur_live, last_off = unpack(redis.call(
    'HMGET', client, 'conn_id', 'node', 'boot', 'connected_at', 'seq', 'live', 'last_disconnected_at'))

  -- Is the event's connection newer than the client's current one? The later connected_at wins;
  -- in one millisecond, on one boot the later connect (seq; 0 when unknown), across boots the
  -- greater conn_id.
  local function newer()
    if not cur_conn then return true end
    local known = tonumber(cur_at)
    if at ~= known then return at > known end
    if node == cur_node and boot == cur_boot then return seq ~= 0 and seq > tonumber(cur_seq) end
    return conn > cur_conn
  end

  -- The current connection stops being live.
  local function leave()
    if cur_live == '1' then
      redis.call('SREM', online, id)
      redis.call('SREM', prefix .. 'boot:' .. cur_boot, id)
    end
  end

  -- The event's connection becomes the client's newest.
  local function take(live)
    redis.call('HSET', client, 'conn_id', conn, 'node', node, 'boot', boot, 'connected_at', ARGV[6],
               'seq', ARGV[7], 'ipaddress', ARGV[9], 'live', live)
    if ARGV[11] == '1' then
      redis.call('HSET', client, 'username', ARGV[10])
    else
      redis.call('HDEL', client, 'username')
    end
  end

  if op == 'connected' then
    if redis.call('EXISTS', tombstone) == 1 then return 0 end
    if conn == cur_conn then
      if cur_live == '1' and cur_boot == boot then return 0 end
      -- the same connection again, after a tick took it for a dead boot's: it is live once more
    elseif not newer() then
      return 0
    end
    leave()
    take('1')
    redis.call('SADD', online, id)
    redis.call('SADD', boot_set, id)
    redis.call('HSET', boots, boot, node)
    return 1
  end

  redis.call('SET', tombstone, '1', 'PX', ARGV[12])
  if not last_off or tonumber(ARGV[8]) > tonumber(last_off) then
    redis.call('HSET', client, 'last_disconnected_at', ARGV[8])
  end
  if conn == cur_conn then
    if cur_live ~= '1' then return 0 end
    leave()
    redis.call('HSET', client, 'live', '0')
    return 1
  end
  -- A connection newer than the current one ended: its connect was lost, yet it replaced the
  -- current one. It stays recorded, so that older connects cannot come back.
  if not newer() then return 0 end
  leave()
  take('0')
  return 1
end

-- gone: the node has no live connection for this client, yet Redis has one of this boot live (its
-- disconnect was among lost writes): it ends.
-- KEYS: online, boot set, marks
-- ARGV: op, clientid, boot, prefix, write number
-- Returns 1 when a live connection ended.
local function gone()
  local online, boot_set, id, boot = KEYS[1], KEYS[2], ARGV[2], ARGV[3]
  local client = ARGV[4] .. 'client:' .. id
  local cur_boot, cur_live = unpack(redis.call('HMGET', client, 'boot', 'live'))
  redis.call('SREM', boot_set, id)
  if cur_boot ~= boot or cur_live ~= '1' then return 0 end
  redis.call('HSET', client, 'live', '0')
  redis.call('SREM', online, id)
  return 1
end

-- tick: refresh this boot's liveness, check that no acknowledged write was lost, then clear the
-- connections of dead boots, at most a limit.
-- KEYS: node key, boots, online, marks
-- ARGV: op, node, boot, node ttl (ms), limit, prefix, number of the boot's last acknowledged write
-- Returns {held, more, swept, lost}: held is 1 when the liveness key still named this boot (0 when it
-- had expired or named another boot), more is 1 when dead boots may have connections left, lost is 1
-- when Redis has not got the write numbered in ARGV[7] (it now takes that number as its own).
local function tick()
  local node_key, boots, online, marks = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
  local node, boot, prefix = ARGV[2], ARGV[3], ARGV[6]
  local budget = tonumber(ARGV[5])
  local held = redis.call('GET', node_key) == boot
  local lost = (tonumber(redis.call('HGET', marks, boot)) or 0) < tonumber(ARGV[7])
  if lost then redis.call('HSET', marks, boot, ARGV[7]) end
  redis.call('SET', node_key, boot, 'PX', ARGV[4])
  redis.call('HSET', boots, boot, node)
  local swept = 0
  local all = redis.call('HGETALL', boots)
  for i = 1, #all, 2 do
    if budget <= 0 then break end
    local dead, owner = all[i], all[i + 1]
    if redis.call('GET', prefix .. 'node:' .. owner) ~= dead then
      local set = prefix .. 'boot:' .. dead
      local ids = redis.call('SPOP', set, budget)
      budget = budget - #ids
      for _, id in ipairs(ids) do
        local client = prefix .. 'client:' .. id
        local b, live = unpack(redis.call('HMGET', client, 'boot', 'live'))
        if b == dead and live == '1' then
          redis.call('HSET', client, 'live', '0')
          redis.call('SREM', online, id)
          swept = swept + 1
        end
      end
      if redis.call('EXISTS', set) == 0 then
        redis.call('HDEL', boots, dead)
        redis.call('HDEL', marks, dead)
      end
    end
  end
  return {held and 1 or 0, budget <= 0 and 1 or 0, swept, lost and 1 or 0}
end

if op == 'connected' or op == 'disconnected' then
  local changed = update()
  mark(KEYS[6], ARGV[5], ARGV[14])
  return changed
end
if op == 'gone' then
  local ended = gone()
  mark(KEYS[3], ARGV[3], ARGV[5])
  return ended
end
if op == 'tick' then return tick() end
return redis.error_reply('ERR presence_write.lua: unknown operation')
