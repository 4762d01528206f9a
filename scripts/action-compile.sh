#!/usr/bin/env bash
# The body of the composite GitHub action (action.yml): runs `kiln compile`
# in kiln's container image on the workspace and sets the action's outputs.
# Inputs come as environment variables: KILN_MODEL, KILN_TARGETS, KILN_OUT,
# KILN_OPTIONS, KILN_IMAGE.
set -euo pipefail
workspace=${GITHUB_WORKSPACE:-$PWD}
image=${KILN_IMAGE:-}
if [ -z "$image" ]; then
  owner=$(echo "${GITHUB_ACTION_REPOSITORY:-kiln/kiln}" | cut -d/ -f1 | tr '[:upper:]' '[:lower:]')
  ref=${GITHUB_ACTION_REF:-latest}
  image="ghcr.io/$owner/kiln-cpu:${ref#v}"
fi
targets=()
while IFS= read -r t; do
  t=$(echo "$t" | xargs)
  [ -n "$t" ] && targets+=(--target "$t")
done < <(echo "${KILN_TARGETS:-cpu}" | tr ',' '\n')
[ ${#targets[@]} -gt 0 ] || { echo "::error::no targets given"; exit 2; }
[ -f "$workspace/$KILN_MODEL" ] || { echo "::error::model $KILN_MODEL is not a file in the workspace"; exit 2; }
mkdir -p "$workspace/$KILN_OUT"
read -r -a extra <<< "${KILN_OPTIONS:-}"
docker run --rm --network=none --user "$(id -u):$(id -g)" -v "$workspace:/work" -w /work "$image" \
  compile "$KILN_MODEL" "${targets[@]}" -o "$KILN_OUT" "${extra[@]}"
manifest="$KILN_OUT/manifest.json"
{
  echo "manifest=$manifest"
  echo "artifacts<<KILN_EOF"
  python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print("\n".join(sys.argv[2] + "/" + a["module"] for a in m["artifacts"]))' \
    "$workspace/$manifest" "$KILN_OUT"
  echo "KILN_EOF"
} >> "${GITHUB_OUTPUT:-/dev/stdout}"
