-- Is this client online, where, since when? Read-only; any Redis client can run it (README,
-- "Presence registry"):
--   redis-cli --eval presence_read.lua mqtt:presence:client:dev-1 , mqtt:presence:
--   SCRIPT LOAD <this file>, then EVALSHA <sha> 1 <prefix>client:<clientid> <prefix>
-- KEYS[1] the client's hash (prefix .. "client:" .. clientid); ARGV[1] the key prefix.
--
-- Returns field, value pairs, like HGETALL: "online" "1" or "0", then, when known, the newest
-- connection seen for the client (node, conn_id, connected_at, ipaddress, username) and
-- last_disconnected_at. Times are milliseconds since the epoch. A connection is online only while
-- it is live and its node's plugin is alive: prefix .. "node:" .. node expires when a node stops
-- refreshing it, and holds a new boot id once the node has restarted.

local fields = {'node', 'boot', 'live', 'conn_id', 'connected_at', 'ipaddress', 'username',
                'last_disconnected_at'}
local h = redis.call('HMGET', KEYS[1], unpack(fields))
local node, boot, live = h[1], h[2], h[3]
local online = live == '1' and node and redis.call('GET', ARGV[1] .. 'node:' .. node) == boot

local reply = {'online', online and '1' or '0'}
for i, name in ipairs(fields) do
  if h[i] and name ~= 'boot' and name ~= 'live' then
    reply[#reply + 1] = name
    reply[#reply + 1] = h[i]
  end
end
return reply
