module gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/bench

go 1.22

require github.com/gorilla/websocket v1.5.3

require gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket v0.0.0

replace gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket => ../
