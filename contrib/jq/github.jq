# GitHub audit log events (REST API `gh api --paginate /orgs/ORG/audit-log`, or the JSON lines of an
# audit log stream to S3, Azure Blob or Google Cloud Storage) -> Stele events.
def uuid8: ascii_downcase as $h | "\($h[0:8])-\($h[8:12])-8\($h[13:16])-\("89ab89ab89ab89ab"[("0123456789abcdef" | index($h[16:17])):][0:1])\($h[17:20])-\($h[20:32])";
# _document_id is 16 random bytes in base64url: its hex is the event's id.
def b64hex: ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/") as $abc
  | [explode[] | [.] | implode | . as $c | $abc | index($c) | select(. != null) | if . > 63 then . - 2 else . end
     | . as $v | range(5; -1; -1) | ($v / pow(2; .) | floor) % 2]
  | [range(0; length - 3; 4) as $i | .[$i:$i + 4] | .[0] * 8 + .[1] * 4 + .[2] * 2 + .[3] | "0123456789abcdef"[.:.+1]] | join("");
if type == "array" then .[] else . end
| (.["@timestamp"] // .created_at) as $ms
| {
    id: (._document_id | b64hex | (. + "00000000000000000000000000000000")[0:32] | uuid8),
    time: (($ms / 1000 | floor | todate | rtrimstr("Z")) + "." + ("00" + ($ms % 1000 | tostring))[-3:] + "Z"),
    actor: {id: (.actor // "github"), type: (if .actor == null or (.actor | test("\\[bot\\]$")) then "service" else "human" end)},
    action: ("github." + (.action | ascii_downcase | gsub("[^a-z0-9_.-]"; "_"))),
    source: {kind: "github", host: "github.com", agent: "audit-log"},
    outcome: (if .action | test("reject|denied|block|fail") then "denied" else "success" end),
    data: .
  }
+ (if .repo then {resource: {type: "repository", id: .repo}}
   elif .team then {resource: {type: "team", id: .team}}
   elif .user then {resource: {type: "user", id: .user}}
   elif .org then {resource: {type: "organization", id: .org}} else {} end)
