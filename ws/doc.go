// Package ws implements the WebSocket protocol of RFC 6455, in both roles,
// and presents each connection as a byte stream (a net.Conn).
package ws
