module gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket

go 1.22
