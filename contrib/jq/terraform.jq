# One terraform apply -> one Stele event, from the plan that was applied (`terraform show -json PLANFILE`)
# and the CI's environment (Atlantis's, else GitHub Actions'). jq -c --argjson rc "$rc" --arg host "$(hostname)" -f terraform.jq plan.json
def kind: if . == ["create"] then "create" elif . == ["delete"] then "delete" elif . == ["update"] then "update"
  elif . == ["delete", "create"] or . == ["create", "delete"] then "replace" else join("+") end;
$ENV as $e
| [.resource_changes[]? | select(.change.actions | . != ["no-op"] and . != ["read"]) | {address, kind: (.change.actions | kind)}] as $changes
| {
    actor: {id: ($e.USER_NAME // $e.GITHUB_ACTOR // $e.USER // "unknown"), type: "human"},
    action: "terraform.apply",
    source: {kind: (if $e.ATLANTIS_TERRAFORM_VERSION then "atlantis" elif $e.GITHUB_ACTIONS then "github-actions" else "terraform" end),
             host: $host, agent: "terraform", version: (.terraform_version // "unknown")},
    resource: {type: "terraform.workspace",
               id: "\($e.BASE_REPO_OWNER // ($e.GITHUB_REPOSITORY // "local" | split("/")[0]))/\($e.BASE_REPO_NAME // ($e.GITHUB_REPOSITORY // "local/terraform" | split("/")[1]))/\($e.REPO_REL_DIR // ".")#\($e.WORKSPACE // "default")"},
    outcome: (if $rc == 0 then "success" else "failure" end),
    data: {
      changes: ($changes | group_by(.kind) | map({key: .[0].kind, value: length}) | from_entries),
      resources: [$changes[:200][] | "\(.kind) \(.address)"],
      resources_total: ($changes | length),
      exit_code: $rc,
      commit: ($e.HEAD_COMMIT // $e.GITHUB_SHA),
      pull: ({number: (if $e.PULL_NUM then ($e.PULL_NUM | tonumber) else null end), url: $e.PULL_URL, author: $e.PULL_AUTHOR}
             | with_entries(select(.value != null)) | if length == 0 then null else . end),
      project: $e.PROJECT_NAME
    } | with_entries(select(.value != null))
  }
+ (if $rc != 0 then {reason: "terraform apply exited with \($rc)"} else {} end)
