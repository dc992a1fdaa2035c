#!/bin/sh
# dvec-entrypoint - starts dvec-coord or dvec-shard in a container (a StatefulSet's pod): maps
# the pod's host name and environment onto the programs' flags, so that one image and one
# config file serve every pod. The Kubernetes test (tests/multihost) runs this very script.
#
#   dvec-entrypoint coord [FLAGS...]    a coordinator: dvec-coord-N is raft id N+1
#   dvec-entrypoint shard [FLAGS...]    a node: its node id is its pod name
#   dvec-entrypoint prestop             a node's preStop hook: when an operator drained this
#                                       node (dvecctl node drain), wait until it holds no
#                                       replica and remove it from the map; else do nothing
#
# Environment (defaults in brackets):
#   POD_NAMESPACE          the pod's namespace (downward API); empty: names are POD.SERVICE
#   DVEC_CLUSTER_DOMAIN    [cluster.local]
#   DVEC_COORD_SERVICE     [dvec-coord] headless Service (and StatefulSet) of the coordinators
#   DVEC_COORD_REPLICAS    [1] coordinators in the bootstrap group (dvec-coord-0 .. R-1); a
#                          coordinator with a higher ordinal joins the running group by itself
#   DVEC_NODE_SERVICE      [dvec-node] headless Service of the nodes
#   DVEC_CONFIG            [/etc/dvec/coord.yaml or /etc/dvec/shard.yaml]
#   DVEC_DATA_DIR          [/var/lib/dvec]
#   DVEC_PRESTOP_WAIT      [600] seconds the preStop hook waits for a drain to finish
#   DVEC_SET_<KEY>=VALUE   any setting as a flag: DVEC_SET_REPLICAS__DEAD_TIMEOUT=10m gives
#                          --replicas.dead_timeout=10m (lower case, "__" is ".")
# Flags given after the role come last and win over everything derived here.
# Ports: coordinator 7300 (native), 7310 (raft), 7380 (REST, metrics); node 7400 (native),
# 7401 (search port), 7480 (metrics).
set -eu

role=${1:-}
[ $# -gt 0 ] && shift

ns=${POD_NAMESPACE:-}
domain=${DVEC_CLUSTER_DOMAIN:-cluster.local}
coord_svc=${DVEC_COORD_SERVICE:-dvec-coord}
coord_n=${DVEC_COORD_REPLICAS:-1}
node_svc=${DVEC_NODE_SERVICE:-dvec-node}
data=${DVEC_DATA_DIR:-/var/lib/dvec}
pod=$(hostname)

die() {
    echo "dvec-entrypoint: $*" >&2
    exit 2
}

# The stable DNS name of pod $1 behind headless Service $2.
fqdn() {
    if [ -n "$ns" ]; then echo "$1.$2.$ns.svc.$domain"; else echo "$1.$2"; fi
}

case $coord_n in
'' | *[!0-9]*) die "DVEC_COORD_REPLICAS '$coord_n' is not a number" ;;
esac
[ "$coord_n" -ge 1 ] && [ "$coord_n" -le 9 ] || die "DVEC_COORD_REPLICAS must be 1 to 9"

# The bootstrap group and the coordinators' client URLs, by name (never by IP).
group=""
coords=""
i=0
while [ "$i" -lt "$coord_n" ]; do
    h=$(fqdn "$coord_svc-$i" "$coord_svc")
    group="$group${group:+,}$((i + 1))=$h:7310=tcp://$h:7300"
    coords="$coords${coords:+,}tcp://$h:7300"
    i=$((i + 1))
done

# DVEC_SET_* as flags, appended after the derived ones (later flags win) and before the
# caller's.
set_flags() {
    env | while IFS= read -r line; do
        case $line in
        DVEC_SET_?*=*)
            name=${line%%=*}
            value=${line#*=}
            key=$(printf '%s' "${name#DVEC_SET_}" | tr 'A-Z' 'a-z' | sed 's/__/./g')
            printf '%s\n' "--$key=$value"
            ;;
        esac
    done
}

# exec PROGRAM DERIVED-FLAGS... -- CALLER-FLAGS...: the DVEC_SET_* flags go in between.
run() {
    prog=$1
    shift
    extra=$(set_flags)
    n=0
    for a in "$@"; do
        [ "$a" = "--" ] && break
        n=$((n + 1))
    done
    # Rotate: derived flags, then DVEC_SET_*, then the caller's.
    i=0
    for a in "$@"; do
        shift
        if [ "$i" -lt "$n" ]; then
            set -- "$@" "$a"
        elif [ "$i" -eq "$n" ]; then
            old_ifs=$IFS
            IFS='
'
            for f in $extra; do set -- "$@" "$f"; done
            IFS=$old_ifs
        else
            set -- "$@" "$a"
        fi
        i=$((i + 1))
    done
    exec "$prog" "$@"
}

case $role in
coord)
    me=$(fqdn "$pod" "$coord_svc")
    run dvec-coord --config "${DVEC_CONFIG:-/etc/dvec/coord.yaml}" --data_dir "$data" \
        --id_from_hostname true --group "$group" \
        --listen tcp://0.0.0.0:7300 --advertise "tcp://$me:7300" \
        --raft.listen 0.0.0.0:7310 --raft.advertise "$me:7310" \
        --http http://0.0.0.0:7380 -- "$@"
    ;;
shard)
    me=$(fqdn "$pod" "$node_svc")
    run dvec-shard --config "${DVEC_CONFIG:-/etc/dvec/shard.yaml}" --data_dir "$data" \
        --node_id_from_hostname true --rejoin_if_removed true --coordinators "$coords" \
        --listen tcp://0.0.0.0:7400 --advertise "tcp://$me:7400" \
        --search_listen tcp://0.0.0.0:7401 \
        --http http://0.0.0.0:7480 -- "$@"
    ;;
prestop)
    exec dvecctl --coordinators "$coords" --timeout 10000 node remove "$pod" --if-draining \
        --wait "${DVEC_PRESTOP_WAIT:-600}"
    ;;
*)
    die "usage: dvec-entrypoint coord|shard|prestop [FLAGS...]"
    ;;
esac
