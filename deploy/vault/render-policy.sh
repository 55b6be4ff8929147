#!/bin/sh
# Renders a policy template: render-policy.sh comet-node NODE [MOUNT] | render-policy.sh comet-exporter|comet-admin [MOUNT]
# e.g.  deploy/vault/render-policy.sh comet-node web01 | vault policy write comet-node-web01 -
set -eu
here=$(dirname "$0")
kind=${1:?usage: render-policy.sh comet-node NODE [MOUNT] | comet-exporter [MOUNT] | comet-admin [MOUNT]}
if [ "$kind" = comet-node ]; then
  node=${2:?the node name}
  mount=${3:-secret}
  case $node in *[!A-Za-z0-9._-]*|'') echo "invalid node name: $node" >&2; exit 2 ;; esac
else
  node=
  mount=${2:-secret}
fi
case $mount in *[!A-Za-z0-9._-]*|'') echo "invalid mount: $mount" >&2; exit 2 ;; esac
sed -e "s/{{node}}/$node/g" -e "s/{{mount}}/$mount/g" "$here/$kind.hcl.tmpl"
