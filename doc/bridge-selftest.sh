#!/bin/sh
# Reachability self-test of a websocket bridge (doc/BRIDGE.md): asks for a WebSocket at the
# bridge's url= as websocket-client does, connecting to the Bridge line's address, and checks
# the answer: "101 Switching Protocols" with the right Sec-WebSocket-Accept. Run it from a
# machine outside the bridge's network. Needs curl.
#   sh bridge-selftest.sh URL [ADDRESS:PORT]
#   sh bridge-selftest.sh wss://bridge.example.com/secret-path 203.0.113.10:443
# ADDRESS:PORT is the one of the Bridge line; without it the URL's host is resolved by DNS.
# Set CURL_CA_BUNDLE to trust a CA of your own.
set -u
url=${1:?usage: bridge-selftest.sh URL [ADDRESS:PORT]}
case $url in
wss://*) http=https://${url#wss://} ;;
ws://*) http=http://${url#ws://} ;;
*) echo "FAIL: the URL must start with ws:// or wss://"; exit 2 ;;
esac
hostport=${http#*://}
hostport=${hostport%%/*}
case $hostport in
*:*) ;;
*) case $url in wss://*) hostport=$hostport:443 ;; *) hostport=$hostport:80 ;; esac ;;
esac
connect=
if [ $# -ge 2 ]; then
	connect="--connect-to $hostport:$2"
fi
# The key and its accept value are RFC 6455's example (section 1.3). The bridge keeps the
# connection open after 101, so curl stops at --max-time.
answer=$(curl --http1.1 -sS -i --max-time 5 $connect \
	-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
	-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$http" 2>&1 | tr -d '\r')
if printf '%s\n' "$answer" | grep -q '^HTTP/1.1 101 ' &&
	printf '%s\n' "$answer" | grep -qi '^Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=$'; then
	echo "OK: $url answers as a WebSocket bridge"
	exit 0
fi
echo "FAIL: $url did not answer 101 with the right Sec-WebSocket-Accept; it said:"
echo "$answer" | head -n 15
exit 1
