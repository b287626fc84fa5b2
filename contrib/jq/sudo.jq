# sudo commands from the systemd journal (journalctl -o json _COMM=sudo) -> Stele events.
def uuid8: ascii_downcase as $h | "\($h[0:8])-\($h[8:12])-8\($h[13:16])-\("89ab89ab89ab89ab"[("0123456789abcdef" | index($h[16:17])):][0:1])\($h[17:20])-\($h[20:32])";
def hexw($w): [limit($w; recurse(. / 16 | floor)) | . % 16 | "0123456789abcdef"[.:.+1]] | reverse | join("");
def rfc3339($us): ($us / 1000000 | floor | todate | rtrimstr("Z")) + "." + ("00000" + ($us % 1000000 | tostring))[-6:] + "Z";
select((.MESSAGE | type) == "string" and (.MESSAGE | test(" ; COMMAND=")))
| (.MESSAGE | capture("^\\s*(?<user>\\S+) : (?:(?<problem>[^;=]+) ; )?(?<fields>.*?) ; COMMAND=(?<command>.*)$")) as $m
| ($m.fields | [splits(" ; ") | capture("^(?<key>[A-Z]+)=(?<value>.*)$")] | from_entries) as $f
| {
    id: ((._BOOT_ID[0:20]) + (.__MONOTONIC_TIMESTAMP | tonumber | hexw(12)) | uuid8),
    time: rfc3339(.__REALTIME_TIMESTAMP | tonumber),
    actor: {id: $m.user, type: "human"},
    action: "sudo.command",
    source: {kind: "journald", host: ._HOSTNAME, agent: "sudo"},
    resource: {type: "command", id: $m.command},
    outcome: (if $m.problem then "denied" else "success" end),
    data: ({run_as: $f.USER, tty: $f.TTY, cwd: $f.PWD, pid: (._PID | tonumber?), boot_id: ._BOOT_ID}
           + ($f | del(.USER, .TTY, .PWD) | if length > 0 then {sudo: .} else {} end))
  }
+ (if $m.problem then {reason: $m.problem} else {} end)
