// Package ws implements the WebSocket protocol (RFC 6455) in both roles and presents each
// connection as a byte stream, a net.Conn, as the "websocket" Tor pluggable transport needs:
// message and frame boundaries mean nothing, received data messages are concatenated in order. Each
// function's doc says what it does; this overview gives the spec references and the bounds.
//
// # What is implemented
//
//   - The opening handshake (RFC 6455 section 4): Upgrade for the server (versions 13, and 8 and 7
//     of the hybi drafts), Client for the client. Extensions are never negotiated.
//   - Framing (sections 5.1, 5.2): every violation (RSV bits, reserved opcodes, 64-bit lengths with
//     the top bit set, control frames longer than 125 bytes or fragmented, continuation without a
//     message, a message inside another, a frame masked the wrong way) fails the connection with
//     status 1002. Lengths that are not minimal are accepted: the RFC binds senders.
//   - Masking (section 5.3) with a fresh key from crypto/rand per frame.
//   - Ping is answered by one Pong with the same payload, the latest Ping's when several wait
//     (section 5.5.3); Pong is ignored. During a Write the Pong goes out after the frame being
//     written, so that a peer that reads slowly gets it too.
//   - The closing handshake (sections 5.5.1, 7; the table below): Close payloads are checked (1002;
//     a reason that is not UTF-8: 1007). A Close with status 1000 or none is the peer's end of
//     stream, like a TCP FIN, and our answer waits for CloseWrite or Close, but at most
//     CloseTimeout: section 5.5.1 asks for it as soon as practical, and the peer may stop reading
//     once it has closed. WebSocket has no half-close: after the peer's Close, both directions end
//     within CloseTimeout; after our CloseWrite, reading goes on until the peer's Close, which the
//     caller bounds (the pt package's Relay: by its half-close timeout). TCP is closed in order
//     only once both Close frames have passed; any other end (a violation, a Close unanswered in
//     time, a write error that tore a frame) is a reset, so that the peer cannot take a cut for a
//     clean end and the kernel frees the connection's buffers at once. A failed connection first
//     lingers, so that the peer reads our Close (see CloseWithStatus).
//   - The "base64" subprotocol of the WebSocket pluggable transport proposal (flashproxy
//     doc/websocket-transport.txt): when negotiated, each Write is one text message of standard
//     base64, padded at its end only; received text is decoded strictly (canonical padding, no line
//     breaks) across frame boundaries, and bad base64 fails with 1007. Binary messages are still
//     accepted. A text frame without base64 fails with 1003.
//
// # Limits and defaults
//
// One received data message may carry at most Options.MaxMessage bytes on the wire
// (DefaultMaxMessage, 1 MiB); a frame that would pass it fails the connection with 1009 before its
// payload is read. It may also have at most 4096 frames, or MaxMessage/1024 when that is more, so
// that a message of the largest size may still come in 1 KiB fragments: browsers send one frame per
// message, Write 32 KiB frames, libraries that fragment a few KiB. Empty fragments do not count
// toward MaxMessage, so without this bound a flood of them would be one endless message. Too many
// frames also fail with 1009, not 1008: the bound is on the message's size, counted in frames.
// Empty unfragmented messages need no bound: nothing is kept per message, and each costs the peer a
// frame header (6 bytes from a client) for one header parse here, like any data. The opening
// handshake is bounded by Options.HandshakeTimeout (10 s); the client reads at most 8 KiB of
// response head. Close waits at most Options.CloseTimeout (2 s) for the peer, and a failed
// connection's lingering close discards at most 4 MiB. Writes have no bound of their own: a
// transport that must not let a peer who stops reading hold a connection bounds the conn under the
// WebSocket (the pt package's StallConn does, by progress). Nothing buffered grows with what the
// peer declares: payload is read into the caller's buffer, straight or through a read-ahead of
// fixed size, as are the other buffers (see newConn, Read, textBufs and frameBuf, which say when
// they are taken and given back).
//
// # Concurrency
//
// As with gorilla/websocket: one goroutine may call Read or WaitRead and one Write or ReadFrom at a
// time. Close, CloseWithStatus, CloseWithError, CloseWrite, Subprotocol, the address getters and
// the deadline setters may be called from any goroutine at any time. Frames are written whole under
// one lock, so a Pong or a Close may come between two frames of one message; the writes Read makes
// (a Pong, a Close) never hold it up for longer than CloseTimeout; their write deadlines, and
// Close's, never undo the caller's (see SetWriteDeadline).
//
// # The closing handshake
//
// State (what has been sent and received), event, what is sent, and what
// Read and Write return from then on. "Answer" is a Close with status 1000.
//
//	state            event                          sends                  Read            Write
//	open             CloseWrite                     Close 1000             data, then EOF  error
//	open             Close / CloseWithStatus(c)     Close c, then waits    error           error
//	open             CloseWithError(err != nil)     Close 1011, as above   error           error
//	open             peer's Close 1000 or none      answer at CloseWrite   io.EOF          data, until
//	                                                or after CloseTimeout                  the answer
//	open             peer's Close, other status     its status, at once    *CloseError     error
//	open             violation, message too big     Close 1002/1003/       *CloseError     error
//	                                                1007/1009, at once
//	we closed        peer's Close                   nothing; server: TCP   io.EOF          error
//	                                                closed
//	peer closed      CloseWrite or CloseTimeout     the answer; server:    io.EOF          error
//	                                                TCP closed
//	any              write error or timeout         nothing more; reset    (unchanged)     that error
//	                                                at Close
package ws
