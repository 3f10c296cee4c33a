#!/usr/bin/env bash
# Runs examples/quickstart. With REDIS_ADDR set, against that Redis. Without
# it, against a throwaway redis-server from PATH, started on a free local port
# (no persistence, data in a temporary directory) and stopped at the end.
#
#	examples/run-quickstart.sh
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ -n ${REDIS_ADDR:-} ]]; then
	exec go run ./examples/quickstart -addr "$REDIS_ADDR"
fi

if ! command -v redis-server >/dev/null; then
	echo "redis-server is not on PATH: install it (apt-get install redis-server, brew install redis)" >&2
	echo "or set REDIS_ADDR to a Redis you have (docker run -p 6379:6379 redis:7)" >&2
	exit 1
fi

# Compile first, so that the server does not wait on the build.
bin_dir=$(mktemp -d)
redis_dir=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$bin_dir" "$redis_dir"
}
trap cleanup EXIT
go build -o "$bin_dir/quickstart" ./examples/quickstart

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pick a port nothing listens on and start redis-server there; if another
# process takes the port first, redis-server exits and another port is tried.
for attempt in $(seq 1 20); do
	port=$((20000 + RANDOM % 40000))
	listening "$port" && continue
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$redis_dir" --logfile "$redis_dir/redis.log" &
	pid=$!
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			pid=
			break
		fi
		if listening "$port"; then
			break 2
		fi
		sleep 0.05
	done
	if [[ -n $pid ]]; then
		echo "redis-server on port $port did not start listening; its log:" >&2
		cat "$redis_dir/redis.log" >&2 || true
		exit 1
	fi
done
if [[ -z $pid ]]; then
	echo "could not start redis-server on a free port; its last log:" >&2
	cat "$redis_dir/redis.log" >&2 || true
	exit 1
fi

echo "started a throwaway redis-server on 127.0.0.1:$port"
"$bin_dir/quickstart" -addr "127.0.0.1:$port"
