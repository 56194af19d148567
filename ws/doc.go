// Package ws implements the WebSocket protocol (RFC 6455) in both roles and
// presents each connection as a byte stream, a net.Conn, as the "websocket"
// Tor pluggable transport needs: message and frame boundaries mean nothing,
// received data messages are concatenated in order.
//
// # What is implemented
//
//   - The opening handshake (RFC 6455 section 4): Upgrade for the server
//     (versions 13, and 8 and 7 of the hybi drafts, which differ only in
//     the number), Client for the client. Extensions are never negotiated.
//     Bytes that arrive with the handshake are kept for the first frame.
//   - Framing (section 5.2): RSV bits, reserved opcodes, 64-bit lengths
//     with the top bit set, control frames longer than 125 bytes or
//     fragmented, continuation without a message and a message inside
//     another all fail the connection with status 1002. The server
//     requires masked frames, the client unmasked ones (section 5.1).
//     Lengths that are not minimal are accepted: the RFC binds senders.
//   - Masking (section 5.3) with a fresh key from crypto/rand per frame.
//   - Ping is answered by one Pong with the same payload; Pong is ignored
//     (section 5.5).
//   - The closing handshake (sections 5.5.1, 7): Close payloads are
//     checked (1-byte payload or a code not allowed on the wire: 1002; a
//     reason that is not UTF-8: 1007). A Close with status 1000 or none is
//     the peer's end of stream, like a TCP FIN: Read returns io.EOF, and
//     our answering Close is sent by CloseWrite or Close, so that the local
//     side can end what it is sending, but at the latest CloseTimeout (2 s)
//     after the peer's Close arrived: section 5.5.1 asks for the answer as
//     soon as practical (delaying it only to finish the message being
//     sent), and the peer may stop reading data once it has closed. A Write
//     after the answer fails. Any other status is echoed at once. After
//     both Close frames the server closes the TCP connection; the client
//     waits for that (bounded) in Close. See the table below.
//   - A failed connection (a violation, or a message over the limit) is
//     closed in Close with a lingering close: our Close frame, then a TCP
//     half-close (CloseWrite: a TCP FIN, or over TLS a close_notify alert,
//     which ends the peer's reading but sends no FIN), then incoming
//     bytes discarded until EOF, 4 MiB or Close's bound. Closing at once,
//     with the rest of the peer's message unread, makes the kernel send a
//     reset that can destroy our Close before the peer reads it: browsers
//     then report 1006, not the status we sent.
//   - The "base64" subprotocol of the WebSocket pluggable transport
//     proposal (flashproxy doc/websocket-transport.txt): when negotiated,
//     each Write is one text message of standard base64, padded at its end
//     only; received text is decoded strictly (canonical padding, no line
//     breaks) across frame boundaries, and bad base64 fails with 1007.
//     Binary messages are still accepted. A text frame without base64
//     fails with 1003.
//
// # Limits and defaults
//
// One received data message may carry at most Options.MaxMessage bytes on
// the wire (DefaultMaxMessage, 1 MiB); a frame that would pass it fails the
// connection with 1009 before its payload is read. It may also have at most
// 4096 frames, or MaxMessage/1024 when that is more, so that a message of
// the largest size may still come in 1 KiB fragments: browsers send one
// frame per message, Write 32 KiB frames, libraries that fragment a few
// KiB. Empty fragments do not count toward MaxMessage, so without this
// bound a flood of them would be one endless message. Too many frames also
// fail with 1009, not 1008: the bound is on the message's size, counted in
// frames. Empty unfragmented messages need no bound: nothing is kept per
// message, and each costs the peer a frame header (6 bytes from a client)
// for one header parse here, like any data. The opening handshake is
// bounded by Options.HandshakeTimeout (10 s); the client reads at most 8 KiB
// of response head. Close waits at most Options.CloseTimeout (2 s) for the
// peer. Writes have no bound of their own: a transport that must not let a
// peer who stops reading hold a connection bounds the conn under the
// WebSocket (the pt package's StallConn does, by progress). Write sends a
// message in frames of at most 32 KiB of data (32,769 bytes with base64, a
// multiple of 3), each frame in one write. Nothing buffered grows with what
// the peer declares: payload is read straight into the caller's buffer
// (base64 text through a pooled buffer of one frame's size, taken per
// Read), headers and control frames through a 256-byte array, and write
// buffers come from a pool per frame (ReadFrom reads its source straight
// into one, so a relay's data is not copied).
//
// # Concurrency
//
// One goroutine may call Read and one Write or ReadFrom at a time. Close,
// CloseWithStatus, CloseWithError, CloseWrite, Subprotocol, the address
// getters and the deadline setters may be called at any time from any
// goroutine. Frames are written whole under one lock, so control frames
// come between whole frames (a Pong may come between two frames of one
// message). Read's own writes (a Pong, an echoed or failing Close) never
// hold it up for longer than CloseTimeout: waiting for that lock and the
// write share the bound, a Pong that cannot be sent in time is dropped, and
// a Close first sets the write deadline so that a stalled Write fails and
// lets it through. Close never blocks longer than its bounded wait, even if
// another goroutine is blocked in Read (that Read then fails). A write
// error, timeouts included, ends writing for good: a cut frame cannot be
// resumed.
//
// # The closing handshake
//
// State (what has been sent and received), event, what is sent, and what
// Read and Write return from then on. "Answer" is a Close with status 1000;
// the server closes TCP as soon as both Close frames have passed.
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
//	any              write error or timeout         nothing more           (unchanged)     that error
//
// Close, after its Close frame, reads and discards until the peer's Close
// (or CloseTimeout), and when reading ended without one (a failure) it
// lingers: TCP half-close and discard until EOF, see above.
//
// # Errors
//
// Read returns io.EOF after the peer's Close with status 1000 or no status,
// and a *CloseError for any other status it received or for a violation it
// detected (after sending a Close with that code). A TCP connection that
// ends without a Close frame gives io.ErrUnexpectedEOF. Read timeouts are
// not sticky; every other read error is. Write after a Close was sent fails.
package ws
