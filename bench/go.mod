module gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/bench

go 1.22

require github.com/gorilla/websocket v1.5.3
