# auditd records (raw lines of /var/log/audit/audit.log or `ausearch --raw`) -> Stele events.
# jq -R -c --arg machine "$(cat /etc/machine-id)" --arg host "$(hostname)" -f auditd.jq
def uuid8: ascii_downcase as $h | "\($h[0:8])-\($h[8:12])-8\($h[13:16])-\("89ab89ab89ab89ab"[("0123456789abcdef" | index($h[16:17])):][0:1])\($h[17:20])-\($h[20:32])";
def hexw($w): [limit($w; recurse(. / 16 | floor)) | . % 16 | "0123456789abcdef"[.:.+1]] | reverse | join("");
def fields: [match("([A-Za-z_][A-Za-z0-9_-]*)=(\"[^\"]*\"|'[^']*'|[^ '\"]*)"; "g") | .captures | {key: .[0].string, value: .[1].string}] | from_entries;
def unquote: if test("^[\"'].*[\"']$") then .[1:-1] else . end;
# Untrusted strings are logged "quoted", or hex-encoded when they hold spaces or odd bytes.
def decoded: if test("^([0-9A-F]{2})+$") then [scan("..") | explode | map(if . >= 65 then . - 55 else . - 48 end) | .[0] * 16 + .[1]]
    | if all(. < 128) then implode else null end else unquote end;
["USER_CMD", "USER_AUTH", "USER_ACCT", "USER_LOGIN", "USER_LOGOUT", "USER_START", "USER_END", "USER_ROLE_CHANGE",
 "ADD_USER", "DEL_USER", "USER_MGMT", "ADD_GROUP", "DEL_GROUP", "GRP_MGMT", "CRED_ACQ", "CONFIG_CHANGE", "USYS_CONFIG"] as $types
| capture("^(?:node=(?<node>\\S+) )?type=(?<type>[A-Z_]+) msg=audit\\((?<sec>[0-9]+)\\.(?<ms>[0-9]+):(?<serial>[0-9]+)\\): (?<rest>.*)$") as $h
| select(. as $line | $types | index($h.type))
| ($h.rest | fields) as $outer
| (($outer.msg // "" | unquote | fields) + ($outer | del(.msg))) as $raw
| ($raw | with_entries(.value |= unquote)) as $f
| (($h.sec | tonumber) * 1000 + ($h.ms | tonumber)) as $ms
| ($raw.acct | if . then (decoded // .) else null end) as $acct
| ((if ($f.AUID // "unset") != "unset" then $f.AUID else null end)
   // (if ($f.auid // "4294967295") != "4294967295" then $f.auid else null end) // $acct // $f.UID // $f.uid) as $who
| {
    id: (($machine + "000000000000")[0:12] + ($ms | hexw(12)) + ($h.serial | tonumber | hexw(8)) | uuid8),
    time: (($ms / 1000 | floor | todate | rtrimstr("Z")) + "." + ("00" + ($ms % 1000 | tostring))[-3:] + "Z"),
    actor: {id: ($who // "unknown"), type: "human"},
    action: ("auditd." + ($h.type | ascii_downcase)),
    source: {kind: "auditd", host: ($h.node // $host), agent: ($f.exe // "auditd")},
    outcome: (if ($f.res // "success") | test("^(success|yes|1)$") then "success"
              elif ($h.type | test("^USER_(AUTH|ACCT|LOGIN)$")) then "denied" else "failure" end),
    data: ($f + {type: $h.type, serial: ($h.serial | tonumber)}
           + (if $raw.cmd then {cmd: ($raw.cmd | decoded // $raw.cmd)} else {} end) + (if $acct then {acct: $acct} else {} end))
  }
+ (if $h.type == "USER_CMD" and $raw.cmd then {resource: {type: "command", id: ($raw.cmd | decoded // $raw.cmd)}}
   elif ($h.type | test("^(ADD|DEL)_(USER|GROUP)$|^(USER|GRP)_MGMT$")) and ($f.ID // $f.id) then {resource: {type: "account", id: ($f.ID // $f.id)}}
   else {} end)
