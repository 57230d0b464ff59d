# Helpers shared by the scripts that start local servers (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Succeeds when the process PID (or one of its children) is listening on PORT.
owns_port() {
    local pid=$1 port=$2 pids
    pids="$pid $(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ')"
    for p in $pids; do
        if ss -ltnpH "sport = :$port" 2>/dev/null | grep -q "pid=$p,"; then return 0; fi
    done
    return 1
}
